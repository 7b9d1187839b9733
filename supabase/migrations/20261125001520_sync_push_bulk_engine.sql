-- The bulk push engine: a batch of current-version ops written with a few statements per table.

-- "table/id" -> the row ('row') or whether it is deleted ('deleted'), of the rows named by p_tables
-- and p_ids side by side: one statement for all the tables named, the rows read as the caller sees
-- them.
create function sync.rows_by_key(p_tables text[], p_ids uuid[], p_what text) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_sql text;
  v_rows jsonb;
begin
  if p_what is null or p_what not in ('row', 'deleted') then
    raise exception 'sync.rows_by_key: p_what must be row or deleted, not %', p_what;
  end if;
  select string_agg(format('select %L || t.id, %s from public.%I t
                             where t.id = any (array(select x.id from unnest($1, $2) x (tbl, id) where x.tbl = %L))',
                           r.table_name || '/', case p_what when 'row' then 'to_jsonb(t)' when 'deleted' then 't.deleted_at is not null' end,
                           r.table_name, r.table_name), ' union all ')
    into v_sql
    from sync.tables r
   where r.table_name = any (p_tables);
  if v_sql is null then
    return '{}';
  end if;
  execute 'select coalesce(jsonb_object_agg(k, v), ''{}'') from (' || v_sql || ') r (k, v)' into v_rows using p_tables, p_ids;
  return v_rows;
end
$$;

comment on function sync.rows_by_key(text[], uuid[], text) is
  'The current rows (p_what row) or deleted flags (p_what deleted) of several tables'' rows by id, as the caller sees them, keyed table/id: one statement for a batch.';
-- The bulk engine: the common batch (new rows, edits based on the current version, deletes) applied
-- with a few statements per table instead of several per op. It writes the rows whose ops' outcome
-- cannot depend on the order of the ops or on a conflict: updates and deletes are based on the
-- current version, nothing changes a row's scope, and every parent is there before its children.
-- A row with several ops (a create and its edits, as offline queues send them) is written in
-- waves: the first op of every row, then the second, each wave checked against what the one before
-- wrote. The rows whose first op it may not decide, and the rows tied to them as parent or child,
-- go to the per-op engine after the rest. Anything else (a later op it may not decide, any
-- statement that fails or writes fewer rows than planned) returns the whole batch to the per-op
-- engine, whose results are the reference.
create type sync.bulk_op as (
  ord integer,
  op jsonb,
  table_name text,
  kind text,
  id uuid,
  base_version bigint,
  data jsonb,
  earlier jsonb, -- its answer when it was processed before (a duplicate, or op_id_reused), or null
  wave integer,  -- 1 for the first op on its row in the batch, 2 for the second, ...
  -- The table's registry entry, read once for the batch: a join for each of the engine's queries
  -- probed the registry once per op.
  sync_order integer,   -- null: not a registered table
  parent_table text,
  parent_column text,
  owner_column text,
  branch_column text,
  parent_id uuid        -- the parent its data names, when that is a uuid
);
comment on type sync.bulk_op is 'One op of a push as the bulk engine plans it (sync.apply_ops_in_bulk).';
comment on column sync.bulk_op.ord is 'The op''s position in the request (0-based); results keep this order.';
comment on column sync.bulk_op.op is 'The op as the request carried it, after sync.normalize_push.';
comment on column sync.bulk_op.table_name is 'The table the op writes.';
comment on column sync.bulk_op.kind is 'insert, update or delete.';
comment on column sync.bulk_op.id is 'The id of the row the op writes.';
comment on column sync.bulk_op.base_version is 'The version the op''s edit was based on (null for an insert).';
comment on column sync.bulk_op.data is 'The columns the op writes and their values (empty for a delete).';
comment on column sync.bulk_op.earlier is 'Its answer when it was processed before (a duplicate, or op_id_reused), or null.';
comment on column sync.bulk_op.wave is '1 for the first op on its row in the batch, 2 for the second, ...: each wave is written after the one before.';
comment on column sync.bulk_op.sync_order is 'The table''s sync_order from the registry, read once for the batch; null: not a registered table.';
comment on column sync.bulk_op.parent_table is 'The registry''s parent table of a child table, or null.';
comment on column sync.bulk_op.parent_column is 'The column that names the parent row, or null.';
comment on column sync.bulk_op.owner_column is 'The registry''s owner column of an owned table, or null.';
comment on column sync.bulk_op.branch_column is 'The registry''s branch column, or null.';
comment on column sync.bulk_op.parent_id is 'The parent row its data names, when that is a uuid.';


