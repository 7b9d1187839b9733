-- Referrals reach the rm they are made to. rm1.jakarta's pipeline 4 (customer 4, PT Customer 4 of
-- Jakarta, a company; the pipeline "Fleet insurance 4" at stage prospect) is referred to rm2.jakarta
-- in the seed (referral 4, open). The referred rm reads the referral and its summary, accepts or
-- declines it; while it is accepted they read its pipeline, its customer and the activities on the
-- pipeline, and log activities there; the referring side closes it, and the access goes with it.
begin;
select plan(43);

create temp table ids on commit drop as
  select tests.user_id('rm1.jakarta@crm.test') as rm1, tests.user_id('rm2.jakarta@crm.test') as rm2,
         tests.user_id('bm.jakarta@crm.test') as bm,
         '00000000-0000-4000-8600-000000000004'::uuid as referral, '00000000-0000-4000-8300-000000000004'::uuid as pipeline,
         '00000000-0000-4000-8100-000000000004'::uuid as customer,
         'bbbbbbbb-0000-4000-8000-000000000001'::uuid as second_pipeline,
         'bbbbbbbb-0000-4000-8000-000000000002'::uuid as loose_activity,
         'bbbbbbbb-0000-4000-8000-000000000003'::uuid as logged_activity;
grant select on ids to authenticated, sync_engine;

-- rm1.jakarta's customer 4 has a second pipeline and an activity about no pipeline.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into public.pipelines (id, customer_id, title) values ((select second_pipeline from ids), (select customer from ids), 'Second deal');
insert into public.activities (id, customer_id, activity_type, subject)
values ((select loose_activity from ids), (select customer from ids), 'note', 'About the customer');

-- Open: the referral and what it is about, nothing more.
select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq(
  $$ select status, customer_name, customer_type, customer_city, pipeline_title, pipeline_stage
       from public.pipeline_referrals where id = (select referral from ids) $$,
  $$ values ('open'::text, 'PT Customer 4'::text, 'company'::text, 'Jakarta'::text, 'Fleet insurance 4'::text, 'prospect'::text) $$,
  'the referred rm reads the referral made to them, with the customer''s name, type and city and the pipeline''s title and stage');
select is_empty($$ select id from public.pipelines where id = (select pipeline from ids) $$,
                'while it is open, the referred rm does not read the pipeline');
select is_empty($$ select id from public.customers where id = (select customer from ids) $$,
                'nor its customer');

-- The referred rm answers: accept or decline, nothing else.
select throws_ok(
  $$ update public.pipeline_referrals set notes = 'mine now' where id = (select referral from ids) $$,
  '42501', 'permission denied: the rm a referral is made to changes only its status, not notes',
  'the referred rm changes only the status');
select throws_ok(
  $$ update public.pipeline_referrals set status = 'closed' where id = (select referral from ids) $$,
  '42501', 'permission denied: pipeline_referrals.status may not go from open to closed by the referred side',
  'the referred rm does not close a referral');
select results_eq(
  $$ update public.pipeline_referrals set status = 'accepted' where id = (select referral from ids) returning status $$,
  $$ values ('accepted'::text) $$,
  'the referred rm accepts the referral');

-- Accepted: the pipeline, its customer and the pipeline's activities; not the rest of the customer.
select set_eq(
  $$ select id from public.pipelines where customer_id = (select customer from ids)
     union all select id from public.customers where id = (select customer from ids) $$,
  $$ select pipeline from ids union all select customer from ids $$,
  'having accepted, the referred rm reads the pipeline and its customer, not the customer''s other pipelines');
select set_eq(
  $$ select id from public.activities where customer_id = (select customer from ids) $$,
  $$ values ('00000000-0000-4000-8400-000000000041'::uuid), ('00000000-0000-4000-8400-000000000042'::uuid) $$,
  'and the activities on that pipeline, not the customer''s other activities');
select is_empty($$ select id from public.key_persons where customer_id = (select customer from ids) $$,
                'nor the customer''s key persons');
select is_empty($$ update public.pipelines set notes = 'edited by the referred rm' where id = (select pipeline from ids) returning id $$,
                'the referred rm reads the pipeline but does not change it');
select is_empty($$ update public.customers set notes = 'edited by the referred rm' where id = (select customer from ids) returning id $$,
                'nor its customer');
select lives_ok(
  $$ insert into public.activities (id, customer_id, pipeline_id, activity_type, subject)
     values ((select logged_activity from ids), (select customer from ids), (select pipeline from ids), 'meeting', 'Met with the referred rm') $$,
  'the referred rm logs an activity on the pipeline');
select results_eq($$ select created_by from public.activities where id = (select logged_activity from ids) $$,
                  $$ select rm2 from ids $$, 'and reads the activity they logged');
select throws_ok(
  $$ insert into public.activities (customer_id, activity_type, subject) values ((select customer from ids), 'call', 'No pipeline') $$,
  '42501', 'new row violates row-level security policy for table "activities"',
  'the referred rm logs no activity about the customer alone');
