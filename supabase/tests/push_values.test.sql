-- The push takes a value only as the column will keep it: where the request's JSON exists (the
-- Edge Function and the RPC sync_push), a number is finite and has no more decimals than its
-- column keeps, and a date or a timestamp is ISO 8601 text, never a word PostgreSQL would resolve
-- ('now', 'epoch', 'infinity'), with a year from 1900 to 2200. Anything else is that op's
-- rejected / invalid naming the field; the rest of the batch goes through, and an applied op's row
-- holds exactly the value sent. rm1.jakarta owns seed customer 4 and its pipeline 4.
begin;

-- The result of a one-op push, without its op_id.
create function tests.push_result(p_op jsonb) returns jsonb
language sql
as $$
  select (public.sync_push(tests.push_body(jsonb_build_array(p_op))) -> 'results' -> 0) - 'op_id'
$$;
-- What a row's column holds, as JSON.
create function tests.stored_value(p_table text, p_column text, p_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_value jsonb;
begin
  execute format('select to_jsonb(t.%I) from public.%I t where t.id = $1', p_column, p_table) into v_value using p_id;
  return v_value;
end
$$;
grant execute on function tests.push_result(jsonb), tests.stored_value(text, text, uuid) to authenticated;

-- A valid new row of each table the cases write, under customer 4.
create temp table valid_row (tbl text primary key, data jsonb) on commit drop;
insert into valid_row values
  ('pipelines', '{"customer_id": "00000000-0000-4000-8100-000000000004", "title": "Value probe"}'),
  ('activities', '{"customer_id": "00000000-0000-4000-8100-000000000004", "activity_type": "call", "subject": "Value probe"}');

-- Values each refused with its message; each case inserts a row of its own id.
create temp table refused (ord serial, tbl text, col text, value jsonb, message text) on commit drop;
insert into refused (tbl, col, value, message) values
  ('pipelines', 'potential_value', '"NaN"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '"nan"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '"Infinity"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '"-Infinity"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '"1e5"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '" 12"', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', 'true', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '{"amount": 1}', 'expected a finite number: a JSON number or a string of decimal digits'),
  ('pipelines', 'potential_value', '0.125', 'has more decimal places than the column keeps (2)'),
  ('pipelines', 'potential_value', '"0.125"', 'has more decimal places than the column keeps (2)'),
  ('pipelines', 'potential_value', '1e-20', 'has more decimal places than the column keeps (2)'),
  ('pipelines', 'potential_value', '1e-16383', 'has more decimal places than the column keeps (2)'),
  ('pipelines', 'potential_value', '10000000000000000', 'is out of range for numeric(18,2)'),
  ('pipelines', 'potential_value', '1e131071', 'is out of range for numeric(18,2)'),
  ('pipelines', 'expected_close_date', '"infinity"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"-infinity"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"epoch"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"today"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"2024-01-01 BC"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"12345-01-01"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"2026-01-31T10:00:00Z"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"31/01/2026"', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '20260131', 'expected a date as YYYY-MM-DD (ISO 8601)'),
  ('pipelines', 'expected_close_date', '"1899-12-31"', 'must lie between 1900-01-01 and 2200-12-31'),
  ('pipelines', 'expected_close_date', '"2201-01-01"', 'must lie between 1900-01-01 and 2200-12-31'),
  ('activities', 'scheduled_at', '"infinity"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"-infinity"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"2024-01-01 00:00 BC"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"2024-01-01T00:00:00Z BC"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"12345-01-01"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"12345-01-01T00:00:00Z"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"now"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"tomorrow"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"yesterday"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"epoch"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"allballs"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"2026-01-02 10:00:00Z"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"20260102T100000Z"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"2026-01-02T10:00:00 America/New_York"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"Fri Jan 02 2026 10:00:00 GMT+0700"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '1767348000', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'),
  ('activities', 'scheduled_at', '"2026-01-02T10:00:00.1234567Z"', 'has more fractional digits than the column keeps (6)'),
  ('activities', 'scheduled_at', '"1899-12-31T23:59:59Z"', 'must lie between 1900-01-01 and 2200-12-31'),
  ('activities', 'scheduled_at', '"2201-01-01T00:00:00Z"', 'must lie between 1900-01-01 and 2200-12-31'),
  ('activities', 'completed_at', '"now"', 'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z');

-- Values taken, and what the row then holds (equal, as JSON, to what was sent).
create temp table accepted (ord serial, tbl text, col text, value jsonb, stored jsonb) on commit drop;
insert into accepted (tbl, col, value, stored) values
  ('pipelines', 'potential_value', '0.120', '0.12'),
  ('pipelines', 'potential_value', '1e3', '1000'),
  ('pipelines', 'potential_value', '"12.50"', '12.5'),
  ('pipelines', 'potential_value', '1234567890123456.78', '1234567890123456.78'),
  ('pipelines', 'potential_value', '0', '0'),
  ('pipelines', 'expected_close_date', '"2026-01-31"', '"2026-01-31"'),
  ('pipelines', 'expected_close_date', '"1900-01-01"', '"1900-01-01"'),
  ('pipelines', 'expected_close_date', '"2200-12-31"', '"2200-12-31"'),
  ('activities', 'scheduled_at', '"2026-01-02T10:00:00Z"', '"2026-01-02T10:00:00+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02t10:00:00z"', '"2026-01-02T10:00:00+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02T17:00:00.123456+07:00"', '"2026-01-02T10:00:00.123456+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02T17:00:00+0700"', '"2026-01-02T10:00:00+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02T17:00+07"', '"2026-01-02T10:00:00+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02T10:00:00.5"', '"2026-01-02T10:00:00.5+00:00"'),
  ('activities', 'scheduled_at', '"2026-01-02"', '"2026-01-02T00:00:00+00:00"'),
  ('activities', 'scheduled_at', '"1900-01-01T00:00:00Z"', '"1900-01-01T00:00:00+00:00"'),
  ('activities', 'scheduled_at', '"2200-12-31T23:59:59.999999Z"', '"2200-12-31T23:59:59.999999+00:00"');
grant select on valid_row, refused, accepted to authenticated;

select plan(
  (select count(*)::int from refused) + 1
  + (select count(*)::int * 2 from accepted)
  + 16
);

select tests.authenticate_as('rm1.jakarta@crm.test');

select is(
  tests.push_result(tests.op(gen_random_uuid(), 'insert', r.tbl, format('c5000000-0000-4000-8000-%s', lpad(r.ord::text, 12, '0'))::uuid,
                             null, v.data || jsonb_build_object(r.col, r.value))),
  jsonb_build_object('status', 'rejected', 'code', 'invalid', 'retryable', false, 'field', r.col,
                     'message', format('%s.%s: %s', r.tbl, r.col, r.message)),
  format('%s.%s = %s is rejected as invalid, naming the field', r.tbl, r.col, left(r.value::text, 40))
)
  from refused r join valid_row v on v.tbl = r.tbl order by r.ord;

select tests.clear_authentication();
select is_empty(
  $$ select id from public.pipelines where id::text like 'c5000000-%' union all select id from public.activities where id::text like 'c5000000-%' $$,
  'no refused value left a row behind'
);

select tests.authenticate_as('rm1.jakarta@crm.test');
create temp table accepted_answer on commit drop as
select a.ord, a.tbl, a.col, a.stored, format('c6000000-0000-4000-8000-%s', lpad(a.ord::text, 12, '0'))::uuid as id,
       tests.push_result(tests.op(gen_random_uuid(), 'insert', a.tbl, format('c6000000-0000-4000-8000-%s', lpad(a.ord::text, 12, '0'))::uuid,
                                  null, v.data || jsonb_build_object(a.col, a.value))) as answer
  from accepted a join valid_row v on v.tbl = a.tbl;
select is(
  jsonb_build_array(x.answer ->> 'status', x.answer -> 'row' -> x.col),
  jsonb_build_array('applied', x.stored),
  format('%s.%s = %s is applied, and the answer''s row holds it as sent', x.tbl, x.col, a.value)
)
  from accepted_answer x join accepted a using (ord) order by x.ord;
select is(
  tests.stored_value(x.tbl, x.col, x.id),
  x.stored,
  format('%s.%s = %s is stored as sent', x.tbl, x.col, a.value)
)
  from accepted_answer x join accepted a using (ord) order by x.ord;

-- Updates are held to the same rules, and a refused one leaves the row as it was.
create temp table pipeline_before on commit drop as
  select to_jsonb(p) - 'change_xid' as r from public.pipelines p where id = '00000000-0000-4000-8300-000000000004';
select is(
  tests.push_result(tests.op(gen_random_uuid(), 'update', 'pipelines', '00000000-0000-4000-8300-000000000004',
                             (select (r ->> 'version')::bigint from pipeline_before), '{"potential_value": "NaN"}')) ->> 'field',
  'potential_value',
  'an update to NaN is rejected naming the field'
);
select is(
  tests.push_result(tests.op(gen_random_uuid(), 'update', 'pipelines', '00000000-0000-4000-8300-000000000004',
                             (select (r ->> 'version')::bigint from pipeline_before), '{"expected_close_date": "tomorrow", "notes": "x"}')) ->> 'field',
  'expected_close_date',
  'an update to a date word is rejected naming the field, and its other fields are not applied'
);
select is(
  (select to_jsonb(p) - 'change_xid' from public.pipelines p where id = '00000000-0000-4000-8300-000000000004'),
  (select r from pipeline_before),
  'the refused updates left the pipeline unchanged'
);

-- In a batch, the refused op is answered in its place and the others are applied, by the bulk
-- engine's path and by the per-op engine's alike.
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'customers', 'c7000000-0000-4000-8000-000000000001', null, '{"name": "PT Before"}'),
       tests.op(gen_random_uuid(), 'insert', 'pipelines', 'c7000000-0000-4000-8000-000000000002', null,
                '{"customer_id": "00000000-0000-4000-8100-000000000004", "title": "Poison", "potential_value": "NaN"}'),
       tests.op(gen_random_uuid(), 'insert', 'activities', 'c7000000-0000-4000-8000-000000000003', null,
                '{"customer_id": "00000000-0000-4000-8100-000000000004", "activity_type": "call", "subject": "After", "scheduled_at": "2026-02-01T09:00:00Z"}')
     ))) -> 'results') r),
  '[["applied", null, null], ["rejected", "invalid", "potential_value"], ["applied", null, null]]',
  'a batch with a refused value applies the ops around it'
);

