-- Who writes what. An rm writes their own customers and the rows under them; a bm runs their branch
-- and assigns its customers to its rms; only admins (and service_role) write branches, profiles and
-- reference data; anon writes nothing. Where a field rule refuses a column before row-level security
-- gets to look at the row, the field rule's message is the one the caller sees.
begin;
select plan(44);

-- Seed customers: 1 is rm2.jakarta's, 2 is rm1.surabaya's, 4 is rm1.jakarta's (key persons 11, 41).
create temp table ids on commit drop as
  select tests.user_id('rm1.jakarta@crm.test') as rm1_jkt, tests.user_id('rm2.jakarta@crm.test') as rm2_jkt,
         tests.user_id('bm.jakarta@crm.test') as bm_jkt, tests.user_id('rm1.surabaya@crm.test') as rm1_sby,
         (select id from public.branches where code = 'JKT') as jkt, (select id from public.branches where code = 'SBY') as sby;
grant select on ids to anon, authenticated, service_role;
insert into auth.users (id, email) values ('10000000-0000-4000-8000-00000000a001', 'applicant@crm.test');

-- An rm and other rms' customers.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty(
  $$ update public.customers set notes = 'poached' where id = '00000000-0000-4000-8100-000000000001' returning id $$,
  'an rm cannot update another rm''s customer in their branch'
);
select is_empty(
  $$ update public.customers set notes = 'poached' where id = '00000000-0000-4000-8100-000000000002' returning id $$,
  'an rm cannot update a customer of the other branch'
);
delete from public.customers where id in ('00000000-0000-4000-8100-000000000001', '00000000-0000-4000-8100-000000000002');
select is_empty(
  $$ update public.key_persons set name = 'poached' where id = '00000000-0000-4000-8200-000000000011' returning id $$,
  'an rm cannot update the key persons of another rm''s customer'
);
delete from public.key_persons where id = '00000000-0000-4000-8200-000000000011';

select tests.clear_authentication();
select is_empty(
  $$ select id from public.customers where id in ('00000000-0000-4000-8100-000000000001', '00000000-0000-4000-8100-000000000002')
                                       and (deleted_at is not null or version <> 1)
     union all
     select id from public.key_persons where id = '00000000-0000-4000-8200-000000000011' and deleted_at is not null $$,
  'an rm cannot delete another rm''s customers or their key persons'
);

select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq(
  $$ insert into public.customers (id, name) values ('10000000-0000-4000-8000-0000000000c1', 'PT Own')
     returning assigned_rm_id, branch_id $$,
  $$ select rm1_jkt, jkt from ids $$,
  'an rm creates a customer, which is theirs, in their branch'
);
select throws_ok(
  $$ insert into public.customers (name, assigned_rm_id) select 'PT Gift', rm2_jkt from ids $$,
  '42501',
  'permission denied: role rm may not write customers.assigned_rm_id',
  'an rm cannot create a customer assigned to another rm (the field rule refuses it)'
);
select throws_ok(
  $$ insert into public.customers (name, branch_id) select 'PT Elsewhere', sby from ids $$,
  '42501',
  'permission denied: role rm may not write customers.branch_id',
  'an rm cannot create a customer in another branch (the field rule refuses it)'
);
select throws_ok(
  $$ insert into public.customers (name, assigned_rm_id) values ('PT Nobody''s', null) $$,
  '42501',
  'permission denied: role rm may not write customers.assigned_rm_id',
  'an rm cannot create a customer assigned to no one (an explicit null in a column the role may not write is a value too)'
);
select throws_ok(
  $$ insert into public.key_persons (customer_id, name) values ('00000000-0000-4000-8100-000000000001', 'Planted') $$,
  '42501',
  'new row violates row-level security policy for table "key_persons"',
  'an rm cannot add a key person under another rm''s customer'
);
select throws_ok(
  $$ update public.key_persons set customer_id = '00000000-0000-4000-8100-000000000001'
      where id = '00000000-0000-4000-8200-000000000041' $$,
  '42501',
  'new row violates row-level security policy for table "key_persons"',
  'an rm cannot move their key person under another rm''s customer'
);
select throws_ok(
  $$ insert into public.pipelines (customer_id, title) values ('00000000-0000-4000-8100-000000000001', 'Planted') $$,
  '42501',
  'new row violates row-level security policy for table "pipelines"',
  'an rm cannot add a pipeline under another rm''s customer'
);
select results_eq(
  $$ insert into public.activities (customer_id, activity_type, subject)
     values ('00000000-0000-4000-8100-000000000004', 'call', 'Check-in') returning customer_id $$,
  $$ values ('00000000-0000-4000-8100-000000000004'::uuid) $$,
  'an rm adds an activity to their own customer'
);

