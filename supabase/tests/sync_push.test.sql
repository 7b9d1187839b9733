-- The push door for RPC callers: public.sync_push(payload) as the signed-in user. Request-level
-- problems raise a SQLSTATE the Edge Function maps to its HTTP answer (SYRQ1 400 invalid_request,
-- SYPR1 426, SYLM1 413, SYAU1 401) and leave nothing behind; ops get one result each, in order.
begin;
select plan(64);

-- Every answer the tests look at, by name.
create temp table pushed (name text primary key, answer jsonb not null) on commit drop;
grant all on pushed to authenticated, service_role;

-- The door: a security-invoker function, closed to anon.
select has_function('public', 'sync_push', array['jsonb'], 'public.sync_push(payload jsonb) exists');
select function_returns('public', 'sync_push', array['jsonb'], 'jsonb', 'sync_push returns the push response as jsonb');
select is_definer('public', 'sync_push', array['jsonb'], 'sync_push runs as the engine, whose internals no client may call');
select is((select pg_get_userbyid(proowner)::text from pg_proc where oid = 'public.sync_push(jsonb)'::regprocedure), 'sync_engine',
          'sync_push runs as sync_engine, a member of authenticated: RLS and the field rules apply by the caller''s claims');

select tests.authenticate_as_anon();
select throws_ok(
  $$ select public.sync_push(tests.push_body('[]')) $$,
  '42501', 'permission denied for function sync_push',
  'anon may not execute sync_push'
);

select tests.authenticate_as_service_role();
select throws_ok(
  $$ select public.sync_push(tests.push_body('[]')) $$,
  'SYAU1', 'a push needs a signed-in user',
  'a caller with no user (the service role) gets SYAU1'
);

select tests.authenticate_without_user();
select throws_ok(
  $$ select public.sync_push(tests.push_body('[]')) $$,
  'SYAU1', 'a push needs a signed-in user',
  'the authenticated role with no sub in its claims gets SYAU1'
);

-- Request-level errors, as rm1.jakarta.
select tests.authenticate_as('rm1.jakarta@crm.test');

