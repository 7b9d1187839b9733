-- The review of conflicts by people: views that put server, client and base values side by side,
-- counts for the dashboard, a row's history, and resolve_conflict() to settle a pending one.
-- The views run as sync_engine, their owner (not security_invoker): no client role reads
-- sync.conflicts itself, and row-level security applies to the engine by the caller's claims, so
-- sync.conflicts' policy decides which conflicts a viewer sees (reach all: every one; reach
-- branches: their branches'; anyone: the ones their edits were in) and the row's own policy whether its data shows. A session that
-- is neither a client nor the engine (the owner, service_role: sync.session_reads_all) sees all.

-- A conflict shows its row's data (the server, client and base values, the resolution's data) only
-- to a reviewer who may read the row now, as the pull does: otherwise those are null and `redacted`
-- is true (a reviewer whose branch lost the row, an owner whose row was reassigned). Whether the
-- row is readable is spelled out over the registered tables (sync.conflict_row_readable_sql), so the
-- views need no function a client must execute. They name the tables registered when they were
-- made: a migration that registers a table afterwards calls sync.define_conflict_review_views()
-- again (until then, that table's conflicts show as redacted; a test holds the views to the registry).
create function sync.define_conflict_review_views() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $do$
begin
  execute format($v$
    create or replace view sync.open_conflicts
    as
    select c.id as conflict_id,
           c.table_name,
           c.row_id,
           f.field,
           case when v.readable then c.server_row -> f.field end as server_value,
           case when v.readable then c.client_data -> f.field end as client_value,
           case when v.readable then c.base_data -> f.field end as base_value,
           c.user_id,
           c.server_user_id,
           c.client_id,
           c.base_version,
           c.server_version,
           c.row_version,
           c.branch_id,
           c.detected_at,
           not v.readable as redacted
      from sync.conflicts c
     cross join lateral (select (select sync.session_reads_all()) or %1$s as readable) v
     cross join lateral unnest(case when cardinality(c.pending_fields) > 0 then c.pending_fields else c.fields end) f (field)
     where c.resolution = 'manual_pending'$v$, sync.conflict_row_readable_sql('c'));

  execute format($v$
    create or replace view sync.conflict_history
    as
    select c.table_name, c.row_id, c.detected_at, c.id as conflict_id, c.resolution, c.fields, c.pending_fields,
           c.user_id, c.server_user_id, c.base_version, c.server_version,
           case when v.readable then c.client_data end as client_data,
           case when v.readable then c.base_data end as base_data,
           case when v.readable then c.server_row end as server_row,
           c.resolved_by, c.resolved_at, c.resolution_choice,
           case when v.readable then c.resolution_data end as resolution_data,
           not v.readable as redacted
      from sync.conflicts c
     cross join lateral (select (select sync.session_reads_all()) or %1$s as readable) v$v$, sync.conflict_row_readable_sql('c'));
  alter view sync.open_conflicts owner to sync_engine;
  alter view sync.conflict_history owner to sync_engine;
end
$do$;
comment on function sync.define_conflict_review_views() is
  'Makes (again) the review views that carry conflict data, sync.open_conflicts and sync.conflict_history, with the readability check of every registered table. Call after registering a table.';
revoke all on function sync.define_conflict_review_views() from public, anon, authenticated, service_role;
select sync.define_conflict_review_views();
comment on view sync.open_conflicts is
  'Conflicts waiting for a person, one row per field: the server value, the incoming (client) value and the value both started from (base, when the device sent it); null with redacted true when the viewer may not read the row.';
comment on view sync.conflict_history is
  'Every conflict of every row; filter by table_name and row_id and order by detected_at for a row''s history. The data is null with redacted true when the viewer may not read the row.';

-- Counts carry no row data.
create view sync.conflict_counts
as
select c.table_name,
       (c.detected_at at time zone 'UTC')::date as day,
       c.user_id,
       c.resolution,
       count(*) as conflicts
  from sync.conflicts c
 group by 1, 2, 3, 4;
comment on view sync.conflict_counts is 'Conflicts by table, day (UTC), user and resolution.';
alter view sync.conflict_counts owner to sync_engine;

grant select on sync.open_conflicts, sync.conflict_counts, sync.conflict_history to authenticated, service_role;

-- Marks a conflict resolved; bumps its change_xid so the pull tells the users involved.
create function sync.mark_conflict_resolved(p_id uuid, p_choice text, p_data jsonb) returns jsonb
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
  update sync.conflicts c
     set resolution = 'manual_resolved', resolved_by = auth.uid(), resolved_at = clock_timestamp(),
         resolution_choice = p_choice, resolution_data = p_data, change_xid = pg_current_xact_id()
   where c.id = p_id and c.resolution = 'manual_pending'
  returning to_jsonb(c) - 'change_xid'
$$;

comment on function sync.mark_conflict_resolved(uuid, text, jsonb) is
  'Marks a pending conflict resolved (who, when, how) and restamps it so the pull tells the users involved; null when it was not pending.';
create function sync.resolve_conflict(p_conflict_id uuid, p_choice text, p_data jsonb default null) returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_conflict sync.conflicts;
  v_row jsonb;
  v_values jsonb;
  v_cols text[];
  v_unknown text;
  v_fault text;
  v_new jsonb;
begin
  if current_user in ('authenticated', 'sync_engine') then
    -- a banned or departed reviewer resolves nothing, like they sync nothing
    perform sync.require_staff('resolving a conflict');
  end if;
  if current_user in ('authenticated', 'sync_engine') and not coalesce((sync.caller_role()).resolves_conflicts, false) then
    raise exception using errcode = '42501', message = 'your role may not resolve conflicts (sync.roles.resolves_conflicts)';
  end if;
  select * into v_conflict from sync.conflicts c where c.id = p_conflict_id;
  if not found then
    raise exception using errcode = 'P0002', message = format('conflict %s does not exist or is not visible to you', p_conflict_id);
  end if;
  if v_conflict.resolution <> 'manual_pending' then
    raise exception using errcode = '55000',
      message = format('conflict %s is already resolved (%s)', p_conflict_id, v_conflict.resolution),
      hint = 'a conflict is resolved once';
  end if;

  execute format('select to_jsonb(t) from public.%I t where t.id = $1', v_conflict.table_name)
    into v_row using v_conflict.row_id;
  if v_row is null then
    raise exception using errcode = 'P0002', message = format('%s %s does not exist or is not visible to you',
                                                            v_conflict.table_name, v_conflict.row_id);
  end if;
  -- Keeping the server's value is always safe (it dismisses the conflict); writing a value onto a
  -- row that changed since would decide blind.
  if (v_row ->> 'version')::bigint <> v_conflict.row_version and p_choice is distinct from 'server' then
    raise exception using errcode = '40001',
      message = format('%s %s changed since the conflict (version %s, now %s); review it again',
                       v_conflict.table_name, v_conflict.row_id, v_conflict.row_version, v_row ->> 'version');
  end if;

  v_values := case p_choice
    when 'server' then '{}'::jsonb
    when 'client' then (select coalesce(jsonb_object_agg(f, v_conflict.client_data -> f), '{}')
                          from unnest(case when cardinality(v_conflict.pending_fields) > 0 then v_conflict.pending_fields
                                           else v_conflict.fields end) f
                         where v_conflict.client_data ? f)
    when 'custom' then p_data
  end;
  if p_choice is null or p_choice not in ('server', 'client', 'custom') then
    raise exception using errcode = '22023', message = format('choice must be server, client or custom, not %s', coalesce(p_choice, 'null'));
  end if;
  if p_choice = 'custom' and (jsonb_typeof(p_data) is distinct from 'object' or p_data = '{}'::jsonb) then
    raise exception using errcode = '22023', message = 'a custom resolution needs data: an object of column values';
  end if;
  v_values := v_values - sync.server_columns();
  select k into v_unknown from jsonb_object_keys(v_values) k where k <> all (sync.client_columns(v_conflict.table_name)) limit 1;
  if v_unknown is not null then
    raise exception using errcode = '22023', message = format('%s has no column %s', v_conflict.table_name, v_unknown);
  end if;
  -- Held to the push's value rules: the row keeps exactly what the reviewer chose.
  select format('%s.%s: %s', v_conflict.table_name, f.column_name, f.message) into v_fault
    from sync.value_faults(v_conflict.table_name, v_values) f limit 1;
  if v_fault is not null then
    raise exception using errcode = '22023', message = v_fault;
  end if;

  v_new := v_row;
  if v_values <> '{}'::jsonb then
    select array_agg(k) into v_cols from jsonb_object_keys(v_values) k;
    -- A new version through the normal triggers, stated against the version just checked
    -- (`version = -N`, see sync.stamp_row).
    execute format('update public.%1$I t set %2$s, version = -$3 from jsonb_populate_record(null::public.%1$I, $2) r where t.id = $1 returning to_jsonb(t)',
                   v_conflict.table_name, (select string_agg(format('%1$I = r.%1$I', c), ', ') from unnest(v_cols) c))
      into v_new using v_conflict.row_id, v_values, (v_row ->> 'version')::bigint;
    if v_new is null then
      raise exception using errcode = '42501', message = format('you may not update %s %s', v_conflict.table_name, v_conflict.row_id);
    end if;
  end if;
  return jsonb_build_object('conflict', sync.mark_conflict_resolved(p_conflict_id, p_choice, v_values),
                            'row', v_new - 'change_xid');
end
$$;
comment on function sync.resolve_conflict(uuid, text, jsonb) is
  'Settles a pending conflict: server keeps the row, client applies the incoming values of the pending fields, custom applies data. The change is a new version through the normal triggers, so it syncs to every device. Refuses a resolved conflict, and client or custom onto a row that changed since.';

create function public.resolve_conflict(conflict_id uuid, choice text, data jsonb default null) returns jsonb
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
  select sync.resolve_conflict(conflict_id, choice, data)
$$;
comment on function public.resolve_conflict(uuid, text, jsonb) is
  'Resolve a pending conflict (roles with sync.roles.resolves_conflicts, for the conflicts they see): choice server | client | custom (with data).';

revoke all on function public.resolve_conflict(uuid, text, jsonb) from public, anon;
grant execute on function public.resolve_conflict(uuid, text, jsonb) to authenticated, service_role;
grant execute on function sync.mark_conflict_resolved(uuid, text, jsonb), sync.resolve_conflict(uuid, text, jsonb)
  to authenticated, service_role;
