-- The bulk push engine (sync.apply_ops_in_bulk) is an optimisation, never a second set of rules:
-- a batch it takes gets exactly the results the per-op engine (sync.run_ops) gives on the same
-- database, and every batch whose outcome depends on op order, a conflict or a refusal is left to
-- the per-op engine. rm1.jakarta owns seed customer 4 (key persons 41 and 42, pipeline 4).
begin;
select plan(39);

-- Each engine on the same database state (a subtransaction undone after each), rows without the
-- clock values that differ between the two runs (deleted_at only says whether it is set).
-- {"bulk": "declined"} when the bulk engine leaves the batch to the per-op engine, by answering
-- null or by raising.
create function tests.both_engines(p_ops jsonb) returns jsonb
language plpgsql
as $$
declare
  v_earlier jsonb := '{}';  -- no op of the batch was processed before
  v_out jsonb := '{}';
  v_engine text;
  v_detail text;
begin
  foreach v_engine in array array['bulk', 'per_op'] loop
    begin
      -- Its own SQLSTATE, so that nothing an engine raises is taken for it.
      raise exception using errcode = 'TSUND', message = 'undo', detail = coalesce(case v_engine
        when 'bulk' then to_jsonb(sync.apply_ops_in_bulk(p_ops, v_earlier))
        else to_jsonb(sync.run_ops(p_ops, v_earlier, null, true)) end::text, 'null');
    exception when sqlstate 'TSUND' then
      get stacked diagnostics v_detail = pg_exception_detail;
      v_out := v_out || jsonb_build_object(v_engine, coalesce((
        select jsonb_agg(case when r ? 'row' then jsonb_set(r, '{row}', (r -> 'row') - 'created_at' - 'updated_at'
                                                             || jsonb_build_object('deleted_at', r -> 'row' ->> 'deleted_at' is not null)) else r end)
          from jsonb_array_elements(nullif(v_detail, 'null')::jsonb) r), '"declined"'));
    when others then
      -- A failing statement (an insert of a taken id), or the bulk engine refusing (a table altered
      -- since it was registered), sends the batch to the per-op engine too.
      if v_engine <> 'bulk' then
        raise;
      end if;
      v_out := v_out || '{"bulk": "declined"}';
    end;
  end loop;
  return v_out;
end
$$;

grant execute on function tests.both_engines(jsonb) to authenticated;

create temp table batch (name text primary key, answer jsonb not null) on commit drop;
grant all on batch to authenticated;

select tests.engine_acting_for('rm1.jakarta@crm.test');

-- A new customer with a key person and an activity, edits and deletes of existing rows, an edit
-- that changes nothing and the delete of a row already deleted: all decided by the bulk engine.
update public.activities set deleted_at = now()
 where id = (select id from public.activities where customer_id = '00000000-0000-4000-8100-000000000004' limit 1);
-- rm1 last wrote key person 42, so an unversioned edit of it overwrites no one.
update public.key_persons set notes = 'rm1''s' where id = '00000000-0000-4000-8200-000000000042';
insert into batch values ('mixed', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000001', null, '{"name": "PT Bulk", "email": "bulk@customer.test"}'),
  tests.op(gen_random_uuid(), 'insert', 'key_persons', 'b0000000-0000-4000-8000-000000000002', null,
           '{"customer_id": "b0000000-0000-4000-8000-000000000001", "name": "Bulk Contact"}'),
  tests.op(gen_random_uuid(), 'insert', 'activities', 'b0000000-0000-4000-8000-000000000003', null,
           '{"customer_id": "00000000-0000-4000-8100-000000000004", "activity_type": "call", "subject": "Bulk call", "scheduled_at": "2027-01-04T09:00:00Z"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', 1, '{"phone": "+62 21 555 0004", "notes": "bulk"}'),
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000041', 1, '{"position": "Director"}'),
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000042', null, '{"notes": "unversioned, own row"}'),
  tests.op(gen_random_uuid(), 'delete', 'pipelines', '00000000-0000-4000-8300-000000000004', 1),
  tests.op(gen_random_uuid(), 'delete', 'activities', (select id from public.activities where customer_id = '00000000-0000-4000-8100-000000000004'
                                      and deleted_at is not null limit 1), 2)
)));