select is(
  tests.sync_error('sync_push', '[]'),
  '{"sqlstate": "SYRQ1", "message": "the body must be a JSON object", "details": [{"path": [], "message": "expected object"}]}',
  'a body that is not an object is SYRQ1 invalid_request'
);
select is(
  tests.sync_error('sync_push', null),
  '{"sqlstate": "SYRQ1", "message": "the body must be a JSON object", "details": [{"path": [], "message": "expected object"}]}',
  'a null body is SYRQ1 invalid_request'
);
select is(
  tests.sync_error('sync_push', '{"client_id": "c0000000-0000-4000-8000-000000000001", "ops": []}'),
  '{"sqlstate": "SYRQ1", "message": "protocol is required", "details": [{"path": ["protocol"], "message": "expected 1 or 2"}]}',
  'a push without protocol is SYRQ1 naming protocol'
);
select is(
  tests.sync_error('sync_push', '{"protocol": "2", "client_id": "c0000000-0000-4000-8000-000000000001", "ops": []}'),
  '{"sqlstate": "SYRQ1", "message": "protocol is required", "details": [{"path": ["protocol"], "message": "expected 1 or 2"}]}',
  'protocol as a string is SYRQ1: it is a number'
);
select throws_ok(
  $$ select public.sync_push('{"protocol": 3, "client_id": "c0000000-0000-4000-8000-000000000001", "ops": []}') $$,
  'SYPR1', 'protocol 3 is not served; supported: [1,2]',
  'protocol 3 is SYPR1 unsupported_protocol, naming the protocols served'
);
select is(
  tests.sync_error('sync_push', '{"protocol": 2}'),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["client_id"], "message": "expected a uuid"}, {"path": ["ops"], "message": "expected an array"}]}',
  'missing client_id and ops are SYRQ1 with both paths'
);
select is(
  tests.sync_error('sync_push', tests.push_body('{"op_id": "x"}')),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops"], "message": "expected an array"}]}',
  'ops that is not an array is SYRQ1 naming ops'
);
select is(
  tests.sync_error('sync_push', jsonb_build_object('protocol', 2, 'client_id', 'not-a-uuid', 'ops', jsonb_build_array(
    jsonb_build_object('op_id', '123', 'table', 'customers', 'op', 'insert', 'id', 'f0000000-0000-4000-8000-00000000001',
                       'data', jsonb_build_object('name', 'PT Bad Ids'))))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["client_id"], "message": "expected a uuid"}, {"path": ["ops", 0, "op_id"], "message": "expected a uuid"}, {"path": ["ops", 0, "id"], "message": "expected a uuid"}]}',
  'invalid uuids are SYRQ1 naming client_id, op_id and id'
);
select is(
  tests.sync_error('sync_push', tests.push_body('[{"op_id": "0e000000-0000-4000-8000-000000000001"}]')),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "table"], "message": "expected a string"}, {"path": ["ops", 0, "op"], "message": "expected insert, update or delete"}, {"path": ["ops", 0, "id"], "message": "expected a uuid"}]}',
  'an op missing table, op and id is SYRQ1 naming each'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-000000000001', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000001', null,
             '{"name": "PT No Op Id"}') - 'op_id'))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "op_id"], "message": "expected a uuid"}]}',
  'an op without op_id is SYRQ1 naming op_id'
);
-- The uuid rule is the engine's: asked as the engine.
select set_config('role', 'sync_engine', true);
select is(
  (select jsonb_object_agg(v.input::text, sync.is_uuid(v.input)) from (values
     ('"0e000000-0000-4000-8000-00000000000a"'::jsonb), ('"0E000000-0000-4000-8000-00000000000A"'),
     ('"0-000000-0000-4000-8000-000000000001"'), ('"0e0000000000-4000-8000-0000-00000001"'),
     ('"0g000000-0000-4000-8000-000000000001"'), ('"0e000000-0000-4000-8000-0000000000011"'),
     ('"0e000000-0000-4000-8000-00000000001"'), ('"{0e000000-0000-4000-8000-000000000001}"'),
     ('"é0000000-0000-4000-8000-000000000001"'), ('5'), ('null'), (null)) v (input)
    where v.input is not null) || jsonb_build_object('absent', sync.is_uuid(null)),
  '{"\"0e000000-0000-4000-8000-00000000000a\"": true, "\"0E000000-0000-4000-8000-00000000000A\"": true,
    "\"0-000000-0000-4000-8000-000000000001\"": false, "\"0e0000000000-4000-8000-0000-00000001\"": false,
    "\"0g000000-0000-4000-8000-000000000001\"": false, "\"0e000000-0000-4000-8000-0000000000011\"": false,
    "\"0e000000-0000-4000-8000-00000000001\"": false, "\"{0e000000-0000-4000-8000-000000000001}\"": false,
    "\"é0000000-0000-4000-8000-000000000001\"": false, "5": false, "null": false, "absent": false}',
  'a uuid is 8-4-4-4-12 hex digits in either case, nothing else, and a missing value is no uuid'
);
select set_config('role', 'authenticated', true);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-000000000001', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000001'),
    tests.op('0e000000-0000-4000-8000-000000000002', 'delete', 'customers', 'f0000000-0000-4000-8000-000000000002'),
    tests.op('0e000000-0000-4000-8000-000000000003', 'upsert', 'customers', 'f0000000-0000-4000-8000-000000000003', 1, '{}'),
    '"not an op"'::jsonb))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "data"], "message": "required for insert"}, {"path": ["ops", 1, "base_version"], "message": "required for delete"}, {"path": ["ops", 2, "op"], "message": "expected insert, update or delete"}, {"path": ["ops", 3], "message": "expected object"}]}',
  'an insert without data, a delete without base_version, an unknown op kind and a non-object op are SYRQ1'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-000000000001', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{}') || '{"base_version": -1}',
    tests.op('0e000000-0000-4000-8000-000000000002', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{}') || '{"base_version": 1.5}',
    tests.op('0e000000-0000-4000-8000-000000000003', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{}') || '{"base_version": "3"}',
    tests.op('0e000000-0000-4000-8000-000000000004', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{}') || '{"base_version": 1e30}',
    tests.op('0e000000-0000-4000-8000-000000000005', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{}') || '{"base_version": 9007199254740992}'))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "base_version"], "message": "expected a whole number from 0 to 9007199254740991"}, {"path": ["ops", 1, "base_version"], "message": "expected a whole number from 0 to 9007199254740991"}, {"path": ["ops", 2, "base_version"], "message": "expected a whole number from 0 to 9007199254740991"}, {"path": ["ops", 3, "base_version"], "message": "expected a whole number from 0 to 9007199254740991"}, {"path": ["ops", 4, "base_version"], "message": "expected a whole number from 0 to 9007199254740991"}]}',
  'a negative, fractional, string or out-of-range base_version (beyond 2^53 - 1, the largest JavaScript reads exactly) is SYRQ1'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-000000000011', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000011', null, '{"name": "PT Sent Twice"}'),
    tests.op('0e000000-0000-4000-8000-000000000011', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000012', null, '{"name": "PT Other"}')
      || '{"op_id": "0E000000-0000-4000-8000-000000000011"}'))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 1, "op_id"], "message": "duplicate op_id (also ops[0])"}]}',
  'the same op_id twice in one request (in any letter case) is SYRQ1 naming the second'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-000000000013', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000013', null, '{"name": "PT Typo"}'),
    tests.op('0e000000-0000-4000-8000-000000000014', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{"phone": "+62 typo"}')
      || '{"base_verison": 1}'))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 1], "message": "Unrecognized key: \"base_verison\""}]}',
  'an op with an unknown key is SYRQ1, as through the Edge Function: a misspelt base_version never becomes a silent overwrite'
);

