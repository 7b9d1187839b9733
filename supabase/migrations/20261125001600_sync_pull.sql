-- The pull: changes since an opaque, signed cursor, in pages, complete under concurrency.
--
-- Completeness: every write stamps the row with its transaction id (change_xid), and a cursor holds
-- the database snapshot it was issued at. The next pull delivers exactly the rows whose change_xid
-- was not visible in the cursor's snapshot and is visible in the current one, i.e. every change
-- committed in between, whatever order the writing transactions began or committed in. A
-- transaction still open at the cursor's snapshot is in its in-progress list, so its rows come with
-- the pull after it commits; nothing is skipped and nothing waits for unrelated open transactions.
-- While a pull pages, its upper snapshot stays fixed; what commits meanwhile comes in the next cycle.

-- Cursor = base64url(json) "." base64url(hmac-sha256(json, settings.cursor_secret)).
create function sync.b64url(p_bytes bytea) returns text
language sql immutable parallel safe
set search_path = ''
as $$
  select rtrim(translate(encode(p_bytes, 'base64'), E'+/\n', '-_'), '=')
$$;

create function sync.b64url_decode(p_text text) returns bytea
language sql immutable parallel safe
set search_path = ''
as $$
  select decode(rpad(translate(p_text, '-_', '+/'), (length(p_text) + 3) / 4 * 4, '='), 'base64')
$$;

create function sync.sign_cursor(p_state jsonb) returns text
language sql stable
security definer
set search_path = ''
as $$
  select sync.b64url(convert_to(p_state::text, 'UTF8')) || '.' ||
         sync.b64url(extensions.hmac(convert_to(p_state::text, 'UTF8'), s.cursor_secret, 'sha256'))
    from sync.settings s
$$;

-- The state in a cursor this server issued to the caller; anything else is invalid_cursor.
create function sync.read_cursor(p_cursor text) returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_parts text[] := string_to_array(p_cursor, '.');
  v_body bytea;
  v_state jsonb;
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
    v_state := convert_from(v_body, 'UTF8')::jsonb;
  exception when others then
    perform sync.request_error('invalid_cursor', 'the cursor was not issued by this server or was altered');
  end;
  if (v_state ->> 'u')::uuid is distinct from auth.uid() then
    perform sync.request_error('invalid_cursor', 'the cursor was issued to another user');
  end if;
  return v_state;
end
$$;

-- The SQL expression of a row of p_table (alias t) as JSON without change_xid, column by column
-- (json_build_object takes at most 50 pairs; a wider table goes through jsonb).
create function sync.row_json_expression(p_table text) returns text
language sql stable
set search_path = ''
as $$
  select case when count(*) <= 50
              then format('json_build_object(%s)', string_agg(format('%L, t.%I', a.attname, a.attname), ', ' order by a.attnum))
              else '(to_jsonb(t) - ''change_xid'')::json' end
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(p_table))::regclass and a.attnum > 0 and not a.attisdropped
     and a.attname <> 'change_xid'
$$;

-- One page of one table's changes: rows changed after snapshot p_lo (null: since the beginning) and
-- visible in p_hi, after (p_after_xid, p_after_id) in cursor order, as the caller sees them, already
-- in the protocol's change form (upsert with the row, or delete with id and version), with the count
-- and the cursor position of the page's last row. Built as JSON text in the query that reads the
-- rows: returning rows to aggregate afterwards, or building jsonb (a binary form with sorted keys,
-- turned back into text for the response), cost as much again as reading them. The changes come as
-- an array of json values, one per change, so that the response can take them in without a text
-- to json conversion, which parses the whole text to check it.
create function sync.changed_page(
  p_table text, p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id uuid, p_live_only boolean, p_limit integer,
  out changes json[], out row_count integer, out last_xid xid8, out last_id uuid
)
language plpgsql stable
set search_path = ''
as $$
declare
  v_after_xid xid8 := p_after_xid;
  v_after_id uuid := p_after_id;
