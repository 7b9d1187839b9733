-- A write made with no user behind it (a service job, a maintenance script as the owner) is a
-- change by someone else: a later edit that states no base version and overwrites it is an explicit
-- last-write-wins, applied and recorded in the conflict audit like an overwrite of another user's
-- change, whichever engine applies it.
begin;
select plan(8);

create temp table target on commit drop as
  select row_number() over (order by c.id) as n, c.id, c.phone from public.customers c join public.profiles p on p.id = c.assigned_rm_id
   where p.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id limit 2;
grant select on target to authenticated, service_role;

-- A service job (a token without sub) corrects the first customer's phone, the owner the second's.
select tests.authenticate_as_service_role();
update public.customers set phone = '+62 21 555 7001' where id = (select id from target where n = 1);
select tests.clear_authentication();
update public.customers set phone = '+62 21 555 7002' where id = (select id from target where n = 2);
select is(
  (select count(*)::int from public.customers where id in (select id from target) and updated_by is null),
  2, 'both corrections are stamped with no user'
);

select tests.authenticate_as('rm1.jakarta@crm.test');

-- rm1's legacy device still holds the old phone and sends an update built from it (protocol 1: no
-- base version, the per-op engine).
select is(
  (select r -> 'conflict' ->> 'resolution'
     from jsonb_array_elements(public.sync_push(jsonb_build_object(
            'protocol', 1, 'client_id', 'c0000000-0000-4000-8000-00000000000a',
            'items', jsonb_build_array(jsonb_build_object(
              'id', 1, 'entityType', 'customer', 'entityId', (select id from target where n = 1), 'operation', 'update',
              'payload', jsonb_build_object('phone', '+62 21 555 0000'), 'createdAt', '2026-01-01T00:00:00Z'))))
          -> 'results') r),
  'client_wins',
  'a protocol 1 update over a service job''s correction is answered with its conflict'
);

-- rm1's protocol 2 device sends an update without base_version (the bulk engine's path).
select is(
  (select r -> 'conflict' ->> 'resolution'
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
            tests.op('0e000000-0000-4000-8000-000000000001', 'update', 'customers', (select id from target where n = 2),
                     p_data => '{"phone": "+62 21 555 0000"}'))))
          -> 'results') r),
  'client_wins',
  'a protocol 2 update without base_version over the owner''s correction is answered with its conflict'
);
select tests.clear_authentication();

select is(
  (select count(*)::int from sync.conflicts
    where row_id = (select id from target where n = 1) and user_id = tests.user_id('rm1.jakarta@crm.test')
      and server_user_id is null and resolution = 'client_wins'),
  1, 'the overwrite of the service job''s correction is in the audit'
);
select is(
  (select server_row ->> 'phone' from sync.conflicts where row_id = (select id from target where n = 1)),
  '+62 21 555 7001', 'with the value it overwrote'
);
select is(
  (select count(*)::int from sync.conflicts
    where row_id = (select id from target where n = 2) and user_id = tests.user_id('rm1.jakarta@crm.test')
      and server_user_id is null and resolution = 'client_wins'),
  1, 'the overwrite of the owner''s correction is in the audit'
);
select is(
  (select count(*)::int from public.customers where id in (select id from target) and phone = '+62 21 555 0000'),
  2, 'both edits were applied (last write wins, on record)'
);

-- An edit over the caller's own last write is no conflict.
select tests.authenticate_as('rm1.jakarta@crm.test');
select public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000002', 'update', 'customers', (select id from target where n = 2),
           p_data => '{"phone": "+62 21 555 0003"}'))));
select tests.clear_authentication();
select is(
  (select count(*)::int from sync.conflicts where row_id = (select id from target where n = 2)),
  1, 'an edit over the caller''s own change records nothing more'
);

select * from finish();
rollback;