-- The op limit of sync.settings.
select tests.clear_authentication();
update sync.settings set max_push_ops = 2;
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ select public.sync_push(tests.push_body(jsonb_build_array(
       tests.op('0e000000-0000-4000-8000-000000000021', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000021', null, '{"name": "PT Limit 1"}'),
       tests.op('0e000000-0000-4000-8000-000000000022', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000022', null, '{"name": "PT Limit 2"}'),
       tests.op('0e000000-0000-4000-8000-000000000023', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000023', null, '{"name": "PT Limit 3"}')))) $$,
  'SYLM1', 'a push carries at most 2 ops; this one has 3',
  'more ops than sync.settings.max_push_ops is SYLM1 too_large, with the limit in the message'
);
select lives_ok(
  $$ select public.sync_push(tests.push_body(jsonb_build_array(
       tests.op('0e000000-0000-4000-8000-000000000024', 'update', 'customers', 'f0000000-0000-4000-8000-000000000024', 1, '{"name": "x"}'),
       tests.op('0e000000-0000-4000-8000-000000000025', 'update', 'customers', 'f0000000-0000-4000-8000-000000000025', 1, '{"name": "x"}')))) $$,
  'exactly max_push_ops ops are accepted'
);
select tests.clear_authentication();
update sync.settings set max_push_ops = 1000;

select is_empty(
  $$ select id from public.customers
      where id in ('f0000000-0000-4000-8000-000000000001', 'f0000000-0000-4000-8000-000000000011',
                   'f0000000-0000-4000-8000-000000000012', 'f0000000-0000-4000-8000-000000000013',
                   'f0000000-0000-4000-8000-000000000021', 'f0000000-0000-4000-8000-000000000022',
                   'f0000000-0000-4000-8000-000000000023') $$,
  'nothing of a rejected request is written, not even its valid ops'
);
select is_empty(
  $$ select op_id from sync.applied_ops
      where op_id in ('0e000000-0000-4000-8000-000000000001', '0e000000-0000-4000-8000-000000000011',
                      '0e000000-0000-4000-8000-000000000013', '0e000000-0000-4000-8000-000000000014',
                      '0e000000-0000-4000-8000-000000000021', '0e000000-0000-4000-8000-000000000022',
                      '0e000000-0000-4000-8000-000000000023') $$,
  'a rejected request claims no op ids, so its ops can be sent again once fixed'
);

-- Results: applied, then duplicate on a replay.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'insert', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000031', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000031', null,
           '{"name": "PT Pushed", "phone": "+62 1"}'))));
select is(jsonb_array_length((select answer -> 'results' from pushed where name = 'insert')), 1, 'one result per op');
select is(
  (select (answer #> '{results,0}') - 'row' from pushed where name = 'insert'),
  '{"op_id": "0e000000-0000-4000-8000-000000000031", "status": "applied", "retryable": false}',
  'an insert is applied'
);
select results_eq(
  $$ select (r ->> 'version')::bigint, (r ->> 'created_by')::uuid, r ->> 'name', (r ->> 'deleted_at') is null
       from (select answer #> '{results,0,row}' as r from pushed where name = 'insert') x $$,
  $$ values (1::bigint, tests.user_id('rm1.jakarta@crm.test'), 'PT Pushed', true) $$,
  'an applied result carries the new server row, stamped by the caller'
);
select ok(
  (select (answer ->> 'server_time')::timestamptz between now() and clock_timestamp() from pushed where name = 'insert'),
  'the response carries server_time from the database clock'
);

insert into pushed select 'replay', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000031', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000031', null,
           '{"name": "PT Pushed", "phone": "+62 1"}'))));