begin
  -- A delta's window starts at its lower snapshot: the scan starts there. The btree does not combine
  -- a row comparison with a bound on its first column, so the row comparison alone would start the
  -- scan at the table's first row (all of a million rows' index for a window of ten).
  if p_lo is not null and pg_snapshot_xmin(p_lo) > p_after_xid then
    v_after_xid := (pg_snapshot_xmin(p_lo)::text::numeric - 1)::text::xid8;
    v_after_id := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
  end if;
  -- The conflicts the caller's own edits were involved in travel as one more table, so the app can
  -- say "your change to PT Maju's phone was replaced" (a first pull brings the open ones).
  if p_table = 'conflicts' then
    select coalesce(array_agg(json_build_object('table', 'conflicts', 'op', 'upsert', 'row', (to_jsonb(c) - 'change_xid')::json)
                              order by c.change_xid, c.id), '{}'),
           count(*), max(c.change_xid), (array_agg(c.id order by c.change_xid desc, c.id desc))[1]
      into changes, row_count, last_xid, last_id
      from (select c.* from sync.conflicts c
             where (c.user_id = (select auth.uid()) or c.server_user_id = (select auth.uid()))
               and sync.changed_between(c.change_xid, p_lo, p_hi)
               and (c.change_xid, c.id) > (v_after_xid, v_after_id)
               and (not p_live_only or c.resolution = 'manual_pending')
             order by c.change_xid, c.id
             limit p_limit) c;
    return;
  end if;
  execute format(
    'select coalesce(array_agg(p.change order by p.change_xid, p.id), ''{}''), count(*)::integer, max(p.change_xid),
            (array_agg(p.id order by p.change_xid desc, p.id desc))[1]
       from (select t.change_xid, t.id,
                    case when t.deleted_at is null
                         then json_build_object(''table'', %1$L, ''op'', ''upsert'', ''row'', %2$s)
                         else json_build_object(''table'', %1$L, ''op'', ''delete'', ''id'', t.id, ''version'', t.version) end as change
               from public.%1$I t
              where sync.changed_between(t.change_xid, $1, $2)
                and (t.change_xid, t.id) > ($3, $4)
                and ($5 = false or t.deleted_at is null)
                and %3$s
              order by t.change_xid, t.id
              limit $6) p',
    p_table,
    sync.row_json_expression(p_table),
    -- The caller's scope once more, with their values as literals: RLS decides what they see, this
    -- lets the planner read it from the scope index (one rm's customers among a million) in order.
    coalesce(sync.caller_scope_condition(p_table, 't'), 'true'))
    into changes, row_count, last_xid, last_id
    using p_lo, p_hi, v_after_xid, v_after_id, p_live_only, p_limit;
end
$$;

-- Rows of p_table the caller wrote in (p_lo, p_hi], whether or not the caller can still see them.
-- A row written into a scope the caller was losing at that very moment (a key person added to a
-- customer while a bm reassigned it) is in no scope-change entry: the pull evicts such rows from
-- here instead, so the device that wrote them does not keep them forever.
create function sync.own_writes(p_table text, p_lo pg_snapshot, p_hi pg_snapshot) returns setof uuid
language plpgsql stable
security definer
set search_path = ''
-- The window is read through the (updated_by, change_xid) index that registration requires, so the
-- cost follows the caller's own writes: through the change_xid index it followed everything everyone
-- wrote in the window (half a second for a window holding a million rows written by others). A
-- thousand own writes in a table of a hundred thousand rows look, to the cost model, cheaper to find
-- by reading the whole table.
set enable_seqscan = off
as $$
begin
  if not exists (select 1 from sync.tables t where t.table_name = p_table) then
    return;
  end if;
  return query execute format(
    'select t.id from public.%I t
      where t.updated_by = $3 and sync.changed_between(t.change_xid, $1, $2)', p_table)
    using p_lo, p_hi, auth.uid();
end
$$;

-- What each scope change in (p_lo, p_hi] after (p_after_xid, p_after_id) means for the caller, in log
-- order, at most one change per entry: evict when the row was in the caller's scope before and is not
-- now; the row itself when it came into their scope with a row above it (a row whose own scope changed
-- was written, so the rows phase sends it); nothing otherwise ('[]').
create function sync.scope_change_entries(p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id bigint, p_tables text[], p_limit integer)
returns table (change_xid xid8, entry_id bigint, changes jsonb)
language plpgsql
set search_path = ''
as $$
declare
  v_entry record;
  v_had boolean;
  v_row jsonb;
begin
  for v_entry in
    select s.* from sync.scope_changes_in(p_lo, p_hi, p_after_xid, p_after_id, p_limit) s
  loop
    change_xid := v_entry.change_xid;
    entry_id := v_entry.id;
    changes := '[]';
    if v_entry.table_name = any (p_tables) then
      v_had := case v_entry.old_scope
                 when 'owned' then sync.in_scope(v_entry.old_owner, v_entry.old_branch)
                 when 'branch' then sync.in_branch(v_entry.old_branch)
                 else false end;
      -- As the caller sees the row now (RLS applies: this runs as the caller).
      execute format('select to_jsonb(t) - ''change_xid'' from public.%I t where t.id = $1 and t.deleted_at is null',
                     v_entry.table_name)
        into v_row using v_entry.row_id;
      if v_had and v_row is null then
        changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'evict', 'id', v_entry.row_id));
      elsif v_row is not null and not v_had and v_entry.inherited then
        changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'upsert', 'row', v_row));
      end if;
    end if;
    return next;
  end loop;
