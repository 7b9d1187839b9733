-- The bulk push engine's writes (sync.apply_ops_in_bulk), one insert and one update statement for
-- each syncable table, written out as one function per table (sync.bulk_write_<table>, generated
-- when the table is registered) so that PL/pgSQL keeps their plans, and reached through a small
-- dispatcher (sync.bulk_write) that names every table. Built for each batch
-- with EXECUTE, they were parsed, rewritten with the table's policies and planned at every push,
-- which was most of a small push's time in the database.
-- The insert names every client column, a column its op's data leaves out taking the column's
-- default (the owner and branch defaults once per statement: they are the caller's, the same for
-- every row); the update sets every client column, to its current value where the data leaves it
-- out. Each statement answers with its ops' results: an applied op's answer as sync.op_result
-- shapes it, made from the written row in one pass.
-- A table altered since it was registered has other columns than the statements name: the engine
-- passes the columns it checked the ops against, and a writer that does not know them refuses, so
-- the per-op engine applies the batch until sync.register_table is run again.
create function sync.refresh_bulk_writer(p_table text) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_table record;
  v_writer text := 'bulk_write_' || p_table;
  v_columns text[];
  v_insert_columns text;
  v_insert_values text;
  v_set text;
  v_returning text;
  v_body text;
  -- The written rows are w; the ops' ids, ords and ops come as arrays.
  v_answers constant text := $a$
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;$a$;
begin
  if octet_length(v_writer) > 63 then
    raise exception using errcode = '42622',
      message = format('sync.refresh_bulk_writer: the writer of %s would be named %s, longer than PostgreSQL keeps', p_table, v_writer);
  end if;
  select t.table_name, t.owner_column, t.branch_column into v_table from sync.tables t where t.table_name = p_table;
  if not found then
    raise exception 'sync.refresh_bulk_writer: % is not a syncable table', p_table;
  end if;
  v_columns := sync.client_columns(v_table.table_name);
  select string_agg(', ' || quote_ident(c.name), '' order by c.ord),
         string_agg(format(', case when o.data ? %L then r.%I else %s end', c.name, c.name,
                           case when d.expr is null then 'null'
                                when c.name in (v_table.owner_column, v_table.branch_column) then '(select ' || d.expr || ')'
                                else d.expr end), '' order by c.ord),
         string_agg(format(', %1$I = case when o.data ? %2$L then r.%1$I else t.%1$I end', c.name, c.name), '' order by c.ord)
    into v_insert_columns, v_insert_values, v_set
    from unnest(v_columns) with ordinality c (name, ord)
    left join lateral (
      select pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) as expr
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
       where a.attrelid = ('public.' || quote_ident(v_table.table_name))::regclass and a.attname = c.name) d on true;
  -- The row as a result shows it: every column but change_xid (the pull's bookkeeping).
  select string_agg('t.' || quote_ident(a.attname), ', ' order by a.attnum) into v_returning
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(v_table.table_name))::regclass
     and a.attnum > 0 and not a.attisdropped and a.attname <> 'change_xid';
  v_body := format($b$
    if p_columns is distinct from %2$L::text[] then
      raise exception using message = %8$L;
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.%1$I as t (id%3$s)
        select o.id%4$s
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.%1$I, o.data) r
        returning %6$s)%7$s
    else
      with w as (
        update public.%1$I as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version)%5$s
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.%1$I, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning %6$s)%7$s
    end if;$b$,
    v_table.table_name, v_columns, coalesce(v_insert_columns, ''), coalesce(v_insert_values, ''), coalesce(v_set, ''),
    v_returning, v_answers,
    format('sync.bulk_write: the columns of public.%I are not those it was registered with; run sync.register_table again',
           v_table.table_name));

  execute format($f$
create or replace function sync.%1$I(
  p_columns text[], p_kind text,
  p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[],
  p_versions bigint[], p_deletes boolean[], p_uid uuid,
  out o_written integer, out o_ords integer[], out o_results jsonb[])
language plpgsql
set search_path = pg_catalog, pg_temp
as $body$
#variable_conflict use_column
begin%2$s
end
$body$;
$f$, v_writer, v_body);
  execute format('comment on function sync.%I(text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) is %L',
                 v_writer, format('Generated by sync.refresh_bulk_writer(%L): the bulk push engine''s insert (p_kind insert) or guarded update and delete of a batch''s rows of public.%I, as the caller; returns how many rows it wrote and their ops'' results.', p_table, p_table));
  execute format('revoke all on function sync.%I(text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) from public', v_writer);
  execute format('grant execute on function sync.%I(text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) to sync_engine', v_writer);
end
$$;
comment on function sync.refresh_bulk_writer(text) is
  'Writes out sync.bulk_write_<table>, the bulk push engine''s statements for one registered table, as its columns are now; called by sync.register_table.';
revoke all on function sync.refresh_bulk_writer(text) from public;

-- The dispatcher: which table's writer a group of the batch goes to. Regenerated at every
-- registration; the writers themselves only when their own table is registered.
create function sync.refresh_bulk_writers() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_branches text;
begin
  select string_agg(format($b$
  if p_table = %1$L then
    select w.o_written, w.o_ords, w.o_results into o_written, o_ords, o_results
      from sync.%2$I(p_columns, p_kind, p_ids, p_ords, p_ops, p_datas, p_versions, p_deletes, p_uid) w;
    return;
  end if;$b$, t.table_name, 'bulk_write_' || t.table_name), '' order by t.sync_order)
    into v_branches
    from sync.tables t;

  execute format($f$
create or replace function sync.bulk_write(
  p_table text, p_columns text[], p_kind text,
  p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[],
  p_versions bigint[] default null, p_deletes boolean[] default null, p_uid uuid default null,
  out o_written integer, out o_ords integer[], out o_results jsonb[])
language plpgsql
set search_path = pg_catalog, pg_temp
as $body$
begin%s
  raise exception 'sync.bulk_write: %% is not a syncable table', p_table;
end
$body$;
$f$, coalesce(v_branches, ''));
  comment on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) is
    'Generated by sync.refresh_bulk_writers(): sends a batch''s rows of one table to that table''s writer (sync.bulk_write_<table>); returns how many rows it wrote and their ops'' results.';
  revoke all on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) from public;
  grant execute on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid)
    to sync_engine;
end
$$;
comment on function sync.refresh_bulk_writers() is
  'Regenerates sync.bulk_write, the dispatcher to each registered table''s writer; called by sync.register_table.';
revoke all on function sync.refresh_bulk_writers() from public;
