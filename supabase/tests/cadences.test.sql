-- Cadences (how often, and by which activity, a branch's rms touch each customer segment) belong to
-- their branch: its bm keeps them, its rms read them, no one else sees them. Customers are enrolled
-- in their own branch's cadences, by whoever works the customer. Every path: direct writes here,
-- the push through the RPC.
begin;
select plan(23);

-- The registry: two tables added after release, each a child of what decides who sees it.
select results_eq(
  $$ select table_name, scope::text, parent_table, parent_column, conflict_strategy::text, registered_xid is not null
       from sync.tables where table_name in ('cadences', 'cadence_participants') order by sync_order $$,
  $$ values ('cadences', 'child', 'branches', 'branch_id', 'field_merge', true),
            ('cadence_participants', 'child', 'customers', 'customer_id', 'field_merge', true) $$,
  'cadences hang under their branch and enrolments under their customer, merged field by field, registered after release'
);
select is(
  (select array_agg(a.attname::text order by a.attname) from pg_attribute a
    where a.attrelid in ('public.cadences'::regclass, 'public.cadence_participants'::regclass)
      and a.attnum > 0 and not a.attisdropped and a.attname <> all (sync.server_columns())),
  (select array_agg(r.column_name order by r.column_name) from sync.column_conflict_rules r
    where r.table_name in ('cadences', 'cadence_participants')),
  'every column a device writes in either table has its conflict rule declared'
);
select results_eq(
  $$ select table_name, column_name, merge_fallback::text from sync.column_conflict_rules
      where table_name in ('cadences', 'cadence_participants') and merge_fallback <> 'client' order by 1, 2 $$,
  $$ values ('cadence_participants', 'cadence_id', 'server'), ('cadence_participants', 'customer_id', 'server'),
            ('cadences', 'branch_id', 'server') $$,
  'where both sides changed a field the later edit wins, except where a row belongs, which stays the server''s'
);

-- Who sees which cadences.
select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq(
  $$ select count(*)::int, bool_and(branch_id = '00000000-0000-4000-8000-0000000000b1') from public.cadences $$,
  $$ values (3, true) $$,
  'an rm reads the cadences of their branch, and no other branch''s'
);
select tests.authenticate_as('bm.surabaya@crm.test');
select results_eq(
  $$ select count(*)::int, bool_and(branch_id = '00000000-0000-4000-8000-0000000000b2') from public.cadences $$,
  $$ values (3, true) $$,
  'a bm reads the cadences of their branch, and no other branch''s'
);
select tests.authenticate_as('admin@crm.test');
select is((select count(*)::int from public.cadences), 6, 'an admin reads every branch''s cadences');

-- Who writes them.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ update public.cadences set interval_days = 3 where id = '00000000-0000-4000-8700-000000000011' $$,
  '42501', 'permission denied: role rm may not write cadences.interval_days',
  'an rm does not change a cadence: the branch manager keeps them'
);
select throws_ok(
  $$ insert into public.cadences (name, segment, activity_type, interval_days) values ('Mine', 'company', 'call', 3) $$,
  '42501', 'permission denied: role rm may not write cadences.name',
  'nor adds one'
);
select tests.authenticate_as('bm.jakarta@crm.test');
select lives_ok(
  $$ update public.cadences set interval_days = 21, activity_type = 'meeting' where id = '00000000-0000-4000-8700-000000000011' $$,
  'a bm changes their branch''s cadence'
);
select results_eq(
  $$ select interval_days, activity_type, version from public.cadences where id = '00000000-0000-4000-8700-000000000011' $$,
  $$ values (21, 'meeting', 2::bigint) $$,
  'and the change is a new version of the row, which syncs'
);
select lives_ok(
  $$ insert into public.cadences (id, name, segment, activity_type, interval_days)
     values ('c4de0000-0000-4000-8000-000000000001', 'Quarterly email', 'individual', 'email', 90) $$,
  'a bm adds a cadence, which lands in their branch'
);
select is((select branch_id from public.cadences where id = 'c4de0000-0000-4000-8000-000000000001'),
          '00000000-0000-4000-8000-0000000000b1'::uuid, 'the new cadence is of the bm''s branch');
