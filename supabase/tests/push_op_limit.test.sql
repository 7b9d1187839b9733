-- A push carries at most sync.settings.max_push_ops ops, counted in the list its protocol reads:
-- protocol 1's items (whatever else the body holds, an empty "ops" list included), protocol 2's ops.
begin;
select plan(4);

select tests.clear_authentication();
update sync.settings set max_push_ops = 2;
select tests.authenticate_as('rm1.jakarta@crm.test');

select is(
  tests.sync_error('sync_push', '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "ops": [], "items": [
    {"id": 1, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d001", "operation": "create",
     "payload": {"name": "PT One"}, "createdAt": "2026-01-01T00:00:01Z"},
    {"id": 2, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d002", "operation": "create",
     "payload": {"name": "PT Two"}, "createdAt": "2026-01-01T00:00:02Z"},
    {"id": 3, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d003", "operation": "create",
     "payload": {"name": "PT Three"}, "createdAt": "2026-01-01T00:00:03Z"}]}'),
  '{"sqlstate": "SYLM1", "message": "a push carries at most 2 ops; this one has 3", "details": []}',
  'a protocol 1 push counts its items against the limit, even beside an empty ops list'
);
select is(
  tests.sync_error('sync_push', '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
    {"id": 1, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d001", "operation": "create",
     "payload": {"name": "PT One"}, "createdAt": "2026-01-01T00:00:01Z"},
    {"id": 2, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d002", "operation": "create",
     "payload": {"name": "PT Two"}, "createdAt": "2026-01-01T00:00:02Z"},
    {"id": 3, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000d003", "operation": "create",
     "payload": {"name": "PT Three"}, "createdAt": "2026-01-01T00:00:03Z"}]}'),
  '{"sqlstate": "SYLM1", "message": "a push carries at most 2 ops; this one has 3", "details": []}',
  'and alone'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-00000000d001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000d001', null, '{"name": "PT One"}'),
    tests.op('0e000000-0000-4000-8000-00000000d002', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000d002', null, '{"name": "PT Two"}'),
    tests.op('0e000000-0000-4000-8000-00000000d003', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000d003', null, '{"name": "PT Three"}')))),
  '{"sqlstate": "SYLM1", "message": "a push carries at most 2 ops; this one has 3", "details": []}',
  'a protocol 2 push counts its ops'
);
select is(
  (select count(*)::int from public.customers
    where id in ('f0000000-0000-4000-8000-00000000d001', 'f0000000-0000-4000-8000-00000000d002', 'f0000000-0000-4000-8000-00000000d003')),
  0,
  'a push over the limit applies nothing'
);

select * from finish();
rollback;
