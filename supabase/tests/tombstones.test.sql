-- A delete by any API caller leaves a tombstone every device can learn of; a tombstone is final for
-- API callers; only the table owner (the retention purge) removes rows for good.
begin;
select plan(23);

-- Seed rows of rm1.jakarta: customers 4, 8, 12 (with key persons 41, 42, 81), and their state before.
create temp table before_rows on commit drop as
  select 'customers' as table_name, id, version, updated_by from public.customers
   where id in ('00000000-0000-4000-8100-000000000004', '00000000-0000-4000-8100-000000000008',
                '00000000-0000-4000-8100-000000000012')
  union all
  select 'key_persons', id, version, updated_by from public.key_persons
   where id in ('00000000-0000-4000-8200-000000000041', '00000000-0000-4000-8200-000000000081');
grant select on before_rows to authenticated, service_role;

-- An rm deletes their own customer.
select tests.authenticate_as('rm1.jakarta@crm.test');
delete from public.customers where id = '00000000-0000-4000-8100-000000000004';

select ok(
  exists (select 1 from public.customers where id = '00000000-0000-4000-8100-000000000004'),
  'a client DELETE keeps the row'
);
select ok(
  (select deleted_at between now() and clock_timestamp() from public.customers
    where id = '00000000-0000-4000-8100-000000000004'),
  'a client DELETE sets deleted_at from the database clock'
);
select is(
  (select c.version from public.customers c where c.id = '00000000-0000-4000-8100-000000000004'),
  (select b.version + 1 from before_rows b where b.id = '00000000-0000-4000-8100-000000000004'),
  'a client DELETE raises version by one, so every device pulls the tombstone'
);
select is(
  (select updated_by from public.customers where id = '00000000-0000-4000-8100-000000000004'),
  tests.user_id('rm1.jakarta@crm.test'),
  'a tombstone is stamped with the user who deleted the row'
);

create temp table tombstone on commit drop as
  select version, deleted_at, updated_at, updated_by, change_xid from public.customers
   where id = '00000000-0000-4000-8100-000000000004';

select tests.authenticate_as('rm1.jakarta@crm.test');
delete from public.customers where id = '00000000-0000-4000-8100-000000000004';
select results_eq(
  $$ select version, deleted_at, updated_at, updated_by, change_xid from public.customers
      where id = '00000000-0000-4000-8100-000000000004' $$,
  $$ select version, deleted_at, updated_at, updated_by, change_xid from tombstone $$,
  'deleting a row that is already deleted changes nothing'
);

update public.customers set deleted_at = '2000-01-01' where id = '00000000-0000-4000-8100-000000000004';
select results_eq(
  $$ select version, deleted_at, updated_at, updated_by, change_xid from public.customers
      where id = '00000000-0000-4000-8100-000000000004' $$,
  $$ select version, deleted_at, updated_at, updated_by, change_xid from tombstone $$,
  'deleting a tombstone again by update keeps its original deletion time and version'
);

select throws_ok(
  $$ update public.customers set phone = '+62 99' where id = '00000000-0000-4000-8100-000000000004' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000004 is deleted and cannot be changed',
  'a late edit of a tombstone by a client is refused'
);
select throws_ok(
  $$ update public.customers set deleted_at = null where id = '00000000-0000-4000-8100-000000000004' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000004 is deleted and cannot be changed',
  'a client cannot resurrect a tombstone by clearing deleted_at'
);
select throws_ok(
  $$ update public.customers set deleted_at = null, phone = '+62 99' where id = '00000000-0000-4000-8100-000000000004' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000004 is deleted and cannot be changed',
  'a client cannot resurrect a tombstone together with an edit'
);

select tests.authenticate_as_service_role();
select throws_ok(
  $$ update public.customers set phone = '+62 99' where id = '00000000-0000-4000-8100-000000000004' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000004 is deleted and cannot be changed',
  'service_role cannot edit a tombstone either'
);
select throws_ok(
  $$ update public.customers set deleted_at = null where id = '00000000-0000-4000-8100-000000000004' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000004 is deleted and cannot be changed',
  'service_role cannot resurrect a tombstone'
);