select is(
  (select (answer #> '{results,0}') - 'row' from pushed where name = 'replay'),
  '{"op_id": "0e000000-0000-4000-8000-000000000031", "status": "duplicate", "original_status": "applied", "retryable": false}',
  'the same op again is a duplicate carrying the original status'
);
select is(
  (select answer #> '{results,0,row}' from pushed where name = 'replay'),
  (select answer #> '{results,0,row}' from pushed where name = 'insert'),
  'a duplicate returns the original outcome''s row'
);
select is((select version from public.customers where id = 'f0000000-0000-4000-8000-000000000031'), 1::bigint,
          'a duplicate applies nothing twice');

insert into pushed select 'exists', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000032', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000031', null,
           '{"name": "PT Again"}'))));
select is(
  (select (answer #> '{results,0}') - 'row' from pushed where name = 'exists'),
  '{"op_id": "0e000000-0000-4000-8000-000000000032", "status": "rejected", "code": "already_exists", "retryable": false, "message": "customers f0000000-0000-4000-8000-000000000031 already exists"}',
  'an insert of an existing id under a new op_id is rejected/already_exists'
);

select tests.clear_authentication();
create temp table other_before on commit drop as
  select to_jsonb(c) as row from public.customers c where c.id = '00000000-0000-4000-8100-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'missing', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000033', 'update', 'customers', 'f0000000-0000-4000-8000-0000000000ff', 1, '{"phone": "+62"}'),
  tests.op('0e000000-0000-4000-8000-000000000034', 'update', 'customers', '00000000-0000-4000-8100-000000000001', 1, '{"phone": "+62 hijack"}'),
  tests.op('0e000000-0000-4000-8000-000000000035', 'delete', 'customers', 'f0000000-0000-4000-8000-0000000000fe', 1))));
select is(
  (select jsonb_agg(r - 'op_id') from pushed, jsonb_array_elements(answer -> 'results') r where name = 'missing'),
  '[{"status": "rejected", "code": "not_found", "retryable": false, "message": "customers f0000000-0000-4000-8000-0000000000ff does not exist or is not visible to you"},
    {"status": "rejected", "code": "not_found", "retryable": false, "message": "customers 00000000-0000-4000-8100-000000000001 does not exist or is not visible to you"},
    {"status": "rejected", "code": "not_found", "retryable": false, "message": "customers f0000000-0000-4000-8000-0000000000fe does not exist or is not visible to you"}]',
  'updates and deletes of a missing row, or of a row the caller cannot see, are rejected/not_found, never a silent no-op'
);
select tests.clear_authentication();
select is((select to_jsonb(c) from public.customers c where c.id = '00000000-0000-4000-8100-000000000001'),
          (select row from other_before), 'another rm''s customer is untouched');

