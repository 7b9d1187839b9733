-- The field-rule matrix of the CRM: which role may change which column. '*' covers a table's other
-- columns; anything not allowed here is refused with 42501 naming role, table and column.

insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
select 'admin', t.table_name, '*', true, 'admins maintain everything'
  from sync.tables t;

insert into sync.field_rules (app_role, table_name, column_name, may_write, note) values
  -- branch managers run their branch: reassign within it, approve pipelines
  ('bm', 'branches', '*', false, 'only admins maintain branches'),
  ('bm', 'profiles', '*', false, 'only admins maintain staff'),
  ('bm', 'hvcs', '*', false, 'reference data'),
  ('bm', 'brokers', '*', false, 'reference data'),
  ('bm', 'customers', '*', true, null),
  ('bm', 'customers', 'branch_id', false, 'customers move between branches only by an admin'),
  ('bm', 'key_persons', '*', true, null),
  ('bm', 'customer_hvc_links', '*', true, null),
  ('bm', 'pipelines', '*', true, 'includes approval'),
  ('bm', 'pipelines', 'branch_id', false, 'pipelines move between branches only by an admin'),
  ('bm', 'pipeline_referrals', '*', true, null),
  ('bm', 'activities', '*', true, null),
  -- relationship managers work their own customers
  ('rm', 'branches', '*', false, 'only admins maintain branches'),
  ('rm', 'profiles', '*', false, 'only admins maintain staff'),
  ('rm', 'hvcs', '*', false, 'reference data'),
  ('rm', 'brokers', '*', false, 'reference data'),
  ('rm', 'customers', '*', true, null),
  ('rm', 'customers', 'assigned_rm_id', false, 'assignment is the branch manager''s'),
  ('rm', 'customers', 'branch_id', false, 'assignment is the branch manager''s'),
  ('rm', 'key_persons', '*', true, null),
  ('rm', 'customer_hvc_links', '*', true, null),
  ('rm', 'pipelines', '*', true, null),
  ('rm', 'pipelines', 'assigned_rm_id', false, 'assignment is the branch manager''s'),
  ('rm', 'pipelines', 'branch_id', false, 'assignment is the branch manager''s'),
  ('rm', 'pipelines', 'approval_status', false, 'approval is the branch manager''s'),
  ('rm', 'pipelines', 'approved_value', false, 'approval is the branch manager''s'),
  ('rm', 'pipelines', 'approved_by', false, 'approval is the branch manager''s'),
  ('rm', 'pipelines', 'approved_at', false, 'approval is the branch manager''s'),
  ('rm', 'pipeline_referrals', '*', true, null),
  ('rm', 'activities', '*', true, null);
