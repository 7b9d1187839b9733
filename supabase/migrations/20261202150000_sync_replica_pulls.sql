-- Pulls from a read replica (issue 18): the pull runs on a hot standby as it does on the primary,
-- and a cursor says which server lineage and which WAL position its snapshots belong to.
--
-- On a hot standby pg_current_snapshot() has the right xmin and xmax but an empty list of
-- transactions in progress (the standby tracks them apart from the snapshot), so a window built on
-- that list would count a transaction still running at the snapshot as delivered and never send its
-- rows. sync.pull_snapshot(lower) therefore narrows a standby's snapshot to (xmin:xmin:): every xid from
-- xmin on counts as not yet delivered, and the next cycle delivers what of it committed. Nothing else
-- of the pull changes: the window rule (sync.changed_between) reads snapshots only.
--
-- A snapshot is only meaningful on the server lineage that took it: after a failover an asynchronous
-- standby may lack commits the old primary acknowledged and hands their xids out again. A cursor
-- therefore carries the system identifier and timeline (sync.server_lineage()); a cursor of another
-- lineage resyncs. It also carries a WAL position its snapshots are complete up to (on the primary the
-- WAL flush position, on a standby the replay position, both read after the snapshot was taken): a
-- replica that has not replayed that far would read rows older than the snapshot says, so such a pull
-- is refused with replica_behind (the function then serves it from the primary). The replica's replay
-- position must be read before the pull's snapshot is taken, so the caller states it in the
-- transaction setting sync.replayed_lsn (the function does; see db.ts).

create function sync.server_lineage() returns text
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  -- A promoted server writes WAL on its new timeline at once, while its checkpoint record still
  -- names the old one until the next checkpoint, so a primary's timeline is read from its WAL file
  -- name. A standby's checkpoint timeline likewise lags one that follows a promoted primary until
  -- its next restartpoint; the timeline of the WAL it receives, or the one its recovery must reach,
  -- is the newer, so it counts the highest of the three.
  select (select s.system_identifier::text from pg_control_system() s) || '/' ||
         case when pg_is_in_recovery()
              then greatest((select c.timeline_id from pg_control_checkpoint() c),
                            (select r.min_recovery_end_timeline from pg_control_recovery() r),
                            (select max(w.received_tli) from pg_stat_wal_receiver w))
              else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer
         end::text
$$;
comment on function sync.server_lineage() is
  'The system identifier and timeline of this server as "sysid/timeline": a pull cursor is bound to it, so a cursor issued before a failover, or by another cluster, resyncs.';

