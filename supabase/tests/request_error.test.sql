-- sync.request_error raises a request-level error. A function that raises must not be declared
-- immutable (nor stable): the planner evaluates an immutable call with constant arguments while it
-- plans, so a query that calls it only in a branch no row takes raised anyway.
begin;
select plan(6);

select is(
  (select p.provolatile from pg_catalog.pg_proc p where p.oid = 'sync.request_error(text, text, jsonb)'::regprocedure),
  'v'::"char",
  'sync.request_error is volatile'
);

select lives_ok(
  $$ select case when g.x > 1 then sync.request_error('invalid_request', 'never raised') end from generate_series(0, 1) g (x) $$,
  'a query that calls sync.request_error only in a branch no row takes runs without raising'
);
select throws_ok(
  $$ select case when g.x > 1 then sync.request_error('invalid_request', 'raised for x = 2') end from generate_series(0, 2) g (x) $$,
  'SYRQ1', 'raised for x = 2',
  'the branch a row takes raises, with the code''s SQLSTATE'
);
select throws_ok(
  $$ select sync.request_error('too_large', 'too many', '[{"path": ["ops"], "message": "m"}]') $$,
  'SYLM1', 'too many',
  'each code raises its own SQLSTATE'
);

select throws_ok(
  $$ select sync.request_error('not_a_code', 'never a client''s fault') $$,
  'XX000', 'sync.request_error: ''not_a_code'' is not a request error code (sync.request_error_codes)',
  'a code outside sync.request_error_codes is the engine''s own failure, never passed off as an invalid request'
);

select is(
  (select p.provolatile from pg_catalog.pg_proc p where p.oid = 'sync.require_staff(text)'::regprocedure),
  'v'::"char",
  'sync.require_staff is volatile too: it raises the caller''s refusal'
);

select * from finish();
rollback;
