-- Roles the CRM did not have, added by an app's migration alone (supabase/tests/migrations): a
-- regional manager over Jakarta and Surabaya, and an auditor who reads everything and writes
-- nothing. The engine takes them as data: the scope rules, the field rules, the conflict review and
-- the pull hold for them as for the CRM's own roles.
begin;
select plan(15);

create temp table expected on commit drop as
  select (select count(*) from public.customers where deleted_at is null) as customers,
         (select count(*) from public.key_persons where deleted_at is null) as key_persons,
         (select count(*) from public.profiles where branch_id is not null) as branch_staff,
         (select count(*) from public.profiles) as all_staff;
grant select on expected to authenticated;
create temp table probe on commit drop as
  select (select c.id from public.customers c join public.branches b on b.id = c.branch_id where b.code = 'SBY' order by c.id limit 1) as sby_customer,
         (select p.id from public.profiles p where p.email = 'rm2.surabaya@crm.test') as sby_rm,
         (select p.id from public.profiles p where p.email = 'rm1.jakarta@crm.test') as jkt_rm;
grant select on probe to authenticated;

select tests.authenticate_as('regional.java@crm.test');
select is((select count(*) from public.customers), (select customers from expected),
          'the regional manager reads the customers of both their branches');
select is((select count(*) from public.key_persons), (select key_persons from expected),
          'and everything under them');
select is((select count(*) from public.profiles), (select branch_staff from expected),
          'and the staff of both branches');
select lives_ok(
  format($$ update public.customers set assigned_rm_id = %L where id = %L $$, (select sby_rm from probe), (select sby_customer from probe)),
  'the regional manager reassigns a Surabaya customer to a Surabaya rm'
);
select throws_ok(
  format($$ update public.customers set assigned_rm_id = %L where id = %L $$, (select jkt_rm from probe), (select sby_customer from probe)),
  '42501', format('permission denied: customers.assigned_rm_id %s is not a relationship manager of branch %s',
                  (select jkt_rm from probe), '00000000-0000-4000-8000-0000000000b2'),
  'but not to an rm of another branch (the app''s assignment rule)'
);
select is(
  (select json_array_length(public.sync_pull('{"protocol": 2, "cursor": null, "tables": ["customers"], "limit": 2000}') -> 'changes')),
  (select customers::int from expected),
  'a first pull brings the regional manager the customers of both branches'
);

select tests.authenticate_as('auditor@crm.test');
select is((select count(*) from public.customers), (select customers from expected), 'the auditor reads every customer');
select is((select count(*) from public.profiles), (select all_staff from expected),
          'and every profile, of every branch and of none');
select throws_ok(
  format($$ update public.customers set notes = 'audited' where id = %L $$, (select sby_customer from probe)),
  '42501', 'permission denied: role auditor may not write customers.notes',
  'the auditor changes no row (its field rules deny every column, and the write policies its role)'
);
select throws_ok(
  $$ insert into public.hvcs (code, name) values ('AUD', 'Audit') $$,
  '42501', 'permission denied: role auditor may not write hvcs.code',
  'not even reference data'
);
select is(
  (select r ->> 'status' || ' ' || (r ->> 'code')
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
            tests.op('0a000000-0000-4000-8000-0000000000a1', 'insert', 'customers', 'a0000000-0000-4000-8000-0000000000a1',
                     p_data => '{"name": "PT Audit", "branch_id": "00000000-0000-4000-8000-0000000000b1", "assigned_rm_id": "00000000-0000-4000-8000-000000000012"}'))))
          -> 'results') r),
  'rejected forbidden',
  'a push of the auditor is refused'
);
select is((select count(*)::int from public.customers where id = 'a0000000-0000-4000-8000-0000000000a1'), 0, 'and writes nothing');
delete from public.customers where id = (select sby_customer from probe);
select is((select deleted_at from public.customers where id = (select sby_customer from probe)), null,
          'a delete by the auditor, which no field rule covers, finds no row: the write policies want a role that writes');
select throws_ok(
  $$ select public.resolve_conflict(gen_random_uuid(), 'server') $$,
  '42501', 'your role may not resolve conflicts (sync.roles.resolves_conflicts)',
  'the auditor settles no conflict'
);

select tests.authenticate_as('regional.java@crm.test');
select throws_ok(
  $$ select public.resolve_conflict('00000000-0000-4000-8c00-00000000ffff', 'server') $$,
  'P0002', 'conflict 00000000-0000-4000-8c00-00000000ffff does not exist or is not visible to you',
  'the regional manager may resolve conflicts (the refusal is about this one, not the role)'
);

select * from finish();
rollback;