-- A new cycle's window must see at least what the device's data is complete up to: else a commit its
-- cursor counts as delivered would count as not yet, and a table registered in between as new again
-- (sent from the start: live rows only, without the deletes and evictions since). A primary's later
-- snapshot always sees more, but a standby's (xmin:xmin:) may see less than one a primary took, which
-- lists its open transactions rather than stopping at the oldest. The standby holds every commit
-- the lower snapshot saw (it has replayed the cursor's WAL position, or the pull is refused), so the
-- window is widened to them.
create function sync.standby_upper_snapshot(p_upper pg_snapshot, p_lower pg_snapshot) returns pg_snapshot
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select case
    when p_lower is null or pg_snapshot_xmax(p_lower) <= pg_snapshot_xmin(p_upper)
         or pg_snapshot_xmin(p_upper) <> pg_snapshot_xmax(p_upper) then p_upper
    else (select format('%s:%s:%s', coalesce(min(x), pg_snapshot_xmax(p_lower)), pg_snapshot_xmax(p_lower),
                        coalesce(string_agg(x::text, ',' order by x), ''))::pg_snapshot
            from pg_snapshot_xip(p_lower) x
           where x >= pg_snapshot_xmin(p_upper))
  end
$$;
comment on function sync.standby_upper_snapshot(pg_snapshot, pg_snapshot) is
  'The snapshot that sees what p_upper sees and what p_lower sees, for p_upper a standby''s narrowed snapshot (xmin:xmin:, every xid below xmin visible; one with transactions in progress is not of that form and is returned as it is): a new cycle''s upper snapshot on a standby, never behind the cursor''s.';

create function sync.pull_snapshot(p_lower pg_snapshot) returns pg_snapshot
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select case when pg_is_in_recovery()
              then sync.standby_upper_snapshot((pg_snapshot_xmin(s) || ':' || pg_snapshot_xmin(s) || ':')::pg_snapshot, p_lower)
              else s end
    from pg_current_snapshot() s
$$;
comment on function sync.pull_snapshot(pg_snapshot) is
  'The snapshot a new pull cycle delivers up to, given the one the device''s data is complete up to (p_lower): the current one on a primary; on a hot standby, whose snapshot lists no transaction in progress, the same with xmax lowered to xmin (every xid in [xmin, xmax) counts as not yet delivered), widened to what p_lower saw.';

create function sync.ahead_of_this_server(p_snapshot pg_snapshot) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- The transactions this server has not ended are those its snapshot lists and those from its
  -- xmax on; of the latter, p_snapshot counts as committed those below its own xmax it does not
  -- list, counted rather than listed (a cursor's snapshot may lie far ahead of a server it was not
  -- taken on).
  select p_snapshot is not null
     and (exists (select 1 from pg_snapshot_xip(c) x where sync.changed_between(x, c, p_snapshot))
          or pg_snapshot_xmax(p_snapshot)::text::numeric - pg_snapshot_xmax(c)::text::numeric
             > (select count(*) from pg_snapshot_xip(p_snapshot) x where x >= pg_snapshot_xmax(c)))
    from pg_current_snapshot() c
$$;
comment on function sync.ahead_of_this_server(pg_snapshot) is
  'Does p_snapshot (a cursor''s, possibly a standby''s) count as committed a transaction this server has not ended? On a primary such a snapshot came from a standby that showed a commit first; a pull reading against it now would miss the commit''s rows.';

create function sync.wal_position() returns pg_lsn
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- The flush position, not the insert one: a standby receives only flushed WAL, and a position it
  -- cannot reach until something else flushes would keep every pull on the primary meanwhile. A
  -- synchronous commit is flushed before it becomes visible (an asynchronous one, synchronous_commit
  -- off, may not be yet: a cycle whose pages such a commit falls between could then miss it on a
  -- standby; the engine's writes commit synchronously).
  select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_flush_lsn() end
$$;
comment on function sync.wal_position() is
  'A WAL position every synchronous commit visible in a snapshot taken before this call precedes: the flush position on a primary, the replay position on a standby. A pull cursor carries it.';

create function sync.replica_behind(p_lsn pg_lsn) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- The position the caller read before its snapshot (the function does, in another transaction):
  -- it proves nothing if it was read on another server, or before this one restarted (a restarted
  -- standby may resume replay from an older point), so it names the server's start time too. Without
  -- one, the position read now is safe only under READ COMMITTED, whose next statements take newer
  -- snapshots; a snapshot taken before it (REPEATABLE READ) may be older, so such a pull is behind.
  select pg_is_in_recovery()
     and p_lsn is not null
     and (coalesce(nullif(current_setting('sync.replayed_on', true), ''), pg_postmaster_start_time()::text)
            <> pg_postmaster_start_time()::text
          or p_lsn > coalesce(nullif(current_setting('sync.replayed_lsn', true), '')::pg_lsn,
                              case when current_setting('transaction_isolation') = 'read committed'
                                   then pg_last_wal_replay_lsn() end,
                              '0/0'))
$$;
comment on function sync.replica_behind(pg_lsn) is
  'On a standby: has it not yet replayed p_lsn as of the pull''s snapshot (the position the caller read before the snapshot on this server since its start: the settings sync.replayed_lsn and sync.replayed_on)? Always false on a primary.';

-- Devices hold cursors across upgrades, and a resync costs each of them a full pull: the new
-- attributes go last, and a cursor of the shape before them still resumes (sync.read_cursor). Such a
-- cursor was issued by the server this migration ran on, whose lineage is kept for it here; it names
-- no WAL position, so only a primary serves it, and the cursor it gets back has both attributes.
alter type sync.pull_position add attribute lineage text, add attribute wal_lsn pg_lsn;
comment on column sync.pull_position.lineage is
  'sync.server_lineage() of the server that issued the cursor (system identifier and timeline); a cursor of another lineage resyncs.';
comment on column sync.pull_position.wal_lsn is
  'A WAL position the cursor''s snapshots are complete up to (sync.wal_position()); a standby that has not replayed it refuses the pull with replica_behind.';
alter table sync.settings add column legacy_cursor_lineage text;
update sync.settings set legacy_cursor_lineage = sync.server_lineage();
comment on column sync.settings.legacy_cursor_lineage is
  'The lineage (sync.server_lineage()) of the server that was upgraded to cursors with a lineage: the lineage of every cursor issued before, which carry none. After a failover it differs from the server''s, and such a cursor resyncs.';

create or replace function sync.read_cursor(p_cursor text) returns sync.pull_position
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := string_to_array(p_cursor, '.');
  v_body bytea;
  v_text text;
  v_position sync.pull_position;
begin
  begin
    if cardinality(v_parts) <> 2 or p_cursor !~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' then
      raise exception 'malformed';
    end if;
    v_body := sync.b64url_decode(v_parts[1]);
    -- Base64 leaves spare bits in the last character of most lengths, and decode() ignores them: a
    -- cursor altered there would decode to the signed body. Only the encoding this server issued is one.
    if sync.b64url(v_body) <> v_parts[1] then
      raise exception 'not canonical';
    end if;
    if sync.b64url(extensions.hmac(v_body, (select s.cursor_secret from sync.settings s), 'sha256')) <> v_parts[2] then
      raise exception 'bad signature';
    end if;
  exception when others then
    perform sync.request_error('invalid_cursor', 'the cursor was not issued by this server or was altered');
  end;
  begin
    v_text := convert_from(v_body, 'UTF8');
    v_position := v_text::sync.pull_position;
  exception when others then
    begin
      if v_text is null then
        raise exception 'not UTF-8';
      end if;
      -- The shape before lineage and wal_lsn: the same attributes, two fewer at the end. Its
      -- lineage is the one the upgrade kept; its WAL position stays unknown (see sync.pull).
      v_position := (left(v_text, -1) || ',,)')::sync.pull_position;
      v_position.lineage := (select s.legacy_cursor_lineage from sync.settings s);
    exception when others then
      -- The signature says this server issued it, so the device did nothing wrong: it holds a cursor
      -- of an earlier release (before this type the state was JSON) or of another shape of this type.
      -- Nothing in it can be read as a position any more, so the device starts over, as after a schema
      -- epoch change: null, which the pull answers with resync_required.
      return null;
    end;
  end;
  if v_position.user_id is distinct from auth.uid() then
    perform sync.request_error('invalid_cursor', 'the cursor was issued to another user');
  end if;
  return v_position;
end
$$;
comment on function sync.read_cursor(text) is
  'The position in a cursor this server issued to the caller, verified (canonical encoding, signature); one of the shape before lineage and wal_lsn gets the lineage the upgrade kept and no WAL position; null for one it signed in a form it no longer reads (the pull then answers resync_required); raises SYCR1 otherwise.';

create or replace function sync.request_error_codes() returns table (code text, sqlstate text)
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  values ('invalid_request', 'SYRQ1'),
         ('invalid_cursor', 'SYCR1'),
         ('unsupported_protocol', 'SYPR1'),
         ('too_large', 'SYLM1'),
         ('missing_token', 'SYAU1'),
         ('not_staff', 'SYST1'),
         ('account_inactive', 'SYST2'),
         ('replica_behind', 'SYRP1'),
         ('busy', 'SYBZ1')
$$;
comment on function sync.request_error_codes() is
  'The request-level error codes the SQL API raises and the SQLSTATE of each (the registry: supabase/functions/sync/error_codes.ts): SYRQ1 invalid_request, SYCR1 invalid_cursor, SYPR1 unsupported_protocol, SYLM1 too_large, SYAU1 missing_token (no user in the claims), SYST1 not_staff, SYST2 account_inactive, SYRP1 replica_behind (a standby has not replayed what the cursor or min_lsn asks for), SYBZ1 busy (a commit the pull''s window counts as visible is not yet visible on this server).';

create or replace function sync.pull(p_payload jsonb) returns json
language plpgsql
set search_path = pg_catalog, pg_temp
-- The row-set estimates of jsonb and array functions are guesses far above a request's size, so
-- the JIT would compile (tens of milliseconds) what runs in one: a request is OLTP work.
set jit = off
as $$
declare
  v_uid uuid := auth.uid();
  v_limits record := sync.limits();
  v_issues jsonb := '[]';
  v_limit integer;
  v_tables text[];
  v_known text[];
  v_scope_tables text[];
  v_new boolean;
  v_scope_key text;
  v_state sync.pull_position;
  v_lo pg_snapshot;
  v_hi pg_snapshot;
  v_full boolean;
  v_phase text;
  v_start_table text;
  v_table text;
  v_after_xid xid8;
  v_after_id uuid;
  v_page json[];
  v_page_count integer;
  v_page_bytes bigint;
  v_last_xid xid8;
  v_last_id uuid;
  v_changes json[] := '{}';   -- the changes, page by page
  v_count integer := 0;        -- changes on this page
  v_bytes bigint := 0;         -- bytes of JSON of those changes
  v_max_bytes bigint;
  v_more boolean;
  v_resume boolean;
  v_row record;
  v_has_more boolean := false;
  v_next sync.pull_position;
  v_entry record;
  v_change json;
  v_size integer;
  v_last_entry_xid xid8;
  v_last_entry_id bigint;
  v_batch integer;
  v_seen integer;
  v_x record;
  v_i integer := 0;
begin
  perform sync.require_staff('a pull');
  if jsonb_typeof(p_payload) is distinct from 'object' then
    perform sync.request_error('invalid_request', 'the body must be a JSON object',
      jsonb_build_array(jsonb_build_object('path', '[]'::jsonb, 'message', 'expected object')));
  end if;
  if jsonb_typeof(p_payload -> 'protocol') is distinct from 'number' then
    v_issues := v_issues || jsonb_build_object('path', '["protocol"]'::jsonb, 'message', 'expected 1 or 2');
  elsif p_payload -> 'protocol' not in ('1', '2') then
    perform sync.request_error('unsupported_protocol', format('protocol %s is not served; supported: [1,2]', p_payload -> 'protocol'));
  end if;
  -- The rules of the function's schema (supabase/functions/sync/schemas.ts), with the bounds of
  -- sync.request_limits(): no other keys, and null for the cursor alone (an absent limit or tables
  -- has its default; null is no value of either). differential.test.ts holds the two doors to it.
  v_issues := v_issues || coalesce(sync.unrecognized_keys(p_payload, array['protocol', 'cursor', 'tables', 'limit', 'min_lsn'], '[]'), '[]');
  if coalesce(jsonb_typeof(p_payload -> 'cursor'), 'null') not in ('null', 'string') then
    v_issues := v_issues || jsonb_build_object('path', '["cursor"]'::jsonb, 'message', 'expected a string or null');
  elsif octet_length(p_payload ->> 'cursor') > (sync.request_limits()).cursor_bytes then
    v_issues := v_issues || jsonb_build_object('path', '["cursor"]'::jsonb,
      'message', format('expected a cursor of at most %s bytes', (sync.request_limits()).cursor_bytes));
  end if;
  -- min_lsn (a push's commit_lsn) tells a replica what it must have replayed; the primary is always
  -- past it, and a standby compares it as it does a cursor's position.
  if p_payload ? 'min_lsn' and (jsonb_typeof(p_payload -> 'min_lsn') is distinct from 'string'
                                or p_payload ->> 'min_lsn' !~ '^[0-9A-F]{1,8}/[0-9A-F]{1,8}$') then
    v_issues := v_issues || jsonb_build_object('path', '["min_lsn"]'::jsonb,
      'message', 'expected a WAL position such as 0/16B3748 (a push''s commit_lsn)');
  end if;
  if p_payload ? 'limit' and not sync.is_whole_number(p_payload -> 'limit', 1, (sync.request_limits()).pull_limit_max) then
    v_issues := v_issues || jsonb_build_object('path', '["limit"]'::jsonb,
      'message', format('expected a whole number from 1 to %s', (sync.request_limits()).pull_limit_max));
  end if;
  if p_payload ? 'tables' and jsonb_typeof(p_payload -> 'tables') <> 'array' then
    v_issues := v_issues || jsonb_build_object('path', '["tables"]'::jsonb, 'message', 'expected an array of table names');
  elsif jsonb_typeof(p_payload -> 'tables') = 'array' then
    -- An empty list would select no table at all (and used to fail the request with a raw error).
    if jsonb_array_length(p_payload -> 'tables') = 0 then
      v_issues := v_issues || jsonb_build_object('path', '["tables"]'::jsonb, 'message', 'expected at least one table');
    elsif jsonb_array_length(p_payload -> 'tables') > (sync.request_limits()).pull_tables_max then
      v_issues := v_issues || jsonb_build_object('path', '["tables"]'::jsonb,
        'message', format('expected at most %s table names', (sync.request_limits()).pull_tables_max));
    end if;
    -- The names are looked up as far as the bound, however long the list.
    for v_row in select t.value, t.ordinality - 1 as i from jsonb_array_elements(p_payload -> 'tables') with ordinality t
                  limit (sync.request_limits()).pull_tables_max loop
      if jsonb_typeof(v_row.value) <> 'string'
         or (v_row.value #>> '{}' <> 'conflicts' and not exists (select 1 from sync.tables r where r.table_name = v_row.value #>> '{}')) then
        v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('tables', v_row.i), 'message', 'not a syncable table');
      end if;
    end loop;
  end if;
  if jsonb_array_length(v_issues) > 0 then
    perform sync.request_error('invalid_request', 'the pull request is not valid', v_issues);
  end if;

  v_limit := least(coalesce((p_payload ->> 'limit')::numeric::integer, v_limits.default_pull_limit), v_limits.max_pull_limit);
  v_max_bytes := v_limits.max_pull_bytes;
  -- What the caller may see follows from their role and branches. When either changes, the
  -- rows they gain or lose did not change themselves, so no delta would carry them: such a cursor resyncs.
  -- A digest, so a cursor stays as short for a caller of many branches as for one of one.
  v_scope_key := md5(coalesce(sync.current_app_role(), '') || '/'
                     || array_to_string(array(select b from unnest(sync.current_branch_ids()) b order by b), ','));

  -- A first pull starts from the empty position (every attribute null).
  if p_payload ->> 'cursor' is not null then
    v_state := sync.read_cursor(p_payload ->> 'cursor');
    -- Null: a cursor this server signed in a form it no longer reads.
    if v_state is null
       or v_state.schema_epoch is distinct from v_limits.schema_epoch
       or v_state.scope_key is distinct from v_scope_key
       or pg_snapshot_xmin(v_state.since_snapshot) <= v_limits.purged_through_xid then
      return json_build_object('server_time', clock_timestamp(), 'changes', '[]'::json, 'cursor', null,
                               'has_more', false, 'resync_required', true);
    end if;
    if v_state.lineage is distinct from sync.server_lineage() then
      -- A standby not yet on the timeline of a failover knows too little to send a device back to a
      -- full pull: the primary decides.
      if pg_is_in_recovery() then
        perform sync.request_error('replica_behind', 'the replica has not yet replayed what this pull asks for');
      end if;
      return json_build_object('server_time', clock_timestamp(), 'changes', '[]'::json, 'cursor', null,
                               'has_more', false, 'resync_required', true);
    end if;
  end if;

  -- A standby that has not replayed what this device has seen would serve it an older state. A cursor
  -- with no WAL position (one issued before cursors had one) is served by the primary alone.
  if sync.replica_behind(case when p_payload ->> 'cursor' is not null and v_state.wal_lsn is null
                              then 'FFFFFFFF/FFFFFFFF'::pg_lsn
                              else greatest(v_state.wal_lsn, (p_payload ->> 'min_lsn')::pg_lsn) end) then
    perform sync.request_error('replica_behind', 'the replica has not yet replayed what this pull asks for');
  end if;

  v_lo := v_state.since_snapshot;
  v_hi := coalesce(v_state.until_snapshot, sync.pull_snapshot(v_lo));
  v_full := v_lo is null;
  -- A standby's snapshot counts every xid below its xmin as committed, and a standby may show a
  -- commit before the primary's backend has finished making it visible there (it flushes, may wait
  -- for synchronous standbys, then ends). Read here now against such a snapshot from the cursor,
  -- the commit's rows would be their older versions: a cycle's upper snapshot would count the change
  -- as sent, a lower one its table as registered. The pull waits for it (busy; the function retries).
  if not pg_is_in_recovery()
     and (sync.ahead_of_this_server(v_lo) or sync.ahead_of_this_server(v_state.until_snapshot)) then
    perform sync.request_error('busy', 'a commit this pull''s window counts as visible is not yet visible on this server');
  end if;
  -- The tables of this cycle are those whose registration its upper snapshot sees; those the
  -- device's data covers are those its lower one saw (all of them on a first pull). A table
  -- registered in between is new to the device: it comes from the start in this cycle, and the
  -- others stay deltas. Read against the snapshots rather than the registry as it is now, so that a
  -- registration committing while a cycle pages joins at the next cycle, never in the middle of one.
  select coalesce(array_agg(t.table_name order by t.sync_order)
                    filter (where t.registered_xid is null or sync.changed_between(t.registered_xid, null, v_hi)), '{}'),
         coalesce(array_agg(t.table_name order by t.sync_order)
                    filter (where t.registered_xid is null or sync.changed_between(t.registered_xid, null, coalesce(v_lo, v_hi))), '{}')
    into v_tables, v_known
    from (select r.table_name, r.sync_order, r.registered_xid from sync.tables r
          union all select 'conflicts', 2147483647, null::xid8) t
   where jsonb_typeof(p_payload -> 'tables') is distinct from 'array'
      or p_payload -> 'tables' ? t.table_name;
  -- The cursor names the tables its device holds. Another set than the one its snapshot saw (a table
  -- unregistered, or registered again, since; another list of tables asked for) resyncs, as before.
  if p_payload ->> 'cursor' is not null and v_state.tables_key is distinct from md5(array_to_string(v_known, ',')) then
    return json_build_object('server_time', clock_timestamp(), 'changes', '[]'::json, 'cursor', null,
                             'has_more', false, 'resync_required', true);
  end if;
  v_new := cardinality(v_tables) > cardinality(v_known);
  -- The scope phase concerns the rows a device holds: a new table's rows all come in its rows phase.
  v_scope_tables := v_known;
  v_phase := coalesce(v_state.phase, 'rows');
  v_start_table := v_state.table_name;
  -- A new cycle of a delta first asks, in one query, whether anything in its window concerns the
  -- caller: the common pull of a device that is up to date costs that and the cursor.
  if not v_full and not v_new and v_state.until_snapshot is null and not sync.visible_changes_exist(v_lo, v_hi, v_tables) then
    v_phase := 'none';
  end if;

  -- Every phase of a page works the same way: it adds changes while the page has room (at most
  -- v_limit changes and v_max_bytes bytes of JSON, but always at least one change, so a change
  -- larger than the byte bound travels alone), and when the page is full it leaves its position in
  -- the cursor, where the next page resumes. A page that says has_more therefore carries at least
  -- one change and moves the position on: a cycle ends, and no page repeats a cursor.
  -- The phases, in order: each table's rows (tombstones and conflicts included), each followed in a
  -- delta by the evictions of the caller's own writes the caller can no longer see ('own'); then the
  -- scope changes of the window ('scope').
  if v_phase in ('rows', 'own') then
    foreach v_table in array v_tables loop
      continue when v_start_table is not null and v_table <> v_start_table and v_i = 0;
      v_i := 1;
      v_resume := v_table is not distinct from v_start_table;
      if not (v_resume and v_phase = 'own') then
        if v_resume then
          v_after_xid := v_state.after_xid;
          v_after_id := v_state.after_id;
        else
          v_after_xid := '0';
          v_after_id := '00000000-0000-0000-0000-000000000000';
        end if;
        if v_count >= v_limit then
          v_has_more := true;
          v_next.phase := 'rows';
          v_next.table_name := v_table;
          v_next.after_xid := v_after_xid;
          v_next.after_id := v_after_id;
          exit;
        end if;
        select c.changes, c.row_count, c.last_xid, c.last_id, c.bytes, c.more
          into v_page, v_page_count, v_last_xid, v_last_id, v_page_bytes, v_more
          from sync.changed_page(v_table, case when v_table = any(v_known) then v_lo end, v_hi, v_after_xid, v_after_id,
                                 v_full or v_table <> all(v_known), v_limit - v_count, v_max_bytes - v_bytes, v_count = 0) c;
        if v_page_count > 0 then
          v_changes := v_changes || v_page;
          v_count := v_count + v_page_count;
          v_bytes := v_bytes + v_page_bytes;
          v_after_xid := v_last_xid;
          v_after_id := v_last_id;
        end if;
        if v_more then
          v_has_more := true;
          v_next.phase := 'rows';
          v_next.table_name := v_table;
          v_next.after_xid := v_after_xid;
          v_next.after_id := v_after_id;
          exit;
        end if;
      end if;
      if not v_full and v_table <> 'conflicts' and v_table = any(v_known) then
        -- The table is done for this cycle: evict what the caller wrote but can no longer see.
        if v_resume and v_phase = 'own' then
          v_after_xid := v_state.after_xid;
          v_after_id := v_state.after_id;
        else
          v_after_xid := '0';
          v_after_id := '00000000-0000-0000-0000-000000000000';
        end if;
        v_more := false;
        for v_row in execute format(
          'select w.change_xid, w.id, json_build_object(''table'', %1$L, ''op'', ''evict'', ''id'', w.id) as change
             from sync.own_writes(%1$L, $1, $2, $3, $4) w
            where not exists (select 1 from public.%1$I t where t.id = w.id)
            order by w.change_xid, w.id
            limit $5', v_table)
          using v_lo, v_hi, v_after_xid, v_after_id, v_limit - v_count + 1
        loop
          v_size := octet_length(v_row.change::text);
          if not sync.fits_on_page(v_count, v_limit, v_bytes, v_size, v_max_bytes, true) then
            v_more := true;
            exit;
          end if;
          v_changes := v_changes || v_row.change;
          v_count := v_count + 1;
          v_bytes := v_bytes + v_size;
          v_after_xid := v_row.change_xid;
          v_after_id := v_row.id;
        end loop;
        if v_more then
          v_has_more := true;
          v_next.phase := 'own';
          v_next.table_name := v_table;
          v_next.after_xid := v_after_xid;
          v_next.after_id := v_after_id;
          exit;
        end if;
      end if;
    end loop;
  end if;

  -- A device that already holds data learns which rows left its scope and gets the child rows of rows
  -- that entered it. A first (full) pull needs neither. An entry gives at most one change, and the
  -- entry of a row whose own scope changed, the rows below it that it did not list (a position
  -- within the entry in the cursor: below_order, below_id). Entries that do not concern the caller are passed over within
  -- the same page (they cost a lookup each), so a page is full unless the log's window has ended.
  if not v_has_more and not v_full and v_phase <> 'none' then
    if v_phase = 'scope' then
      v_last_entry_xid := coalesce(v_state.entry_xid, '0');
      v_last_entry_id := coalesce(v_state.entry_id, 0);
    else
      v_last_entry_xid := '0';
      v_last_entry_id := 0;
    end if;
    if v_phase = 'scope' and v_state.below_order is not null then
      -- The page before stopped within the rows below this entry's row.
      select * into v_entry
        from sync.scope_change_entries(v_lo, v_hi, v_last_entry_xid, v_last_entry_id - 1, v_scope_tables, 1) e;
      if v_entry.entry_id = v_last_entry_id and v_entry.expand is not null then
        select * into v_x
          from sync.scope_expansion(v_entry.expand, v_entry.entry_table, v_entry.entry_row, v_entry.change_xid, v_scope_tables,
                                    v_state.below_order, v_state.below_id,
                                    v_limit - v_count, v_max_bytes - v_bytes, v_count = 0);
        v_changes := v_changes || v_x.changes;
        v_count := v_count + v_x.row_count;
        v_bytes := v_bytes + v_x.bytes;
        if v_x.more then
          v_has_more := true;
          v_next.phase := 'scope';
          v_next.entry_xid := v_last_entry_xid;
          v_next.entry_id := v_last_entry_id;
          v_next.below_order := v_x.last_order;
          v_next.below_id := v_x.last_id;
        end if;
      end if;
    end if;
    <<entries>>
    while not v_has_more loop
      v_batch := greatest(4 * (v_limit - v_count), 16);
      v_seen := 0;
      for v_entry in select * from sync.scope_change_entries(v_lo, v_hi, v_last_entry_xid, v_last_entry_id, v_scope_tables, v_batch) loop
        v_seen := v_seen + 1;
        if jsonb_array_length(v_entry.changes) > 0 then
          v_change := (v_entry.changes -> 0)::json;
          v_size := octet_length(v_change::text);
          if not sync.fits_on_page(v_count, v_limit, v_bytes, v_size, v_max_bytes, true) then
            v_has_more := true;
            v_next.phase := 'scope';
            v_next.entry_xid := v_last_entry_xid;
            v_next.entry_id := v_last_entry_id;
            exit entries;
          end if;
          v_changes := v_changes || v_change;
          v_count := v_count + 1;
          v_bytes := v_bytes + v_size;
        end if;
        v_last_entry_xid := v_entry.change_xid;
        v_last_entry_id := v_entry.entry_id;
        if v_entry.expand is not null then
          select * into v_x
            from sync.scope_expansion(v_entry.expand, v_entry.entry_table, v_entry.entry_row, v_entry.change_xid, v_scope_tables,
                                      -1, '00000000-0000-0000-0000-000000000000', v_limit - v_count, v_max_bytes - v_bytes, v_count = 0);
          v_changes := v_changes || v_x.changes;
          v_count := v_count + v_x.row_count;
          v_bytes := v_bytes + v_x.bytes;
          if v_x.more then
            v_has_more := true;
            v_next.phase := 'scope';
            v_next.entry_xid := v_last_entry_xid;
            v_next.entry_id := v_last_entry_id;
            v_next.below_order := v_x.last_order;
            v_next.below_id := v_x.last_id;
            exit entries;
          end if;
        end if;
      end loop;
      exit when v_seen < v_batch;
    end loop;
  end if;

  -- A page that ends its cycle leaves only where the device's data now stands (v_next is still
  -- empty then); one within a cycle leaves the cycle's window and where the next page resumes.
  if v_has_more then
    v_next.since_snapshot := v_lo;
    v_next.until_snapshot := v_hi;
  else
    v_next.since_snapshot := v_hi;
  end if;
  v_next.user_id := v_uid;
  v_next.schema_epoch := v_limits.schema_epoch;
  -- The tables the device holds once it has this page: the cycle's when the cycle ends, else still
  -- those of the window's start.
  v_next.tables_key := md5(array_to_string(case when v_has_more then v_known else v_tables end, ','));
  v_next.scope_key := v_scope_key;
  v_next.lineage := sync.server_lineage();
  -- Within a cycle the window's upper snapshot may be older than this server's state; the position
  -- stays the later of the two, so no page of it is served by a standby behind either.
  v_next.wal_lsn := greatest(v_state.wal_lsn, sync.wal_position());

  -- json values are taken in as they are: neither a jsonb detour nor text cast to json, each of which
  -- would parse the pages again.
  return json_build_object('server_time', clock_timestamp(), 'changes', array_to_json(v_changes),
                           'cursor', sync.sign_cursor(v_next), 'has_more', v_has_more, 'resync_required', false);
end
$$;
comment on function sync.pull(jsonb) is
  'Changes since a cursor for the calling user, in pages (see the completeness note in the pull entry migration), on a primary or a hot standby (see 20261202150000_sync_replica_pulls). A table registered after the cursor''s snapshot comes from the start (see sync.tables.registered_xid). Returns {server_time, changes, cursor, has_more, resync_required}.';

-- The pull runs as the engine (public.sync_pull); nothing else needs these.
revoke all on function sync.server_lineage(), sync.pull_snapshot(pg_snapshot), sync.wal_position(), sync.replica_behind(pg_lsn),
  sync.standby_upper_snapshot(pg_snapshot, pg_snapshot), sync.ahead_of_this_server(pg_snapshot)
  from public;
grant execute on function sync.server_lineage(), sync.pull_snapshot(pg_snapshot), sync.wal_position(), sync.replica_behind(pg_lsn),
  sync.standby_upper_snapshot(pg_snapshot, pg_snapshot), sync.ahead_of_this_server(pg_snapshot)
  to sync_engine;
