-- An op_id names one op. Sent again with the same content (compared as jsonb values: key order and
-- the spelling of a number do not matter) it is a duplicate and applies nothing twice. Sent again
-- with other content it is `rejected` / `op_id_reused`, not retryable, never a duplicate: the edit
-- it carries is not silently dropped as if it had been applied. Outcomes recorded before digests
-- were kept count as matching.
begin;
select plan(20);

create temp table pushed (name text primary key, answer jsonb not null) on commit drop;
grant all on pushed to authenticated, service_role;

select tests.authenticate_as('rm1.jakarta@crm.test');

-- The originals: a customer and a pipeline of it, in one batch.
insert into pushed select 'original', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a001', null,
           '{"name": "PT Reuse", "phone": "+62 21 1"}'),
  tests.op('0e000000-0000-4000-8000-00000000a002', 'insert', 'pipelines', 'f0000000-0000-4000-8000-00000000a002', null,
           '{"customer_id": "f0000000-0000-4000-8000-00000000a001", "title": "Fleet", "potential_value": 100}'))));
select is(
  (select jsonb_agg(r ->> 'status') from pushed, jsonb_array_elements(answer -> 'results') r where name = 'original'),
  '["applied", "applied"]',
  'the originals are applied'
);

-- The same ops again, the number spelled 100.0: duplicates.
insert into pushed select 'same', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a001', null,
           '{"phone": "+62 21 1", "name": "PT Reuse"}'),
  tests.op('0e000000-0000-4000-8000-00000000a002', 'insert', 'pipelines', 'f0000000-0000-4000-8000-00000000a002', null,
           '{"customer_id": "f0000000-0000-4000-8000-00000000a001", "title": "Fleet", "potential_value": 100.0}'))));
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'original_status')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'same'),
  '[["duplicate", "applied"], ["duplicate", "applied"]]',
  'the same ops sent again, a number spelled 100.0 instead of 100, are duplicates of the applied originals'
);

-- The op_id of the customer's insert, reused for an insert with another name.
insert into pushed select 'other_data', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a001', null,
           '{"name": "PT Someone Else", "phone": "+62 21 1"}'))));
select is(
  (select answer #> '{results,0}' from pushed where name = 'other_data'),
  '{"op_id": "0e000000-0000-4000-8000-00000000a001", "status": "rejected", "code": "op_id_reused", "retryable": false,
    "message": "op_id 0e000000-0000-4000-8000-00000000a001 was already used for a different op; this op was not applied (a new op needs a new op_id)"}',
  'the op_id of a processed op, sent with other data, is rejected/op_id_reused and not retryable'
);

-- The same op_id for an edit of another row, and for an update of the same row.
insert into pushed select 'other_row', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'update', 'customers', '00000000-0000-4000-8100-000000000001', null,
           '{"phone": "+62 21 9"}'))));
select is(
  (select answer #>> '{results,0,code}' from pushed where name = 'other_row'),
  'op_id_reused',
  'the same op_id for an op on another row is op_id_reused'
);
insert into pushed select 'other_kind', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'update', 'customers', 'f0000000-0000-4000-8000-00000000a001', 1,
           '{"name": "PT Reuse", "phone": "+62 21 1"}'))));
select is(
  (select answer #>> '{results,0,code}' from pushed where name = 'other_kind'),
  'op_id_reused',
  'the same op_id for an update of the same row, with the same data, is op_id_reused'
);

select tests.clear_authentication();
select results_eq(
  $$ select name, phone, version from public.customers where id = 'f0000000-0000-4000-8000-00000000a001' $$,
  $$ values ('PT Reuse'::text, '+62 21 1'::text, 1::bigint) $$,
  'a rejected reuse changes nothing'
);
select results_eq(
  $$ select count(*)::int, min(outcome ->> 'status') from sync.applied_ops where op_id = '0e000000-0000-4000-8000-00000000a001' $$,
  $$ values (1, 'applied') $$,
  'a reuse is not recorded: the op_id keeps its original outcome'
);

-- The original, sent once more after the reuses, is still its own duplicate.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'again', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a001', null,
           '{"name": "PT Reuse", "phone": "+62 21 1"}'))));
select is(
  (select jsonb_build_array(answer #>> '{results,0,status}', answer #>> '{results,0,original_status}', answer #>> '{results,0,row,name}')
     from pushed where name = 'again'),
  '["duplicate", "applied", "PT Reuse"]',
  'the original op sent after the reuses is still a duplicate of its applied outcome'
);

-- A reuse inside a batch the bulk engine would take: the other ops are applied, a later op on the
-- reused op's row is blocked, as for any op on a row after one that was not applied.
insert into pushed select 'batch', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a011', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a011', null,
           '{"name": "PT Batch"}'),
  tests.op('0e000000-0000-4000-8000-00000000a002', 'update', 'pipelines', 'f0000000-0000-4000-8000-00000000a002', 1,
           '{"title": "Fleet renamed"}'),
  tests.op('0e000000-0000-4000-8000-00000000a012', 'update', 'pipelines', 'f0000000-0000-4000-8000-00000000a002', 1,
           '{"stage": "qualified"}'),
  tests.op('0e000000-0000-4000-8000-00000000a013', 'update', 'customers', 'f0000000-0000-4000-8000-00000000a001', 1,
           '{"city": "Bekasi"}'))));
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'batch'),
  '[["applied", null], ["rejected", "op_id_reused"], ["failed", "blocked"], ["applied", null]]',
  'in a batch, a reused op_id is rejected, a later op on its row is blocked, and the other ops are applied'
);
select results_eq(
  $$ select (select title from public.pipelines where id = 'f0000000-0000-4000-8000-00000000a002'),
            (select version from public.pipelines where id = 'f0000000-0000-4000-8000-00000000a002'),
            (select city from public.customers where id = 'f0000000-0000-4000-8000-00000000a001'),
            (select count(*)::int from public.customers where id = 'f0000000-0000-4000-8000-00000000a011') $$,
  $$ values ('Fleet'::text, 1::bigint, 'Bekasi'::text, 1) $$,
  'the reused op and the op blocked behind it changed nothing; the others were written'
);
select tests.clear_authentication();
select is((select count(*)::int from sync.applied_ops where op_id = '0e000000-0000-4000-8000-00000000a012'), 0,
          'the op blocked behind the reuse is not recorded');
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'unblocked', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a012', 'update', 'pipelines', 'f0000000-0000-4000-8000-00000000a002', 1,
           '{"stage": "qualified"}'))));