-- The idempotency record: kept for permanent outcomes, never for retryable ones.
select results_eq(
  $$ select op_id, user_id, client_id, table_name, row_id, outcome ->> 'status'
       from sync.applied_ops where op_id = '0e000000-0000-4000-8000-000000000031' $$,
  $$ values ('0e000000-0000-4000-8000-000000000031'::uuid, tests.user_id('rm1.jakarta@crm.test'),
             'c0000000-0000-4000-8000-000000000001'::uuid, 'customers', 'f0000000-0000-4000-8000-000000000031'::uuid, 'applied') $$,
  'an applied op is recorded once, by (user, op_id), with its outcome'
);
select set_eq(
  $$ select op_id, outcome ->> 'code' from sync.applied_ops
      where op_id in ('0e000000-0000-4000-8000-000000000032', '0e000000-0000-4000-8000-000000000033',
                      '0e000000-0000-4000-8000-000000000034', '0e000000-0000-4000-8000-000000000035') $$,
  $$ values ('0e000000-0000-4000-8000-000000000032'::uuid, 'already_exists'), ('0e000000-0000-4000-8000-000000000033'::uuid, 'not_found'),
            ('0e000000-0000-4000-8000-000000000034'::uuid, 'not_found'), ('0e000000-0000-4000-8000-000000000035'::uuid, 'not_found') $$,
  'rejected ops are recorded too: retrying them cannot succeed'
);

-- Retryable failures: dependency_missing, and blocked for later ops on the same row.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'orphan', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000041', 'insert', 'key_persons', 'f0000000-0000-4000-8000-000000000041', null,
           '{"customer_id": "f0000000-0000-4000-8000-000000000040", "name": "Early Contact"}'),
  tests.op('0e000000-0000-4000-8000-000000000042', 'update', 'key_persons', 'f0000000-0000-4000-8000-000000000041', 1,
           '{"position": "CFO"}'),
  tests.op('0e000000-0000-4000-8000-000000000043', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000043', null,
           '{"name": "PT Unaffected"}'))));
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r -> 'retryable', r ->> 'field')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'orphan'),
  '[["failed", "dependency_missing", true, "customer_id"], ["failed", "blocked", true, null], ["applied", null, false, null]]',
  'a child before its parent is failed/dependency_missing, a later op on that row failed/blocked, other rows go on'
);
select tests.clear_authentication();
select is_empty(
  $$ select op_id from sync.applied_ops
      where op_id in ('0e000000-0000-4000-8000-000000000041', '0e000000-0000-4000-8000-000000000042') $$,
  'failed (retryable) ops leave no idempotency record'
);
select isnt_empty(
  $$ select op_id from sync.applied_ops where op_id = '0e000000-0000-4000-8000-000000000043' $$,
  'the applied op beside them is recorded'
);
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'retry', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000040', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000040', null,
           '{"name": "PT Late Parent"}'),
  tests.op('0e000000-0000-4000-8000-000000000041', 'insert', 'key_persons', 'f0000000-0000-4000-8000-000000000041', null,
           '{"customer_id": "f0000000-0000-4000-8000-000000000040", "name": "Early Contact"}'),
  tests.op('0e000000-0000-4000-8000-000000000042', 'update', 'key_persons', 'f0000000-0000-4000-8000-000000000041', 1,
           '{"position": "CFO"}'))));
select is(
  (select jsonb_agg(r ->> 'status') from pushed, jsonb_array_elements(answer -> 'results') r where name = 'retry'),
  '["applied", "applied", "applied"]',
  'the failed ops, sent again once the parent is there, are applied (not duplicates)'
);
select is((select position from public.key_persons where id = 'f0000000-0000-4000-8000-000000000041'), 'CFO',
          'the retried ops took effect in order');

-- client_wins: a stale update is applied over the other user's change, and audited. Each strategy
-- is set here, so these tests hold whatever the CRM's registry chooses for its tables.
select tests.clear_authentication();
update sync.tables set conflict_strategy = 'client_wins' where table_name = 'customers';
update sync.tables set conflict_strategy = 'server_wins' where table_name = 'hvcs';
update sync.tables set conflict_strategy = 'manual' where table_name = 'brokers';
select tests.authenticate_as('bm.jakarta@crm.test');
insert into pushed select 'bm edit', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000051', 'update', 'customers', 'f0000000-0000-4000-8000-000000000031', 1,
           '{"phone": "+62 bm"}'))));
