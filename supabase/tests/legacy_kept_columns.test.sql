-- A legacy (protocol 1) item carries the whole entity as the device last saw it. A column the app
-- names in sync.legacy_kept_columns for the writer's role is never this device's edit: a copy that
-- differs from the server (someone else's later change) stays as the server has it, and the item's
-- own edits apply. Without the entry the same copy is a move the role may not make, and the whole
-- item is refused.
begin;
select plan(6);

-- rm1 Jakarta's customer and pipeline, submitted by the rm and approved by the bm since.
select tests.authenticate_as('rm1.jakarta@crm.test');
select public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000e001', 'insert', 'customers', 'f0000000-0000-4000-8000-00000000e0c1',
           null, '{"name": "PT Legacy Kept"}'),
  tests.op('0e000000-0000-4000-8000-00000000e002', 'insert', 'pipelines', 'f0000000-0000-4000-8000-00000000e0d1',
           null, '{"customer_id": "f0000000-0000-4000-8000-00000000e0c1", "title": "Kept", "approval_status": "submitted"}'))));
select tests.authenticate_as('bm.jakarta@crm.test');
select public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0e000000-0000-4000-8000-00000000e003', 'update', 'pipelines', 'f0000000-0000-4000-8000-00000000e0d1',
           1, '{"approval_status": "approved"}'))));
select tests.clear_authentication();

-- The old app's queued edit of the pipeline, made before the approval.
create temp table legacy_item on commit drop as
  select jsonb_build_object('id', 1, 'entityType', 'pipeline', 'entityId', 'f0000000-0000-4000-8000-00000000e0d1',
                            'operation', 'update', 'createdAt', '2026-12-01T08:00:00Z',
                            'payload', jsonb_build_object('title', 'Kept', 'approvalStatus', 'submitted',
                                                          'notes', 'queued before the approval')) as item;
grant select on legacy_item to authenticated;

select is(
  (select approval_status from public.pipelines where id = 'f0000000-0000-4000-8000-00000000e0d1'),
  'approved',
  'the bm approved the pipeline the rm submitted'
);

select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select public.sync_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-0000000000e1',
                                              'items', jsonb_build_array(item))) -> 'results' -> 0 ->> 'status'
     from legacy_item),
  'applied',
  'an rm''s legacy item whose copy of approval_status the bm has moved since applies'
);
select tests.clear_authentication();
select is(
  (select jsonb_build_object('approval_status', approval_status, 'notes', notes)
     from public.pipelines where id = 'f0000000-0000-4000-8000-00000000e0d1'),
  '{"approval_status": "approved", "notes": "queued before the approval"}',
  'the bm''s approval stands and the rm''s edit is applied'
);

-- Without the app's entry, the same copy is a move the rm may not make.
delete from sync.legacy_kept_columns where app_role = 'rm' and table_name = 'pipelines';
update legacy_item set item = jsonb_set(jsonb_set(item, '{id}', '2'), '{payload,notes}', '"again"');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select jsonb_build_object('status', r ->> 'status', 'code', r ->> 'code', 'field', r ->> 'field', 'message', r ->> 'message')
     from legacy_item,
          lateral (select public.sync_push(jsonb_build_object('protocol', 1, 'client_id', 'c0000000-0000-4000-8000-0000000000e2',
                                                             'items', jsonb_build_array(item))) -> 'results' -> 0 as r) x),
  '{"status": "rejected", "code": "forbidden", "field": "approval_status", "message": "permission denied: role rm may not move pipelines.approval_status from approved to submitted"}',
  'without the entry, the copy is a move and the whole item is refused naming the column'
);
select tests.clear_authentication();

-- The list is the engine's: no client role reads or executes it.
select ok(
  not has_table_privilege('authenticated', 'sync.legacy_kept_columns', 'select')
  and not has_table_privilege('anon', 'sync.legacy_kept_columns', 'select'),
  'no client role reads sync.legacy_kept_columns'
);
select ok(
  not has_function_privilege('authenticated', 'sync.legacy_kept_columns(text, text, text[])', 'execute'),
  'no client role executes sync.legacy_kept_columns()'
);

select * from finish();
rollback;