select results_eq(
  $$ with u as (update public.cadences set interval_days = 1 where id = '00000000-0000-4000-8700-000000000021' returning 1)
     select count(*)::int from u $$,
  $$ values (0) $$,
  'a bm does not reach another branch''s cadence'
);
select throws_ok(
  $$ insert into public.cadences (name, segment, activity_type, interval_days, branch_id)
     values ('Theirs', 'company', 'call', 3, '00000000-0000-4000-8000-0000000000b2') $$,
  '42501', 'permission denied: role bm may not write cadences.branch_id',
  'nor adds one to another branch'
);
select lives_ok(
  $$ insert into public.cadences (name, segment, activity_type, interval_days, branch_id)
     values ('Ours', 'company', 'call', 3, '00000000-0000-4000-8000-0000000000b1') $$,
  'a bm''s device may name its own branch on a new cadence (the value the default gives)'
);
select throws_ok(
  $$ update public.cadences set branch_id = '00000000-0000-4000-8000-0000000000b2' where id = '00000000-0000-4000-8700-000000000012' $$,
  '42501', 'permission denied: role bm may not write cadences.branch_id',
  'a bm does not move a cadence to another branch'
);

-- Enrolments follow their customer.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select count(*)::int from public.cadence_participants p
     where not exists (select 1 from public.customers c where c.id = p.customer_id and c.assigned_rm_id = auth.uid())),
  0,
  'an rm sees the enrolments of their own customers only'
);
select ok((select count(*) > 0 from public.cadence_participants), 'fixture: rm1.jakarta has enrolled customers');
select lives_ok(
  $$ insert into public.cadence_participants (id, customer_id, cadence_id, next_due_on)
     values ('c4de0000-0000-4000-8000-000000000002', '00000000-0000-4000-8100-000000000004',
             '00000000-0000-4000-8700-000000000012', date '2027-01-04') $$,
  'an rm enrols their customer in a cadence of its branch'
);
select throws_ok(
  $$ insert into public.cadence_participants (customer_id, cadence_id)
     values ('00000000-0000-4000-8100-000000000004', '00000000-0000-4000-8700-000000000021') $$,
  '23514', 'cadence 00000000-0000-4000-8700-000000000021 is not of the branch of customer 00000000-0000-4000-8100-000000000004',
  'not in another branch''s cadence'
);
select throws_ok(
  $$ insert into public.cadence_participants (customer_id, cadence_id)
     values ('00000000-0000-4000-8100-000000000005', '00000000-0000-4000-8700-000000000011') $$,
  '42501', 'new row violates row-level security policy for table "cadence_participants"',
  'nor another rm''s customer'
);
select is(
  (public.sync_push(tests.push_body(jsonb_build_array(
     tests.op('c4de0000-0000-4000-8000-0000000000a1', 'insert', 'cadence_participants', 'c4de0000-0000-4000-8000-000000000003', null,
              '{"customer_id": "00000000-0000-4000-8100-000000000008", "cadence_id": "00000000-0000-4000-8700-000000000022"}')))) -> 'results' -> 0)::jsonb
     - 'op_id' - 'id',
  jsonb_build_object('status', 'rejected', 'code', 'invalid', 'field', 'cadence_id', 'retryable', false,
    'message', 'cadence_participants.cadence_id: cadence 00000000-0000-4000-8700-000000000022 is not of the branch of customer 00000000-0000-4000-8100-000000000008'),
  'through the push, an enrolment in another branch''s cadence is rejected as invalid, naming cadence_id'
);
select is(
  (public.sync_push(tests.push_body(jsonb_build_array(
     tests.op('c4de0000-0000-4000-8000-0000000000a2', 'update', 'cadence_participants', 'c4de0000-0000-4000-8000-000000000002', 1,
              '{"status": "paused"}')))) -> 'results' -> 0 ->> 'status'),
  'applied',
  'and an rm records the progress of their customer''s enrolment through it'
);

select * from finish();
rollback;
