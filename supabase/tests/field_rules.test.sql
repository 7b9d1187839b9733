-- The field-rule matrix decides which role may change which column, on every write path. Every
-- cell of sync.field_rule_matrix is checked against sync.assert_may_write(); the cells the product
-- depends on are spelled out, so a change to the rule data cannot quietly drop them; and real
-- statements show the triggers enforce them.
begin;

select plan(
  (select count(*)::int from sync.field_rule_matrix)                  -- every cell
  + 2 * (select count(*)::int + 2 from pg_attribute a                  -- rm and bm x reference-data columns (+ a future column per table)
          where a.attrelid in ('public.hvcs'::regclass, 'public.brokers'::regclass)
            and a.attnum > 0 and not a.attisdropped and a.attname <> all (sync.server_columns()))
  + 37
);

-- Every cell, as the matrix states it.
select case
         when m.may_write then lives_ok(
           format('select sync.assert_may_write(%L, %L, array[%L])', m.app_role, m.table_name, m.column_name),
           format('%s may write %s.%s', m.app_role, m.table_name, m.column_name))
         else throws_ok(
           format('select sync.assert_may_write(%L, %L, array[%L])', m.app_role, m.table_name, m.column_name),
           '42501',
           format('permission denied: role %s may not write %s.%s', m.app_role, m.table_name, m.column_name),
           format('%s may not write %s.%s', m.app_role, m.table_name, m.column_name))
       end
  from sync.field_rule_matrix m
 order by m.table_name, m.column_name, m.app_role;

-- Cells that must hold whatever the rule data says.
select throws_ok($$ select sync.assert_may_write('rm', 'customers', array['assigned_rm_id']) $$, '42501',
                 'permission denied: role rm may not write customers.assigned_rm_id', 'spec: an rm does not assign customers');
select throws_ok($$ select sync.assert_may_write('rm', 'customers', array['branch_id']) $$, '42501',
                 'permission denied: role rm may not write customers.branch_id', 'spec: an rm does not move customers between branches');
select throws_ok($$ select sync.assert_may_write('rm', 'pipelines', array['assigned_rm_id']) $$, '42501',
                 'permission denied: role rm may not write pipelines.assigned_rm_id', 'spec: an rm does not assign pipelines');
select throws_ok($$ select sync.assert_may_write('rm', 'pipelines', array['branch_id']) $$, '42501',
                 'permission denied: role rm may not write pipelines.branch_id', 'spec: an rm does not move pipelines between branches');
select lives_ok($$ select sync.assert_may_write('rm', 'pipelines', array['approval_status']) $$,
                'spec: an rm writes approval_status, to submit and withdraw (the moves are sync.crm_approval_transitions'')');
select throws_ok($$ select sync.assert_may_write('rm', 'pipelines', array['approved_value']) $$, '42501',
                 'permission denied: role rm may not write pipelines.approved_value', 'spec: an rm does not set the approved value');
select throws_ok(format('select sync.assert_may_write(%L, %L, array[%L])', r.app_role, 'pipelines', c.column_name), '42501',
                 format('permission denied: role %s may not write pipelines.%s', r.app_role, c.column_name),
                 format('spec: the server, not %s, records pipelines.%s', r.app_role, c.column_name))
  from (values ('rm'), ('bm'), ('admin')) r (app_role)
 cross join (values ('approved_by'), ('approved_at'), ('submitted_by')) c (column_name);

select throws_ok(
  format('select sync.assert_may_write(%L, %L, array[%L])', r.app_role, t.table_name, c.column_name),
  '42501',
  format('permission denied: role %s may not write %s.%s', r.app_role, t.table_name, c.column_name),
  format('spec: %s may not write reference data %s.%s', r.app_role, t.table_name, c.column_name)
)
  from (values ('rm'), ('bm')) r (app_role)
 cross join (values ('hvcs'), ('brokers')) t (table_name)
 cross join lateral (
   select a.attname::text as column_name, a.attnum as ord
     from pg_attribute a
    where a.attrelid = format('public.%I', t.table_name)::regclass
      and a.attnum > 0 and not a.attisdropped and a.attname <> all (sync.server_columns())
   union all
   select 'column_added_later', 32767
 ) c
 order by r.app_role, t.table_name, c.ord;

select lives_ok($$ select sync.assert_may_write('bm', 'pipelines', array['approval_status']) $$,
                'spec: a bm approves pipelines');
select lives_ok($$ select sync.assert_may_write('bm', 'pipelines', array['approval_status', 'approved_value']) $$,
                'spec: a bm records the approval and the approved value');
select lives_ok($$ select sync.assert_may_write('bm', 'customers', array['assigned_rm_id']) $$,
                'spec: a bm assigns customers');
select throws_ok($$ select sync.assert_may_write('rm', 'pipelines', array['title', 'approved_value', 'approved_by']) $$, '42501',
                 'permission denied: role rm may not write pipelines.approved_value',
                 'the refusal names the first column the role may not write');

