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
set search_path = pg_catalog, pg_temp
as $$
  select rtrim(translate(encode(p_bytes, 'base64'), E'+/\n', '-_'), '=')
$$;

comment on function sync.b64url(bytea) is
  'Bytes to base64url text without padding (cursor encoding).';
create function sync.b64url_decode(p_text text) returns bytea
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select decode(rpad(translate(p_text, '-_', '+/'), (length(p_text) + 3) / 4 * 4, '='), 'base64')
$$;

comment on function sync.b64url_decode(text) is
  'base64url text to bytes (cursor encoding).';
create function sync.sign_cursor(p_state jsonb) returns text
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select sync.b64url(convert_to(p_state::text, 'UTF8')) || '.' ||
         sync.b64url(extensions.hmac(convert_to(p_state::text, 'UTF8'), s.cursor_secret, 'sha256'))
    from sync.settings s
$$;

comment on function sync.sign_cursor(jsonb) is
  'A cursor for a pull state: base64url(json).base64url(hmac-sha256(json, sync.settings.cursor_secret)).';
-- The state in a cursor this server issued to the caller; anything else is invalid_cursor.
create function sync.read_cursor(p_cursor text) returns jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
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

comment on function sync.read_cursor(text) is
  'The state of a cursor this server issued, verified (canonical encoding, signature); raises SYCR1 otherwise.';
-- The SQL expression of a row of p_table (alias t) as JSON without change_xid, column by column
-- (json_build_object takes at most 50 pairs; a wider table goes through jsonb).
create function sync.row_json_expression(p_table text) returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select case when count(*) <= 50
              then format('json_build_object(%s)', string_agg(format('%L, t.%I', a.attname, a.attname), ', ' order by a.attnum))
              else '(to_jsonb(t) - ''change_xid'')::json' end
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(p_table))::regclass and a.attnum > 0 and not a.attisdropped
     and a.attname <> 'change_xid'
$$;

comment on function sync.row_json_expression(text) is
  'SQL text: a registered table''s row t as the pull sends it (json, without change_xid).';
-- The SQL expression, over a row of sync.conflicts aliased p_alias, of whether the caller may read
-- the conflict's row now (RLS decides: the caller's query reads the row's table). Spelled out table
-- by table from the registry, so it needs no function a client role must be allowed to execute; an
-- unknown table reads as not readable.
create function sync.conflict_row_readable_sql(p_alias text) returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  -- No table registered yet (the engine's migrations come before the app's): no row is readable.
  select case when count(*) = 0 then 'false'
              else format('case %1$s.table_name %2$s else false end', quote_ident(p_alias),
                          string_agg(format('when %L then exists (select 1 from public.%I r where r.id = %s.row_id)',
                                            t.table_name, t.table_name, quote_ident(p_alias)), ' ' order by t.sync_order)) end
    from sync.tables t
$$;
comment on function sync.conflict_row_readable_sql(text) is
  'SQL text: whether the caller may read the row of the conflict aliased p_alias (a case over the registered tables). Used by the pull and the review views to redact conflicts.';

-- A conflict as the caller may see it: its row's data (client_data, base_data, server_row,
-- resolution_data) only while the caller may read the row; otherwise those are null and redacted is
-- true. Its ids, table, fields and resolution always stay: the user was involved and may know that.
create function sync.conflict_json_expression(p_alias text) returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select format(
    'case when %2$s then (to_jsonb(%1$s) - ''change_xid'') || ''{"redacted": false}''
          else (to_jsonb(%1$s) - ''change_xid'') || ''{"client_data": null, "base_data": null, "server_row": null, "resolution_data": null, "redacted": true}'' end',
    quote_ident(p_alias), sync.conflict_row_readable_sql(p_alias))
$$;
comment on function sync.conflict_json_expression(text) is
  'SQL text: the conflict aliased p_alias as the pull sends it, redacted (data fields null, redacted true) when the caller may not read its row.';

