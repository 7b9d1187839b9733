-- Every write path detects a stale update (one that states an older expected version) in the
-- trigger that owns `version`, resolves it by the table's strategy from the registry, and audits it.
begin;
select plan(32);

-- Fixtures, as the owner: a customer of rm1.jakarta with a pipeline and an activity.
insert into public.customers (id, name, phone, email, assigned_rm_id, branch_id)
values ('c1000000-0000-4000-8000-000000000001', 'PT Merge', '+62 0', 'a@merge.test',
        tests.user_id('rm1.jakarta@crm.test'), '00000000-0000-4000-8000-0000000000b1');
insert into public.pipelines (id, customer_id, title, potential_value, stage, notes)
values ('c1000000-0000-4000-8000-000000000002', 'c1000000-0000-4000-8000-000000000001', 'Fleet', 100, 'prospect', 'n0');
insert into public.activities (id, customer_id, activity_type, subject)
values ('c1000000-0000-4000-8000-000000000003', 'c1000000-0000-4000-8000-000000000001', 'call', 's0');

-- The audit as the owner reads it, whoever asks (a temporary view runs as the owner).
create temp view conflict_log as select * from sync.conflicts;
grant select on conflict_log to authenticated, service_role;
create temp view last_conflict as
  select table_name, row_id, resolution::text, fields, pending_fields, base_version, server_version, client_data, user_id, server_user_id
    from sync.conflicts order by detected_at desc limit 1;
grant select on last_conflict to authenticated, service_role;

-- field_merge (customers): edits to different fields both survive.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set phone = '+62 bm' where id = 'c1000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.customers set email = 'rm@merge.test', version = 1 where id = 'c1000000-0000-4000-8000-000000000001';
select results_eq(
  $$ select phone, email, version from public.customers where id = 'c1000000-0000-4000-8000-000000000001' $$,
  $$ values ('+62 bm'::text, 'rm@merge.test'::text, 3::bigint) $$,
  'field_merge: a stale edit of another field is merged, and the row gets a new version'
);
select results_eq(
  $$ select resolution, base_version, server_version, user_id, server_user_id from last_conflict $$,
  $$ values ('merged'::text, 1::bigint, 2::bigint, tests.user_id('rm1.jakarta@crm.test'), tests.user_id('bm.jakarta@crm.test')) $$,
  'field_merge: the merge is audited with both authors and versions'
);

-- field_merge, a field both changed: the column's fallback (customers: client) decides.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set phone = '+62 bm2' where id = 'c1000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.customers set phone = '+62 rm', version = 3 where id = 'c1000000-0000-4000-8000-000000000001';
select is((select phone from public.customers where id = 'c1000000-0000-4000-8000-000000000001'), '+62 rm',
          'field_merge with client fallback: the incoming value wins a field both changed');
select results_eq($$ select resolution, fields from last_conflict $$, $$ values ('client_wins'::text, array['phone']) $$,
                  'field_merge: the overwritten field is named in the audit');

-- field_merge with base values (through the sync engine): a field the server did not change since
-- the device's base is not a conflict even when other versions came in between.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set city = 'Bogor' where id = 'c1000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  public.sync_push(jsonb_build_object('protocol', 2, 'client_id', 'c1000000-0000-4000-8000-0000000000cc', 'ops', jsonb_build_array(
    jsonb_build_object('op_id', 'c1000000-0000-4000-8000-0000000000a1', 'table', 'customers', 'op', 'update',
      'id', 'c1000000-0000-4000-8000-000000000001', 'base_version', 4,
      'data', jsonb_build_object('phone', '+62 device'), 'base', jsonb_build_object('phone', '+62 rm'))))) -> 'results' -> 0 -> 'conflict' ->> 'resolution',
  'merged',
  'field_merge with base values: the server did not touch the field, so the edit merges cleanly'
);
select results_eq(
  $$ select phone, city from public.customers where id = 'c1000000-0000-4000-8000-000000000001' $$,
  $$ values ('+62 device'::text, 'Bogor'::text) $$,
  'field_merge through sync_push: both edits are in the row'
);
select is((select client_data from last_conflict), '{"phone": "+62 device"}'::jsonb,
          'the audit keeps the incoming values');