select isnt((select answer -> 'bulk' from batch where name = 'mixed'), '"declined"',
            'the bulk engine takes a batch of independent, current-version ops');
select is((select answer -> 'bulk' from batch where name = 'mixed'), (select answer -> 'per_op' from batch where name = 'mixed'),
          'and its results are the per-op engine''s, op by op');
select is((select array_agg(r ->> 'status') from batch, jsonb_array_elements(answer -> 'bulk') r where name = 'mixed'),
          array['applied', 'applied', 'applied', 'applied', 'applied', 'applied', 'applied', 'applied'],
          'every op of that batch is applied');
select is((select jsonb_agg(jsonb_build_array(r -> 'row' ->> 'version', r -> 'row' -> 'deleted_at'))
             from batch, jsonb_array_elements(answer -> 'bulk') r where name = 'mixed'),
          '[["1", false], ["1", false], ["1", false], ["2", false], ["1", false], ["3", false], ["2", true], ["2", true]]'::jsonb,
          'new rows start at version 1, edits and deletes add one, the unchanged key person and the old tombstone keep theirs');

-- A create and its edits, as an offline queue sends them, are written in waves (the first op of
-- every row, then the second, ...), with the per-op engine's results.
insert into batch values ('waves', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000021', null, '{"name": "PT Twice"}'),
  tests.op(gen_random_uuid(), 'insert', 'key_persons', 'b0000000-0000-4000-8000-000000000022', null,
           '{"customer_id": "b0000000-0000-4000-8000-000000000021", "name": "First Contact"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', 'b0000000-0000-4000-8000-000000000021', 1, '{"notes": "then edited"}'),
  tests.op(gen_random_uuid(), 'update', 'key_persons', 'b0000000-0000-4000-8000-000000000022', 1, '{"position": "Director"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', 'b0000000-0000-4000-8000-000000000021', 2, '{"phone": "+62 21 555 0021"}'),
  tests.op(gen_random_uuid(), 'delete', 'key_persons', 'b0000000-0000-4000-8000-000000000022', 2)
)));
select isnt((select answer -> 'bulk' from batch where name = 'waves'), '"declined"',
            'the bulk engine takes a batch with several ops on a row');
select is((select answer -> 'bulk' from batch where name = 'waves'), (select answer -> 'per_op' from batch where name = 'waves'),
          'and its results, wave by wave, are the per-op engine''s');
select is((select jsonb_agg(r -> 'row' -> 'version') from batch, jsonb_array_elements(answer -> 'bulk') r where name = 'waves'),
          '[1, 1, 2, 2, 3, 3]', 'each op of a row sees the version the one before it left');

-- A stale edit among current ones: its row, and the rows tied to it as parent or child, go to the
-- per-op engine after the rest; the other rows are the bulk engine's, and every result is the one
-- the per-op engine gives for the whole batch (each run audits the conflict under its own id).
insert into batch values ('partial', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000031', null, '{"name": "PT Among Stale"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', 0, '{"notes": "stale"}'),
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000041', 1, '{"position": "Under a stale parent"}'),
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000081', 1, '{"position": "Elsewhere"}')
)));
select isnt((select answer -> 'bulk' from batch where name = 'partial'), '"declined"',
            'the bulk engine takes a batch with a stale edit in it');
