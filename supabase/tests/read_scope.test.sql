-- Who reads what. An rm reads their own customers and everything under them, a bm their branch, an
-- admin everything; staff read their own branch's branch and profiles and all reference data;
-- anon and a signed-in user without a profile read nothing.
begin;

select plan(
  (select count(*)::int * 7 from sync.tables)  -- exact row sets for 5 staff users, nothing for anon and a user without a profile
  + 16
);

-- The expected scope of every syncable row, worked out by the owner (no RLS) from the registry:
-- a row's root is the owned or branch row its parent chain ends at; shared rows have none.
create temp table scoped_rows (table_name text, id uuid, root_scope text, owner_id uuid, branch_id uuid) on commit drop;
do $$
declare
  t sync.tables;
begin
  for t in select * from sync.tables order by sync_order loop
    if t.scope = 'owned' then
      execute format('insert into scoped_rows select %L, id, ''owned'', %I, %I from public.%I',
                     t.table_name, t.owner_column, t.branch_column, t.table_name);
    elsif t.scope = 'branch' then
      execute format('insert into scoped_rows select %L, id, ''branch'', null, %I from public.%I',
                     t.table_name, t.branch_column, t.table_name);
    elsif t.scope = 'shared' then
      execute format('insert into scoped_rows select %L, id, ''shared'', null, null from public.%I',
                     t.table_name, t.table_name);
    else
      execute format('insert into scoped_rows select %L, c.id, p.root_scope, p.owner_id, p.branch_id
                        from public.%I c join scoped_rows p on p.table_name = %L and p.id = c.%I',
                     t.table_name, t.table_name, t.parent_table, t.parent_column);
    end if;
  end loop;
end
$$;
create temp table syncable on commit drop as select table_name, sync_order from sync.tables;
grant select on scoped_rows, syncable to anon, authenticated, service_role;

-- The branches, for the expected sets below.
create temp table branch_ids on commit drop as select code, id from public.branches;
grant select on branch_ids to anon, authenticated, service_role;

-- A relationship manager.
select tests.authenticate_as('rm1.jakarta@crm.test');
select set_eq(
  format('select id from public.%I', s.table_name),
  format($$ select id from scoped_rows
             where table_name = %L
               and (root_scope = 'shared'
                    or (root_scope = 'branch' and branch_id = (select id from branch_ids where code = 'JKT'))
                    or (root_scope = 'owned' and owner_id = tests.user_id('rm1.jakarta@crm.test'))) $$,
         s.table_name),
  format('rm1.jakarta reads exactly the %s of their own customers, their branch and the reference data', s.table_name)
)
  from syncable s order by s.sync_order;
select is((select count(*) from public.customers), 75::bigint, 'an rm reads their 75 customers');
select is((select count(*) from public.key_persons), 150::bigint, 'an rm reads the 150 key persons of their customers');
select is((select count(*) from public.pipelines), 75::bigint, 'an rm reads the 75 pipelines of their customers');
select is((select count(*) from public.activities), 150::bigint, 'an rm reads the 150 activities of their customers');
select is_empty(
  $$ select id from public.customers where assigned_rm_id <> tests.user_id('rm1.jakarta@crm.test') $$,
  'an rm reads no other rm''s customer'
);
select set_eq(
  $$ select email from public.profiles $$,
  $$ values ('bm.jakarta@crm.test'), ('rm1.jakarta@crm.test'), ('rm2.jakarta@crm.test') $$,
  'an rm reads the profiles of their own branch only'
);
select set_eq($$ select code from public.branches $$, $$ values ('JKT') $$, 'an rm reads their own branch only');

select tests.authenticate_as('rm2.surabaya@crm.test');
select set_eq(
  format('select id from public.%I', s.table_name),
  format($$ select id from scoped_rows
             where table_name = %L
               and (root_scope = 'shared'
                    or (root_scope = 'branch' and branch_id = (select id from branch_ids where code = 'SBY'))
                    or (root_scope = 'owned' and owner_id = tests.user_id('rm2.surabaya@crm.test'))) $$,
         s.table_name),
  format('rm2.surabaya reads exactly the %s of their own customers, their branch and the reference data', s.table_name)
)
  from syncable s order by s.sync_order;