-- A column whose fallback is server: the server's value of a field both changed stays.
select tests.clear_authentication();
insert into sync.column_conflict_rules (table_name, column_name, merge_fallback) values ('customers', 'address', 'server');
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set address = 'Jl. Server 1' where id = 'c1000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.customers set address = 'Jl. Device 2', industry = 'retail', version = 5
 where id = 'c1000000-0000-4000-8000-000000000001';
select results_eq(
  $$ select address, industry from public.customers where id = 'c1000000-0000-4000-8000-000000000001' $$,
  $$ values ('Jl. Server 1'::text, 'retail'::text) $$,
  'field_merge with a server-fallback column: the server keeps that field, the other edit merges');
select results_eq($$ select resolution, fields from last_conflict $$, $$ values ('merged'::text, array['address']) $$,
                  'and the audit names the field the server kept');

-- pipelines: field_merge, but money and stage wait for a person.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set potential_value = 200, stage = 'qualified' where id = 'c1000000-0000-4000-8000-000000000002';
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  public.sync_push(jsonb_build_object('protocol', 2, 'client_id', 'c1000000-0000-4000-8000-0000000000cc', 'ops', jsonb_build_array(
    jsonb_build_object('op_id', 'c1000000-0000-4000-8000-0000000000a2', 'table', 'pipelines', 'op', 'update',
      'id', 'c1000000-0000-4000-8000-000000000002', 'base_version', 1,
      'data', jsonb_build_object('potential_value', 300, 'notes', 'n-rm'))))) -> 'results' -> 0 ->> 'status',
  'conflict',
  'pipelines: a stale money edit is reported as a conflict'
);
select results_eq(
  $$ select potential_value, stage, notes from public.pipelines where id = 'c1000000-0000-4000-8000-000000000002' $$,
  $$ values (200::numeric, 'qualified'::text, 'n-rm'::text) $$,
  'pipelines: the server''s money stays, the notes edit is merged'
);
select results_eq($$ select resolution, pending_fields from last_conflict $$,
                  $$ values ('manual_pending'::text, array['potential_value']) $$,
                  'pipelines: the money field waits for review');

-- client_wins (activities): explicit last-write-wins, logged.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.activities set subject = 's-bm' where id = 'c1000000-0000-4000-8000-000000000003';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.activities set subject = 's-rm', version = 1 where id = 'c1000000-0000-4000-8000-000000000003';
select is((select subject from public.activities where id = 'c1000000-0000-4000-8000-000000000003'), 's-rm',
          'client_wins: the stale edit is applied');
select is((select resolution from last_conflict), 'client_wins', 'client_wins: and audited');

-- server_wins (brokers): the stale edit is not applied; the row keeps its version.
select tests.authenticate_as('admin@crm.test');
update public.brokers set phone = '+62 A' where id = '00000000-0000-4000-8002-000000000001';
update public.brokers set phone = '+62 B', version = 1 where id = '00000000-0000-4000-8002-000000000001';
select results_eq($$ select phone, version from public.brokers where id = '00000000-0000-4000-8002-000000000001' $$,
                  $$ values ('+62 A'::text, 2::bigint) $$, 'server_wins: the stale edit changes nothing');
select is((select resolution from last_conflict), 'server_wins', 'server_wins: and is audited');

-- manual: a DBA switches brokers to manual with one update; the stale edit waits for a person.
select tests.clear_authentication();
update sync.tables set conflict_strategy = 'manual' where table_name = 'brokers';
select tests.authenticate_as('admin@crm.test');
update public.brokers set phone = '+62 C', version = 1 where id = '00000000-0000-4000-8002-000000000001';
select is((select phone from public.brokers where id = '00000000-0000-4000-8002-000000000001'), '+62 A',
          'manual: the server value stays');
select results_eq($$ select resolution, pending_fields from last_conflict $$,
                  $$ values ('manual_pending'::text, array['phone']) $$, 'manual: the conflict waits for review');

-- A write that states no version is an explicit last-write-wins, logged when it overwrites another user.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set notes = 'bm note' where id = 'c1000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
create temp table count_before as select count(*) as n from conflict_log;
update public.customers set notes = 'rm note' where id = 'c1000000-0000-4000-8000-000000000001';
select results_eq($$ select resolution, base_version, fields from last_conflict $$,
                  $$ values ('client_wins'::text, null::bigint, array['notes']) $$,
                  'an unversioned write over another user''s change is logged as last-write-wins');