end
$$;

-- The scope-change log is internal; the pull reads its window through this definer.
create function sync.scope_changes_in(p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id bigint, p_limit integer)
returns setof sync.scope_changes
language sql stable
security definer
set search_path = ''
as $$
  select s.* from sync.scope_changes s
   where sync.changed_between(s.change_xid, p_lo, p_hi)
     -- After the cursor's entry. Written as a bound on change_xid, which the index scan starts at
     -- (the later of it and the window's), and a filter: as a row comparison it would be the scan's
     -- start on its own (see sync.changed_page), at the log's first entry on a scope phase's first page.
     and s.change_xid >= p_after_xid
     and (s.change_xid > p_after_xid or s.id > p_after_id)
   order by s.change_xid, s.id
   limit p_limit
$$;

create function sync.pull(p_payload jsonb) returns json
language plpgsql
set search_path = ''
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
  v_tables_key text;
  v_scope_key text;
  v_state jsonb;
  v_lo pg_snapshot;
  v_hi pg_snapshot;
  v_full boolean;
  v_phase text;
  v_start_table text;
  v_table text;
  v_after_xid xid8;
  v_after_id uuid;
  v_page json[];
  v_evictions json[];
  v_page_count integer;
  v_last_xid xid8;
  v_last_id uuid;
  v_changes json[] := '{}';   -- the changes, page by page
  v_count integer := 0;
  v_row record;
  v_has_more boolean := false;
  v_next jsonb;
  v_entry record;
  v_last_entry_xid xid8;
  v_last_entry_id bigint;
  v_budget integer;
  v_examined integer := 0;
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
  if coalesce(jsonb_typeof(p_payload -> 'cursor'), 'null') not in ('null', 'string') then
    v_issues := v_issues || jsonb_build_object('path', '["cursor"]'::jsonb, 'message', 'expected a string or null');
  end if;
  if coalesce(jsonb_typeof(p_payload -> 'limit'), 'null') <> 'null'
     and (jsonb_typeof(p_payload -> 'limit') <> 'number' or (p_payload ->> 'limit') !~ '^[0-9]{1,9}$'
          or (p_payload ->> 'limit')::integer < 1) then
    v_issues := v_issues || jsonb_build_object('path', '["limit"]'::jsonb, 'message', 'expected a whole number of at least 1');
  end if;
  if coalesce(jsonb_typeof(p_payload -> 'tables'), 'null') not in ('null', 'array') then
    v_issues := v_issues || jsonb_build_object('path', '["tables"]'::jsonb, 'message', 'expected an array of table names');
  elsif jsonb_typeof(p_payload -> 'tables') = 'array' then
    -- An empty list would select no table at all (and used to fail the request with a raw error).
    if jsonb_array_length(p_payload -> 'tables') = 0 then
      v_issues := v_issues || jsonb_build_object('path', '["tables"]'::jsonb, 'message', 'expected at least one table');
    end if;
    for v_row in select t.value, t.ordinality - 1 as i from jsonb_array_elements(p_payload -> 'tables') with ordinality t loop
      if jsonb_typeof(v_row.value) <> 'string'
         or (v_row.value #>> '{}' <> 'conflicts' and not exists (select 1 from sync.tables r where r.table_name = v_row.value #>> '{}')) then
        v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('tables', v_row.i), 'message', 'not a syncable table');
      end if;
    end loop;
  end if;
  if jsonb_array_length(v_issues) > 0 then
    perform sync.request_error('invalid_request', 'the pull request is not valid', v_issues);
  end if;

  v_limit := least(coalesce((p_payload ->> 'limit')::integer, v_limits.default_pull_limit), v_limits.max_pull_limit);
  select array_agg(t.table_name order by t.sync_order) into v_tables
    from (select r.table_name, r.sync_order from sync.tables r
          union all select 'conflicts', 2147483647) t
   where jsonb_typeof(p_payload -> 'tables') is distinct from 'array'
      or p_payload -> 'tables' ? t.table_name;
  v_tables_key := md5(array_to_string(v_tables, ','));
  -- What the caller may see follows from their role and branch. When an admin changes either, the
  -- rows they gain or lose did not change themselves, so no delta would carry them: such a cursor resyncs.
  v_scope_key := coalesce(sync.current_app_role(), '') || '/' || coalesce(sync.current_branch_id()::text, '');

  if p_payload ->> 'cursor' is null then
    v_state := '{}';
  else
    v_state := sync.read_cursor(p_payload ->> 'cursor');
    if (v_state ->> 'e')::integer is distinct from v_limits.schema_epoch
       or v_state ->> 'k' is distinct from v_tables_key
       or v_state ->> 's' is distinct from v_scope_key
       or pg_snapshot_xmin((v_state ->> 'lo')::pg_snapshot) <= v_limits.purged_through_xid then
      return json_build_object('server_time', clock_timestamp(), 'changes', '[]'::json, 'cursor', null,
                               'has_more', false, 'resync_required', true);
    end if;
  end if;

  v_lo := (v_state ->> 'lo')::pg_snapshot;
  v_hi := coalesce((v_state ->> 'hi')::pg_snapshot, pg_current_snapshot());
  v_full := v_lo is null;
  v_phase := coalesce(v_state ->> 'ph', 'rows');
  v_start_table := v_state ->> 't';
  -- A new cycle of a delta first asks, in one query, whether anything in its window concerns the
  -- caller: the common pull of a device that is up to date costs that and the cursor.
  if not v_full and not v_state ? 'hi' and not sync.visible_changes_exist(v_lo, v_hi, v_tables) then
    v_phase := 'none';
  end if;

  if v_phase = 'rows' then
    foreach v_table in array v_tables loop
      continue when v_start_table is not null and v_table <> v_start_table and v_i = 0;
      v_i := 1;
      if v_table = v_start_table then
        v_after_xid := (v_state ->> 'x')::xid8;
        v_after_id := (v_state ->> 'i')::uuid;
      else
        v_after_xid := '0';
        v_after_id := '00000000-0000-0000-0000-000000000000';
      end if;
      select c.changes, c.row_count, c.last_xid, c.last_id
        into v_page, v_page_count, v_last_xid, v_last_id
        from sync.changed_page(v_table, v_lo, v_hi, v_after_xid, v_after_id, v_full, v_limit - v_count) c;
      if v_page_count > 0 then
        v_changes := v_changes || v_page;
        v_count := v_count + v_page_count;
        v_after_xid := v_last_xid;
        v_after_id := v_last_id;
      end if;
      if v_count < v_limit and not v_full and v_table <> 'conflicts' then
        -- The table is done for this cycle: evict what the caller wrote but can no longer see.
        execute format(
          'select coalesce(array_agg(json_build_object(''table'', %1$L, ''op'', ''evict'', ''id'', w.id)), ''{}'')
             from sync.own_writes(%1$L, $1, $2) w (id)
            where not exists (select 1 from public.%1$I t where t.id = w.id)', v_table)
          into v_evictions using v_lo, v_hi;
        v_changes := v_changes || v_evictions;
        v_count := v_count + cardinality(v_evictions);
      end if;
      if v_count >= v_limit then
        v_has_more := true;
        v_next := jsonb_build_object('ph', 'rows', 't', v_table, 'x', v_after_xid::text, 'i', v_after_id);
        exit;
      end if;
    end loop;
    v_state := v_state - 'x' - 'i' - 't';
    v_state := v_state || jsonb_build_object('sx', '0', 'si', 0);
  end if;

  -- A device that already holds data learns which rows left its scope and gets the child rows of rows
  -- that entered it. A first (full) pull needs neither. An entry gives at most one change, so a page
  -- stays within the limit; entries that concern the caller not at all still cost a lookup, so a page
  -- examines at most four times its remaining room of them.
  if not v_has_more and not v_full and v_phase <> 'none' then
    v_last_entry_xid := coalesce((v_state ->> 'sx')::xid8, '0');
    v_last_entry_id := coalesce((v_state ->> 'si')::bigint, 0);
    v_budget := 4 * greatest(v_limit - v_count, 1);
    for v_entry in select * from sync.scope_change_entries(v_lo, v_hi, v_last_entry_xid, v_last_entry_id, v_tables, v_budget) loop
      if jsonb_array_length(v_entry.changes) > 0 then
        v_changes := v_changes || array(select e::json from jsonb_array_elements(v_entry.changes) e);
        v_count := v_count + jsonb_array_length(v_entry.changes);
      end if;
      v_examined := v_examined + 1;
      v_last_entry_xid := v_entry.change_xid;
      v_last_entry_id := v_entry.entry_id;
      if v_count >= v_limit or v_examined >= v_budget then
        v_has_more := true;
        v_next := jsonb_build_object('ph', 'scope', 'sx', v_last_entry_xid::text, 'si', v_last_entry_id);
        exit;
      end if;
    end loop;
  end if;

  if v_has_more then
    v_next := v_next || jsonb_build_object('lo', v_lo::text, 'hi', v_hi::text);
  else
    v_next := jsonb_build_object('lo', v_hi::text);
  end if;
  v_next := jsonb_strip_nulls(v_next);
  v_next := v_next || jsonb_build_object('u', v_uid, 'e', v_limits.schema_epoch, 'k', v_tables_key, 's', v_scope_key);

  -- json values are taken in as they are: neither a jsonb detour nor text cast to json, each of which
  -- would parse the pages again.
  return json_build_object('server_time', clock_timestamp(), 'changes', array_to_json(v_changes),
                           'cursor', sync.sign_cursor(v_next), 'has_more', v_has_more, 'resync_required', false);
end
$$;
comment on function sync.pull(jsonb) is
  'Changes since a cursor for the calling user, in pages (see the completeness note in this migration). Returns {server_time, changes, cursor, has_more, resync_required}.';

create function public.sync_pull(payload jsonb) returns json
language sql
security invoker
set search_path = ''
as $$
  select sync.pull(payload)
$$;
comment on function public.sync_pull(jsonb) is
  'Sync pull (see docs/protocol.md): paginated, commit-safe deltas since an opaque cursor, as the caller may see them.';

revoke all on function public.sync_pull(jsonb) from public, anon;
grant execute on function public.sync_pull(jsonb) to authenticated, service_role;
grant execute on function sync.row_json_expression(text), sync.b64url(bytea), sync.b64url_decode(text), sync.sign_cursor(jsonb), sync.read_cursor(text),
  sync.changed_page(text, pg_snapshot, pg_snapshot, xid8, uuid, boolean, integer),
  sync.scope_change_entries(pg_snapshot, pg_snapshot, xid8, bigint, text[], integer),
  sync.scope_changes_in(pg_snapshot, pg_snapshot, xid8, bigint, integer), sync.own_writes(text, pg_snapshot, pg_snapshot),
  sync.pull(jsonb) to authenticated, service_role;