-- Branch managers.
select tests.authenticate_as('bm.jakarta@crm.test');
select set_eq(
  format('select id from public.%I', s.table_name),
  format($$ select id from scoped_rows
             where table_name = %L
               and (root_scope = 'shared' or branch_id = (select id from branch_ids where code = 'JKT')) $$,
         s.table_name),
  format('bm.jakarta reads exactly the %s of the Jakarta branch and the reference data', s.table_name)
)
  from syncable s order by s.sync_order;
select is((select count(*) from public.customers), 150::bigint, 'a bm reads the 150 customers of their branch');

select tests.authenticate_as('bm.surabaya@crm.test');
select set_eq(
  format('select id from public.%I', s.table_name),
  format($$ select id from scoped_rows
             where table_name = %L
               and (root_scope = 'shared' or branch_id = (select id from branch_ids where code = 'SBY')) $$,
         s.table_name),
  format('bm.surabaya reads exactly the %s of the Surabaya branch and the reference data', s.table_name)
)
  from syncable s order by s.sync_order;

-- The admin.
select tests.authenticate_as('admin@crm.test');
select set_eq(
  format('select id from public.%I', s.table_name),
  format('select id from scoped_rows where table_name = %L', s.table_name),
  format('the admin reads every row of %s', s.table_name)
)
  from syncable s order by s.sync_order;
select is((select count(*) from public.customers), 300::bigint, 'the admin reads all 300 customers');

-- service_role bypasses row-level security.
select tests.authenticate_as_service_role();
select is((select count(*) from public.customers), 300::bigint, 'service_role reads all 300 customers');

-- anon reads nothing: no policy is for anon, so the tables look empty (no error).
select tests.authenticate_as_anon();
select is_empty(format('select id from public.%I', s.table_name), format('anon reads nothing from %s', s.table_name))
  from syncable s order by s.sync_order;
select throws_ok(
  $$ select id from sync.conflicts $$,
  '42501',
  'permission denied for schema sync',
  'anon cannot reach the conflict audit at all'
);

-- A signed-in user with no profile reads nothing, not even reference data.
select tests.clear_authentication();
insert into auth.users (email) values ('no.profile@crm.test');
select tests.authenticate_as('no.profile@crm.test');
select is_empty(format('select id from public.%I', s.table_name),
                format('a user without a profile reads nothing from %s', s.table_name))
  from syncable s order by s.sync_order;

-- The conflict audit: admins and the users whose edits collided.
select tests.clear_authentication();
insert into sync.conflicts (id, table_name, row_id, user_id, server_user_id, server_version, server_row, resolution)
values ('00000000-0000-4000-8c00-000000000001', 'customers', '00000000-0000-4000-8100-000000000004',
        tests.user_id('rm1.jakarta@crm.test'), tests.user_id('rm2.jakarta@crm.test'), 2, '{}', 'server_wins');

select tests.authenticate_as('admin@crm.test');
select results_eq($$ select conflict_id from sync.conflict_history $$, $$ values ('00000000-0000-4000-8c00-000000000001'::uuid) $$,
                  'the admin reads the conflict');
select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq($$ select conflict_id from sync.conflict_history $$, $$ values ('00000000-0000-4000-8c00-000000000001'::uuid) $$,
                  'the author of the incoming edit reads the conflict');
select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq($$ select conflict_id from sync.conflict_history $$, $$ values ('00000000-0000-4000-8c00-000000000001'::uuid) $$,
                  'the author of the server version reads the conflict');
select tests.authenticate_as('bm.jakarta@crm.test');
select is_empty($$ select conflict_id from sync.conflict_history $$, 'a bm not involved does not read the conflict');

-- A member of staff whose profile is deleted reads nothing any more.
select tests.clear_authentication();
update public.profiles set deleted_at = now() where id = tests.user_id('rm1.jakarta@crm.test');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty(
  $$ select id from public.customers union all select id from public.hvcs union all select id from public.profiles $$,
  'a user whose profile is deleted reads no customers, reference data or profiles'
);

select * from finish();
rollback;
