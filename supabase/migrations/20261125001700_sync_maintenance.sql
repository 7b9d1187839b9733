-- Retention and health. Tombstones, idempotency records, scope-change entries, the version history
-- and resolved conflicts are kept for a configured time; a cursor older than what was purged must resync, because it may have missed a
-- delete that is gone now.

create function sync.purge_expired(p_now timestamptz default now()) returns jsonb
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

  update sync.settings set purged_through_xid = v_horizon;
  return v_report || jsonb_build_object('purged_through_xid', v_horizon::text);
end
$$;
comment on function sync.purge_expired(timestamptz) is
  'Retention: hard-deletes tombstones, scope-change entries and version history older than settings.tombstone_retention, idempotency records older than idempotency_retention, and resolved conflicts older than conflict_retention (open ones never); cursors from before the purged changes get resync_required. Run it daily (pg_cron or a scheduled job)';
revoke all on function sync.purge_expired(timestamptz) from public;
grant execute on function sync.purge_expired(timestamptz) to service_role;

-- Health: the database clock and the age of the oldest open writing transaction. Pulls do not wait
-- for it, but every cursor issued while it is open scans from its id on, and the retention purge
-- cannot pass it: a session left idle in a transaction shows up here first.
create function sync.health() returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'status', 'ok',
    'server_time', clock_timestamp(),
    'protocols', jsonb_build_array(1, 2),
    'oldest_write_xact_seconds', coalesce((
      select round(extract(epoch from clock_timestamp() - min(a.xact_start))::numeric, 3)
        from pg_catalog.pg_stat_activity a
       where a.backend_xid is not null and a.pid <> pg_backend_pid()
    ), 0)
  )
$$;

comment on function sync.health() is
  'The health answer (status, database clock, protocols served, age of the oldest writing transaction), for public.sync_health.';
-- Definer, so anon (connectivity probes) reaches it without any access to the sync schema.
create function public.sync_health() returns jsonb
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select sync.health()
$$;
comment on function public.sync_health() is 'Sync health: status, database clock, protocols served, age of the oldest transaction holding back the pull.';
revoke all on function public.sync_health() from public;
grant execute on function public.sync_health() to anon, authenticated, service_role;
grant execute on function sync.health() to service_role;