select is((select answer #>> '{results,0,status}' from pushed where name = 'bm edit'), 'applied',
          'the bm''s edit based on the current version is applied without a conflict');
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'client_wins', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000052', 'update', 'customers', 'f0000000-0000-4000-8000-000000000031', 1,
           '{"phone": "+62 rm"}'))));
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,conflict,resolution}',
                            answer #> '{results,0,conflict,fields}', answer #>> '{results,0,row,phone}',
                            answer #> '{results,0,row,version}')
     from pushed where name = 'client_wins'),
  '["applied", "client_wins", ["phone"], "+62 rm", 3]',
  'client_wins: the stale update is applied and reports the conflict and the fields it overwrote'
);
select tests.clear_authentication();
select results_eq(
  $$ select c.table_name, c.row_id, c.op_id, c.user_id, c.client_id, c.server_user_id, c.base_version, c.server_version,
            c.client_data, c.server_row ->> 'phone', c.fields, c.resolution::text
       from sync.conflicts c
      where c.id = (select (answer #>> '{results,0,conflict,id}')::uuid from pushed where name = 'client_wins') $$,
  $$ values ('customers', 'f0000000-0000-4000-8000-000000000031'::uuid, '0e000000-0000-4000-8000-000000000052'::uuid,
             tests.user_id('rm1.jakarta@crm.test'), 'c0000000-0000-4000-8000-000000000001'::uuid,
             tests.user_id('bm.jakarta@crm.test'), 1::bigint, 2::bigint,
             '{"phone": "+62 rm"}'::jsonb, '+62 bm', '{phone}'::text[], 'client_wins') $$,
  'the client_wins conflict is audited with both sides'
);

-- server_wins: the stale update is not applied.
select tests.authenticate_as('admin@crm.test');
insert into pushed select 'hvc first', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000061', 'update', 'hvcs', '00000000-0000-4000-8001-000000000001', 1,
           '{"name": "Renamed on device A"}'))));
insert into pushed select 'server_wins', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000062', 'update', 'hvcs', '00000000-0000-4000-8001-000000000001', 1,
           '{"name": "Renamed on device B"}'))));
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,code}', answer #> '{results,0,retryable}',
                            answer #>> '{results,0,conflict,resolution}', answer #> '{results,0,conflict,fields}',
                            answer #>> '{results,0,row,name}', answer #>> '{results,0,message}')
     from pushed where name = 'server_wins'),
  '["conflict", "stale", false, "server_wins", ["name"], "Renamed on device A", "hvcs 00000000-0000-4000-8001-000000000001 changed since version 1 (now 2); the server''s version stands"]',
  'server_wins: the stale update is a conflict/stale carrying the server row'
);
select is((select name from public.hvcs where id = '00000000-0000-4000-8001-000000000001'), 'Renamed on device A',
          'server_wins keeps the server''s value');
select tests.clear_authentication();
select results_eq(
  $$ select c.user_id, c.base_version, c.server_version, c.client_data, c.resolution::text
       from sync.conflicts c
      where c.id = (select (answer #>> '{results,0,conflict,id}')::uuid from pushed where name = 'server_wins') $$,
  $$ values (tests.user_id('admin@crm.test'), 1::bigint, 2::bigint, '{"name": "Renamed on device B"}'::jsonb, 'server_wins') $$,
  'the server_wins conflict is audited with the refused edit'
);
select is(
  (select outcome ->> 'status' from sync.applied_ops where op_id = '0e000000-0000-4000-8000-000000000062'), 'conflict',
  'a conflict is a final outcome: it is recorded, and a replay returns it as a duplicate'
);

-- manual: the stale update waits for review.
select tests.authenticate_as('admin@crm.test');
insert into pushed select 'broker first', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000071', 'update', 'brokers', '00000000-0000-4000-8002-000000000001', 1,
           '{"phone": "+62 A"}'))));
