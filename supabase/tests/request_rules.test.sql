-- The RPC door refuses every request body the Edge Function's schemas refuse, with the same code
-- (SYRQ1, the function's 400 invalid_request) and the same paths, and takes every body they take:
-- a protocol 2 push and a pull carry no key the protocol does not define, and names, cursors and
-- numbers keep within the bounds of sync.request_limits(), the schemas' own (contract.test.ts).
-- differential.test.ts holds the two doors to it over generated bodies; these are the rules one by
-- one, with the exact answers. rm1.jakarta owns seed customer 4.
begin;
select plan(26);

select tests.authenticate_as('rm1.jakarta@crm.test');

-- A protocol 2 push: no other keys, names no longer than an identifier, whole numbers JavaScript
-- reads exactly, and data an object whatever the op.
select is(
  tests.sync_error('sync_push', tests.push_body('[]') || '{"opz": [], "items": []}'),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": [], "message": "Unrecognized keys: \"opz\", \"items\""}]}',
  'a protocol 2 body with keys beside protocol, client_id and ops is SYRQ1 naming them at the body''s path'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-0000000000b1', 'update', '', '00000000-0000-4000-8100-000000000004', 1, '{}'),
    tests.op('0e000000-0000-4000-8000-0000000000b2', 'update', repeat('x', 64), '00000000-0000-4000-8100-000000000004', 1, '{}'),
    tests.op('0e000000-0000-4000-8000-0000000000b3', 'update', repeat('é', 32), '00000000-0000-4000-8100-000000000004', 1, '{}')))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "table"], "message": "expected a table name of 1 to 63 bytes"}, {"path": ["ops", 1, "table"], "message": "expected a table name of 1 to 63 bytes"}, {"path": ["ops", 2, "table"], "message": "expected a table name of 1 to 63 bytes"}]}',
  'an empty table name, or one longer than 63 bytes (64 letters, or 32 two-byte ones), is SYRQ1: no table has such a name'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op('0e000000-0000-4000-8000-0000000000b4', 'update', repeat('é', 31) || 'x', '00000000-0000-4000-8100-000000000004', 1, '{}'))))
     -> 'results') r),
  '[["rejected", "invalid", "table"]]',
  'a name of 63 bytes passes the request''s checks: that no such table syncs is the op''s answer'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-0000000000b5', 'delete', 'customers', '00000000-0000-4000-8100-000000000004', 1, '5'),
    tests.op('0e000000-0000-4000-8000-0000000000b6', 'delete', 'customers', '00000000-0000-4000-8100-000000000004', 1, '[]'),
    tests.op('0e000000-0000-4000-8000-0000000000b7', 'upsert', 'customers', '00000000-0000-4000-8100-000000000004', 1, '"x"')))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "data"], "message": "expected an object"}, {"path": ["ops", 1, "data"], "message": "expected an object"}, {"path": ["ops", 2, "op"], "message": "expected insert, update or delete"}, {"path": ["ops", 2, "data"], "message": "expected an object"}]}',
  'data that is not an object is SYRQ1 whatever the op, a delete (which ignores it) and an unknown op included'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-0000000000b8', 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, null)))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0, "data"], "message": "required for update"}]}',
  'an update without data is SYRQ1: required for update'
);
select is(
  (select jsonb_agg(r ->> 'code')
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op('0e000000-0000-4000-8000-0000000000b9', 'update', 'customers', 'f0000000-0000-4000-8000-0000000000b9', 9007199254740991, '{"notes": "x"}'),
       tests.op('0e000000-0000-4000-8000-0000000000ba', 'delete', 'customers', 'f0000000-0000-4000-8000-0000000000ba', 0))))
     -> 'results') r),
  '["not_found", "not_found"]',
  'base_version 2^53 - 1 and 0 pass the request''s checks (the rows are missing: each op''s answer)'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r -> 'row' -> 'version', r ? 'conflict'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op('0e000000-0000-4000-8000-0000000000bb', 'insert', 'customers', 'f0000000-0000-4000-8000-0000000000bb', null, '{"name": "PT One Point Oh"}'),
       tests.op('0e000000-0000-4000-8000-0000000000bc', 'update', 'customers', 'f0000000-0000-4000-8000-0000000000bb', null, '{"notes": "x"}')
         || '{"base_version": 1.0}')))
     -> 'results') r),
  '[["applied", 1, false], ["applied", 2, false]]',
  'a base_version written 1.0 (as a client that keeps numbers as doubles writes 1) is version 1: whole by its value'
);