-- Child rows become tombstones the same way.
select tests.authenticate_as('rm1.jakarta@crm.test');
delete from public.key_persons where id = '00000000-0000-4000-8200-000000000041';
select results_eq(
  $$ select k.deleted_at between now() and clock_timestamp(), k.version = b.version + 1, k.updated_by
       from public.key_persons k join before_rows b using (id)
      where k.id = '00000000-0000-4000-8200-000000000041' $$,
  $$ values (true, true, tests.user_id('rm1.jakarta@crm.test')) $$,
  'a client DELETE of a child row leaves a tombstone too'
);
select throws_ok(
  $$ update public.key_persons set name = 'Late edit' where id = '00000000-0000-4000-8200-000000000041' $$,
  '55000',
  'key_persons row 00000000-0000-4000-8200-000000000041 is deleted and cannot be changed',
  'the refusal names the table and the row'
);

-- service_role deletes become tombstones as well.
select tests.authenticate_as_service_role();
delete from public.customers where id = '00000000-0000-4000-8100-000000000008';
select results_eq(
  $$ select c.deleted_at between now() and clock_timestamp(), c.version = b.version + 1, c.updated_by
       from public.customers c join before_rows b using (id)
      where c.id = '00000000-0000-4000-8100-000000000008' $$,
  $$ values (true, true, null::uuid) $$,
  'a service_role DELETE leaves a tombstone with no user behind it'
);

-- Setting deleted_at through an update is a soft delete on the database clock.
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.customers set deleted_at = '2000-01-01' where id = '00000000-0000-4000-8100-000000000012';
select ok(
  (select deleted_at between now() and clock_timestamp() from public.customers
    where id = '00000000-0000-4000-8100-000000000012'),
  'an update setting deleted_at deletes the row at the database''s time, not the client''s'
);
select is(
  (select c.version from public.customers c where c.id = '00000000-0000-4000-8100-000000000012'),
  (select b.version + 1 from before_rows b where b.id = '00000000-0000-4000-8100-000000000012'),
  'a soft delete by update raises version by one'
);
select throws_ok(
  $$ update public.customers set deleted_at = null where id = '00000000-0000-4000-8100-000000000012' $$,
  '55000',
  'customers row 00000000-0000-4000-8100-000000000012 is deleted and cannot be changed',
  'a row deleted by update is as final as one deleted by DELETE'
);

-- A client cannot create a row that is born deleted.
insert into public.customers (id, name, deleted_at)
values ('10000000-0000-4000-8000-0000000000d1', 'PT Born Deleted', '2000-01-01');
select is(
  (select deleted_at from public.customers where id = '10000000-0000-4000-8000-0000000000d1'),
  null,
  'deleted_at sent in an INSERT is ignored: the new row is live'
);
select is(
  (select version from public.customers where id = '10000000-0000-4000-8000-0000000000d1'),
  1::bigint,
  'and it starts at version 1'
);

-- The table owner (retention purge, maintenance) removes rows for good, tombstones included.
select tests.clear_authentication();
delete from public.key_persons where id = '00000000-0000-4000-8200-000000000041';
select is_empty(
  $$ select id from public.key_persons where id = '00000000-0000-4000-8200-000000000041' $$,
  'the table owner hard-deletes a tombstone'
);
delete from public.key_persons where id = '00000000-0000-4000-8200-000000000081';
select is_empty(
  $$ select id from public.key_persons where id = '00000000-0000-4000-8200-000000000081' $$,
  'the table owner hard-deletes a live row'
);

-- The owner may also repair a tombstone (no API caller is behind it).
update public.customers set deleted_at = null where id = '00000000-0000-4000-8100-000000000008';
select is(
  (select deleted_at from public.customers where id = '00000000-0000-4000-8100-000000000008'),
  null,
  'the table owner can clear deleted_at'
);

-- Tombstones stay readable, so the change feed can carry them.
select tests.authenticate_as('rm1.jakarta@crm.test');
select set_eq(
  $$ select id from public.customers where deleted_at is not null $$,
  $$ values ('00000000-0000-4000-8100-000000000004'::uuid), ('00000000-0000-4000-8100-000000000012'::uuid) $$,
  'an rm still reads the tombstones of their customers'
);

select * from finish();
rollback;
