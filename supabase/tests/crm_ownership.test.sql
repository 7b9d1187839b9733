-- Ownership follows the customer: a pipeline's assigned_rm_id and branch_id are its customer's on
-- every write path, derived (not validated, so a pipeline created offline before a reassignment
-- still applies), and follow the customer when it is reassigned or moved, each as a new version
-- and no conflict; an activity that names a pipeline belongs to that pipeline's customer. Customer
-- 4 is rm1.jakarta's, customer 5 rm2.jakarta's.
begin;
select plan(16);

create temp table ids on commit drop as
  select tests.user_id('rm1.jakarta@crm.test') as rm1, tests.user_id('rm2.jakarta@crm.test') as rm2,
         tests.user_id('rm1.surabaya@crm.test') as rm_sby,
         '00000000-0000-4000-8000-0000000000b1'::uuid as jkt, '00000000-0000-4000-8000-0000000000b2'::uuid as sby;
grant select on ids to authenticated, sync_engine;

select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq(
  $$ insert into public.pipelines (customer_id, title) values ('00000000-0000-4000-8100-000000000004', 'Cargo')
     returning assigned_rm_id, branch_id $$,
  $$ select rm1, jkt from ids $$,
  'an rm''s new pipeline is their customer''s: its rm and branch'
);

select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ insert into public.pipelines (id, customer_id, title, assigned_rm_id)
     values ('c0000000-0000-4000-8000-00000000bb01', '00000000-0000-4000-8100-000000000004', 'Made offline',
             tests.user_id('rm2.jakarta@crm.test'))
     returning assigned_rm_id $$,
  $$ select rm1 from ids $$,
  'a pipeline that names another rm than its customer''s still applies, and takes the customer''s'
);
select results_eq(
  $$ update public.pipelines set assigned_rm_id = tests.user_id('rm2.jakarta@crm.test'), notes = 'reassign me'
      where id = '00000000-0000-4000-8300-000000000004' returning assigned_rm_id, notes $$,
  $$ select rm1, 'reassign me' from ids $$,
  'an edit of a pipeline''s rm does not detach it from its customer'
);
delete from public.pipelines where id = 'c0000000-0000-4000-8000-00000000bb01';
select tests.clear_authentication();
create temp table before_move on commit drop as
  select id, version from public.pipelines where customer_id = '00000000-0000-4000-8100-000000000004' and deleted_at is null;
select tests.authenticate_as('bm.jakarta@crm.test');

select results_eq(
  $$ update public.customers set assigned_rm_id = tests.user_id('rm2.jakarta@crm.test')
      where id = '00000000-0000-4000-8100-000000000004' returning assigned_rm_id $$,
  $$ select rm2 from ids $$,
  'the bm reassigns customer 4 to rm2'
);
select tests.clear_authentication();
select is_empty(
  $$ select id from public.pipelines
      where customer_id = '00000000-0000-4000-8100-000000000004' and deleted_at is null
        and assigned_rm_id is distinct from tests.user_id('rm2.jakarta@crm.test') $$,
  'its live pipelines follow it to rm2'
);
select results_eq(
  $$ select distinct p.version - b.version, p.updated_by, count(*) over () from public.pipelines p join before_move b on b.id = p.id $$,
  $$ select 1::bigint, tests.user_id('bm.jakarta@crm.test'), 2::bigint $$,
  'each as one new version, written by the bm who reassigned the customer'
);
select is(
  (select assigned_rm_id from public.pipelines where id = 'c0000000-0000-4000-8000-00000000bb01'),
  (select rm1 from ids),
  'a deleted pipeline keeps the owner it was deleted with'
);
select is_empty(
  $$ select c.id from sync.conflicts c join public.pipelines p on p.id = c.row_id
      where p.id in (select id from before_move) and c.row_version > (select b.version from before_move b where b.id = p.id) $$,
  'following the customer raises no conflict'
);

select tests.authenticate_as('admin@crm.test');
update public.customers set branch_id = (select sby from ids), assigned_rm_id = (select rm_sby from ids)
 where id = '00000000-0000-4000-8100-000000000004';
select tests.clear_authentication();
select is_empty(
  $$ select id from public.pipelines
      where customer_id = '00000000-0000-4000-8100-000000000004' and deleted_at is null
        and (assigned_rm_id, branch_id) is distinct from ((select rm_sby from ids), (select sby from ids)) $$,
  'a customer an admin moves to another branch takes its pipelines there'
);

-- Activities about a pipeline are the pipeline's customer's.
select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ insert into public.activities (customer_id, pipeline_id, activity_type, subject)
     values ('00000000-0000-4000-8100-000000000008', '00000000-0000-4000-8300-000000000005', 'call', 'Which customer?')
     returning customer_id $$,
  $$ values ('00000000-0000-4000-8100-000000000005'::uuid) $$,
  'an activity that names a pipeline takes its customer from the pipeline'
);
select results_eq(
  $$ update public.pipelines set customer_id = '00000000-0000-4000-8100-000000000008'
      where id = '00000000-0000-4000-8300-000000000005' returning assigned_rm_id $$,
  $$ select rm1 from ids $$,
  'a pipeline moved to another customer takes that customer''s rm'
);
select is_empty(
  $$ select id from public.activities
      where pipeline_id = '00000000-0000-4000-8300-000000000005' and deleted_at is null
        and customer_id <> '00000000-0000-4000-8100-000000000008' $$,
  'and its activities follow it'
);

-- The push door: the same derivation.
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r -> 'row' ->> 'assigned_rm_id'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'pipelines', 'c0000000-0000-4000-8000-00000000bb02', null,
                jsonb_build_object('customer_id', '00000000-0000-4000-8100-000000000012', 'title', 'Pushed',
                                   'assigned_rm_id', tests.user_id('rm2.jakarta@crm.test'))))))::jsonb -> 'results') r),
  jsonb_build_array(jsonb_build_array('applied', tests.user_id('rm1.jakarta@crm.test'))),
  'through sync_push a pipeline takes its customer''s rm whatever it names'
);

-- The backfill: rows written before the rule, brought to it without a conflict.
select tests.clear_authentication();
set local session_replication_role = replica;
update public.pipelines set assigned_rm_id = tests.user_id('rm2.jakarta@crm.test')
 where id = '00000000-0000-4000-8300-000000000016';
update public.activities set customer_id = '00000000-0000-4000-8100-000000000020'
 where id = '00000000-0000-4000-8400-000000000161';
set local session_replication_role = origin;
create temp table before_backfill on commit drop as
  select (select version from public.pipelines where id = '00000000-0000-4000-8300-000000000016') as pipeline_version,
         (select count(*) from sync.conflicts) as conflicts;
select is(sync.crm_backfill_ownership(), 2, 'the backfill brings the pipeline and the activity to the rule');
select results_eq(
  $$ select p.assigned_rm_id, p.version - b.pipeline_version, (select count(*) from sync.conflicts) - b.conflicts
       from public.pipelines p, before_backfill b where p.id = '00000000-0000-4000-8300-000000000016' $$,
  $$ select rm1, 1::bigint, 0::bigint from ids $$,
  'as a new version that devices pull, and without a conflict'
);
select is(sync.crm_backfill_ownership(), 0, 'run again, it changes nothing');

select * from finish();
rollback;