insert into pushed select 'manual', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000072', 'update', 'brokers', '00000000-0000-4000-8002-000000000001', 1,
           '{"phone": "+62 B"}'))));
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,code}',
                            answer #>> '{results,0,conflict,resolution}', answer #>> '{results,0,row,phone}',
                            answer #>> '{results,0,message}')
     from pushed where name = 'manual'),
  '["conflict", "stale", "manual_pending", "+62 A", "brokers 00000000-0000-4000-8002-000000000001 changed since version 1 (now 2); the change waits for review"]',
  'manual: the stale update is a conflict/stale waiting for review'
);
select tests.clear_authentication();
select is(
  (select resolution::text from sync.conflicts
    where id = (select (answer #>> '{results,0,conflict,id}')::uuid from pushed where name = 'manual')),
  'manual_pending',
  'the manual conflict is audited as manual_pending'
);
select is((select phone from public.brokers where id = '00000000-0000-4000-8002-000000000001'), '+62 A',
          'manual keeps the server''s value until someone resolves it');

-- A write the caller's role may not make.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'forbidden', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000081', 'update', 'brokers', '00000000-0000-4000-8002-000000000002', 1,
           '{"phone": "+62 rm"}'),
  tests.op('0e000000-0000-4000-8000-000000000082', 'update', 'customers', 'f0000000-0000-4000-8000-000000000031', 3,
           '{"assigned_rm_id": "00000000-0000-4000-8000-000000000013"}'))));
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'forbidden'),
  '[["rejected", "forbidden", "phone"], ["rejected", "forbidden", "assigned_rm_id"]]',
  'writes the caller may not make are rejected/forbidden'
);

-- Server columns in data never apply; unknown columns are rejected naming the field.
insert into pushed select 'columns', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-000000000091', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000091', null,
           '{"name": "PT Forged", "version": 42, "created_by": "00000000-0000-4000-8000-000000000001", "deleted_at": "2001-01-01T00:00:00Z"}'),
  tests.op('0e000000-0000-4000-8000-000000000092', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000092', null,
           '{"name": "PT Colour", "favourite_colour": "blue"}'),
  tests.op('0e000000-0000-4000-8000-000000000093', 'insert', 'no_such_table', 'f0000000-0000-4000-8000-000000000093', null,
           '{"name": "x"}'),
  tests.op('0e000000-0000-4000-8000-000000000094', 'insert', 'customers', 'f0000000-0000-4000-8000-000000000094', null,
           jsonb_build_object('name', repeat('x', 200000))))));
select is(
  (select jsonb_build_array(answer #> '{results,0,row,version}', answer #>> '{results,0,row,created_by}', answer #> '{results,0,row,deleted_at}')
     from pushed where name = 'columns'),
  jsonb_build_array(1, tests.user_id('rm1.jakarta@crm.test'), null),
  'server columns sent in data are never applied'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'columns' and r ->> 'op_id' <> '0e000000-0000-4000-8000-000000000091'),
  '[["rejected", "invalid", "favourite_colour"], ["rejected", "invalid", "table"], ["rejected", "invalid", "name"]]',
  'an unknown column, an unknown table and a 200 000-character name are rejected/invalid naming the field'
);

-- An empty batch is a valid request.
insert into pushed select 'empty', public.sync_push(tests.push_body('[]'));
select is((select answer -> 'results' from pushed where name = 'empty'), '[]', 'an empty push has no results');