-- A protocol 1 push: its body and items keep the old app's other keys, but each key the
-- protocol defines is held to the schema's bounds.
select is(
  tests.sync_error('sync_push', jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001', 'items',
    (select jsonb_agg(jsonb_build_object('id', v.id, 'entityType', 'customer', 'entityId', 'f0000000-0000-4000-8000-0000000000c1',
                                         'operation', 'delete', 'createdAt', '2026-01-01T00:00:00Z') order by v.n)
       from (values (1, '1.5'::jsonb), (2, '""'), (3, '9007199254740992'), (4, '-9007199254740992'), (5, '1e17')) v (n, id)))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["items", 0, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}, {"path": ["items", 1, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}, {"path": ["items", 2, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}, {"path": ["items", 3, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}, {"path": ["items", 4, "id"], "message": "expected the queue item id: a whole number (at most 9007199254740991 either way) or a non-empty string"}]}',
  'a queue item id that is a fraction, empty, or beyond 2^53 - 1 either way is SYRQ1 naming it'
);
select is(
  tests.sync_error('sync_push', jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001', 'items', jsonb_build_array(
    jsonb_build_object('id', 1, 'entityType', '', 'entityId', 'f0000000-0000-4000-8000-0000000000c2', 'operation', 'delete', 'createdAt', 'x'),
    jsonb_build_object('id', 2, 'entityType', repeat('é', 32), 'entityId', 'f0000000-0000-4000-8000-0000000000c2', 'operation', 'delete', 'createdAt', 'x'),
    jsonb_build_object('id', 3, 'entityType', 'customer', 'entityId', 'f0000000-0000-4000-8000-0000000000c2', 'operation', 'delete', 'createdAt', ''),
    jsonb_build_object('id', 4, 'entityType', 'customer', 'entityId', 'f0000000-0000-4000-8000-0000000000c2', 'operation', 'delete', 'createdAt', 'x',
                       'payload', 5),
    jsonb_build_object('id', 5, 'entityType', 'customer', 'entityId', 'f0000000-0000-4000-8000-0000000000c2', 'operation', 'remove', 'createdAt', 'x')))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["items", 0, "entityType"], "message": "expected an entity name of 1 to 63 bytes"}, {"path": ["items", 1, "entityType"], "message": "expected an entity name of 1 to 63 bytes"}, {"path": ["items", 2, "createdAt"], "message": "expected a non-empty string"}, {"path": ["items", 3, "payload"], "message": "expected an object"}, {"path": ["items", 4, "operation"], "message": "expected create, update or delete"}]}',
  'an empty or over-long entityType, an empty createdAt and a delete''s payload that is not an object are SYRQ1; an unknown operation is reported alone, without asking for a payload'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code'))
     from jsonb_array_elements(public.sync_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001',
       'appVersion', '1.4.2', 'ops', '[]'::jsonb, 'items', jsonb_build_array(
         jsonb_build_object('id', -9007199254740991, 'entityType', 'customer', 'entityId', 'f0000000-0000-4000-8000-0000000000c3',
                            'operation', 'delete', 'createdAt', 'x', 'retryCount', 3),
         jsonb_build_object('id', 7.0, 'entityType', repeat('é', 31) || 'x', 'entityId', 'f0000000-0000-4000-8000-0000000000c3',
                            'operation', 'delete', 'createdAt', 'x', 'payload', null)))) -> 'results') r),
  '[["rejected", "not_found"], ["rejected", "invalid"]]',
  'a legacy body and items with the app''s other keys, ids at the bounds and a 63-byte entity name pass the request''s checks'
);

