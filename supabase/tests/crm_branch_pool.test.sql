-- A branch pool: a bm creates a customer without an rm (assigned_rm_id null). It is the branch's:
-- the bm and admins see it, rms do not, until the bm assigns it to an rm of the branch; the
-- assignment is logged as a scope change, so the rm's next pull brings it with its child rows.
begin;
select plan(15);

create temp table pool on commit drop as select 'c0000000-0000-4000-8000-00000000aa00'::uuid as id;
grant select on pool to authenticated;

select tests.authenticate_as('bm.jakarta@crm.test');
select lives_ok(
  $$ insert into public.customers (id, name) values ('c0000000-0000-4000-8000-00000000aa00', 'PT Walk-in') $$,
  'a bm creates a customer without naming an rm'
);
select results_eq(
  $$ select assigned_rm_id, branch_id from public.customers where id = (select id from pool) $$,
  $$ values (null::uuid, '00000000-0000-4000-8000-0000000000b1'::uuid) $$,
  'it sits in the pool of the bm''s branch (no rm, the bm''s branch)'
);
select lives_ok(
  $$ insert into public.key_persons (customer_id, name) select id, 'Pak Walk-in' from pool $$,
  'the bm adds a key person to a pool customer'
);

select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty($$ select id from public.customers where id = (select id from pool) $$,
                'an rm of the branch does not see a pool customer');
select is_empty($$ select k.id from public.key_persons k join pool p on p.id = k.customer_id $$,
                'nor its key persons');
select throws_ok(
  $$ insert into public.customers (name, assigned_rm_id) values ('PT Into The Pool', null) $$,
  '42501', 'permission denied: role rm may not write customers.assigned_rm_id',
  'an rm cannot put a customer in the pool'
);
select results_eq(
  $$ insert into public.customers (name) values ('PT Mine') returning assigned_rm_id $$,
  $$ values (tests.user_id('rm1.jakarta@crm.test')) $$,
  'an rm''s new customer is still their own'
);

select tests.authenticate_as('bm.surabaya@crm.test');
select is_empty($$ select id from public.customers where id = (select id from pool) $$,
                'a bm of another branch does not see it');
select tests.authenticate_as('admin@crm.test');
select isnt_empty($$ select id from public.customers where id = (select id from pool) $$, 'an admin sees it');

select tests.authenticate_as('bm.jakarta@crm.test');
select throws_ok(
  $$ update public.customers set assigned_rm_id = tests.user_id('rm1.surabaya@crm.test') where id = (select id from pool) $$,
  '42501',
  'permission denied: customers.assigned_rm_id 00000000-0000-4000-8000-000000000022 is not a relationship manager of branch 00000000-0000-4000-8000-0000000000b1',
  'a pool customer goes only to an rm of its branch, and the refusal says so'
);
select results_eq(
  $$ update public.customers set assigned_rm_id = tests.user_id('rm1.jakarta@crm.test') where id = (select id from pool)
     returning assigned_rm_id $$,
  $$ values (tests.user_id('rm1.jakarta@crm.test')) $$,
  'the bm assigns the pool customer to an rm of the branch'
);
select tests.authenticate_as('rm1.jakarta@crm.test');
select isnt_empty($$ select k.id from public.key_persons k join pool p on p.id = k.customer_id $$,
                  'the rm now sees it, with its key persons');
select tests.clear_authentication();
select results_eq(
  $$ select old_owner, old_branch, inherited from sync.scope_changes
      where row_id = (select id from pool) or row_id in (select k.id from public.key_persons k join pool p on p.id = k.customer_id)
      order by inherited $$,
  $$ values (null::uuid, '00000000-0000-4000-8000-0000000000b1'::uuid, false),
            (null::uuid, '00000000-0000-4000-8000-0000000000b1'::uuid, true) $$,
  'the assignment is a scope change out of the pool, for the customer and its key person, as the pull reads it'
);

-- The push door: a bm's new customer without an rm lands in the pool.
select tests.authenticate_as('bm.jakarta@crm.test');
select is(
  (select jsonb_agg(jsonb_build_array(r ->> 'status', r -> 'row' -> 'assigned_rm_id'))
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
       tests.op(gen_random_uuid(), 'insert', 'customers', 'c0000000-0000-4000-8000-00000000aa01', null,
                '{"name": "PT Pushed To The Pool"}'))))::jsonb -> 'results') r),
  '[["applied", null]]'::jsonb,
  'through sync_push a bm''s new customer without an rm is applied, in the pool'
);
select tests.authenticate_as('rm1.jakarta@crm.test');
select is_empty($$ select id from public.customers where id = 'c0000000-0000-4000-8000-00000000aa01' $$,
                'and no rm sees it');
select tests.clear_authentication();

select * from finish();
rollback;
