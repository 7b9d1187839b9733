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

-- The matrix as a DBA reads it: one row per role, syncable table and client-writable column.
create view sync.field_rule_matrix
with (security_invoker = true)
as
select roles.app_role,
       t.table_name,
       a.attname::text as column_name,
       coalesce(exact.may_write, star.may_write, false) as may_write,
       coalesce(exact.note, star.note) as note,
       exact.may_write is null and star.may_write is null as unruled
  from sync.tables t
  join pg_catalog.pg_attribute a
    on a.attrelid = ('public.' || quote_ident(t.table_name))::regclass
   and a.attnum > 0 and not a.attisdropped
   and a.attname <> all (sync.server_columns())
 cross join (values ('rm'), ('bm'), ('admin')) roles (app_role)
  left join sync.field_rules exact
    on exact.app_role = roles.app_role and exact.table_name = t.table_name and exact.column_name = a.attname
  left join sync.field_rules star
    on star.app_role = roles.app_role and star.table_name = t.table_name and star.column_name = '*';
comment on view sync.field_rule_matrix is
  'Every cell of the field-rule matrix (role x syncable table x client column) with the rule that decides it; unruled cells deny.';
grant select on sync.field_rule_matrix to authenticated, service_role;
