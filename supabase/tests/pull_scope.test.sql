-- The pull restates the caller's read scope with their values as literals
-- (sync.caller_scope_condition), so the planner can read one rm's rows from the scope index. RLS
-- stays the rule; the restatement must select exactly what RLS lets the caller see, for every role
-- and every registered table with scope columns, or a pull would silently miss rows.
begin;
select plan((select count(*)::int * 4 from sync.tables where scope <> 'child') + 1);

-- The rows of p_table matching p_condition, as a count and a digest of their ids.
create function tests.rows_where(p_table text, p_condition text) returns text
language plpgsql
as $$
declare
  v_rows text;
begin
  execute format('select count(*) || '' rows, '' || md5(coalesce(string_agg(t.id::text, '','' order by t.id), '''')) from public.%I t where %s',
                 p_table, p_condition) into v_rows;
  return v_rows;
end
$$;
grant execute on function tests.rows_where(text, text) to authenticated;

create temp table scope_counts (email text, table_name text, condition text, visible text) on commit drop;
grant all on scope_counts to authenticated;

-- What each user sees under RLS, and their condition.
do $$
declare
  v_email text;
  v_table text;
begin
  foreach v_email in array array['admin@crm.test', 'bm.jakarta@crm.test', 'rm1.jakarta@crm.test', 'rm2.surabaya@crm.test'] loop
    perform tests.engine_acting_for(v_email);
    for v_table in select t.table_name from sync.tables t where t.scope <> 'child' order by t.sync_order loop
      insert into scope_counts
      values (v_email, v_table, sync.caller_scope_condition(v_table, 't'),
              tests.rows_where(v_table, 'true'));
    end loop;
    perform tests.clear_authentication();
  end loop;
end
$$;

-- The same conditions evaluated without RLS (as the owner) select the same rows.
select is(tests.rows_where(c.table_name, c.condition), c.visible,
          format('%s: the scope condition on %s selects the rows RLS shows', c.email, c.table_name))
  from scope_counts c
 order by c.email, c.table_name;

select is((select array_agg(sync.caller_scope_condition(t.table_name, 't')) filter (where sync.caller_scope_condition(t.table_name, 't') is not null)
             from sync.tables t where t.scope = 'child'), null,
          'a child table has no restatement: RLS on its parent decides, read in cursor order');

select * from finish();
rollback;