select is((select answer #>> '{results,0,status}' from pushed where name = 'unblocked'), 'applied',
          'the op blocked behind the reuse, sent again, is applied');

-- Protocol 1: the same queue item twice in one request.
insert into pushed select 'legacy_twice', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": 41, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a041", "operation": "create",
      "payload": {"name": "PT Legacy Twice"}, "createdAt": "2026-01-01T00:00:41Z"},
     {"id": 41, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a041", "operation": "create",
      "payload": {"name": "PT Legacy Twice", "retryCount": 1}, "createdAt": "2026-01-01T00:00:41Z"},
     {"id": 42, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a042", "operation": "create",
      "payload": {"name": "PT Legacy First"}, "createdAt": "2026-01-01T00:00:42Z"},
     {"id": 42, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a042", "operation": "update",
      "payload": {"name": "PT Legacy Second"}, "createdAt": "2026-01-01T00:00:42Z"}]}');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'legacy_twice'),
  '[["applied", null], ["duplicate", null], ["applied", null], ["rejected", "op_id_reused"]]',
  'a legacy item sent twice in one request is a duplicate (its bookkeeping aside); two different items under one derived op id are not'
);
select is((select name from public.customers where id = 'f0000000-0000-4000-8000-00000000a042'), 'PT Legacy First',
          'the second item under the same derived op id was not applied');

-- The same item in a later request, with other content.
insert into pushed select 'legacy_later', public.sync_push(
  '{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
     {"id": 41, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a041", "operation": "create",
      "payload": {"name": "PT Legacy Twice", "isPendingSync": false, "retryCount": 3}, "createdAt": "2026-01-01T00:00:41Z"},
     {"id": 41, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000a041", "operation": "create",
      "payload": {"name": "PT Legacy Changed"}, "createdAt": "2026-01-01T00:00:41Z"}]}');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code')) from pushed, jsonb_array_elements(answer -> 'results') r
    where name = 'legacy_later'),
  '[["duplicate", null], ["rejected", "op_id_reused"]]',
  'a legacy item sent again is a duplicate whatever its bookkeeping says; with other content it is op_id_reused'
);

-- An outcome recorded before digests were kept matches whatever the op now says.
select tests.clear_authentication();
insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome)
values (tests.user_id('rm1.jakarta@crm.test'), '0e000000-0000-4000-8000-00000000a051', 'c0000000-0000-4000-8000-000000000001',
        'customers', 'f0000000-0000-4000-8000-00000000a051',
        '{"op_id": "0e000000-0000-4000-8000-00000000a051", "status": "rejected", "code": "invalid", "retryable": false, "message": "then"}');
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pushed select 'undigested', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a051', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a051', null,
           '{"name": "PT Anything"}'))));
select is(
  (select answer #> '{results,0}' from pushed where name = 'undigested'),
  '{"op_id": "0e000000-0000-4000-8000-00000000a051", "status": "duplicate", "original_status": "rejected", "code": "invalid",
    "retryable": false, "message": "then"}',
  'an op recorded before digests existed is a duplicate, whatever it carries now'
);

-- Each user's op ids are their own: another user's op with the same op_id is a new op.
select tests.authenticate_as('rm2.jakarta@crm.test');
insert into pushed select 'other_user', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a061', null,
           '{"name": "PT Other User"}'))));
select is((select answer #>> '{results,0,status}' from pushed where name = 'other_user'), 'applied',
          'another user''s op under the same op_id is applied: op ids are per user');

-- The RPC answers the same as the function: no request-level error for a reuse.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op('0e000000-0000-4000-8000-00000000a001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000a001', null,
             '{"name": "PT Yet Another"}')))),
  null,
  'a reuse is a per-op answer, not a request error'
);

-- A reuse of an op that was rejected is op_id_reused too (not only of applied ones).
insert into pushed select 'rejected_first', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a071', 'update', 'customers', 'f0000000-0000-4000-8000-0000000000ff', null,
           '{"name": "PT Nowhere"}'))));
insert into pushed select 'rejected_reused', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000a071', 'insert', 'customers', 'f0000000-0000-4000-8000-0000000000ff', null,
           '{"name": "PT Nowhere"}'))));
select is(
  (select jsonb_build_array(a.answer #>> '{results,0,code}', b.answer #>> '{results,0,code}')
     from pushed a, pushed b where a.name = 'rejected_first' and b.name = 'rejected_reused'),
  '["not_found", "op_id_reused"]',
  'the op_id of a rejected op, reused for another op, is op_id_reused'
);
select is((select count(*)::int from public.customers where id = 'f0000000-0000-4000-8000-0000000000ff'), 0,
          'and the op that reused it was not applied');

select * from finish();
rollback;
