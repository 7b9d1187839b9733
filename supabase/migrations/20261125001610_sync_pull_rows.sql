-- The pull's pages of rows: each table's changes in a window, as the caller sees them, built as
-- JSON in the query that reads them; the conflicts as the caller may see them; the caller's own
-- writes that RLS may now hide; and the one rule of what fits on a page.

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