update public.customers set notes = 'rm note 2' where id = 'c1000000-0000-4000-8000-000000000001';
select is((select count(*) from conflict_log) - (select n from count_before), 1::bigint,
          'overwriting one''s own change is not a conflict');

-- The version history the merge uses.
select tests.clear_authentication();
select is(
  (select changed_columns from sync.row_versions
    where table_name = 'customers' and row_id = 'c1000000-0000-4000-8000-000000000001' and version = 2),
  array['phone'], 'each version records the columns it changed');
select is(
  (select count(*)::int from sync.row_versions where table_name = 'customers' and row_id = 'c1000000-0000-4000-8000-000000000001'),
  (select version::int - 1 from public.customers where id = 'c1000000-0000-4000-8000-000000000001'),
  'every version after the first is recorded');

-- Delete against a changed row: under field_merge the table's fallback decides.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.key_persons set position = 'CFO' where id = '00000000-0000-4000-8200-000000000041';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.key_persons set deleted_at = now(), version = 1 where id = '00000000-0000-4000-8200-000000000041';
select isnt((select deleted_at from public.key_persons where id = '00000000-0000-4000-8200-000000000041'), null,
            'delete against a changed row, client fallback: the delete applies');
select is((select resolution from last_conflict), 'client_wins', 'and it is audited');
select tests.clear_authentication();
update sync.tables set merge_fallback = 'server' where table_name = 'key_persons';
select tests.authenticate_as('bm.jakarta@crm.test');
update public.key_persons set position = 'CEO' where id = '00000000-0000-4000-8200-000000000042';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.key_persons set deleted_at = now(), version = 1 where id = '00000000-0000-4000-8200-000000000042';
select is((select deleted_at from public.key_persons where id = '00000000-0000-4000-8200-000000000042'), null,
          'delete against a changed row, server fallback: the row stays');
select is((select resolution from last_conflict), 'server_wins', 'and the refused delete is audited');

-- Update against a tombstone: never a silent resurrection.
select throws_ok(
  $$ update public.key_persons set position = 'late' where id = '00000000-0000-4000-8200-000000000041' $$,
  '55000', 'key_persons row 00000000-0000-4000-8200-000000000041 is deleted and cannot be changed',
  'a direct update of a tombstone is refused');
select is(
  public.sync_push(jsonb_build_object('protocol', 2, 'client_id', 'c1000000-0000-4000-8000-0000000000cc', 'ops', jsonb_build_array(
    jsonb_build_object('op_id', 'c1000000-0000-4000-8000-0000000000a3', 'table', 'key_persons', 'op', 'update',
      'id', '00000000-0000-4000-8200-000000000041', 'base_version', 2, 'data', jsonb_build_object('position', 'late'))))) -> 'results' -> 0 ->> 'code',
  'deleted', 'through sync_push an update of a tombstone is rejected/deleted');
select results_eq($$ select resolution, table_name from last_conflict $$, $$ values ('server_wins'::text, 'key_persons'::text) $$,
                  'and the lost edit is audited');

-- Conflicts record the branch of the row, so its branch manager reviews them.
select tests.clear_authentication();
select is((select branch_id from sync.conflicts where row_id = 'c1000000-0000-4000-8000-000000000002' limit 1),
          '00000000-0000-4000-8000-0000000000b1'::uuid, 'a pipeline''s conflict carries its customer''s branch');

-- Through sync_push, a stale edit on a server_wins table reports the server row.
select tests.authenticate_as('admin@crm.test');
select results_eq(
  $$ select r ->> 'status', r ->> 'code', r -> 'row' ->> 'name'
       from (select public.sync_push(jsonb_build_object('protocol', 2, 'client_id', 'c1000000-0000-4000-8000-0000000000cc',
              'ops', jsonb_build_array(jsonb_build_object('op_id', 'c1000000-0000-4000-8000-0000000000a4', 'table', 'hvcs',
              'op', 'update', 'id', '00000000-0000-4000-8001-000000000001', 'base_version', 0,
              'data', jsonb_build_object('name', 'stale'))))) -> 'results' -> 0 as r) x $$,
  $$ values ('conflict'::text, 'stale'::text, 'HVC group 1'::text) $$,
  'server_wins through sync_push: conflict/stale with the server row');
select is((select count(*)::int from conflict_log where op_id = 'c1000000-0000-4000-8000-0000000000a4'), 1,
          'the audit entry carries the op id');

select * from finish();
rollback;