-- One page of one table's changes: rows changed after snapshot p_lo (null: since the beginning) and
-- visible in p_hi, after (p_after_xid, p_after_id) in cursor order, as the caller sees them, already
-- in the protocol's change form (upsert with the row, or delete with id and version), with the count,
-- the cursor position of the page's last row, the bytes of JSON it holds, and whether it stopped
-- before the table's end. At most p_limit changes of at most p_bytes bytes together, but the first
-- row always when p_first (the page is still empty): a row larger than the bound travels alone, and a
-- page always makes progress. Built as JSON text in the query that reads the rows: returning rows to
-- aggregate afterwards, or building jsonb (a binary form with sorted keys, turned back into text for
-- the response), cost as much again as reading them. The changes come as an array of json values,
-- one per change, so that the response can take them in without a text to json conversion, which
-- parses the whole text to check it.
create function sync.changed_page(
  p_table text, p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id uuid, p_live_only boolean, p_limit integer,
  p_bytes bigint, p_first boolean,
  out changes json[], out row_count integer, out last_xid xid8, out last_id uuid, out bytes bigint, out more boolean
)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_after_xid xid8 := p_after_xid;
  v_after_id uuid := p_after_id;
  v_rows text;
begin
  -- A delta's window starts at its lower snapshot: the scan starts there. The btree does not combine
  -- a row comparison with a bound on its first column, so the row comparison alone would start the
  -- scan at the table's first row (all of a million rows' index for a window of ten).
  if p_lo is not null and pg_snapshot_xmin(p_lo) > p_after_xid then
    v_after_xid := (pg_snapshot_xmin(p_lo)::text::numeric - 1)::text::xid8;
    v_after_id := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
  end if;
  if p_table = 'conflicts' then
    -- The conflicts the caller's own edits were involved in travel as one more table, so the app can
    -- say "your change to PT Maju's phone was replaced" (a first pull brings the open ones).
    v_rows := format(
      'select c.change_xid, c.id, json_build_object(''table'', ''conflicts'', ''op'', ''upsert'', ''row'', (%s)::json) as change
         from sync.conflicts c
        where (c.user_id = (select auth.uid()) or c.server_user_id = (select auth.uid()))
          and sync.changed_between(c.change_xid, $1, $2)
          and (c.change_xid, c.id) > ($3, $4)
          and (not $5 or c.resolution = ''manual_pending'')
        order by c.change_xid, c.id
        limit $6',
      sync.conflict_json_expression('c'));
  else
    v_rows := format(
      'select t.change_xid, t.id,
              case when t.deleted_at is null
                   then json_build_object(''table'', %1$L, ''op'', ''upsert'', ''row'', %2$s)
                   else json_build_object(''table'', %1$L, ''op'', ''delete'', ''id'', t.id, ''version'', t.version) end as change
         from public.%1$I t
        where sync.changed_between(t.change_xid, $1, $2)
          and (t.change_xid, t.id) > ($3, $4)
          and ($5 = false or t.deleted_at is null)
          and %3$s
        order by t.change_xid, t.id
        limit $6',
      p_table,
      sync.row_json_expression(p_table),
      -- The caller's scope once more, with their values as literals: RLS decides what they see, this
      -- lets the planner read it from the scope index (one owner's rows among a million) in order.
      coalesce(sync.caller_scope_condition(p_table, 't'), 'true'));
  end if;
  -- The running total of bytes keeps the page a prefix of the rows read, in cursor order.
  execute format(
    'select coalesce(array_agg(p.change order by p.change_xid, p.id) filter (where p.fits), ''{}''),
            (count(*) filter (where p.fits))::integer,
            max(p.change_xid) filter (where p.fits),
            (array_agg(p.id order by p.change_xid desc, p.id desc) filter (where p.fits))[1],
            coalesce(sum(p.size) filter (where p.fits), 0)::bigint,
            count(*) = $6 or coalesce(bool_or(not p.fits), false)
       from (select q.change_xid, q.id, q.change, q.size, (q.upto <= $7 or (q.n = 1 and $8)) as fits
               from (select r.change_xid, r.id, r.change, r.size,
                            sum(r.size) over w as upto, row_number() over w as n
                       from (select x.change_xid, x.id, x.change, octet_length(x.change::text) as size from (%s) x) r
                     window w as (order by r.change_xid, r.id rows between unbounded preceding and current row)) q) p',
    v_rows)
    into changes, row_count, last_xid, last_id, bytes, more
    using p_lo, p_hi, v_after_xid, v_after_id, p_live_only, p_limit, p_bytes, p_first;
end
$$;
comment on function sync.changed_page(text, pg_snapshot, pg_snapshot, xid8, uuid, boolean, integer, bigint, boolean) is
  'One page of one table''s changes (conflicts included, redacted where the caller may not read the row), within a count and a byte bound, as json values.';

-- Rows of p_table the caller wrote in (p_lo, p_hi] after (p_after_xid, p_after_id), in cursor order,
-- whether or not the caller can still see them. A row written into a scope the caller was losing at
-- that very moment (a child row added to a parent while another user reassigned the parent) is in no scope-change
-- entry: the pull evicts such rows from here instead, so the device that wrote them does not keep
-- them forever, a page at a time like any other change.
create function sync.own_writes(p_table text, p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id uuid)
returns table (change_xid xid8, id uuid)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
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
    'select t.change_xid, t.id from public.%I t
      where t.updated_by = $3 and sync.changed_between(t.change_xid, $1, $2)
        and t.change_xid >= $4 and (t.change_xid, t.id) > ($4, $5)
      order by t.change_xid, t.id', p_table)
    using p_lo, p_hi, auth.uid(), p_after_xid, p_after_id;
end
$$;
comment on function sync.own_writes(text, pg_snapshot, pg_snapshot, xid8, uuid) is
  'The caller''s own writes to p_table in a pull''s window after a cursor position, seen or not (the pull evicts those the caller may no longer read).';

-- What each scope change in (p_lo, p_hi] after (p_after_xid, p_after_id) means for the caller, in log
-- order, at most one change per entry: evict when the row was in the caller's scope before and is not
-- now; the row itself when it came into their scope with a row above it (a row whose own scope changed
-- was written, so the rows phase sends it); nothing otherwise ('[]'). For the row whose own scope
-- changed, `expand` also says what the rows below it that the entry's transaction did not list need
-- (see sync.unlisted_descendants): 'evict' when the caller lost the row, 'upsert' when they gained it.
create function sync.scope_change_entries(p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id bigint, p_tables text[], p_limit integer)
returns table (change_xid xid8, entry_id bigint, changes jsonb, expand text, entry_table text, entry_row uuid)
language plpgsql
set search_path = pg_catalog, pg_temp
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
    entry_table := v_entry.table_name;
    entry_row := v_entry.row_id;
    changes := '[]';
    expand := null;
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
        if not v_entry.inherited then
          expand := 'evict';
        end if;
      elsif v_row is not null and not v_had then
        if v_entry.inherited then
          changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'upsert', 'row', v_row));
        else
          expand := 'upsert';
        end if;
      end if;
    end if;
    return next;
  end loop;