-- Real statements, as the users.
select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq(
  $$ update public.customers set phone = '+62 811 1234' where id = '00000000-0000-4000-8100-000000000004' returning phone $$,
  $$ values ('+62 811 1234') $$,
  'an rm changes their own customer''s phone'
);
select throws_ok(
  $$ update public.customers set assigned_rm_id = tests.user_id('rm2.jakarta@crm.test')
      where id = '00000000-0000-4000-8100-000000000004' $$,
  '42501',
  'permission denied: role rm may not write customers.assigned_rm_id',
  'an rm cannot hand their customer to another rm'
);
select results_eq(
  $$ update public.customers set assigned_rm_id = tests.user_id('rm1.jakarta@crm.test'), notes = 'full row sent back'
      where id = '00000000-0000-4000-8100-000000000004' returning notes $$,
  $$ values ('full row sent back') $$,
  'an rm may send back the unchanged value of a column they may not write'
);
select results_eq(
  $$ insert into public.customers (name, assigned_rm_id, branch_id)
     values ('PT Explicit', tests.user_id('rm1.jakarta@crm.test'), '00000000-0000-4000-8000-0000000000b1') returning name $$,
  $$ values ('PT Explicit') $$,
  'an rm may name themselves and their branch on a new customer (the defaults)'
);
select throws_ok(
  $$ update public.pipelines set approval_status = 'approved' where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501',
  'permission denied: role rm may not move pipelines.approval_status from draft to approved',
  'an rm cannot approve their own pipeline'
);
select throws_ok(
  $$ update public.pipelines set approved_value = 1 where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501',
  'permission denied: role rm may not write pipelines.approved_value',
  'an rm cannot set the approved value of their own pipeline'
);
select results_eq(
  $$ insert into public.pipelines (customer_id, title, approval_status)
     values ('00000000-0000-4000-8100-000000000004', 'Marine cargo', 'draft') returning approval_status $$,
  $$ values ('draft') $$,
  'an rm creates a pipeline in draft, the default approval status'
);
select throws_ok(
  $$ insert into public.pipelines (customer_id, title, approval_status)
     values ('00000000-0000-4000-8100-000000000004', 'Marine cargo', 'approved') $$,
  '42501',
  'permission denied: role rm may not move pipelines.approval_status from draft to approved',
  'an rm cannot create a pipeline that is already approved'
);
select results_eq(
  $$ update public.pipelines set approval_status = 'submitted' where id = '00000000-0000-4000-8300-000000000004'
     returning approval_status, submitted_by $$,
  $$ values ('submitted', tests.user_id('rm1.jakarta@crm.test')) $$,
  'an rm submits their pipeline for approval'
);

select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ update public.pipelines
        set approval_status = 'approved', approved_value = 150000000
      where id = '00000000-0000-4000-8300-000000000004' returning approval_status, approved_by $$,
  $$ values ('approved', tests.user_id('bm.jakarta@crm.test')) $$,
  'a bm approves a pipeline of their branch'
);
select throws_ok(
  $$ update public.pipelines set branch_id = '00000000-0000-4000-8000-0000000000b2'
      where id = '00000000-0000-4000-8300-000000000004' $$,
  '42501',
  'permission denied: role bm may not write pipelines.branch_id',
  'a bm cannot move a pipeline to another branch'
);
select throws_ok(
  $$ update public.customers set branch_id = '00000000-0000-4000-8000-0000000000b2'
      where id = '00000000-0000-4000-8100-000000000004' $$,
  '42501',
  'permission denied: role bm may not write customers.branch_id',
  'a bm cannot move a customer to another branch'
);

select tests.clear_authentication();
insert into auth.users (email) values ('no.profile@crm.test');
select tests.authenticate_as('no.profile@crm.test');
select throws_ok(
  $$ insert into public.customers (name) values ('PT Nobody') $$,
  '42501',
  'permission denied: authenticated has no role and may not write customers',
  'a signed-in user without a profile may write nothing'
);
select throws_ok(
  $$ select sync.assert_may_write(sync.current_app_role(), 'customers', array['name']) $$,
  '42501',
  'permission denied: authenticated has no role and may not write customers',
  'without an application role, not even a column every role may write is allowed'
);

select tests.authenticate_as_service_role();
select results_eq(
  $$ update public.pipelines
        set approval_status = 'rejected', approved_value = null, approved_by = tests.user_id('admin@crm.test')
      where id = '00000000-0000-4000-8300-000000000004' returning approval_status, approved_by $$,
  $$ values ('rejected', tests.user_id('admin@crm.test')) $$,
  'service_role is not bound by field rules (pipelines)'
);
select results_eq(
  $$ update public.hvcs set name = 'Set by service' where id = '00000000-0000-4000-8001-000000000001' returning name $$,
  $$ values ('Set by service') $$,
  'service_role is not bound by field rules (reference data)'
);
select results_eq(
  $$ insert into public.pipelines (customer_id, title, approval_status, approved_by)
     values ('00000000-0000-4000-8100-000000000004', 'Imported', 'approved', tests.user_id('bm.jakarta@crm.test'))
     returning approval_status $$,
  $$ values ('approved') $$,
  'service_role inserts an approved pipeline'
);

-- The table owner (migrations, maintenance) is not bound either.
select tests.clear_authentication();
select results_eq(
  $$ update public.customers set branch_id = '00000000-0000-4000-8000-0000000000b2',
                                 assigned_rm_id = tests.user_id('rm2.surabaya@crm.test')
      where id = '00000000-0000-4000-8100-000000000008' returning branch_id $$,
  $$ values ('00000000-0000-4000-8000-0000000000b2'::uuid) $$,
  'the table owner is not bound by field rules'
);

select * from finish();
rollback;