-- A pull: no other keys, null for the cursor alone, and the schema's bounds.
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": null, "since": 0, "tables": ["branches"]}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": [], "message": "Unrecognized key: \"since\""}]}',
  'a pull with a key of its own is SYRQ1 naming it at the body''s path'
);
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": null, "limit": null, "tables": null}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["limit"], "message": "expected a whole number from 1 to 1000000"}, {"path": ["tables"], "message": "expected an array of table names"}]}',
  'a null limit or tables is SYRQ1: null is no value of either (leave the key out for its default)'
);
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": null, "limit": 1000001, "tables": ["branches"]}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["limit"], "message": "expected a whole number from 1 to 1000000"}]}',
  'a limit above 1 000 000 is SYRQ1'
);
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": null, "limit": 1000000, "tables": ["branches"]}'),
  null,
  'a limit of 1 000 000 is taken (and clamped to the page size)'
);
select is(
  (select jsonb_array_length((public.sync_pull('{"protocol": 2, "cursor": null, "limit": 1.0, "tables": ["branches"]}')::jsonb) -> 'changes')),
  1,
  'a limit written 1.0 is a limit of 1'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', repeat('c', 65537))),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["cursor"], "message": "expected a cursor of at most 65536 bytes"}]}',
  'a cursor longer than 65536 bytes is SYRQ1 naming the cursor'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', repeat('é', 32769))),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["cursor"], "message": "expected a cursor of at most 65536 bytes"}]}',
  'so is one of 32769 characters that take 65538 bytes'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', repeat('é', 32768))) ->> 'sqlstate',
  'SYCR1',
  'a cursor of 65536 bytes passes the request''s checks, to be refused by its signature'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', null,
    'tables', (select jsonb_agg('customers'::text) from generate_series(1, 101)))),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["tables"], "message": "expected at most 100 table names"}]}',
  'more than 100 table names is SYRQ1'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', null, 'limit', 1,
    'tables', (select jsonb_agg('branches'::text) from generate_series(1, 100)))),
  null,
  '100 table names are taken'
);
select is(
  tests.sync_error('sync_pull', jsonb_build_object('protocol', 2, 'cursor', null, 'tables', jsonb_build_array('', repeat('x', 64), 'branches'))),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["tables", 0], "message": "not a syncable table"}, {"path": ["tables", 1], "message": "not a syncable table"}]}',
  'a table name that is empty or too long is no syncable table'
);

-- The helpers the checks use: whole numbers by value, and the keys a strict object refuses.
select set_config('role', 'sync_engine', true);
select is(
  (select jsonb_object_agg(v.input::text, sync.is_whole_number(v.input, 0, 9007199254740991)) from (values
     ('0'::jsonb), ('1.0'), ('1.5'), ('-1'), ('9007199254740991'), ('9007199254740992'), ('1e15'), ('1.0000000000000001'),
     ('"3"'), ('true'), ('null'), ('[1]')) v (input))
    || jsonb_build_object('absent', sync.is_whole_number(null, 0, 1)),
  '{"0": true, "1.0": true, "1.5": false, "-1": false, "9007199254740991": true, "9007199254740992": false,
    "1000000000000000": true, "1.0000000000000001": false, "\"3\"": false, "true": false, "null": false, "[1]": false,
    "absent": false}',
  'a whole number is a JSON number whole by its value within the bounds, and nothing is whole when missing'
);
select is(sync.unrecognized_keys('{"a": 1, "b": 2}', array['a', 'b'], '[]'), null, 'an object with known keys only has no issue');
select is(sync.unrecognized_keys('{"a": 1, "c": 2}', array['a'], '["ops", 3]'),
          '{"path": ["ops", 3], "message": "Unrecognized key: \"c\""}', 'one unknown key, at the path given');
select is(sync.unrecognized_keys('{"c": 1, "dd": 2}', array['a'], '[]'),
          '{"path": [], "message": "Unrecognized keys: \"c\", \"dd\""}', 'several, named together');
select set_config('role', 'authenticated', true);

select tests.clear_authentication();
select is_empty(
  $$ select op_id from sync.applied_ops
      where op_id in ('0e000000-0000-4000-8000-0000000000b1', '0e000000-0000-4000-8000-0000000000b5', '0e000000-0000-4000-8000-0000000000b8') $$,
  'a refused request claims none of its op ids'
);

select * from finish();
rollback;