-- The legacy queue (protocol 1) is held to the same rules, its camelCase keys named as columns.
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field', r ->> 'message'))
     from jsonb_array_elements(public.sync_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001',
       'items', jsonb_build_array(
         jsonb_build_object('id', 1, 'entityType', 'pipeline', 'entityId', 'c7000000-0000-4000-8000-000000000011', 'operation', 'create',
                            'createdAt', '2026-11-20T08:00:00Z',
                            'payload', jsonb_build_object('customerId', '00000000-0000-4000-8100-000000000004', 'title', 'Legacy', 'potentialValue', 'NaN')),
         jsonb_build_object('id', 2, 'entityType', 'activity', 'entityId', 'c7000000-0000-4000-8000-000000000012', 'operation', 'create',
                            'createdAt', '2026-11-20T08:00:01Z',
                            'payload', jsonb_build_object('customerId', '00000000-0000-4000-8100-000000000004', 'activityType', 'call',
                                                          'subject', 'Legacy', 'scheduledAt', 'tomorrow'))))) -> 'results') r),
  '[["rejected", "invalid", "potential_value", "pipelines.potential_value: expected a finite number: a JSON number or a string of decimal digits"],
    ["rejected", "invalid", "scheduled_at", "activities.scheduled_at: expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z"]]',
  'legacy items with a NaN amount or a date word are rejected naming the column'
);