-- Returns the results of the batch, or null when it is not a bulk batch (see above). Raises when a
-- statement fails; the caller runs it in a subtransaction and falls back to the per-op engine.
create function sync.apply_ops_in_bulk(p_ops jsonb, p_earlier jsonb, p_client_id uuid default null) returns jsonb[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role text := case when current_user in ('authenticated', 'sync_engine') then sync.current_app_role() end;
  v_all sync.bulk_op[];       -- the batch
  v_ops sync.bulk_op[];       -- the wave being applied
  v_waves integer;
  v_wave integer;
  v_results jsonb[];          -- ord -> the op's result, filled wave by wave
  v_current jsonb := '{}';    -- "table/id" -> the row as the caller sees it now
  v_parents jsonb := '{}';    -- "table/id" -> deleted? for parents named by inserts
  v_columns jsonb;            -- "table" and "table/column" -> true, of its client columns
  v_inserts jsonb;            -- "table/id" -> ord, of the batch's inserts
  v_deletes jsonb;            -- "table/id" -> ord, of the batch's deletes
  v_denied jsonb;             -- "table/column" -> true, of columns the caller's role may not write
  v_table_columns jsonb;      -- table -> its client columns, as the checks saw them
  v_refused jsonb;            -- "table/id" -> true, of rows with an op whose values the push refuses
  v_group record;
  v_tables text[];            -- the rows a wave's checks read: their tables and ids
  v_ids uuid[];
  v_undecided jsonb;          -- "table/id" -> true, of rows with an op the bulk engine cannot decide
  v_per_op jsonb := '{}';     -- "table/id" -> true, of rows left to the per-op engine
  v_added jsonb;
  v_link_rows text[];         -- the first wave's child rows, and their parent rows
  v_link_parents text[];
  v_request jsonb;            -- the ops of those rows, for the per-op engine
  v_count integer;
  v_ords integer[];           -- the ords of the ops a statement wrote, and their results:
  v_done jsonb[];             -- arrays, not jsonb objects merged with ||, which re-encode it all
  v_unwritten record;
  v_i integer;
begin
  -- Whenever the per-op engine takes ops the bulk engine could not, the server log says so and why
  -- (RAISE LOG: a DBA's record, and a client that lowers client_min_messages sees it too).
  if current_user in ('authenticated', 'sync_engine') and v_role is null then
    raise log 'supasync push by %: the per-op engine applies the batch: the caller has no role', auth.uid();
    return null;  -- no role: the per-op engine names the refusal
  end if;
  -- An op_id reused for another op is not applied, so the per-op engine blocks a later op on its
  -- row; the bulk engine would apply that one.
  if exists (select 1 from jsonb_each(p_earlier) e where e.value ->> 'code' = 'op_id_reused') then
    return null;
  end if;
  select array_agg(row(o.ord, o.op, o.op ->> 'table', o.op ->> 'op', (o.op ->> 'id')::uuid,
                       (o.op ->> 'base_version')::numeric::bigint, o.data,
                       p_earlier -> lower(o.op ->> 'op_id'), o.wave,
                       t.sync_order, t.parent_table, t.parent_column, t.owner_column, t.branch_column,
                       case when sync.is_uuid(o.data -> t.parent_column) then (o.data ->> t.parent_column)::uuid end
                      )::sync.bulk_op order by o.ord)
    into v_all
    from (select e.op, e.ord::integer,
                 case when jsonb_typeof(e.op -> 'data') = 'object' then e.op -> 'data' else '{}' end
                   - sync.server_columns() as data,
                 row_number() over (partition by e.op ->> 'table', lower(e.op ->> 'id') order by e.ord)::integer as wave
            from jsonb_array_elements(p_ops) with ordinality e (op, ord)) o
    left join sync.tables t on t.table_name = o.op ->> 'table';

  -- Shape: registered tables, known columns, no legacy entity payloads (their per-field handling is
  -- the per-op engine's). With each table's columns (keyed "table/column", so that a check is one
  -- look-up in a flat object, and as the list the writes are made for) come those the caller's
  -- role may not write.
  with t as (
    select r.table_name, c.columns,
           case when v_role is null then '{}' else sync.denied_columns(v_role, r.table_name, c.columns) end as denied
      from sync.tables r
     cross join lateral (select sync.client_columns(r.table_name) as columns offset 0) c
     where r.table_name in (select o.table_name from unnest(v_all) o))
  select (select coalesce(jsonb_object_agg(k.key, true), '{}')
            from t, lateral (select t.table_name union all select t.table_name || '/' || x from unnest(t.columns) x) k (key)),
         (select coalesce(jsonb_object_agg(t.table_name || '/' || x, true), '{}') from t, unnest(t.denied) x),
         (select coalesce(jsonb_object_agg(t.table_name, to_jsonb(t.columns)), '{}') from t)
    into v_columns, v_denied, v_table_columns;
  if v_all is null
     or exists (select 1 from unnest(v_all) o
                 where o.op ? 'legacy_item_id' or not v_columns ? o.table_name)
     or exists (select 1 from unnest(v_all) o, jsonb_object_keys(o.data) k
                 where not v_columns ? (o.table_name || '/' || k)) then
    if v_all is not null then
      raise log 'supasync push by %: the per-op engine applies the batch: it holds legacy (protocol 1) items, an unknown table or an unknown column',
        auth.uid();
    end if;
    return null;
  end if;
  -- The rows with an op whose values the push refuses (sync.refused_value) are the per-op
  -- engine's, which names the value: each op's values of the ruled client columns of its table.
  -- The rules are read in a subquery of their own ("offset 0"), so that sync.value_fault gets
  -- plain columns and is inlined (handed the view's expressions, it is planned at every call).
  select coalesce(jsonb_object_agg(x.row_key, true), '{}') into v_refused
    from (select o.table_name || '/' || o.id as row_key from unnest(v_all) o where o.op ? 'unstorable_numbers'
          union
          select o.table_name || '/' || o.id
            from unnest(v_all) o
            join (select r.* from sync.column_value_rules r
                   where r.table_name in (select jsonb_object_keys(v_table_columns))
                     and v_table_columns -> r.table_name ? r.column_name offset 0) r on r.table_name = o.table_name
           where o.data ? r.column_name
             and sync.value_fault(r.kind, r.numeric_precision, r.scale, o.data -> r.column_name) is not null) x;
  -- "table/id" -> ord of the batch's first insert and first delete of each row, for the order
  -- checks below: they hold across waves (a parent deleted by an earlier op, in whatever wave).
  select coalesce(jsonb_object_agg(x.row_key, x.first_ord) filter (where x.kind = 'insert'), '{}'),
         coalesce(jsonb_object_agg(x.row_key, x.first_ord) filter (where x.kind = 'delete'), '{}')
    into v_inserts, v_deletes
    from (select o.table_name || '/' || o.id as row_key, o.kind, min(o.ord) as first_ord
            from unnest(v_all) o where o.kind in ('insert', 'delete') group by 1, 2) x;
  select max(o.wave) into v_waves from unnest(v_all) o;
  v_results := array_fill(null::jsonb, array[cardinality(v_all)]);

  for v_wave in 1 .. v_waves loop
    v_ops := array(select o from unnest(v_all) o
                    where o.wave = v_wave and not v_per_op ? (o.table_name || '/' || o.id) order by o.ord);

    -- What the checks need from the database, one query for each purpose over all the tables: the
    -- current rows of the updates and deletes (as the caller sees them), and whether the parents
    -- named by inserts are live. Insert ids are not looked up: one that is taken (by a row the
    -- caller may not see, too) fails its insert on the primary key, and the per-op engine takes the
    -- batch and names it.
    select array_agg(o.table_name), array_agg(o.id) into v_tables, v_ids
      from unnest(v_ops) o where o.kind <> 'insert';
    v_current := sync.rows_by_key(v_tables, v_ids, 'row');
    select array_agg(x.parent_table), array_agg(x.parent_id) into v_tables, v_ids
      from (select distinct o.parent_table, o.parent_id from unnest(v_ops) o
             where o.kind = 'insert' and o.parent_id is not null) x;
    v_parents := sync.rows_by_key(v_tables, v_ids, 'deleted');

    -- The rows with an op the bulk engine may not decide.
    select coalesce(jsonb_object_agg(o.table_name || '/' || o.id, true), '{}') into v_undecided
      from unnest(v_ops) o
      cross join lateral (select v_current -> (o.table_name || '/' || o.id) as cur,
                                 o.parent_table || '/' || coalesce(o.data ->> o.parent_column,
                                   v_current -> (o.table_name || '/' || o.id) ->> o.parent_column) as parent_key) c
     where (o.earlier is null and not coalesce(case o.kind
          when 'insert' then
            c.cur is null
            -- nothing the role may not write, not even a default's value or a null (the per-op engine knows)
            and not exists (select 1 from jsonb_each(o.data) d
                             where v_denied ? (o.table_name || '/' || d.key))
            and (o.parent_column is null or (
              o.parent_id is not null
              -- the parent is live now, or inserted by an earlier op of this batch
              and (v_parents -> c.parent_key = 'false' or (v_inserts ->> c.parent_key)::integer < o.ord)))
          else
            c.cur is not null
            and (o.kind = 'delete' and c.cur ->> 'deleted_at' is not null
              or c.cur ->> 'deleted_at' is null
                 and case when o.base_version is null
                          -- unversioned, only over the caller's own last write (a write with no
                          -- user is someone else's: the per-op engine records the overwrite)
                          then o.kind = 'update' and coalesce((c.cur ->> 'updated_by')::uuid = v_uid, false)
                          else o.base_version = (c.cur ->> 'version')::bigint end
                 and not exists (
                   select 1 from jsonb_each(o.data) d
                    where d.value is distinct from c.cur -> d.key
                      and (v_denied ? (o.table_name || '/' || d.key) or d.key in (o.parent_column, o.owner_column, o.branch_column))))
          end, false))
        -- a new row under a parent that an earlier op of this batch deletes is refused
        or (o.kind = 'insert' and (v_deletes ->> c.parent_key)::integer < o.ord)
        or (o.earlier is null and v_refused ? (o.table_name || '/' || o.id));
    if v_undecided <> '{}' then
      if v_wave > 1 then
        -- The waves before wrote rows: the caller's subtransaction must undo them.
        raise exception 'wave % of the batch needs the per-op engine', v_wave;
      end if;
      -- Those rows go to the per-op engine, and with them every row of the batch tied to one as
      -- parent or child, so that what the bulk engine writes does not depend on them, nor they on
      -- it (a child under a parent the batch reassigns, a parent whose child's edit is stale). Their
      -- ops run after the others, in their order. A device back after days offline sends a few
      -- stale edits among hundreds of current ones; those few no longer take the whole batch to
      -- the per-op engine.
      select array_agg(o.table_name || '/' || o.id),
             array_agg(o.parent_table || '/' || lower(coalesce(o.data ->> o.parent_column,
                                                               v_current -> (o.table_name || '/' || o.id) ->> o.parent_column)))
        into v_link_rows, v_link_parents
        from unnest(v_ops) o
       where o.parent_table is not null;
      v_per_op := v_undecided;
      loop
        select jsonb_object_agg(x.k, true) into v_added
          from (select l.r as k from unnest(v_link_rows, v_link_parents) l (r, p)
                 where v_per_op ? l.p and not v_per_op ? l.r
                union
                -- a parent only when the batch has ops on it: another child of a parent the batch
                -- leaves alone does not depend on this one
                select l.p from unnest(v_link_rows, v_link_parents) l (r, p)
                 where v_per_op ? l.r and not v_per_op ? l.p
                   and exists (select 1 from unnest(v_ops) o where o.table_name || '/' || o.id = l.p)) x;
        exit when v_added is null;
        v_per_op := v_per_op || v_added;
      end loop;
      v_ops := array(select o from unnest(v_ops) o where not v_per_op ? (o.table_name || '/' || o.id) order by o.ord);
      raise log 'supasync push by %: the per-op engine applies the ops of % rows after the bulk engine: % of them have an op it cannot decide (a stale or unversioned edit of another''s change, a scope change, a denied column, a parent not live), the others are tied to those as parent or child',
        auth.uid(), (select count(*) from jsonb_object_keys(v_per_op)), (select count(*) from jsonb_object_keys(v_undecided));
      if cardinality(v_ops) = 0 then
        return null;  -- nothing left for the bulk engine
      end if;
    end if;

    -- The rows are written as their ops were checked: each update and delete only if the row still
    -- has the version (or, unversioned, the caller as its last author) its op expects, re-checked on
    -- the locked row. The triggers check them again all the same (field rules, and the version each
    -- row's statement states as `version = -N`): nothing tells a trigger that a write was checked
    -- before, since whatever could tell it a client session could tell it too.

    -- Inserts, parents before children, one statement per table; then the updates that change
    -- something and the deletes of live rows, one statement per table (a delete sets deleted_at and
    -- takes nothing from its data). Each statement answers with its ops' results (sync.bulk_write).
    for v_group in
      select o.table_name, o.kind = 'insert' as is_insert,
             array_agg(o.id order by o.ord) as ids, array_agg(o.ord order by o.ord) as ords, array_agg(o.op order by o.ord) as ops,
             array_agg(case when o.kind = 'delete' then '{}' else o.data end order by o.ord) as datas,
             array_agg(o.base_version order by o.ord) as versions, array_agg(o.kind = 'delete' order by o.ord) as deletes
        from unnest(v_ops) o
        cross join lateral (select v_current -> (o.table_name || '/' || o.id) as cur) c
       where o.earlier is null
         and (o.kind = 'insert'
              or c.cur ->> 'deleted_at' is null
                 and (o.kind = 'delete' or exists (select 1 from jsonb_each(o.data) d where d.value is distinct from c.cur -> d.key)))
       group by o.kind = 'insert', o.sync_order, o.table_name
       order by o.kind = 'insert' desc, o.sync_order
    loop
      select w.o_written, w.o_ords, w.o_results into v_count, v_ords, v_done
        from sync.bulk_write(v_group.table_name, array(select jsonb_array_elements_text(v_table_columns -> v_group.table_name)),
                             case when v_group.is_insert then 'insert' else 'update' end,
                             v_group.ids, v_group.ords, v_group.ops, v_group.datas, v_group.versions, v_group.deletes, v_uid) w;
      if v_count is distinct from cardinality(v_group.ids) then
        raise exception 'bulk % of % wrote % of % rows', case when v_group.is_insert then 'insert into' else 'update of' end,
          v_group.table_name, coalesce(v_count, 0), cardinality(v_group.ids);
      end if;
      for v_i in 1 .. v_count loop
        v_results[v_ords[v_i]] := v_done[v_i];
      end loop;
    end loop;
    -- An edit that changes nothing, and the delete of a deleted row, wrote nothing: their row is the
    -- current one.
    for v_unwritten in
      select o.ord, sync.op_result(o.op, 'applied', p_row => v_current -> (o.table_name || '/' || o.id)) as result
        from unnest(v_ops) o
       where o.earlier is null and v_results[o.ord] is null
    loop
      v_results[v_unwritten.ord] := v_unwritten.result;
    end loop;
  end loop;

  -- The rows left to the per-op engine, after everything the bulk engine wrote.
  if v_per_op <> '{}' then
    select array_agg(o.ord order by o.ord), jsonb_agg(o.op order by o.ord) into v_ords, v_request
      from unnest(v_all) o
     where v_per_op ? (o.table_name || '/' || o.id);
    v_done := sync.run_ops(v_request, p_earlier, p_client_id, true);
    for v_i in 1 .. cardinality(v_ords) loop
      v_results[v_ords[v_i]] := v_done[v_i];
    end loop;
  end if;

  return (
    select array_agg(coalesce(v_results[o.ord], o.earlier) order by o.ord)
      from unnest(v_all) o);
end
$$;
comment on function sync.apply_ops_in_bulk(jsonb, jsonb, uuid) is
  'The bulk push engine: applies a batch of independent, current-version ops with a few statements per table, and the rows it may not decide (with the rows tied to them) through the per-op engine; returns null for a batch the per-op engine must apply whole.';
