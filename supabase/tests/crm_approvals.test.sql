-- Approvals as a workflow: a pipeline's approval_status moves only along the transitions the CRM
-- declares as data (sync.crm_approval_transitions: role, from, to), on every write path; nobody
-- approves their own submission; who submitted and who decided are the server's to record; once
-- approved, the money and the stage are a bm's of the branch or an admin's; a stale edit of the
-- approval waits for a person. Pipeline 4 and 8 are rm1.jakarta's, of Jakarta.
begin;
select plan(30);

select results_eq(
  $$ select app_role, from_status, to_status from sync.crm_approval_transitions where app_role <> 'admin' order by 1, 2, 3 $$,
  $$ values ('bm', 'submitted', 'approved'), ('bm', 'submitted', 'rejected'),
            ('rm', 'draft', 'submitted'), ('rm', 'submitted', 'draft') $$,
  'the workflow is data: an rm submits and withdraws, a bm approves or rejects a submission'
);
select is((select count(*)::int from sync.crm_approval_transitions where app_role = 'admin'), 12,
          'an admin may make any of the twelve moves');
select results_eq(
  $$ select distinct column_name from sync.crm_approved_columns order by 1 $$,
  $$ values ('approved_value'), ('currency'), ('potential_value'), ('stage') $$,
  'an approved pipeline''s money and stage are locked'
);
select results_eq(
  $$ select column_name, merge_fallback::text from sync.column_conflict_rules
      where table_name = 'pipelines' and column_name in ('approval_status', 'approved_by', 'approved_at', 'submitted_by')
      order by 1 $$,
  $$ values ('approval_status', 'manual'), ('approved_at', 'manual'), ('approved_by', 'manual'), ('submitted_by', 'manual') $$,
  'conflicts on the approval fields wait for a person'
);

-- An rm: submit, withdraw, and nothing else.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not move pipelines.approval_status from draft to approved',
  'an rm cannot approve a draft'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'rejected' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not move pipelines.approval_status from draft to rejected',
  'nor reject one'
);
select results_eq(
  $$ update public.pipelines set approval_status = 'submitted' where id = '00000000-0000-4000-8300-000000000004'
     returning approval_status, submitted_by, approved_by, approved_at $$,
  $$ values ('submitted', tests.user_id('rm1.jakarta@crm.test'), null::uuid, null::timestamptz) $$,
  'an rm submits their pipeline: the server records who submitted'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not move pipelines.approval_status from submitted to approved',
  'an rm cannot approve their own submission'
);
select results_eq(
  $$ update public.pipelines set approval_status = 'draft' where id = '00000000-0000-4000-8300-000000000004'
     returning approval_status, submitted_by $$,
  $$ values ('draft', null::uuid) $$,
  'an rm withdraws their submission'
);
select results_eq(
  $$ insert into public.pipelines (customer_id, title, approval_status)
     values ('00000000-0000-4000-8100-000000000004', 'Submitted at once', 'submitted') returning approval_status, submitted_by $$,
  $$ values ('submitted', tests.user_id('rm1.jakarta@crm.test')) $$,
  'an rm may create a pipeline already submitted (a new pipeline starts from draft)'
);
update public.pipelines set approval_status = 'submitted' where id = '00000000-0000-4000-8300-000000000004';

-- A bm of another branch does not reach the pipeline at all.
select tests.authenticate_as('bm.surabaya@crm.test');
select is_empty(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000004' returning id $$,
  'a bm of another branch cannot approve a Jakarta pipeline (it is not theirs to see)'
);

-- The bm of the branch decides; the server records who and when, and refuses what the client says of it.
select tests.authenticate_as('bm.jakarta@crm.test');
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved', approved_by = tests.user_id('rm2.jakarta@crm.test')
      where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role bm may not write pipelines.approved_by',
  'a client''s approver is refused, not taken: the server records who approved'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved', approved_at = now() - interval '1 day'
      where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role bm may not write pipelines.approved_at',
  'so is a client''s approval time'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000008' $$,
  '42501', 'permission denied: role bm may not move pipelines.approval_status from draft to approved',
  'a bm approves only what was submitted'
);
select results_eq(
  $$ update public.pipelines set approval_status = 'approved', approved_value = 120000000
      where id = '00000000-0000-4000-8300-000000000004'
     returning approval_status, approved_value, approved_by, approved_at = updated_at, submitted_by $$,
  $$ values ('approved', 120000000.00::numeric, tests.user_id('bm.jakarta@crm.test'), true, tests.user_id('rm1.jakarta@crm.test')) $$,
  'the bm of the branch approves a submission: the server records who and when'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'draft' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role bm may not move pipelines.approval_status from approved to draft',
  'a bm does not reopen an approved pipeline'
);