end
$$;
comment on function sync.scope_change_entries(pg_snapshot, pg_snapshot, xid8, bigint, text[], integer) is
  'What each scope-change entry of a pull''s window means for the caller: at most one change (evict, or upsert of a gained child row), and whether the rows below the entry''s row that it did not list are to be evicted or sent.';

-- The rows below p_id (of p_table) now that the scope change made by transaction p_change_xid did not
-- list, after (p_after_order, p_after_id) in (sync_order, id) order. A transaction that adds a child
-- row while another reassigns its parent does not conflict with it (the foreign key's lock allows
-- the update), so the reassignment may list the children before that row commits: a user who pulled
-- the row in between must still lose it with the parent, and the new owner must get it although
-- their cursor passed its commit while they could not see it. The pull treats such rows, and rows
-- added under the row since, like the listed ones. Reads the rows whatever the caller may see (they
-- may be leaving the caller's scope); the pull checks what the caller sees.
create function sync.unlisted_descendants(p_table text, p_id uuid, p_change_xid xid8, p_tables text[],
                                          p_after_order integer, p_after_id uuid, p_limit integer)
returns table (table_name text, sync_order integer, id uuid)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select d.table_name, r.sync_order, d.id
    from sync.descendants(p_table, p_id) d
    join sync.tables r on r.table_name = d.table_name
   where d.table_name = any (p_tables)
     and (r.sync_order, d.id) > (p_after_order, p_after_id)
     and not exists (select 1 from sync.scope_changes s
                      where s.change_xid = p_change_xid and s.inherited and s.table_name = d.table_name and s.row_id = d.id)
   order by r.sync_order, d.id
   limit p_limit
$$;
comment on function sync.unlisted_descendants(text, uuid, xid8, text[], integer, uuid, integer) is
  'Rows below a row whose scope changed that the change''s transaction did not list (added concurrently, or since), in (sync_order, id) order after a position.';

-- The one rule of what fits on a pull page, for every phase that adds changes one at a time: fewer
-- changes than the room left, and the bytes within the bound, except that a change always fits on
-- an empty page (a row larger than the bound travels alone, so a page always makes progress).
-- p_rows and p_bytes are what the phase has added; p_page_empty says nothing came before it.
create function sync.fits_on_page(p_rows integer, p_room integer, p_bytes bigint, p_size integer, p_max_bytes bigint,
                                  p_page_empty boolean) returns boolean
language sql immutable parallel safe
as $$
  select p_rows operator(pg_catalog.<) p_room
     and ((p_rows operator(pg_catalog.=) 0 and p_page_empty)
          or p_bytes operator(pg_catalog.+) p_size operator(pg_catalog.<=) p_max_bytes)
$$;
comment on function sync.fits_on_page(integer, integer, bigint, integer, bigint, boolean) is
  'Does one more change of p_size bytes fit on a pull page that holds p_rows changes (p_bytes bytes) of this phase, with p_room changes and p_max_bytes bytes allowed? A change always fits on an empty page.';

-- The changes for the unlisted rows below an entry's row (p_kind 'evict': those the caller no longer
-- sees; 'upsert': those they now see, as they see them), after a position, within the room a page has
-- left (but at least one change when p_first). more: the rows did not all fit.
create function sync.scope_expansion(p_kind text, p_table text, p_id uuid, p_change_xid xid8, p_tables text[],
                                     p_after_order integer, p_after_id uuid, p_room integer, p_bytes bigint, p_first boolean,
                                     out changes json[], out row_count integer, out bytes bigint,
                                     out last_order integer, out last_id uuid, out more boolean)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_batch integer := greatest(4 * p_room, 16);
  v_seen integer;
  v_d record;
  v_row jsonb;
  v_deleted boolean;
  v_change json;
  v_size integer;