-- Subtransactions: a batch whose ops all succeed runs them in one subtransaction (many would
-- overflow the backend's subxid cache); every row it writes carries that one xmin.
create temp table batch on commit drop as
  select g, gen_random_uuid() as op_id, gen_random_uuid() as id from generate_series(1, 100) g;
insert into pushed select 'batch', public.sync_push(tests.push_body(
  (select jsonb_agg(tests.op(b.op_id, 'insert', 'customers', b.id, null, jsonb_build_object('name', 'PT Batch ' || b.g)) order by b.g)
     from batch b)));
select is((select count(*)::int from pushed, jsonb_array_elements(answer -> 'results') r where name = 'batch' and r ->> 'status' = 'applied'),
          100, 'a batch of 100 inserts is applied');
select tests.clear_authentication();
select is((select count(distinct xmin::text)::int from public.customers where id in (select id from batch)), 1,
          'a batch whose ops all succeed writes its rows in a single subtransaction');

-- When one op fails, the batch is re-run with one subtransaction per op, so the failure undoes nothing else.
select tests.authenticate_as('rm1.jakarta@crm.test');
create temp table batch2 on commit drop as
  select g, gen_random_uuid() as op_id, gen_random_uuid() as id from generate_series(1, 100) g;
insert into pushed select 'batch2', public.sync_push(tests.push_body(
  (select jsonb_agg(tests.op(b.op_id, 'insert', 'customers', b.id, null,
                             jsonb_build_object('name', case when b.g = 50 then '' else 'PT Batch ' || b.g end)) order by b.g)
     from batch2 b)));
select is(
  (select jsonb_build_array(count(*) filter (where r ->> 'status' = 'applied'), (array_agg(r ->> 'code') filter (where r ->> 'status' <> 'applied'))[1]) from pushed, jsonb_array_elements(answer -> 'results') r where name = 'batch2'),
  '[99, "invalid"]',
  'one invalid op in a batch of 100 is rejected alone'
);
select tests.clear_authentication();
select is((select count(distinct xmin::text)::int from public.customers where id in (select id from batch2)), 99,
          'after a failure each op runs in its own subtransaction');

-- Protocol 1 through the same door: the legacy queue item becomes an op with a derived op id.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'legacy', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": 17, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-0000000000a1", "operation": "create",
      "payload": {"name": "PT Legacy", "assignedRmId": "00000000-0000-4000-8000-000000000012", "isPendingSync": true},
      "createdAt": "2026-01-01T00:00:00Z", "retryCount": 2}]}');
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,op_id}', answer #>> '{results,0,row,name}')
     from pushed where name = 'legacy'),
  jsonb_build_array('applied', md5('protocol1:c0000000-0000-4000-8000-000000000001:17:2026-01-01T00:00:00Z')::uuid, 'PT Legacy'),
  'a protocol 1 item is applied under the op id derived from (client_id, id, createdAt)'
);
select is(
  tests.sync_error('sync_push', '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
    {"id": 18, "entityType": "customer", "operation": "create", "createdAt": "2026-01-01T00:00:00Z"},
    {"entityType": "customer", "entityId": "f0000000-0000-4000-8000-0000000000a2", "operation": "create", "payload": {"name": "PT No Id"},
     "createdAt": "2026-01-01T00:00:00Z"}]}'),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["items", 0, "entityId"], "message": "expected a uuid"}, {"path": ["items", 0, "payload"], "message": "required for create"}, {"path": ["items", 1, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}]}',
  'a malformed protocol 1 item is SYRQ1 naming its fields, a missing queue item id included'
);

-- A value taken in a key over one column the op wrote: the refusal names that column. (The CRM has
-- no such key on a syncable table; an app may.)
select tests.clear_authentication();
alter table public.customers add constraint customers_email_taken unique (email);
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'email first', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-0000000000e1', 'insert', 'customers', 'f0000000-0000-4000-8000-0000000000e1', null,
           '{"name": "PT First", "email": "taken@customer.test"}'))));
insert into pushed select 'email again', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-0000000000e2', 'insert', 'customers', 'f0000000-0000-4000-8000-0000000000e2', null,
           '{"name": "PT Second", "email": "taken@customer.test"}'))));
select is(
  (select jsonb_agg(jsonb_build_array(name, r ->> 'status', r ->> 'code', r ->> 'field') order by name desc)
     from pushed, jsonb_array_elements(answer -> 'results') r where name like 'email %'),
  '[["email first", "applied", null, null], ["email again", "rejected", "already_exists", "email"]]',
  'a value taken in a one-column unique key is rejected/already_exists naming the field'
);

select * from finish();
rollback;