-- A branch manager assigns within their branch.
select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ update public.customers set assigned_rm_id = (select rm1_jkt from ids)
      where id = '00000000-0000-4000-8100-000000000001' returning assigned_rm_id $$,
  $$ select rm1_jkt from ids $$,
  'a bm reassigns a customer to another rm of their branch'
);
select throws_ok(
  $$ update public.customers set assigned_rm_id = (select rm1_sby from ids)
      where id = '00000000-0000-4000-8100-000000000001' $$,
  '42501',
  format('permission denied: customers.assigned_rm_id %s is not a relationship manager of branch %s',
         (select rm1_sby from ids), (select jkt from ids)),
  'a bm cannot assign a customer to an rm of the other branch'
);
select throws_ok(
  $$ update public.customers set assigned_rm_id = (select bm_jkt from ids)
      where id = '00000000-0000-4000-8100-000000000001' $$,
  '42501',
  format('permission denied: customers.assigned_rm_id %s is not a relationship manager of branch %s',
         (select bm_jkt from ids), (select jkt from ids)),
  'a bm cannot assign a customer to a bm (only rms own customers)'
);
select throws_ok(
  $$ update public.customers set branch_id = (select sby from ids) where id = '00000000-0000-4000-8100-000000000001' $$,
  '42501',
  'permission denied: role bm may not write customers.branch_id',
  'a bm cannot move a customer to another branch'
);
select results_eq(
  $$ insert into public.customers (name, assigned_rm_id) select 'PT Assigned', rm2_jkt from ids
     returning assigned_rm_id, branch_id $$,
  $$ select rm2_jkt, jkt from ids $$,
  'a bm creates a customer for an rm of their branch'
);
select throws_ok(
  $$ insert into public.customers (name, assigned_rm_id) select 'PT Across', rm1_sby from ids $$,
  '42501',
  format('permission denied: customers.assigned_rm_id %s is not a relationship manager of branch %s',
         (select rm1_sby from ids), (select jkt from ids)),
  'a bm cannot create a customer for an rm of the other branch'
);
select is_empty(
  $$ update public.customers set notes = 'poached' where id = '00000000-0000-4000-8100-000000000002' returning id $$,
  'a bm cannot update a customer of the other branch'
);
select is_empty(
  $$ update public.pipelines set notes = 'poached' where id = '00000000-0000-4000-8300-000000000002' returning id $$,
  'a bm cannot update a pipeline of the other branch'
);
delete from public.customers where id = '00000000-0000-4000-8100-000000000002';
select throws_ok(
  $$ insert into public.key_persons (customer_id, name) values ('00000000-0000-4000-8100-000000000002', 'Planted') $$,
  '42501',
  'new row violates row-level security policy for table "key_persons"',
  'a bm cannot add a key person under a customer of the other branch'
);
select is_empty(
  $$ update public.profiles set full_name = 'Renamed' returning id $$,
  'a bm cannot update staff profiles'
);

select tests.clear_authentication();
select is(
  (select deleted_at from public.customers where id = '00000000-0000-4000-8100-000000000002'),
  null,
  'a bm cannot delete a customer of the other branch'
);

-- anon writes nothing: its inserts stop at the column defaults (anon may call nothing in sync;
-- a new customer's owner, the first, asks the caller's reach), its updates and deletes find no row.
select tests.authenticate_as_anon();
select throws_ok(
  $$ insert into public.customers (name) values ('PT Anonymous') $$,
  '42501',
  'permission denied for function current_reach',
  'anon cannot insert a customer'
);
select throws_ok(
  $$ insert into public.hvcs (code, name) values ('ANON', 'Anonymous') $$,
  '42501',
  'permission denied: anon has no role and may not write hvcs',
  'anon cannot insert reference data'
);
select is_empty(
  $$ update public.customers set notes = 'anonymous' returning id $$,
  'anon cannot update any customer'
);
delete from public.customers;
select tests.clear_authentication();
select is_empty($$ select id from public.customers where deleted_at is not null $$, 'anon cannot delete any customer');