begin
  changes := '{}';
  row_count := 0;
  bytes := 0;
  last_order := p_after_order;
  last_id := p_after_id;
  more := false;
  <<batches>>
  loop
    v_seen := 0;
    for v_d in select * from sync.unlisted_descendants(p_table, p_id, p_change_xid, p_tables, last_order, last_id, v_batch) loop
      v_seen := v_seen + 1;
      -- As the caller sees the row now (RLS applies: this runs as the caller).
      execute format('select to_jsonb(t) - ''change_xid'', t.deleted_at is not null from public.%I t where t.id = $1', v_d.table_name)
        into v_row, v_deleted using v_d.id;
      v_change := case
        when p_kind = 'evict' and v_row is null then json_build_object('table', v_d.table_name, 'op', 'evict', 'id', v_d.id)
        when p_kind = 'upsert' and v_row is not null and not v_deleted then json_build_object('table', v_d.table_name, 'op', 'upsert', 'row', v_row::json)
      end;
      if v_change is not null then
        v_size := octet_length(v_change::text);
        if not sync.fits_on_page(row_count, p_room, bytes, v_size, p_bytes, p_first) then
          more := true;
          exit batches;
        end if;
        changes := changes || v_change;
        row_count := row_count + 1;
        bytes := bytes + v_size;
      end if;
      last_order := v_d.sync_order;
      last_id := v_d.id;
    end loop;
    exit when v_seen < v_batch;
  end loop;
