-- Every text column of every registered table has a length limit, so that no row can grow without
-- bound and be carried in every pull of it: a varchar(n), a check of length(column) <= n, or a
-- check listing the values allowed. The limits are read from the catalog, so a table registered
-- later is held to the rule without touching this file.
begin;

-- The text columns of registered tables and the limit the catalog gives each (null: none).
create temp table text_columns on commit drop as
select t.table_name, a.attname::text as column_name, a.attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) as type_name,
       least(
         case when b.typname in ('varchar', 'bpchar') and coalesce(nullif(ty.typtypmod, -1), a.atttypmod) > 4
              then coalesce(nullif(ty.typtypmod, -1), a.atttypmod) - 4 end,
         (select min(m[1]::int)
            from pg_constraint c,
                 regexp_matches(pg_get_constraintdef(c.oid),
                                format('(?:char_)?length\(%s\) <= (\d+)\)', regexp_replace(quote_ident(a.attname), '([.^$*+?()[\]{}|\\])', '\\\1', 'g')),
                                'g') m
           where c.conrelid = a.attrelid and c.contype = 'c' and c.conkey = array[a.attnum]),
         (select max(length(v[1]))
            from pg_constraint c,
                 regexp_matches(pg_get_constraintdef(c.oid),
                                format('^CHECK \(\(%s = ANY \(ARRAY\[(.*)\]\)\)\)$', regexp_replace(quote_ident(a.attname), '([.^$*+?()[\]{}|\\])', '\\\1', 'g'))) e,
                 regexp_matches(e[1], '''((?:[^'']|'''')*)''::text', 'g') v
           where c.conrelid = a.attrelid and c.contype = 'c' and c.conkey = array[a.attnum])
       ) as max_length
  from sync.tables t
  join pg_attribute a on a.attrelid = format('public.%I', t.table_name)::regclass and a.attnum > 0 and not a.attisdropped
  join pg_type ty on ty.oid = a.atttypid
  join pg_type b on b.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
 where b.typname in ('text', 'varchar', 'bpchar', 'citext');

-- What a direct write's refusal names: its SQLSTATE and the column of the check that refused it;
-- null when the write went through (it is undone either way).
create function tests.write_refusal(p_sql text) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
  v_table text;
begin
  begin
    execute p_sql;
    raise exception using errcode = 'TSUND', message = 'undo';
  exception when sqlstate 'TSUND' then
    return null;
  end;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name, v_table = table_name;
  return jsonb_build_array(v_state, (
    select a.attname from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
     where c.conname = v_constraint and c.conrelid = format('public.%I', v_table)::regclass and cardinality(c.conkey) = 1));
end
$$;

-- The first live row of a table (by id) with a value in the column, if any has one.
create function tests.first_text_row(p_table text, p_column text) returns jsonb
language plpgsql
as $$
declare
  v_row jsonb;
begin
  execute format('select to_jsonb(t) from public.%I t where t.deleted_at is null order by t.%I is null, t.id limit 1', p_table, p_column)
    into v_row;
  return v_row;
end
$$;
grant execute on function tests.write_refusal(text), tests.first_text_row(text, text) to authenticated;

-- For each column, a value one character over its limit (over the largest sensible limit where it
-- has none), in the shape of the value the first live row holds (its first character repeated in
-- front), so that only its length is wrong.
create temp table over_long on commit drop as
select c.table_name, c.column_name, c.attnum, r.id, c.max_length,
       repeat(left(coalesce(r.current, 'a'), 1), coalesce(c.max_length, 10000) + 1 - length(coalesce(r.current, 'a')))
         || coalesce(r.current, 'a') as value
  from text_columns c
 cross join lateral (select (x ->> 'id')::uuid as id, x ->> c.column_name as current
                       from (select tests.first_text_row(c.table_name, c.column_name) as x) s) r
 -- A column no role writes (the server sets it from columns held to their own limits) is not
 -- written here either; its limit is still required above.
 where not exists (select 1 from sync.field_rules f
                    where f.app_role = 'admin' and f.table_name = c.table_name and f.column_name = c.column_name
                      and not f.may_write);
grant select on text_columns, over_long to authenticated;

select plan(2 + (select count(*)::int from over_long) + 2);

select is_empty(
  $$ select table_name || '.' || column_name || ' (' || type_name || ')' from text_columns where max_length is null order by 1 $$,
  'every text column of a registered table has a length limit'
);
select is_empty(
  $$ select table_name || '.' || column_name || ': ' || max_length from text_columns where max_length > 10000 order by 1 $$,
  'no text column takes more than 10 000 characters'
);

-- The limits hold: as an admin (who may write every client column but the server's), one character too many is
-- refused by a check of that column.
select tests.authenticate_as('admin@crm.test');
select is(
  tests.write_refusal(format('update public.%I set %I = %L where id = %L', o.table_name, o.column_name, o.value, o.id)),
  jsonb_build_array('23514', o.column_name),
  format('%s.%s refuses %s characters', o.table_name, o.column_name, length(o.value))
)
  from over_long o order by o.table_name, o.attnum;

-- The audit's case through the push: a 4 MiB email is rejected, naming the field.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field')
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'customers', 'c9000000-0000-4000-8000-000000000001', null,
                jsonb_build_object('name', 'PT Long Mail', 'email', repeat('a', 4 * 1024 * 1024) || '@example.com'))))) -> 'results') r),
  '["rejected", "invalid", "email"]',
  'a customer with a 4 MiB email is rejected, naming the field'
);
select is(
  (select jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field')
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'key_persons', 'c9000000-0000-4000-8000-000000000002', null,
                jsonb_build_object('customer_id', '00000000-0000-4000-8100-000000000004', 'name', 'Long Mail',
                                   'email', repeat('a', 4 * 1024 * 1024) || '@example.com'))))) -> 'results') r),
  '["rejected", "invalid", "email"]',
  'a key person with a 4 MiB email is rejected, naming the field'
);

select * from finish();
rollback;
