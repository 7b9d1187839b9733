-- Retention and row grants: a grant names a row and the row it comes from; once the retention purge
-- has removed either (an old tombstone), the grant only takes room, and every policy of its table
-- would still carry its id. The purge now removes such grants too.

create or replace function sync.purge_expired(p_now timestamptz default now()) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_settings sync.settings;
  v_table text;
  v_horizon xid8;
  v_max xid8;
  v_count bigint;
  v_referenced text;
  v_grants bigint;
  v_report jsonb := '{}';
begin
  select * into v_settings from sync.settings for update;
  v_horizon := v_settings.purged_through_xid;
  for v_table in select t.table_name from sync.tables t order by t.sync_order desc loop
    -- Children first, so a purged parent never leaves a child pointing at nothing. A tombstone that
    -- any row still references through a foreign key stays too (a deleted parent its child rows
    -- still name, a deleted reference row still linked, a departed owner still assigned rows):
    -- deleting it would violate the key and fail the whole purge, every day.
    select coalesce(string_agg(format('and not exists (select 1 from %s r where %s)', c.conrelid::regclass, (
             select string_agg(format('r.%I = t.%I', a.attname, fa.attname), ' and ')
               from unnest(c.conkey, c.confkey) k (col, fcol)
               join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.col
               join pg_catalog.pg_attribute fa on fa.attrelid = c.confrelid and fa.attnum = k.fcol)), ' '), '')
      into v_referenced
      from pg_catalog.pg_constraint c
     where c.contype = 'f' and c.confrelid = ('public.' || quote_ident(v_table))::regclass;
    execute format(
      'with gone as (delete from public.%I t where t.deleted_at < $1
                        and not exists (select 1 from sync.descendants(%L, t.id))
                        %s
                      returning t.change_xid)
       select count(*), max(change_xid) from gone', v_table, v_table, v_referenced)
      into v_count, v_max using p_now - v_settings.tombstone_retention;
    v_report := v_report || jsonb_build_object(v_table, v_count);
    if v_max is not null and v_max > v_horizon then
      v_horizon := v_max;
    end if;
  end loop;

  with gone as (
    delete from sync.scope_changes s where s.changed_at < p_now - v_settings.tombstone_retention returning s.change_xid
  )
  select count(*), max(change_xid) into v_count, v_max from gone;
  v_report := v_report || jsonb_build_object('scope_changes', v_count);
  if v_max is not null and v_max > v_horizon then
    v_horizon := v_max;
  end if;

  delete from sync.applied_ops a where a.applied_at < p_now - v_settings.idempotency_retention;
  get diagnostics v_count = row_count;
  v_report := v_report || jsonb_build_object('applied_ops', v_count);

  -- The version history only serves merges of edits based on recent versions.
  delete from sync.row_versions v where v.changed_at < p_now - v_settings.tombstone_retention;
  get diagnostics v_count = row_count;
  v_report := v_report || jsonb_build_object('row_versions', v_count);

  -- Resolved conflicts age out; open ones wait for a person however old they are.
  delete from sync.conflicts c
   where c.resolution <> 'manual_pending' and coalesce(c.resolved_at, c.detected_at) < p_now - v_settings.conflict_retention;
  get diagnostics v_count = row_count;
  v_report := v_report || jsonb_build_object('conflicts', v_count);

  -- Grants of rows, or from rows, that the purge above removed: nothing is left to read or to give
  -- (their users' devices were sent the tombstones long ago).
  v_count := 0;
  for v_table in select t.table_name from sync.tables t order by t.sync_order loop
    execute format('delete from sync.row_grants g
                     where (g.table_name = %1$L and not exists (select 1 from public.%1$I t where t.id = g.row_id))
                        or (g.source_table = %1$L and not exists (select 1 from public.%1$I t where t.id = g.source_id))',
                   v_table);
    get diagnostics v_grants = row_count;
    v_count := v_count + v_grants;
  end loop;
  v_report := v_report || jsonb_build_object('row_grants', v_count);

  update sync.settings set purged_through_xid = v_horizon;
  return v_report || jsonb_build_object('purged_through_xid', v_horizon::text);
end
$$;
comment on function sync.purge_expired(timestamptz) is
  'Retention: hard-deletes tombstones, scope-change entries and version history older than settings.tombstone_retention, idempotency records older than idempotency_retention, resolved conflicts older than conflict_retention (open ones never), and the row grants of rows it removed; cursors from before the purged changes get resync_required. Run it daily (pg_cron or a scheduled job)';
revoke all on function sync.purge_expired(timestamptz) from public;
grant execute on function sync.purge_expired(timestamptz) to service_role;