select is((select jsonb_agg(r #- '{conflict,id}') from batch, jsonb_array_elements(answer -> 'bulk') r where name = 'partial'),
          (select jsonb_agg(r #- '{conflict,id}') from batch, jsonb_array_elements(answer -> 'per_op') r where name = 'partial'),
          'and its results, the stale edit''s conflict included, are the per-op engine''s');
select ok((select answer -> 'bulk' -> 1 ? 'conflict' from batch where name = 'partial'),
          'the stale edit was checked and audited as a conflict');

-- A value the push refuses (NaN, a date word, a number the database cannot hold) is the per-op
-- engine's to name: its row goes there after the rest, and the others stay the bulk engine's.
insert into batch values ('refused values', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000091', null, '{"name": "PT Among Poison"}'),
  tests.op(gen_random_uuid(), 'insert', 'pipelines', 'b0000000-0000-4000-8000-000000000092', null,
           '{"customer_id": "00000000-0000-4000-8100-000000000004", "title": "Poison", "potential_value": "NaN"}'),
  tests.op(gen_random_uuid(), 'update', 'activities', '00000000-0000-4000-8400-000000000041', null, '{"scheduled_at": "tomorrow"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000008', null, '{"notes": "1e400000"}')
    || '{"unstorable_numbers": [["data", "notes"]]}',
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000081', 1, '{"position": "Beside the poison"}')
)));
select isnt((select answer -> 'bulk' from batch where name = 'refused values'), '"declined"',
            'the bulk engine takes a batch with refused values in it');
select is((select answer -> 'bulk' from batch where name = 'refused values'),
          (select answer -> 'per_op' from batch where name = 'refused values'),
          'and its results, the refusals naming their fields, are the per-op engine''s');
select is((select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'field')) from batch, jsonb_array_elements(answer -> 'bulk') r
            where name = 'refused values'),
          '[["applied", null], ["rejected", "potential_value"], ["rejected", "scheduled_at"], ["rejected", "notes"], ["applied", null]]',
          'the refused values are rejected naming their fields, the ops beside them applied');

-- An op of a later wave the bulk engine may not decide undoes the waves before it: the per-op
-- engine then applies the batch once, in order.
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
         tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000071', null, '{"name": "PT Wave"}'),
         tests.op(gen_random_uuid(), 'update', 'customers', 'b0000000-0000-4000-8000-000000000071', 1,
                  jsonb_build_object('assigned_rm_id', tests.user_id('rm2.jakarta@crm.test')))))) -> 'results') r),
  '[["applied", null], ["rejected", "forbidden"]]',
  'a refused edit in the second wave: the create applies once, the edit is refused');
select is((select version from public.customers where id = 'b0000000-0000-4000-8000-000000000071'), 1::bigint,
          'and the row is there once, as created');

-- Now through the door: the bulk engine's writes are there, attributed, and audited like any other.
select is(
  (select jsonb_agg(r ->> 'status') from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000011', null, '{"name": "PT Bulk Door"}'),
       tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000008', 1, '{"notes": "through the door"}')))) -> 'results') r),
  '["applied", "applied"]', 'a push through public.sync_push applies a bulk batch');
select is((select row(assigned_rm_id, branch_id, created_by, version)::text from public.customers where id = 'b0000000-0000-4000-8000-000000000011'),
          row(tests.user_id('rm1.jakarta@crm.test'), '00000000-0000-4000-8000-0000000000b1'::uuid, tests.user_id('rm1.jakarta@crm.test'), 1)::text,
          'a new customer takes its owner and branch defaults and its author from the token');
select tests.clear_authentication();
select is((select changed_columns from sync.row_versions where table_name = 'customers'
             and row_id = '00000000-0000-4000-8100-000000000008' and version = 2),
          array['notes'], 'the version log records what the bulk edit changed');
select is((select count(*)::int from sync.conflicts where row_id = '00000000-0000-4000-8100-000000000008'), 0,
          'an edit based on the current version is no conflict');
select tests.engine_acting_for('rm1.jakarta@crm.test');

-- Batches the per-op engine must decide, because order, a conflict or a refusal decides them.
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000023', null, '{"name": "PT Late Delete"}'),
  tests.op(gen_random_uuid(), 'delete', 'customers', 'b0000000-0000-4000-8000-000000000023', 1),
  tests.op(gen_random_uuid(), 'insert', 'key_persons', 'b0000000-0000-4000-8000-000000000024', null,
           '{"customer_id": "b0000000-0000-4000-8000-000000000023", "name": "After the delete"}'))) -> 'bulk',
  '"declined"', 'a new row under a parent that an earlier op deleted, in a later wave, goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000012', 7, '{"notes": "stale"}'))) -> 'bulk',
  '"declined"', 'an edit based on an old version (a conflict) goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'key_persons', 'b0000000-0000-4000-8000-000000000031', null,
           '{"customer_id": "b0000000-0000-4000-8000-000000000032", "name": "Early child"}'),
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000032', null, '{"name": "PT Late Parent"}'))) -> 'bulk',
  '"declined"', 'a child sent before its parent goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'delete', 'customers', '00000000-0000-4000-8100-000000000016', 1),
  tests.op(gen_random_uuid(), 'insert', 'activities', 'b0000000-0000-4000-8000-000000000041', null,
           '{"customer_id": "00000000-0000-4000-8100-000000000016", "activity_type": "call", "subject": "too late", "scheduled_at": "2027-01-04T09:00:00Z"}'))) -> 'bulk',
  '"declined"', 'a new row under a parent deleted earlier in the batch goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000051', null,
           jsonb_build_object('name', 'PT Not Mine', 'assigned_rm_id', tests.user_id('rm2.jakarta@crm.test'))))) -> 'bulk',
  '"declined"', 'a column the role may not write goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'update', 'key_persons', '00000000-0000-4000-8200-000000000041', 1,
           '{"customer_id": "00000000-0000-4000-8100-000000000020"}'))) -> 'bulk',
  '"declined"', 'moving a row to another parent (a scope change) goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', '00000000-0000-4000-8100-000000000001', null, '{"name": "PT Taken"}'))) -> 'bulk',
  '"declined"', 'an insert of an id that exists, even out of sight, goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000024', 1, '{"no_such_column": 1}'))) -> 'bulk',
  '"declined"', 'an unknown column goes to the per-op engine');
