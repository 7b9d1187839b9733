-- The local seed is what the other tests and the docs name: two branches, each with a bm and two
-- rms, one admin, 300 customers (75 per rm, by customer number modulo 4) and their related rows.
begin;
select plan(22);

select results_eq(
  $$ select code, name from public.branches order by code $$,
  $$ values ('JKT', 'Jakarta'), ('SBY', 'Surabaya') $$,
  'there are two branches, Jakarta and Surabaya'
);
select results_eq(
  $$ select b.code, p.role, count(*) from public.profiles p join public.branches b on b.id = p.branch_id
      group by b.code, p.role order by b.code, p.role $$,
  $$ values ('JKT', 'bm', 1::bigint), ('JKT', 'rm', 2::bigint), ('SBY', 'bm', 1::bigint), ('SBY', 'rm', 2::bigint) $$,
  'each branch has one bm and two rms'
);
select results_eq(
  $$ select email, branch_id from public.profiles where role = 'admin' $$,
  $$ values ('admin@crm.test', null::uuid) $$,
  'there is one admin, in no branch'
);

create temp table seed_users (email text, role text, branch_code text, rm_slot int) on commit drop;
insert into seed_users values
  ('admin@crm.test', 'admin', null, null),
  ('bm.jakarta@crm.test', 'bm', 'JKT', null),
  ('rm1.jakarta@crm.test', 'rm', 'JKT', 0),
  ('rm2.jakarta@crm.test', 'rm', 'JKT', 1),
  ('bm.surabaya@crm.test', 'bm', 'SBY', null),
  ('rm1.surabaya@crm.test', 'rm', 'SBY', 2),
  ('rm2.surabaya@crm.test', 'rm', 'SBY', 3);

select set_eq(
  $$ select u.email, p.role, b.code, p.email as profile_email
       from auth.users u
       join public.profiles p on p.id = u.id and p.deleted_at is null
       left join public.branches b on b.id = p.branch_id
      where p.role in ('rm', 'bm', 'admin') $$,
  $$ select email, role, branch_code, email as profile_email from seed_users $$,
  'every seed user exists in auth.users with a live profile of their role and branch, and nobody else has a CRM role'
);
select ok(
  (select bool_and(u.encrypted_password = extensions.crypt('password123', u.encrypted_password))
     from auth.users u join seed_users s on s.email = u.email),
  'every seed user signs in with password123'
);

select is((select count(*) from public.customers), 300::bigint, 'there are 300 customers');
select results_eq(
  $$ select p.email, count(*) from public.customers c join public.profiles p on p.id = c.assigned_rm_id
      group by p.email order by p.email $$,
  $$ values ('rm1.jakarta@crm.test', 75::bigint), ('rm1.surabaya@crm.test', 75::bigint),
            ('rm2.jakarta@crm.test', 75::bigint), ('rm2.surabaya@crm.test', 75::bigint) $$,
  'each rm has 75 customers'
);
select is_empty(
  $$ select c.id from public.customers c
       join public.profiles p on p.id = c.assigned_rm_id
       join seed_users s on s.email = p.email
      where c.id <> ('00000000-0000-4000-8100-' || lpad(substr(c.id::text, 25)::int::text, 12, '0'))::uuid
         or substr(c.id::text, 25)::int not between 1 and 300
         or substr(c.id::text, 25)::int % 4 <> s.rm_slot
         or c.branch_id <> p.branch_id $$,
  'customer n is 00000000-0000-4000-8100-<n>, owned by the rm of slot n % 4, in that rm''s branch'
);

select results_eq(
  $$ select count(*), count(distinct customer_id), count(*) filter (where is_primary) from public.key_persons $$,
  $$ values (600::bigint, 300::bigint, 300::bigint) $$,
  'every customer has two key persons, one of them primary'
);
select is_empty(
  $$ select k.id from public.key_persons k
      where k.customer_id <> ('00000000-0000-4000-8100-' || lpad((substr(k.id::text, 25)::int / 10)::text, 12, '0'))::uuid
         or substr(k.id::text, 25)::int % 10 not in (1, 2) $$,
  'key person n*10+k (k = 1, 2) belongs to customer n'
);
select is((select count(*) from public.pipelines), 300::bigint, 'there are 300 pipelines');
select is_empty(
  $$ select p.id from public.pipelines p join public.customers c on c.id = p.customer_id
      where substr(p.id::text, 25) <> substr(c.id::text, 25)
         or p.assigned_rm_id is distinct from c.assigned_rm_id or p.branch_id is distinct from c.branch_id $$,
  'pipeline n belongs to customer n, with its rm and branch'
);
select is_empty(
  $$ select id from public.pipelines where approval_status <> 'draft' $$,
  'every seed pipeline is a draft'
);
select results_eq(
  $$ select count(*), count(distinct customer_id) from public.activities $$,
  $$ values (600::bigint, 300::bigint) $$,
  'every customer has two activities'
);
select is_empty(
  $$ select a.id from public.activities a
      where a.customer_id <> ('00000000-0000-4000-8100-' || lpad((substr(a.id::text, 25)::int / 10)::text, 12, '0'))::uuid
         or a.pipeline_id <> ('00000000-0000-4000-8300-' || lpad((substr(a.id::text, 25)::int / 10)::text, 12, '0'))::uuid $$,
  'activity n*10+k belongs to customer n and pipeline n'
);
select is((select count(*) from public.customer_hvc_links), 100::bigint, 'every third customer is in an HVC group');
select is((select count(*) from public.pipeline_referrals), 15::bigint, 'there are 15 pipeline referrals');
select is((select count(*) from public.hvcs), 10::bigint, 'there are 10 HVC groups');
select is((select count(*) from public.brokers), 10::bigint, 'there are 10 brokers');

select is_empty(
  $$ select 'customers', id from public.customers where deleted_at is not null or version <> 1
     union all select 'key_persons', id from public.key_persons where deleted_at is not null or version <> 1
     union all select 'pipelines', id from public.pipelines where deleted_at is not null or version <> 1
     union all select 'activities', id from public.activities where deleted_at is not null or version <> 1 $$,
  'seed rows are live, at version 1'
);
select is_empty($$ select id from sync.conflicts $$, 'the conflict audit starts empty');

-- Re-applying the seed (it is run on every reset) adds nothing.
create temp table counts_before on commit drop as
  select (select count(*) from auth.users) as users, (select count(*) from public.customers) as customers,
         (select count(*) from public.key_persons) as key_persons, (select count(*) from public.activities) as activities,
         (select count(*) from public.customer_hvc_links) as links, (select count(*) from public.pipeline_referrals) as referrals;
\ir ../seed.sql
select results_eq(
  $$ select (select count(*) from auth.users), (select count(*) from public.customers),
            (select count(*) from public.key_persons), (select count(*) from public.activities),
            (select count(*) from public.customer_hvc_links), (select count(*) from public.pipeline_referrals) $$,
  $$ select users, customers, key_persons, activities, links, referrals from counts_before $$,
  'the seed can be applied again without adding rows'
);

select * from finish();
rollback;