-- A number the database cannot hold never reaches it as a number: the Edge Function replaces it
-- by its text and names where it was, apart from the request: sync.apply_push's second argument,
-- which only the engine's role may call. The op is refused, wherever the number was (data, base,
-- a legacy payload); the rest of the batch is applied.
select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field', r ->> 'message'))
     from jsonb_array_elements(sync.apply_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'pipelines', 'c7000000-0000-4000-8000-000000000021', null,
                '{"customer_id": "00000000-0000-4000-8100-000000000004", "title": "Huge", "potential_value": "1e400000"}'),
       tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{"notes": "1e-400000"}'),
       tests.op(gen_random_uuid(), 'update', 'pipelines', '00000000-0000-4000-8300-000000000004', null, '{"notes": "fine"}')
         || '{"base": {"potential_value": "1e400000"}}',
       tests.op(gen_random_uuid(), 'insert', 'customers', 'c7000000-0000-4000-8000-000000000022', null, '{"name": "PT Beside"}')
     )), '[["ops", 0, "data", "potential_value"], ["ops", 1, "data", "notes"], ["ops", 2, "base", "potential_value"]]') -> 'results') r),
  '[["rejected", "invalid", "potential_value", "pipelines.potential_value: is a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)"],
    ["rejected", "invalid", "notes", "customers.notes: is a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)"],
    ["rejected", "invalid", "potential_value", "pipelines.potential_value: is a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)"],
    ["applied", null, null, null]]',
  'ops the function names as holding a number the database cannot hold are rejected naming the field; the op beside them is applied'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'field'))
     from jsonb_array_elements(sync.apply_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001',
       'items', jsonb_build_array(
         jsonb_build_object('id', 3, 'entityType', 'pipeline', 'entityId', 'c7000000-0000-4000-8000-000000000031', 'operation', 'create',
                            'createdAt', '2026-11-20T08:00:02Z',
                            'payload', jsonb_build_object('customerId', '00000000-0000-4000-8100-000000000004', 'title', 'Legacy',
                                                          'potentialValue', '1e400000')))),
       '[["items", 0, "payload", "potentialValue"]]') -> 'results') r),
  '[["rejected", "potential_value"]]',
  'a legacy item the function names so is rejected naming the column'
);
select throws_ok(
  $$ select sync.apply_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'customers', 'c7000000-0000-4000-8000-000000000023', null, '{"name": "PT Never"}'))),
       '[["ops", 0, "id", "x"]]') $$,
  'XX000', 'sync.mark_unstorable_numbers: [["ops", 0, "id", "x"]] does not name values of the ops of a protocol 2 request',
  'paths that name no value of an op are the function''s mistake, not the client''s: an internal error, nothing applied'
);
select throws_ok(
  $$ select sync.apply_push(tests.push_body('[]'), '[["ops", 0, "data", "notes"]]') $$,
  'XX000', 'sync.mark_unstorable_numbers: [["ops", 0, "data", "notes"]] does not name values of the ops of a protocol 2 request',
  'and so are paths to an op the request does not have'
);

