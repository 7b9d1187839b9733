-- Database security checks that fail the build when a change opens a hole: RLS and policies on
-- every exposed table, fixed search_path on definer functions, invoker views, nothing for anon but
-- health, and no client role able to write the sync internals.
begin;

create temp table exposed_tables as
  select c.oid::regclass as tbl
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'graphql_public') and c.relkind in ('r', 'p');

create temp table internal_tables as
  select c.oid::regclass as tbl
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'sync' and c.relkind in ('r', 'p');

create temp table our_functions as
  select p.oid::regprocedure as fn, p.prosecdef, p.proconfig, n.nspname
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'sync');

select plan(
  (select count(*)::int * 6 from exposed_tables)
  + (select count(*)::int * 3 from internal_tables) * 4
  + (select count(*)::int from our_functions where prosecdef)
  + (select count(*)::int from our_functions)
  + 5
);

-- Every exposed table has RLS, and a policy for each operation.
select ok(c.relrowsecurity, format('%s has row level security enabled', t.tbl))
  from exposed_tables t join pg_class c on c.oid = t.tbl;
select ok(exists (select 1 from pg_policy p where p.polrelid = t.tbl and p.polcmd in (cmd.c, '*')),
          format('%s has a policy for %s', t.tbl, cmd.name))
  from exposed_tables t
 cross join (values ('r', 'select'), ('a', 'insert'), ('w', 'update'), ('d', 'delete')) cmd (c, name);
select ok(not exists (select 1 from pg_policy p where p.polrelid = t.tbl
                        and (p.polroles @> array[0::oid] or p.polroles @> array['anon'::regrole::oid])),
          format('no policy of %s lets anon in', t.tbl))
  from exposed_tables t;

-- Client roles cannot write the sync internals (registry, rules, idempotency, audit, logs).
select ok(not has_table_privilege(r.role, t.tbl, priv.p), format('%s may not %s %s', r.role, priv.p, t.tbl))
  from internal_tables t
 cross join (values ('anon'), ('authenticated'), ('service_role')) r (role)
 cross join (values ('insert'), ('update'), ('delete'), ('truncate')) priv (p);

-- Security definer functions pin their search_path.
select ok(exists (select 1 from unnest(f.proconfig) c where c like 'search_path=%'),
          format('security definer %s sets search_path', f.fn))
  from our_functions f where f.prosecdef;

-- anon may call nothing but the health check.
select ok(has_function_privilege('anon', f.fn, 'execute') = (f.fn = 'public.sync_health()'::regprocedure),
          format('anon %s execute %s', case when f.fn = 'public.sync_health()'::regprocedure then 'may' else 'may not' end, f.fn))
  from our_functions f;
select ok(not has_schema_privilege('anon', 'sync', 'usage'), 'anon cannot reach the sync schema');

-- Views in exposed schemas run as the caller.
select is_empty(
  $$ select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'graphql_public') and c.relkind = 'v'
        and not coalesce(c.reloptions @> array['security_invoker=true'], false) $$,
  'every view in an exposed schema is security_invoker');
select is_empty(
  $$ select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'sync' and c.relkind = 'v'
        and not coalesce(c.reloptions @> array['security_invoker=true'], false)
        -- the pull's change marks: transaction ids only, of the caller's own writes and of the rows
        -- granted to the caller (change_probes.test.sql, row_grants.test.sql)
        and c.oid not in ('sync.scope_change_marks'::regclass, 'sync.own_write_marks'::regclass, 'sync.granted_row_marks'::regclass)
        -- the review views run as sync_engine, which row-level security treats as the caller
        -- (conflict_redaction.test.ts), so that no client role needs to read sync.conflicts itself
        and not (c.oid in ('sync.open_conflicts'::regclass, 'sync.conflict_history'::regclass, 'sync.conflict_counts'::regclass)
                 and pg_get_userbyid(c.relowner) = 'sync_engine') $$,
  'the review views run as the caller too, so sync.conflicts'' policy applies');

-- anon reads nothing anywhere, whatever the default grants.
grant select on exposed_tables to anon;
select tests.authenticate_as_anon();
select is(
  (select sum(n)::int from (
     select (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %s', t.tbl), false, true, '')))[1]::text::int as n
       from exposed_tables t) counts),
  0, 'anon reads no row of any exposed table');
select tests.clear_authentication();

-- Every syncable column has a field rule.
select is_empty($$ select app_role, table_name, column_name from sync.field_rule_matrix where unruled $$,
                'the field-rule matrix has a rule for every syncable column');

select * from finish();
rollback;
