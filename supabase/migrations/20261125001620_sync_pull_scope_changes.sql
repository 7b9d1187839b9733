-- The pull's scope phase: the scope-change log read in a window, as evictions for the users who
-- lost a row and as its child rows for the users who gained it.

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