-- No client states it: the RPC door refuses the key in an op like any key its schema does not
-- know, and a legacy item's is one of the old app's own keys, ignored like the others.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ select sync.apply_push(tests.push_body('[]'), '[]') $$,
  '42501', 'permission denied for function apply_push',
  'a client role may not call the entry that takes the function''s findings'
);
select is(
  tests.sync_error('sync_push', tests.push_body(jsonb_build_array(
    tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', null, '{"notes": "fine"}')
      || '{"unstorable_numbers": [["data", "notes"]]}'))),
  '{"sqlstate": "SYRQ1", "message": "the push request is not valid", "details": [{"path": ["ops", 0], "message": "Unrecognized key: \"unstorable_numbers\""}]}',
  'an op that states unstorable_numbers itself is SYRQ1, as through the function: no client has an op refused so'
);
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r -> 'row' ->> 'title'))
     from jsonb_array_elements(public.sync_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-000000000001',
       'items', jsonb_build_array(
         jsonb_build_object('id', 4, 'entityType', 'pipeline', 'entityId', 'c7000000-0000-4000-8000-000000000032', 'operation', 'create',
                            'createdAt', '2026-11-20T08:00:03Z', 'unstorable_numbers', '[["payload", "title"]]'::jsonb,
                            'payload', jsonb_build_object('customerId', '00000000-0000-4000-8100-000000000004', 'title', 'Legacy Kept'))))
     ) -> 'results') r),
  '[["applied", "Legacy Kept"]]',
  'a legacy item''s own unstorable_numbers key is ignored like the app''s other keys: the item is applied'
);
select tests.clear_authentication();
select is_empty(
  $$ select id from public.pipelines where id in ('c7000000-0000-4000-8000-000000000002', 'c7000000-0000-4000-8000-000000000011',
                                                  'c7000000-0000-4000-8000-000000000021', 'c7000000-0000-4000-8000-000000000031')
     union all select id from public.activities where id = 'c7000000-0000-4000-8000-000000000012'
     union all select id from public.customers where id = '00000000-0000-4000-8100-000000000004' and notes = '1e-400000' $$,
  'none of the refused ops wrote anything'
);
select is(
  (select count(*)::int from public.customers where id in ('c7000000-0000-4000-8000-000000000001', 'c7000000-0000-4000-8000-000000000022'))
    + (select count(*)::int from public.activities where id = 'c7000000-0000-4000-8000-000000000003'),
  3,
  'the ops beside them were written'
);

-- A reviewer's custom resolution is JSON too, and held to the same rules.
insert into public.pipelines (id, customer_id, title, potential_value, stage)
values ('c8000000-0000-4000-8000-000000000001', '00000000-0000-4000-8100-000000000004', 'Review', 100, 'prospect');
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set potential_value = 150, version = -1 where id = 'c8000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.pipelines set potential_value = 175, version = 1 where id = 'c8000000-0000-4000-8000-000000000001';
select tests.authenticate_as('bm.jakarta@crm.test');
select throws_ok(
  $$ select public.resolve_conflict((select conflict_id from sync.conflict_history where row_id = 'c8000000-0000-4000-8000-000000000001'),
                                    'custom', '{"potential_value": 160.125}') $$,
  '22023', 'pipelines.potential_value: has more decimal places than the column keeps (2)',
  'a custom resolution with more decimals than the column keeps is refused'
);
select throws_ok(
  $$ select public.resolve_conflict((select conflict_id from sync.conflict_history where row_id = 'c8000000-0000-4000-8000-000000000001'),
                                    'custom', '{"potential_value": "NaN"}') $$,
  '22023', 'pipelines.potential_value: expected a finite number: a JSON number or a string of decimal digits',
  'a custom resolution with NaN is refused'
);

select * from finish();
rollback;