select is(tests.both_engines(jsonb_build_array(
  jsonb_build_object('op_id', gen_random_uuid(), 'table', 'customers', 'op', 'update', 'id', '00000000-0000-4000-8100-000000000028',
                     'data', '{"notes": "legacy"}'::jsonb, 'legacy_item_id', 7))) -> 'bulk',
  '"declined"', 'a legacy (protocol 1) item goes to the per-op engine');

-- An unversioned edit over another user's change is last-write-wins, logged with its op: per-op.
select tests.engine_acting_for('bm.jakarta@crm.test');
update public.customers set notes = 'by the bm' where id = '00000000-0000-4000-8100-000000000032';
select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000032', null, '{"notes": "mine"}'))) -> 'bulk',
  '"declined"', 'an unversioned edit over another user''s change goes to the per-op engine');

-- A statement that fails inside the bulk engine returns the batch to the per-op engine, which
-- names the op at fault and applies the others.
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
         tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000061', null, '{"name": "PT Fine"}'),
         tests.op(gen_random_uuid(), 'insert', 'activities', 'b0000000-0000-4000-8000-000000000062', null,
                  '{"customer_id": "00000000-0000-4000-8100-000000000004", "activity_type": "call", "subject": "when?", "scheduled_at": "not a time"}'))))
       -> 'results') r),
  '[["applied", null, null], ["rejected", "invalid", "scheduled_at"]]',
  'a value the column refuses sends the batch to the per-op engine: that op is rejected naming the field, the other applied');