-- service_role is trusted: no row-level security, no field rules.
select tests.authenticate_as_service_role();
select results_eq(
  $$ insert into public.customers (name, assigned_rm_id, branch_id) select 'PT Service', rm1_sby, sby from ids
     returning assigned_rm_id, branch_id $$,
  $$ select rm1_sby, sby from ids $$,
  'service_role creates a customer for any rm in any branch'
);
select results_eq(
  $$ update public.customers set assigned_rm_id = (select rm1_sby from ids), branch_id = (select sby from ids)
      where id = '00000000-0000-4000-8100-000000000004' returning assigned_rm_id, branch_id $$,
  $$ select rm1_sby, sby from ids $$,
  'service_role moves a customer to another branch'
);
select results_eq(
  $$ update public.hvcs set name = 'Renamed by service' where id = '00000000-0000-4000-8001-000000000001' returning name $$,
  $$ values ('Renamed by service') $$,
  'service_role updates reference data'
);
select results_eq(
  $$ insert into public.branches (code, name) values ('BDG', 'Bandung') returning code $$,
  $$ values ('BDG') $$,
  'service_role creates a branch'
);
select results_eq(
  $$ update public.profiles set full_name = 'Renamed by service' where id = (select rm2_jkt from ids) returning full_name $$,
  $$ values ('Renamed by service') $$,
  'service_role updates a staff profile'
);

-- An rm writes no reference data, branches or profiles: updates find no row, inserts are refused.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty(
  $$ update public.hvcs set name = 'Renamed' where id = '00000000-0000-4000-8001-000000000002' returning id $$,
  'an rm cannot update an HVC group'
);
select is_empty(
  $$ update public.brokers set name = 'Renamed' where id = '00000000-0000-4000-8002-000000000001' returning id $$,
  'an rm cannot update a broker'
);
select is_empty(
  $$ update public.branches set name = 'Renamed' returning id $$,
  'an rm cannot update a branch'
);
select is_empty(
  $$ update public.profiles set full_name = 'Renamed' returning id $$,
  'an rm cannot update a profile, not even their own'
);
delete from public.hvcs where id = '00000000-0000-4000-8001-000000000002';
select throws_ok(
  $$ insert into public.hvcs (code, name) values ('RM-HVC', 'Made by an rm') $$,
  '42501',
  'permission denied: role rm may not write hvcs.code',
  'an rm cannot create an HVC group'
);
select throws_ok(
  $$ insert into public.brokers (name) values ('Made by an rm') $$,
  '42501',
  'permission denied: role rm may not write brokers.name',
  'an rm cannot create a broker'
);
select throws_ok(
  $$ insert into public.branches (code, name) values ('RMB', 'Made by an rm') $$,
  '42501',
  'permission denied: role rm may not write branches.code',
  'an rm cannot create a branch'
);
select throws_ok(
  $$ insert into public.profiles (id, role, branch_id, full_name)
     select '10000000-0000-4000-8000-00000000a001', 'rm', jkt, 'Self-appointed' from ids $$,
  '42501',
  'permission denied: role rm may not write profiles.role',
  'an rm cannot create a profile'
);

select tests.clear_authentication();
select is(
  (select deleted_at from public.hvcs where id = '00000000-0000-4000-8001-000000000002'),
  null,
  'an rm cannot delete an HVC group'
);

-- The admin maintains them.
select tests.authenticate_as('admin@crm.test');
select results_eq(
  $$ update public.hvcs set name = 'Renamed by admin' where id = '00000000-0000-4000-8001-000000000002' returning name $$,
  $$ values ('Renamed by admin') $$,
  'the admin updates an HVC group'
);
select results_eq(
  $$ insert into public.profiles (id, role, branch_id, full_name)
     select '10000000-0000-4000-8000-00000000a001', 'rm', jkt, 'New RM' from ids returning role $$,
  $$ values ('rm') $$,
  'the admin creates a profile'
);
select results_eq(
  $$ update public.customers set branch_id = (select sby from ids), assigned_rm_id = (select rm1_sby from ids)
      where id = '00000000-0000-4000-8100-000000000008' returning branch_id $$,
  $$ select sby from ids $$,
  'the admin moves a customer to another branch'
);

select * from finish();
rollback;