select throws_ok(
  $$ insert into public.activities (customer_id, pipeline_id, activity_type, subject)
     values ((select customer from ids), (select second_pipeline from ids), 'call', 'Other deal') $$,
  '42501', 'new row violates row-level security policy for table "activities"',
  'nor on the customer''s other pipeline');
select is_empty(
  $$ update public.activities set subject = 'Rewritten by the referred rm' where id = '00000000-0000-4000-8400-000000000041' returning id $$,
  'the referred rm reads the activities on the pipeline but does not change them');
select throws_ok(
  $$ insert into public.key_persons (customer_id, name) values ((select customer from ids), 'Planted') $$,
  '42501', 'new row violates row-level security policy for table "key_persons"',
  'nor adds key persons to the customer');

-- The referring side sees the answer, keeps the summary current, and closes.
select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq($$ select status from public.pipeline_referrals where id = (select referral from ids) $$,
                  $$ values ('accepted'::text) $$, 'the referring rm sees that the referral was accepted');
select throws_ok(
  $$ update public.pipeline_referrals set status = 'declined' where id = (select referral from ids) $$,
  '42501', 'permission denied: pipeline_referrals.status may not go from accepted to declined by the referring side',
  'the referring rm does not answer for the referred rm');
select throws_ok(
  $$ update public.pipeline_referrals set customer_name = 'PT Other' where id = (select referral from ids) $$,
  '42501', 'permission denied: role rm may not write pipeline_referrals.customer_name',
  'no one writes the summary: the server sets it');
update public.customers set name = 'PT Customer 4 Renamed', city = 'Bogor' where id = (select customer from ids);
update public.pipelines set stage = 'proposal', title = 'Fleet insurance 4b' where id = (select pipeline from ids);
select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq(
  $$ select customer_name, customer_city, pipeline_title, pipeline_stage from public.pipeline_referrals where id = (select referral from ids) $$,
  $$ values ('PT Customer 4 Renamed'::text, 'Bogor'::text, 'Fleet insurance 4b'::text, 'proposal'::text) $$,
  'the summary follows the customer and the pipeline');
select tests.authenticate_as('rm1.jakarta@crm.test');
select results_eq(
  $$ update public.pipeline_referrals set status = 'closed' where id = (select referral from ids) returning status $$,
  $$ values ('closed'::text) $$,
  'the referring rm closes the referral');

-- Closed: the referral stays, the access goes.
select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq($$ select status from public.pipeline_referrals where id = (select referral from ids) $$,
                  $$ values ('closed'::text) $$, 'the referred rm still reads the closed referral');
select is_empty(
  $$ select id from public.pipelines where id = (select pipeline from ids)
     union all select id from public.customers where id = (select customer from ids)
     union all select id from public.activities where customer_id = (select customer from ids) $$,
  'closing takes the pipeline, its customer and its activities (the one they logged too) away from the referred rm');
select tests.clear_authentication();
select results_eq(
  $$ select table_name, count(*)::int from sync.scope_changes
      where change_xid = pg_current_xact_id() and grantee = (select rm2 from ids) and not granted
      group by table_name order by table_name $$,
  $$ values ('activities'::text, 3), ('customers'::text, 1), ('pipelines'::text, 1) $$,
  'each row taken away is logged for the pull, which evicts it from the referred rm''s devices');

-- A new referral: open, to another active rm.
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id, referred_rm_id, status) values ((select pipeline from ids), (select rm2 from ids), 'accepted') $$,
  '42501', 'pipeline_referrals.status: a referral starts open, not accepted',
  'a referral starts open');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id, referred_rm_id) values ((select pipeline from ids), (select bm from ids)) $$,
  '23514', 'pipeline_referrals.referred_rm_id: a referral is made to an active relationship manager',
  'a referral is made to an rm');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id) values ((select pipeline from ids)) $$,
  '23514', 'pipeline_referrals.referred_rm_id: a referral is made to an active relationship manager',
  'a referral names its rm');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id, referred_rm_id) values ((select pipeline from ids), (select rm1 from ids)) $$,
  '23514', 'pipeline_referrals.referred_rm_id: a referral is made to someone else',
  'an rm does not refer a pipeline to themselves');
select throws_ok(
  $$ insert into public.pipeline_referrals (pipeline_id, referred_rm_id) values ('00000000-0000-4000-8300-000000000001', (select rm1 from ids)) $$,
  '42501', 'new row violates row-level security policy for table "pipeline_referrals"',
  'an rm refers only pipelines in their scope');
insert into public.pipeline_referrals (id, pipeline_id, referred_rm_id)
values ('bbbbbbbb-0000-4000-8000-000000000010', (select second_pipeline from ids), (select rm2 from ids));
select throws_ok(
  $$ update public.pipeline_referrals set referred_rm_id = (select rm1 from ids) where id = 'bbbbbbbb-0000-4000-8000-000000000010' $$,
  '42501', 'permission denied: a referral''s referred_rm_id does not change; make a new referral',
  'a referral keeps its rm');
select throws_ok(
  $$ update public.pipeline_referrals set pipeline_id = (select pipeline from ids) where id = 'bbbbbbbb-0000-4000-8000-000000000010' $$,
  '42501', 'permission denied: a referral''s pipeline_id does not change; make a new referral',
  'and its pipeline');