-- The flag that lets the bulk engine's guarded writes skip the conflict check is its alone: a
-- client's stale write outside it is still a conflict.
select ok(
  (select r ? 'conflict' from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000008', 1, '{"notes": "stale again"}')))) -> 'results') r),
  'after a bulk push, a stale edit of the row it wrote is still a conflict');

-- The field rules a statement trigger caches cannot be forged: every statement recomputes them.
select set_config('sync.field_rules_customers', '{"role": "rm", "denied": {}}', true);
select throws_ok(
  $$ insert into public.customers (name, assigned_rm_id) values ('PT Forged', tests.user_id('rm2.jakarta@crm.test')) $$,
  '42501', 'permission denied: role rm may not write customers.assigned_rm_id',
  'a field-rule cache set by the caller is overwritten before any row is checked'
);

-- A refusal names its field whenever one column is at fault, in both engines alike: a column the
-- caller's role may not write, on a new row as on an edit (the row trigger refuses the insert), and
-- a reference to a row that does not exist.
insert into batch values ('refused columns', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000101', null,
           jsonb_build_object('name', 'PT Not Mine', 'assigned_rm_id', tests.user_id('rm2.jakarta@crm.test'))),
  tests.op(gen_random_uuid(), 'insert', 'pipelines', 'b0000000-0000-4000-8000-000000000102', null,
           '{"customer_id": "00000000-0000-4000-8100-000000000004", "title": "Self-approved", "approval_status": "approved"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', null,
           jsonb_build_object('assigned_rm_id', tests.user_id('rm2.jakarta@crm.test'))),
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000103', null, '{"name": "PT Beside Them"}'))));
select is((select answer -> 'bulk' from batch where name = 'refused columns'),
          (select answer -> 'per_op' from batch where name = 'refused columns'),
          'refused columns: the bulk engine''s results are the per-op engine''s');
select is((select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field', r ->> 'message'))
             from batch, jsonb_array_elements(answer -> 'per_op') r where name = 'refused columns'),
          '[["rejected", "forbidden", "assigned_rm_id", "permission denied: role rm may not write customers.assigned_rm_id"],
            ["rejected", "forbidden", "approval_status", "permission denied: role rm may not move pipelines.approval_status from draft to approved"],
            ["rejected", "forbidden", "assigned_rm_id", "permission denied: role rm may not write customers.assigned_rm_id"],
            ["applied", null, null, null]]'::jsonb,
          'a column the role may not write is rejected/forbidden naming it as the field, on insert and update');
insert into batch values ('missing reference', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'activities', 'b0000000-0000-4000-8000-000000000104', null,
           '{"customer_id": "00000000-0000-4000-8100-000000000004", "pipeline_id": "b0000000-0000-4000-8000-0000000001ff",
             "activity_type": "call", "subject": "About nothing", "scheduled_at": "2026-12-03T09:00:00Z"}'))));
select is((select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
             from batch, jsonb_array_elements(answer -> 'per_op') r where name = 'missing reference'),
          '[["failed", "dependency_missing", "pipeline_id"]]'::jsonb,
          'a reference to a row that does not exist is failed/dependency_missing naming the field');

-- The bulk engine's writes are written out for the columns a table had when it was registered
-- (sync.bulk_write). A table altered since then is the per-op engine's, which reads the catalog,
-- until it is registered again: no column is left out of a write.
select tests.clear_authentication();
alter table public.customers add column nickname text;
select tests.engine_acting_for('rm1.jakarta@crm.test');
insert into batch values ('altered', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000091', null, '{"name": "PT Altered", "nickname": "Alt"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', 1, '{"nickname": "Four"}'))));
select is((select answer -> 'bulk' from batch where name = 'altered'), '"declined"',
          'a table altered since it was registered is left to the per-op engine');
select is((select jsonb_agg(jsonb_build_array(r ->> 'status', r -> 'row' ->> 'nickname')) from batch, jsonb_array_elements(answer -> 'per_op') r
            where name = 'altered'),
          '[["applied", "Alt"], ["applied", "Four"]]'::jsonb,
          'which writes the new column');
select tests.clear_authentication();
select sync.register_table('public.customers', 'customer', 'owned', p_owner_column => 'assigned_rm_id', p_branch_column => 'branch_id');
select tests.engine_acting_for('rm1.jakarta@crm.test');
insert into batch values ('registered again', tests.both_engines(jsonb_build_array(
  tests.op(gen_random_uuid(), 'insert', 'customers', 'b0000000-0000-4000-8000-000000000091', null, '{"name": "PT Altered", "nickname": "Alt"}'),
  tests.op(gen_random_uuid(), 'update', 'customers', '00000000-0000-4000-8100-000000000004', 1, '{"nickname": "Four"}'))));
select isnt((select answer -> 'bulk' from batch where name = 'registered again'), '"declined"',
            'registered again, the table is the bulk engine''s again');
select is((select answer -> 'bulk' from batch where name = 'registered again'), (select answer -> 'per_op' from batch where name = 'registered again'),
          'and it writes the new column as the per-op engine does');

select * from finish();
rollback;
