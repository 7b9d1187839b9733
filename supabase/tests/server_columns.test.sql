-- Triggers, not clients, own version, updated_at, created_by/updated_by, id and created_at.
begin;
select plan(14);

select tests.authenticate_as('rm1.jakarta@crm.test');

insert into public.customers (id, name, version, created_at, updated_at, created_by, updated_by, deleted_at)
values ('10000000-0000-4000-8000-000000000001', 'PT Forged', 99, '2000-01-01', '2000-01-01',
        tests.user_id('admin@crm.test'), tests.user_id('admin@crm.test'), now());

select results_eq(
  $$ select version, created_by, updated_by, deleted_at is null, created_at > now() - interval '1 minute'
       from public.customers where id = '10000000-0000-4000-8000-000000000001' $$,
  $$ values (1::bigint, tests.user_id('rm1.jakarta@crm.test'), tests.user_id('rm1.jakarta@crm.test'), true, true) $$,
  'an insert starts at version 1, stamped by the caller, whatever the client sent for server columns'
);
select is(
  (select assigned_rm_id from public.customers where id = '10000000-0000-4000-8000-000000000001'),
  tests.user_id('rm1.jakarta@crm.test'),
  'an rm''s new customer defaults to being theirs'
);
select is(
  (select change_xid from public.customers where id = '10000000-0000-4000-8000-000000000001'),
  pg_current_xact_id(),
  'the row records the writing transaction for the pull cursor'
);

create temp table before_update on commit drop as
  select * from public.customers where id = '10000000-0000-4000-8000-000000000001';
grant select on before_update to authenticated;

update public.customers set phone = '+62 1', version = 50, updated_at = '2000-01-01', created_at = '2000-01-01',
       created_by = tests.user_id('admin@crm.test'), updated_by = tests.user_id('admin@crm.test')
 where id = '10000000-0000-4000-8000-000000000001';

select is((select version from public.customers where id = '10000000-0000-4000-8000-000000000001'), 2::bigint,
          'an update raises version by exactly one, ignoring a forged version');
select ok((select c.updated_at > b.updated_at from public.customers c, before_update b where c.id = b.id),
          'updated_at comes from the database clock, not the client');
select is((select created_at from public.customers where id = '10000000-0000-4000-8000-000000000001'),
          (select created_at from before_update), 'created_at cannot change');
select is((select created_by from public.customers where id = '10000000-0000-4000-8000-000000000001'),
          tests.user_id('rm1.jakarta@crm.test'), 'created_by cannot change');
select is((select updated_by from public.customers where id = '10000000-0000-4000-8000-000000000001'),
          tests.user_id('rm1.jakarta@crm.test'), 'updated_by is the caller');

update public.customers set phone = '+62 2' where id = '10000000-0000-4000-8000-000000000001';
select is((select version from public.customers where id = '10000000-0000-4000-8000-000000000001'), 3::bigint,
          'each change adds one to version');

update public.customers set phone = '+62 2' where id = '10000000-0000-4000-8000-000000000001';
select is((select version from public.customers where id = '10000000-0000-4000-8000-000000000001'), 3::bigint,
          'an update that changes nothing does not create a version');

update public.customers set id = '10000000-0000-4000-8000-0000000000ff', name = 'PT Renamed'
 where id = '10000000-0000-4000-8000-000000000001';
select results_eq(
  $$ select id, name from public.customers where name = 'PT Renamed' $$,
  $$ values ('10000000-0000-4000-8000-000000000001'::uuid, 'PT Renamed'::text) $$,
  'id cannot change'
);

select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set notes = 'checked by bm' where id = '10000000-0000-4000-8000-000000000001';
select is((select updated_by from public.customers where id = '10000000-0000-4000-8000-000000000001'),
          tests.user_id('bm.jakarta@crm.test'), 'updated_by follows the latest writer');

select tests.authenticate_as_service_role();
update public.customers set version = 1, notes = 'service' where id = '10000000-0000-4000-8000-000000000001';
select is((select version from public.customers where id = '10000000-0000-4000-8000-000000000001'), 6::bigint,
          'service_role cannot forge version either');
select is((select updated_by from public.customers where id = '10000000-0000-4000-8000-000000000001'), null,
          'a write with no user behind it has no updated_by');

select * from finish();
rollback;
