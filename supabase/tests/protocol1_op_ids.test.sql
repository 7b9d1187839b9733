-- The op id of a protocol 1 (legacy queue) item is derived from (client_id, item id, createdAt).
-- A numeric item id (every row of the app's sync_queue) keeps the derivation devices were answered
-- with before, md5('protocol1:' || client_id || ':' || id || ':' || createdAt), so an item re-sent
-- across an upgrade stays a duplicate. Joined with ':', string ids were ambiguous ("7:T" + "x" and
-- "7" + "T:x" gave one op id, and the second item was answered as a duplicate of the first and
-- lost): a string id's op id is the md5 of the JSON array ["protocol1", client_id, id, createdAt].
begin;
select plan(9);

create temp table pushed (name text primary key, answer jsonb not null) on commit drop;
grant all on pushed to authenticated, service_role;

select tests.authenticate_as('rm1.jakarta@crm.test');

insert into pushed select 'numeric', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": 7, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b007", "operation": "create",
      "payload": {"name": "PT Numeric Seven"}, "createdAt": "2026-01-02T00:00:00Z"}]}');
select is(
  (select (answer #>> '{results,0,op_id}')::uuid from pushed where name = 'numeric'),
  md5('protocol1:c0000000-0000-4000-8000-000000000001:7:2026-01-02T00:00:00Z')::uuid,
  'a numeric item id keeps the op id md5(''protocol1:'' || client_id || '':'' || id || '':'' || createdAt)'
);

-- Two items whose id and createdAt join to the same text, in one request.
insert into pushed select 'ambiguous', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": "7:2026-01-02T00:00:00Z", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b071",
      "operation": "create", "payload": {"name": "PT String A"}, "createdAt": "x"},
     {"id": "7", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b072",
      "operation": "create", "payload": {"name": "PT String B"}, "createdAt": "2026-01-02T00:00:00Z:x"}]}');
select is(
  (select jsonb_agg(r ->> 'status') from pushed, jsonb_array_elements(answer -> 'results') r where name = 'ambiguous'),
  '["applied", "applied"]',
  'string ids "7:2026-01-02T00:00:00Z" + "x" and "7" + "2026-01-02T00:00:00Z:x" are two ops, both applied'
);
select is(
  (select count(*)::int from public.customers
    where id in ('f0000000-0000-4000-8000-00000000b071', 'f0000000-0000-4000-8000-00000000b072')),
  2,
  'both rows exist'
);
select is(
  (select jsonb_agg((r ->> 'op_id')::uuid) from pushed, jsonb_array_elements(answer -> 'results') r where name = 'ambiguous'),
  jsonb_build_array(
    md5('["protocol1", "c0000000-0000-4000-8000-000000000001", "7:2026-01-02T00:00:00Z", "x"]')::uuid,
    md5('["protocol1", "c0000000-0000-4000-8000-000000000001", "7", "2026-01-02T00:00:00Z:x"]')::uuid),
  'a string id''s op id is the md5 of the JSON text ["protocol1", client_id, id, createdAt]'
);

-- The same two in separate requests.
insert into pushed select 'ambiguous_a', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000002", "items": [
     {"id": "7:2026-01-02T00:00:00Z", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b073",
      "operation": "create", "payload": {"name": "PT String C"}, "createdAt": "x"}]}');
insert into pushed select 'ambiguous_b', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000002", "items": [
     {"id": "7", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b074",
      "operation": "create", "payload": {"name": "PT String D"}, "createdAt": "2026-01-02T00:00:00Z:x"}]}');
select is(
  (select jsonb_build_array(a.answer #>> '{results,0,status}', b.answer #>> '{results,0,status}')
     from pushed a, pushed b where a.name = 'ambiguous_a' and b.name = 'ambiguous_b'),
  '["applied", "applied"]',
  'sent in two requests, the second is applied too, not answered as the first one''s duplicate'
);

-- The number 7 and the string "7" are different queue items.
insert into pushed select 'string_seven', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": "7", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b075", "operation": "create",
      "payload": {"name": "PT String Seven"}, "createdAt": "2026-01-02T00:00:00Z"}]}');
select is((select answer #>> '{results,0,status}' from pushed where name = 'string_seven'), 'applied',
          'the string id "7" is not the numeric id 7 sent before with the same createdAt');

-- Re-sent, a string id item is a duplicate.
insert into pushed select 'string_again', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": "7", "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b075", "operation": "create",
      "payload": {"name": "PT String Seven"}, "createdAt": "2026-01-02T00:00:00Z", "retryCount": 1}]}');
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,original_status}') from pushed where name = 'string_again'),
  '["duplicate", "applied"]',
  'a string id item sent again is a duplicate'
);

-- A numeric item recorded by an earlier version (no digest then), re-sent after the upgrade.
select tests.clear_authentication();
insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome)
values (tests.user_id('rm1.jakarta@crm.test'), md5('protocol1:c0000000-0000-4000-8000-000000000001:8:2026-01-03T00:00:00Z')::uuid,
        'c0000000-0000-4000-8000-000000000001', 'customers', 'f0000000-0000-4000-8000-00000000b008',
        jsonb_build_object('op_id', md5('protocol1:c0000000-0000-4000-8000-000000000001:8:2026-01-03T00:00:00Z')::uuid,
                           'status', 'applied', 'retryable', false));
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'upgrade', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": 8, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000b008", "operation": "create",
      "payload": {"name": "PT Before The Upgrade"}, "createdAt": "2026-01-03T00:00:00Z"}]}');
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,original_status}') from pushed where name = 'upgrade'),
  '["duplicate", "applied"]',
  'a numeric item processed before the upgrade is a duplicate when the device sends it again'
);
select is((select count(*)::int from public.customers where id = 'f0000000-0000-4000-8000-00000000b008'), 0,
          'and it is not applied a second time');

select * from finish();
rollback;
