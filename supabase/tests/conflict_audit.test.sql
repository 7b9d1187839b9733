-- The conflict audit keeps both sides of every conflict. Only the database writes it; admins read all
-- of it, other users the entries about their own edits.
begin;
select plan(34);

-- Its shape: the incoming op against the server row, and how it was resolved.
select col_type_is('sync', 'conflicts', c.col, c.typ, format('sync.conflicts.%s is %s', c.col, c.typ))
  from (values (1, 'table_name', 'text'), (2, 'row_id', 'uuid'), (3, 'op_id', 'uuid'), (4, 'user_id', 'uuid'),
               (5, 'client_id', 'uuid'), (6, 'server_user_id', 'uuid'), (7, 'base_version', 'bigint'),
               (8, 'server_version', 'bigint'), (9, 'client_data', 'jsonb'), (10, 'base_data', 'jsonb'),
               (11, 'server_row', 'jsonb'), (12, 'fields', 'text[]'), (13, 'resolution', 'sync.conflict_resolution'),
               (14, 'resolved_by', 'uuid'), (15, 'resolved_at', 'timestamp with time zone'),
               (16, 'detected_at', 'timestamp with time zone')) c (ord, col, typ)
 order by c.ord;
select fk_ok('sync', 'conflicts', 'table_name', 'sync', 'tables', 'table_name',
             'a conflict names a registered table');

-- Entries written by the owner (as the sync engine's definer functions do).
insert into sync.conflicts (id, table_name, row_id, user_id, server_user_id, server_version, server_row, fields, resolution)
values
  ('00000000-0000-4000-8c00-000000000001', 'customers', '00000000-0000-4000-8100-000000000004',
   tests.user_id('rm1.jakarta@crm.test'), tests.user_id('rm2.jakarta@crm.test'), 3, '{"phone": "+62 1"}', '{phone}', 'server_wins'),
  ('00000000-0000-4000-8c00-000000000002', 'customers', '00000000-0000-4000-8100-000000000002',
   tests.user_id('rm1.surabaya@crm.test'), null, 2, '{}', '{}', 'client_wins'),
  ('00000000-0000-4000-8c00-000000000003', 'pipelines', '00000000-0000-4000-8300-000000000004',
   tests.user_id('bm.jakarta@crm.test'), tests.user_id('rm1.jakarta@crm.test'), 5, '{}', '{stage}', 'manual_pending'),
  ('00000000-0000-4000-8c00-000000000004', 'hvcs', '00000000-0000-4000-8001-000000000001',
   null, null, 1, '{}', '{}', 'merged');
create temp table all_conflicts on commit drop as select id from sync.conflicts;
grant select on all_conflicts to authenticated, service_role;

-- No API role writes it directly.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ insert into sync.conflicts (table_name, row_id, server_version, server_row, resolution)
     values ('customers', '00000000-0000-4000-8100-000000000004', 1, '{}', 'client_wins') $$,
  '42501', 'permission denied for table conflicts',
  'a user cannot insert into the conflict audit'
);
select throws_ok(
  $$ update sync.conflicts set resolution = 'manual_resolved' where id = '00000000-0000-4000-8c00-000000000001' $$,
  '42501', 'permission denied for table conflicts',
  'a user cannot update the conflict audit, not even an entry about their own edit'
);
select throws_ok(
  $$ delete from sync.conflicts where id = '00000000-0000-4000-8c00-000000000001' $$,
  '42501', 'permission denied for table conflicts',
  'a user cannot delete from the conflict audit'
);

select tests.authenticate_as_service_role();
select throws_ok(
  $$ insert into sync.conflicts (table_name, row_id, server_version, server_row, resolution)
     values ('customers', '00000000-0000-4000-8100-000000000004', 1, '{}', 'client_wins') $$,
  '42501', 'permission denied for table conflicts',
  'service_role cannot insert into the conflict audit'
);
select throws_ok(
  $$ update sync.conflicts set resolution = 'manual_resolved' $$,
  '42501', 'permission denied for table conflicts',
  'service_role cannot update the conflict audit'
);
select throws_ok(
  $$ delete from sync.conflicts $$,
  '42501', 'permission denied for table conflicts',
  'service_role cannot delete from the conflict audit'
);
select set_eq($$ select conflict_id from sync.conflict_history $$, $$ select id from all_conflicts $$,
              'service_role reads the whole conflict audit, through the review views');
select throws_ok($$ select id from sync.conflicts $$, '42501', 'permission denied for table conflicts',
                 'service_role reads no conflict from the table itself: the engine and the views do');

select tests.authenticate_as_anon();
select throws_ok($$ select id from sync.conflicts $$, '42501', 'permission denied for schema sync',
                 'anon cannot read the conflict audit');

-- Who reads which entries (through the review views: the table is the engine's).
select tests.authenticate_as('admin@crm.test');
select set_eq($$ select conflict_id from sync.conflict_history $$, $$ select id from all_conflicts $$,
              'the admin reads every entry');

select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok($$ select id from sync.conflicts $$, '42501', 'permission denied for table conflicts',
                 'a user reads no conflict from the table itself, only through the views and the pull, which withhold the data of rows they may no longer read');
select set_eq(
  $$ select conflict_id from sync.conflict_history $$,
  $$ values ('00000000-0000-4000-8c00-000000000001'::uuid), ('00000000-0000-4000-8c00-000000000003'::uuid) $$,
  'a user reads the entries where their edit came in or was the server version'
);
select results_eq(
  $$ select client_data, server_row, fields, resolution::text from sync.conflict_history
      where conflict_id = '00000000-0000-4000-8c00-000000000001' $$,
  $$ values (null::jsonb, '{"phone": "+62 1"}'::jsonb, '{phone}'::text[], 'server_wins') $$,
  'a user reads both sides of an entry about their edit'
);

select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq($$ select conflict_id from sync.conflict_history $$, $$ values ('00000000-0000-4000-8c00-000000000001'::uuid) $$,
                  'the author of the server version reads the entry');

select tests.authenticate_as('rm1.surabaya@crm.test');
select results_eq($$ select conflict_id from sync.conflict_history $$, $$ values ('00000000-0000-4000-8c00-000000000002'::uuid) $$,
                  'the author of the incoming edit reads the entry');

select tests.authenticate_as('bm.surabaya@crm.test');
select is_empty($$ select conflict_id from sync.conflict_history $$,
                'a bm reads no entry they were not involved in, even about their branch''s customers');

select tests.clear_authentication();
insert into auth.users (email) values ('no.profile@crm.test');
select tests.authenticate_as('no.profile@crm.test');
select is_empty($$ select conflict_id from sync.conflict_history $$, 'a user without a profile reads no entry');

select * from finish();
rollback;
