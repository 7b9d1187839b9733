-- Row grants (the engine's sync.row_grants): the app lets one user read one row outside their
-- scope. A grant reads that row only, never the rows below it, and never writes; the app gives and
-- takes them through sync.set_row_grants, one source at a time, and every grant given or taken is
-- logged for the pull. The CRM's seed serves as data: customers 1 and 5 (with their key persons,
-- pipelines 1 and 5 and activities) are rm2.jakarta's, and rm1.jakarta reads none of it. The grants
-- here are of customer 1 and of pipeline 5 (of the other customer: the CRM lets the reader of a
-- pipeline read its activities, which is the app's rule, not the engine's).
begin;
select plan(31);

create temp table ids on commit drop as
  select tests.user_id('rm1.jakarta@crm.test') as rm1, tests.user_id('rm2.jakarta@crm.test') as rm2,
         '00000000-0000-4000-8100-000000000001'::uuid as customer, '00000000-0000-4000-8300-000000000005'::uuid as pipeline,
         'aaaaaaaa-0000-4000-8000-000000000001'::uuid as source;
grant select on ids to authenticated, sync_engine;

-- A referral of pipeline 5 made to another rm, which rm1.jakarta reads only if a grant opened the rows below it.
insert into public.pipeline_referrals (id, pipeline_id, referred_rm_id)
values ('aaaaaaaa-0000-4000-8000-000000000009', (select pipeline from ids), tests.user_id('rm2.surabaya@crm.test'));

select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty($$ select id from public.customers where id = (select customer from ids) $$,
                'without a grant, rm1.jakarta does not read rm2.jakarta''s customer');

-- The app (its triggers run as the owner) grants the customer and its pipeline to rm1.jakarta.
select tests.clear_authentication();
select lives_ok(
  $$ select sync.set_row_grants('customers', (select source from ids), (select rm1 from ids),
                                array['customers', 'pipelines'], array[(select customer from ids), (select pipeline from ids)]) $$,
  'the app grants a customer and a pipeline to a user');
select results_eq(
  $$ select table_name, row_id, grantee, granted from sync.scope_changes
      where change_xid = pg_current_xact_id() and grantee = (select rm1 from ids) order by id $$,
  $$ values ('customers'::text, (select customer from ids), (select rm1 from ids), true),
            ('pipelines'::text, (select pipeline from ids), (select rm1 from ids), true) $$,
  'each grant given is an entry of the scope-change log for its user, so the next delta pull sends the row');

select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq($$ select id from public.customers where id = (select customer from ids) $$,
                  $$ select customer from ids $$, 'with a grant, rm1.jakarta reads the customer');
select results_eq($$ select id from public.pipelines where id = (select pipeline from ids) $$,
                  $$ select pipeline from ids $$, 'a grant of a child row reads that row too');
select is_empty($$ select id from public.key_persons where customer_id = (select customer from ids) $$,
                'a grant reads its row only: none of the customer''s key persons');
select is_empty($$ select id from public.activities where customer_id = (select customer from ids) $$,
                'nor its activities');
select is_empty($$ select id from public.customer_hvc_links where customer_id = (select customer from ids) $$,
                'nor its HVC links');
select is_empty($$ select id from public.pipeline_referrals where pipeline_id = (select pipeline from ids) $$,
                'and the referrals of a granted pipeline stay in their scope too');

-- A grant reads; it never writes.
select is_empty($$ update public.customers set notes = 'granted, not mine' where id = (select customer from ids) returning id $$,
                'a grant does not let its user update the row');
select is_empty($$ update public.pipelines set notes = 'granted, not mine' where id = (select pipeline from ids) returning id $$,
                'nor a granted child row');
select throws_ok(
  $$ insert into public.key_persons (customer_id, name) values ((select customer from ids), 'Planted') $$,
  '42501', 'new row violates row-level security policy for table "key_persons"',
  'nor add a row below a granted row');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id, referred_rm_id) values ((select pipeline from ids), (select rm1 from ids)) $$,
  '42501', 'new row violates row-level security policy for table "pipeline_referrals"',
  'nor below a granted child row');

-- The pull's scope rule with literals takes the grants in (and is unchanged for a caller with none).
select tests.engine_acting_for('rm1.jakarta@crm.test');
select matches(sync.caller_scope_condition('customers', 't'),
               format('or t\.id = any \(''\{%s\}''::uuid\[\]\)\)$', (select customer from ids)),
               'the pull reads the rows granted to the caller beside those in their scope');
select tests.engine_acting_for('rm2.jakarta@crm.test');
select doesnt_match(sync.caller_scope_condition('customers', 't'), 't\.id = any',
              'a caller without grants gets the scope rule alone');
select ok(sync.caller_scope_condition('pipelines', 't') is null, 'child tables still leave their scope to RLS');