-- Once approved, the money and the stage are the bm's and the admin's.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ update public.pipelines set stage = 'won' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not change pipelines.stage of an approved pipeline',
  'an rm cannot move an approved pipeline''s stage'
);
select throws_ok(
  $$ update public.pipelines set potential_value = 1 where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not change pipelines.potential_value of an approved pipeline',
  'nor its potential value'
);
select throws_ok(
  $$ update public.pipelines set currency = 'USD' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501', 'permission denied: role rm may not change pipelines.currency of an approved pipeline',
  'nor its currency'
);
select results_eq(
  $$ update public.pipelines set notes = 'called the director' where id = '00000000-0000-4000-8300-000000000004' returning notes $$,
  $$ values ('called the director') $$,
  'an rm still writes the rest of an approved pipeline'
);
select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ update public.pipelines set stage = 'won', potential_value = 130000000 where id = '00000000-0000-4000-8300-000000000004'
     returning stage, approval_status $$,
  $$ values ('won', 'approved') $$,
  'the bm of the branch moves an approved pipeline''s stage and value'
);

-- Nobody approves their own submission, not even an admin.
select tests.authenticate_as('admin@crm.test');
select results_eq(
  $$ update public.pipelines set approval_status = 'submitted' where id = '00000000-0000-4000-8300-000000000008'
     returning submitted_by $$,
  $$ values (tests.user_id('admin@crm.test')) $$,
  'an admin submits a pipeline'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000008' $$,
  '42501', 'permission denied: pipelines.approval_status from submitted to approved: nobody approves their own submission',
  'an admin cannot approve their own submission'
);
select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ update public.pipelines set approval_status = 'rejected' where id = '00000000-0000-4000-8300-000000000008'
     returning approval_status, approved_by $$,
  $$ values ('rejected', tests.user_id('bm.jakarta@crm.test')) $$,
  'the bm rejects it: approved_by records who decided'
);

-- The RPC door: the same rules, a refusal naming the field and the move.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field', r ->> 'message'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'update', 'pipelines', '00000000-0000-4000-8300-000000000012',
                (select version from public.pipelines where id = '00000000-0000-4000-8300-000000000012'),
                '{"approval_status": "approved"}'),
       tests.op(gen_random_uuid(), 'update', 'pipelines', '00000000-0000-4000-8300-000000000016', null,
                '{"approval_status": "submitted"}'))))::jsonb -> 'results') r),
  '[["rejected", "forbidden", "approval_status", "permission denied: role rm may not move pipelines.approval_status from draft to approved"],
    ["applied", null, null, null]]'::jsonb,
  'through sync_push a refused move is rejected/forbidden naming the field and the move, and a submission applies'
);
select is((select submitted_by from public.pipelines where id = '00000000-0000-4000-8300-000000000016'),
          tests.user_id('rm1.jakarta@crm.test'), 'the pushed submission records its author');

-- A stale edit of the approval waits for a person. The rm submits pipeline 20 (version n), the bm
-- reads it; the rm withdraws; the bm's approval, based on version n, does not apply.
update public.pipelines set approval_status = 'submitted' where id = '00000000-0000-4000-8300-000000000020';
create temp table seen on commit drop as
  select version from public.pipelines where id = '00000000-0000-4000-8300-000000000020';
grant select on seen to authenticated;
update public.pipelines set approval_status = 'draft' where id = '00000000-0000-4000-8300-000000000020';
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set approval_status = 'approved', version = -(select version from seen)
 where id = '00000000-0000-4000-8300-000000000020';
select is((select approval_status from public.pipelines where id = '00000000-0000-4000-8300-000000000020'), 'draft',
          'a stale approval of a withdrawn pipeline does not apply');
select tests.clear_authentication();
select results_eq(
  $$ select resolution::text, pending_fields from sync.conflicts
      where table_name = 'pipelines' and row_id = '00000000-0000-4000-8300-000000000020'
        and user_id = tests.user_id('bm.jakarta@crm.test') $$,
  $$ values ('manual_pending', array['approval_status']) $$,
  'it waits for a person, as a manual conflict on approval_status'
);

-- The owner and service_role (imports, maintenance) are not held to the workflow.
select tests.authenticate_as_service_role();
select results_eq(
  $$ insert into public.pipelines (customer_id, title, approval_status, approved_by)
     values ('00000000-0000-4000-8100-000000000004', 'Imported', 'approved', tests.user_id('bm.jakarta@crm.test'))
     returning approval_status, approved_by $$,
  $$ values ('approved', tests.user_id('bm.jakarta@crm.test')) $$,
  'service_role imports an approved pipeline with its approver'
);
select tests.clear_authentication();

-- A value that is no status is the column's check's to refuse.
select tests.authenticate_as('admin@crm.test');
select throws_ok(
  $$ update public.pipelines set approval_status = 'archived' where id = '00000000-0000-4000-8300-000000000024' $$,
  '23514', 'new row for relation "pipelines" violates check constraint "pipelines_approval_status_check"',
  'a value that is not a status is refused by the column, not taken for a move'
);
select tests.clear_authentication();

select * from finish();
rollback;