-- Declined: no access, and no way back for the referred rm.
select tests.authenticate_as('rm2.jakarta@crm.test');
update public.pipeline_referrals set status = 'declined' where id = 'bbbbbbbb-0000-4000-8000-000000000010';
select is_empty($$ select id from public.pipelines where id = (select second_pipeline from ids) $$,
                'a declined referral gives the referred rm no access');
select throws_ok(
  $$ update public.pipeline_referrals set status = 'accepted' where id = 'bbbbbbbb-0000-4000-8000-000000000010' $$,
  '42501', 'permission denied: pipeline_referrals.status may not go from declined to accepted by the referred side',
  'a declined referral is not accepted afterwards');
select tests.authenticate_as('bm.jakarta@crm.test');
select results_eq(
  $$ update public.pipeline_referrals set status = 'closed' where id = 'bbbbbbbb-0000-4000-8000-000000000010' returning status $$,
  $$ values ('closed'::text) $$,
  'the branch''s bm closes a referral of the branch (the referring side)');
select tests.authenticate_as('admin@crm.test');
select results_eq(
  $$ update public.pipeline_referrals set status = 'accepted' where id = 'bbbbbbbb-0000-4000-8000-000000000010' returning status $$,
  $$ values ('accepted'::text) $$,
  'an admin may make any move');
select tests.authenticate_as('rm2.jakarta@crm.test');
select isnt_empty($$ select id from public.pipelines where id = (select second_pipeline from ids) $$,
                  'an accepted referral grants access whoever accepted it');

-- A deleted referral: the referred rm gets its tombstone and loses the access.
select tests.authenticate_as('rm1.jakarta@crm.test');
delete from public.pipeline_referrals where id = 'bbbbbbbb-0000-4000-8000-000000000010';
select tests.authenticate_as('rm2.jakarta@crm.test');
select results_eq($$ select deleted_at is not null from public.pipeline_referrals where id = 'bbbbbbbb-0000-4000-8000-000000000010' $$,
                  $$ values (true) $$, 'the referred rm reads the deleted referral''s tombstone');
select is_empty($$ select id from public.pipelines where id = (select second_pipeline from ids) $$,
                'and no longer the pipeline');

-- Through the push, the same rules, each refusal naming its field.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into public.pipeline_referrals (id, pipeline_id, referred_rm_id)
values ('bbbbbbbb-0000-4000-8000-000000000020', (select pipeline from ids), (select rm2 from ids));
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'update', 'pipeline_referrals', 'bbbbbbbb-0000-4000-8000-000000000020', null,
                '{"status": "accepted"}'),
       tests.op(gen_random_uuid(), 'insert', 'pipeline_referrals', 'bbbbbbbb-0000-4000-8000-000000000021', null,
                jsonb_build_object('pipeline_id', (select pipeline from ids), 'referred_rm_id', (select rm2 from ids),
                                   'customer_name', 'PT Made Up')),
       tests.op(gen_random_uuid(), 'insert', 'pipeline_referrals', 'bbbbbbbb-0000-4000-8000-000000000022', null,
                jsonb_build_object('pipeline_id', (select pipeline from ids), 'referred_rm_id', (select bm from ids))))))
     -> 'results') r),
  '[["rejected", "forbidden", "status"], ["rejected", "forbidden", "customer_name"], ["rejected", "invalid", "referred_rm_id"]]',
  'through the push, the referring rm''s accept, a summary written by a client and a referral to a bm are rejected, naming the field');
select tests.authenticate_as('rm2.jakarta@crm.test');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from (select public.sync_push(tests.push_body(jsonb_build_array(
                    tests.op(gen_random_uuid(), 'update', 'pipeline_referrals', 'bbbbbbbb-0000-4000-8000-000000000020', null, o.data))))
                  -> 'results' -> 0 as r
             from (values (1, '{"notes": "taking it"}'::jsonb), (2, '{"status": "closed"}')) o (n, data) order by o.n) x),
  '[["rejected", "forbidden", "notes"], ["rejected", "forbidden", "status"]]',
  'through the push, the referred rm changes nothing but the status, and does not close');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r ->> 'code', r ->> 'field'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'update', 'pipeline_referrals', 'bbbbbbbb-0000-4000-8000-000000000020', null,
                '{"status": "accepted"}'),
       tests.op(gen_random_uuid(), 'insert', 'activities', 'bbbbbbbb-0000-4000-8000-000000000023', null,
                jsonb_build_object('customer_id', (select customer from ids), 'pipeline_id', (select pipeline from ids),
                                   'activity_type', 'call', 'subject', 'Logged through the push')))))
     -> 'results') r),
  '[["applied", null, null], ["applied", null, null]]',
  'through the push, the referred rm accepts and, in the same push, logs an activity on the pipeline');
select isnt_empty($$ select id from public.customers where id = (select customer from ids) $$,
                  'having accepted through the push, the referred rm reads the customer');

select * from finish();
rollback;