-- Clients neither read nor give grants.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok($$ select * from sync.row_grants $$, '42501', 'permission denied for table row_grants',
                 'a client does not read the grants');
select throws_ok(
  $$ select sync.set_row_grants('customers', gen_random_uuid(), auth.uid(), array['customers'], array['00000000-0000-4000-8100-000000000005'::uuid]) $$,
  '42501', 'permission denied for function set_row_grants', 'a client does not grant itself a row');
select tests.engine_acting_for('rm1.jakarta@crm.test');
select throws_ok(
  $$ select sync.set_row_grants('customers', gen_random_uuid(), auth.uid(), array['customers'], array['00000000-0000-4000-8100-000000000005'::uuid]) $$,
  '42501', 'permission denied for function set_row_grants', 'nor does the engine acting for them');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(sync.granted_row_ids('customers'), array[(select customer from ids)],
          'a user asks only for their own grants (what the policies ask)');

-- The source's grants become exactly what the app says: the pipeline stays, the customer goes.
select tests.clear_authentication();
select lives_ok(
  $$ select sync.set_row_grants('customers', (select source from ids), (select rm1 from ids),
                                array['pipelines'], array[(select pipeline from ids)]) $$,
  'the app narrows a source''s grants');
select results_eq(
  $$ select table_name, row_id, granted from sync.scope_changes
      where change_xid = pg_current_xact_id() and grantee = (select rm1 from ids) order by id desc limit 1 $$,
  $$ values ('customers'::text, (select customer from ids), false) $$,
  'a grant taken is an entry too (the pull evicts the row from its user''s devices), and a grant kept is not logged again');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty($$ select id from public.customers where id = (select customer from ids) $$,
                'with its grant taken, rm1.jakarta no longer reads the customer');
select isnt_empty($$ select id from public.pipelines where id = (select pipeline from ids) $$,
                  'but still reads the pipeline granted by the same source');

-- Another source granting the same row: taking one source's grant leaves the other's.
select tests.clear_authentication();
select sync.set_row_grants('customers', 'aaaaaaaa-0000-4000-8000-000000000002', (select rm1 from ids),
                           array['pipelines'], array[(select pipeline from ids)]);
select sync.set_row_grants('customers', (select source from ids), null, null, null);
select tests.authenticate_as('rm1.jakarta@crm.test');
select isnt_empty($$ select id from public.pipelines where id = (select pipeline from ids) $$,
                  'a row granted by two sources stays readable while one of them still grants it');
select tests.clear_authentication();
select throws_ok(
  $$ select sync.set_row_grants('customers', gen_random_uuid(), (select rm1 from ids), array['customers', 'pipelines'], array[(select customer from ids)]) $$,
  '22023', 'set_row_grants: p_tables and p_row_ids differ in length',
  'tables and rows come in pairs');
select throws_ok(
  $$ insert into sync.scope_changes (table_name, row_id, grantee, granted, old_scope) values ('customers', gen_random_uuid(), gen_random_uuid(), true, 'owned') $$,
  '23514', 'new row for relation "scope_changes" violates check constraint "scope_changes_entry_kind"',
  'a grant''s log entry has no previous scope');

-- The app's own policies ("app: ...") stay when a table is registered again; the registry's are replaced.
select sync.register_table('public.pipeline_referrals', 'pipelineReferral', 'child', 'public.pipelines', 'pipeline_id');
select results_eq(
  $$ select polname::text collate "default" from pg_policy where polrelid = 'public.pipeline_referrals'::regclass order by 1 $$,
  $$ values ('app: the rm a referral is made to answers it'), ('delete pipeline_referrals whose pipelines they see'),
            ('insert pipeline_referrals whose pipelines they see'), ('read pipeline_referrals whose pipelines they see'),
            ('update pipeline_referrals whose pipelines they see') $$,
  'registering a table again keeps the app''s own policies beside the registry''s');

-- Retention: once the purge removes a tombstone, the grants it gave and the grants of it go too.
select tests.clear_authentication();
update public.pipeline_referrals set deleted_at = now() where id = 'aaaaaaaa-0000-4000-8000-000000000009';
select isnt_empty($$ select 1 from sync.row_grants where source_id = 'aaaaaaaa-0000-4000-8000-000000000009' $$,
                  'a deleted referral still grants its tombstone to its rm');
select cmp_ok((sync.purge_expired(now() + interval '100 years') ->> 'row_grants')::int, '>=', 1,
              'the retention purge reports the grants it removed');
select is_empty($$ select 1 from sync.row_grants where source_id = 'aaaaaaaa-0000-4000-8000-000000000009'
                      or row_id = 'aaaaaaaa-0000-4000-8000-000000000009' $$,
                'the grants of a purged row, and from it, are gone with it');

select * from finish();
rollback;