end
$$;
comment on function sync.scope_expansion(text, text, uuid, xid8, text[], integer, uuid, integer, bigint, boolean) is
  'The pull''s changes for the unlisted rows below a scope change''s row, paged by a (sync_order, id) position within the room a page has left.';

-- The scope-change log is internal; the pull reads its window through this definer.
create function sync.scope_changes_in(p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id bigint, p_limit integer)
returns setof sync.scope_changes
language sql stable
security definer
set search_path = pg_catalog, pg_temp
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

comment on function sync.scope_changes_in(pg_snapshot, pg_snapshot, xid8, bigint, integer) is
  'Entries of the scope-change log in a pull window after a position, in log order (security definer: the caller may not read the log).';
create function sync.pull(p_payload jsonb) returns json
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
  v_next jsonb;
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
  v_max_bytes := v_limits.max_pull_bytes;
  select array_agg(t.table_name order by t.sync_order) into v_tables
    from (select r.table_name, r.sync_order from sync.tables r
          union all select 'conflicts', 2147483647) t
   where jsonb_typeof(p_payload -> 'tables') is distinct from 'array'
      or p_payload -> 'tables' ? t.table_name;
  v_tables_key := md5(array_to_string(v_tables, ','));
  -- What the caller may see follows from their role and branches. When either changes, the
  -- rows they gain or lose did not change themselves, so no delta would carry them: such a cursor resyncs.
  v_scope_key := coalesce(sync.current_app_role(), '') || '/'
                 || array_to_string(array(select b from unnest(sync.current_branch_ids()) b order by b), ',');

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
          v_after_xid := (v_state ->> 'x')::xid8;
          v_after_id := (v_state ->> 'i')::uuid;
        else
          v_after_xid := '0';
          v_after_id := '00000000-0000-0000-0000-000000000000';
        end if;
        if v_count >= v_limit then
          v_has_more := true;
          v_next := jsonb_build_object('ph', 'rows', 't', v_table, 'x', v_after_xid::text, 'i', v_after_id);
          exit;
        end if;
        select c.changes, c.row_count, c.last_xid, c.last_id, c.bytes, c.more
          into v_page, v_page_count, v_last_xid, v_last_id, v_page_bytes, v_more
          from sync.changed_page(v_table, v_lo, v_hi, v_after_xid, v_after_id, v_full, v_limit - v_count,
                                 v_max_bytes - v_bytes, v_count = 0) c;
        if v_page_count > 0 then
          v_changes := v_changes || v_page;
          v_count := v_count + v_page_count;
          v_bytes := v_bytes + v_page_bytes;
          v_after_xid := v_last_xid;
          v_after_id := v_last_id;
        end if;
        if v_more then
          v_has_more := true;
          v_next := jsonb_build_object('ph', 'rows', 't', v_table, 'x', v_after_xid::text, 'i', v_after_id);
          exit;
        end if;
      end if;
      if not v_full and v_table <> 'conflicts' then
        -- The table is done for this cycle: evict what the caller wrote but can no longer see.
        if v_resume and v_phase = 'own' then
          v_after_xid := (v_state ->> 'x')::xid8;
          v_after_id := (v_state ->> 'i')::uuid;
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
          v_next := jsonb_build_object('ph', 'own', 't', v_table, 'x', v_after_xid::text, 'i', v_after_id);
          exit;
        end if;
      end if;
    end loop;
  end if;

  -- A device that already holds data learns which rows left its scope and gets the child rows of rows
  -- that entered it. A first (full) pull needs neither. An entry gives at most one change, and the
  -- entry of a row whose own scope changed, the rows below it that it did not list (a position 'sd'
  -- within the entry in the cursor). Entries that do not concern the caller are passed over within
  -- the same page (they cost a lookup each), so a page is full unless the log's window has ended.
  if not v_has_more and not v_full and v_phase <> 'none' then
    if v_phase = 'scope' then
      v_last_entry_xid := coalesce((v_state ->> 'sx')::xid8, '0');
      v_last_entry_id := coalesce((v_state ->> 'si')::bigint, 0);
    else
      v_last_entry_xid := '0';
      v_last_entry_id := 0;
    end if;
    if v_phase = 'scope' and v_state ? 'sd' then
      -- The page before stopped within the rows below this entry's row.
      select * into v_entry
        from sync.scope_change_entries(v_lo, v_hi, v_last_entry_xid, v_last_entry_id - 1, v_tables, 1) e;
      if v_entry.entry_id = v_last_entry_id and v_entry.expand is not null then
        select * into v_x
          from sync.scope_expansion(v_entry.expand, v_entry.entry_table, v_entry.entry_row, v_entry.change_xid, v_tables,
                                    (v_state #>> '{sd,0}')::integer, (v_state #>> '{sd,1}')::uuid,
                                    v_limit - v_count, v_max_bytes - v_bytes, v_count = 0);
        v_changes := v_changes || v_x.changes;
        v_count := v_count + v_x.row_count;
        v_bytes := v_bytes + v_x.bytes;
        if v_x.more then
          v_has_more := true;
          v_next := jsonb_build_object('ph', 'scope', 'sx', v_last_entry_xid::text, 'si', v_last_entry_id,
                                       'sd', jsonb_build_array(v_x.last_order, v_x.last_id));
        end if;
      end if;
    end if;
    <<entries>>
    while not v_has_more loop
      v_batch := greatest(4 * (v_limit - v_count), 16);
      v_seen := 0;
      for v_entry in select * from sync.scope_change_entries(v_lo, v_hi, v_last_entry_xid, v_last_entry_id, v_tables, v_batch) loop
        v_seen := v_seen + 1;
        if jsonb_array_length(v_entry.changes) > 0 then
          v_change := (v_entry.changes -> 0)::json;
          v_size := octet_length(v_change::text);
          if not sync.fits_on_page(v_count, v_limit, v_bytes, v_size, v_max_bytes, true) then
            v_has_more := true;
            v_next := jsonb_build_object('ph', 'scope', 'sx', v_last_entry_xid::text, 'si', v_last_entry_id);
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
            from sync.scope_expansion(v_entry.expand, v_entry.entry_table, v_entry.entry_row, v_entry.change_xid, v_tables,
                                      -1, '00000000-0000-0000-0000-000000000000', v_limit - v_count, v_max_bytes - v_bytes, v_count = 0);
          v_changes := v_changes || v_x.changes;
          v_count := v_count + v_x.row_count;
          v_bytes := v_bytes + v_x.bytes;
          if v_x.more then
            v_has_more := true;
            v_next := jsonb_build_object('ph', 'scope', 'sx', v_last_entry_xid::text, 'si', v_last_entry_id,
                                         'sd', jsonb_build_array(v_x.last_order, v_x.last_id));
            exit entries;
          end if;
        end if;
      end loop;
      exit when v_seen < v_batch;
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
set search_path = pg_catalog, pg_temp
as $$
  select sync.pull(payload)
$$;
comment on function public.sync_pull(jsonb) is
  'Sync pull (see docs/protocol.md): paginated, commit-safe deltas since an opaque cursor, as the caller may see them.';

revoke all on function public.sync_pull(jsonb) from public, anon;
grant execute on function public.sync_pull(jsonb) to authenticated, service_role;
grant execute on function sync.row_json_expression(text), sync.b64url(bytea), sync.b64url_decode(text), sync.sign_cursor(jsonb), sync.read_cursor(text),
  sync.changed_page(text, pg_snapshot, pg_snapshot, xid8, uuid, boolean, integer, bigint, boolean),
  sync.conflict_row_readable_sql(text), sync.conflict_json_expression(text),
  sync.scope_change_entries(pg_snapshot, pg_snapshot, xid8, bigint, text[], integer),
  sync.unlisted_descendants(text, uuid, xid8, text[], integer, uuid, integer),
  sync.scope_expansion(text, text, uuid, xid8, text[], integer, uuid, integer, bigint, boolean),
  sync.scope_changes_in(pg_snapshot, pg_snapshot, xid8, bigint, integer), sync.own_writes(text, pg_snapshot, pg_snapshot, xid8, uuid),
  sync.pull(jsonb) to authenticated, service_role;
