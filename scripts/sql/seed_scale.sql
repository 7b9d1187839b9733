-- A bank's shape at scale (npm run seed, scripts/seed.mjs), in one transaction, set-based.
-- Parameters: the settings seed_scale.seed, .branches, .rms_per_branch, .customers_per_rm.
--
-- Deterministic for a seed: every id is the seed, a kind and a row number (ids of one seed never
-- meet another seed's nor the development seed's), and every choice is a hash of the seed, the kind
-- of choice and the row number (hashint8extended), never random(): the same rows whatever order or
-- plan the statements run in. Timestamps are fixed too (from a base moment, not now()).
--
-- Skewed as a bank is: each rm's share of the customers is a Pareto draw (alpha 1.16, the 80/20
-- rule, capped at 200 times the smallest), so a few rms carry many customers and most carry few;
-- the customers of the run add up to branches x rms-per-branch x customers-per-rm exactly. Each
-- customer has 0 to 3 key persons, 0 to 3 pipelines, 0 to 5 activities (some about one of its
-- pipelines), a quarter an HVC link, a fifth a cadence enrolment, a few pipelines a referral.
--
-- The rows are written as the database owner with triggers off (session_replication_role =
-- replica), which also skips the foreign-key checks: writing millions of rows through the row
-- triggers costs several times the rows themselves. The triggers would stamp what is written here
-- anyway (version 1, no author: the development seed's rows have none either), and every rule they
-- and the keys enforce holds by construction: an rm of the customer's branch, pipelines and
-- activities carrying their customer's owner, referrals to another rm of the branch, enrolments in
-- the customer's branch's cadences. scale_seed.test.ts checks those rules on the rows written.
set local session_replication_role = replica;
-- One transaction's worth of work in memory where it can be.
set local work_mem = '256MB';
set local maintenance_work_mem = '256MB';
set local synchronous_commit = off;

create temp table seed_scale_params on commit drop as
select current_setting('seed_scale.seed')::bigint as seed,
       current_setting('seed_scale.branches')::int as branches,
       current_setting('seed_scale.rms_per_branch')::int as rms,
       current_setting('seed_scale.customers_per_rm')::int as cpr,
       timestamptz '2026-01-05 08:00:00+07' as base;

-- The id of row n of a kind (four hex digits) of this seed.
create function pg_temp.sid(p_kind text, p_n bigint) returns uuid
language sql stable
as $$
  select (lpad(to_hex(current_setting('seed_scale.seed')::bigint), 8, '0') || '-' || p_kind || '-4000-8000-'
          || lpad(to_hex(p_n), 12, '0'))::uuid
$$;
-- A uniform draw in [0, 1) for choice p_what of row p_n of this seed.
create function pg_temp.u(p_what int, p_n bigint) returns float8
language sql stable
as $$
  select (hashint8extended(p_n, current_setting('seed_scale.seed')::bigint * 1000 + p_what) & 4503599627370495)::float8
         / 4503599627370496
$$;

create temp table seed_scale_written (ord int, table_name text, rows bigint) on commit drop;

-- Staff: per branch a bm (row number b) and its rms (row number g, counted over all branches).
create temp table seed_scale_staff on commit drop as
select b, 0 as r, pg_temp.sid('b002', b) as id, 'bm' as role, format('bm.b%s.s%s@scale.test', b, p.seed) as email,
       format('Branch Manager %s', b) as full_name, pg_temp.sid('b001', b) as branch_id
  from seed_scale_params p, generate_series(1, p.branches) b
union all
select b, r, pg_temp.sid('b003', (b - 1) * p.rms + r), 'rm', format('rm%s.b%s.s%s@scale.test', r, b, p.seed),
       format('Relationship Manager %s-%s', b, r), pg_temp.sid('b001', b)
  from seed_scale_params p, generate_series(1, p.branches) b, generate_series(1, p.rms) r;

with w as (
  insert into auth.users (id, email, encrypted_password, email_confirmed_at, raw_app_meta_data, created_at, updated_at)
  select s.id, s.email, h.hash, p.base, '{"provider":"email","providers":["email"]}'::jsonb, p.base, p.base
    from seed_scale_staff s, seed_scale_params p,
         -- One bcrypt of the development password with a fixed salt: deterministic, and hashed once.
         (select extensions.crypt('password123', '$2a$06$supasyncscaleseedsalt.') as hash) h
  on conflict do nothing returning 1)
insert into seed_scale_written select 1, 'auth.users', count(*) from w;

with w as (
  insert into public.branches (id, code, name, created_at, updated_at)
  select pg_temp.sid('b001', b), format('S%s-%s', upper(to_hex(p.seed)), b), format('Branch %s (seed %s)', b, p.seed), p.base, p.base
    from seed_scale_params p, generate_series(1, p.branches) b
  on conflict do nothing returning 1)
insert into seed_scale_written select 2, 'branches', count(*) from w;

with w as (
  insert into public.profiles (id, role, branch_id, full_name, email, created_at, updated_at)
  select s.id, s.role, s.branch_id, s.full_name, s.email, p.base, p.base from seed_scale_staff s, seed_scale_params p
  on conflict do nothing returning 1)
insert into seed_scale_written select 3, 'profiles', count(*) from w;

with w as (
  insert into public.cadences (id, branch_id, name, segment, activity_type, interval_days, created_at, updated_at)
  select pg_temp.sid('c007', (b - 1) * 3 + c.k), pg_temp.sid('b001', b), c.name, c.segment, c.activity_type, c.days, p.base, p.base
    from seed_scale_params p, generate_series(1, p.branches) b,
         (values (1, 'Monthly visit', 'company', 'visit', 30), (2, 'Fortnightly call', 'individual', 'call', 14),
                 (3, 'Weekly HVC meeting', 'hvc', 'meeting', 7)) c (k, name, segment, activity_type, days)
  on conflict do nothing returning 1)
insert into seed_scale_written select 4, 'cadences', count(*) from w;

-- Each rm's number of customers: a Pareto share of the run's total, the remainder of the rounding
-- one each to the first rms. And where the rm's customers start in the run's numbering.
create temp table seed_scale_rms on commit drop as
with w as (
  select s.b, s.r, (s.b - 1) * p.rms + s.r as g, s.id, s.branch_id,
         least(power(1 - pg_temp.u(1, (s.b - 1) * p.rms + s.r), -1 / 1.16), 200) as w,
         p.branches::bigint * p.rms * p.cpr as total
    from seed_scale_staff s, seed_scale_params p where s.role = 'rm'
), f as (
  select *, floor(total * w / sum(w) over ())::bigint as k0 from w
), k as (
  select *, k0 + case when row_number() over (order by g) <= total - sum(k0) over () then 1 else 0 end as k from f
)
select b, r, g, id, branch_id, k::bigint as k, (sum(k) over (order by g) - k)::bigint as first from k;

-- The customers, numbered 1.. over the run, with their draws for the rows under them.
create temp table seed_scale_customers on commit drop as
select c.n, pg_temp.sid('c001', c.n) as id, c.b, c.r, c.rm_id, c.branch_id,
       case when pg_temp.u(2, c.n) < 0.7 then 'company' else 'individual' end as customer_type,
       floor(power(pg_temp.u(3, c.n), 2) * 4)::int as key_persons,
       floor(power(pg_temp.u(4, c.n), 3) * 4)::int as pipelines,
       floor(power(pg_temp.u(5, c.n), 2) * 6)::int as activities
  from (select m.first + j as n, m.b, m.r, m.id as rm_id, m.branch_id
          from seed_scale_rms m, generate_series(1, m.k) j) c;

with w as (
  insert into public.customers (id, name, customer_type, industry, email, phone, city, tax_id, assigned_rm_id, branch_id,
                                created_at, updated_at)
  select c.id,
         case when c.customer_type = 'company' then format('PT Scale %s', c.n) else format('Customer %s', c.n) end,
         c.customer_type,
         (array['manufacturing', 'retail', 'logistics', 'agriculture', 'finance', 'mining'])[1 + floor(pg_temp.u(6, c.n) * 6)::int],
         format('c%s.s%s@customer.test', c.n, p.seed),
         '+62 812 ' || lpad((c.n % 100000000)::text, 8, '0'),
         (array['Jakarta', 'Surabaya', 'Bandung', 'Medan', 'Semarang', 'Makassar'])[1 + c.b % 6],
         lpad(c.n::text, 15, '0'),
         c.rm_id, c.branch_id, p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p
  on conflict do nothing returning 1)
insert into seed_scale_written select 5, 'customers', count(*) from w;

-- Child rows are numbered customer * 8 + their index under it (fewer than 8 of a kind each).
with w as (
  insert into public.key_persons (id, customer_id, name, position, phone, is_primary, created_at, updated_at)
  select pg_temp.sid('c002', c.n * 8 + k), c.id, format('Contact %s-%s', c.n, k),
         (array['Director', 'Finance Manager', 'Procurement', 'Owner'])[k], '+62 813 ' || lpad((c.n % 10000000)::text, 7, '0') || k,
         k = 1, p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p, generate_series(1, c.key_persons) k
  on conflict do nothing returning 1)
insert into seed_scale_written select 6, 'key_persons', count(*) from w;

with w as (
  insert into public.customer_hvc_links (id, customer_id, hvc_id, relationship, created_at, updated_at)
  select pg_temp.sid('c005', c.n * 8), c.id, h.ids[1 + floor(pg_temp.u(8, c.n) * cardinality(h.ids))::int], 'member',
         p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p,
         (select array_agg(id order by id) as ids from public.hvcs where deleted_at is null) h
   where pg_temp.u(7, c.n) < 0.25 and cardinality(h.ids) > 0
  on conflict do nothing returning 1)
insert into seed_scale_written select 7, 'customer_hvc_links', count(*) from w;

-- A pipeline carries its customer's rm and branch; approved ones by the branch's bm.
with w as (
  insert into public.pipelines (id, customer_id, title, stage, potential_value, approved_value, currency, approval_status,
                                approved_by, approved_at, expected_close_date, assigned_rm_id, branch_id, created_at, updated_at)
  select pg_temp.sid('c003', c.n * 8 + k), c.id, format('Pipeline %s-%s', c.n, k),
         (array['prospect', 'qualified', 'proposal', 'negotiation', 'won', 'lost'])[1 + floor(pg_temp.u(9, c.n * 8 + k) * 6)::int],
         v.potential,
         case when v.status = 'approved' then round(v.potential * 0.9, 2) end,
         'IDR', v.status,
         case when v.status = 'approved' then pg_temp.sid('b002', c.b) end,
         case when v.status = 'approved' then p.base + c.n * interval '1 second' + interval '1 day' end,
         date '2027-01-01' + floor(pg_temp.u(11, c.n * 8 + k) * 365)::int,
         c.rm_id, c.branch_id, p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p, generate_series(1, c.pipelines) k,
         lateral (select round((10000000 + pg_temp.u(10, c.n * 8 + k) * 5000000000)::numeric, 2) as potential,
                         case when pg_temp.u(12, c.n * 8 + k) < 0.7 then 'draft'
                              when pg_temp.u(12, c.n * 8 + k) < 0.85 then 'submitted' else 'approved' end as status) v
  on conflict do nothing returning 1)
insert into seed_scale_written select 8, 'pipelines', count(*) from w;

-- A referral to the next rm of the branch (none where the branch has one rm).
with w as (
  insert into public.pipeline_referrals (id, pipeline_id, referred_rm_id, status, notes, created_at, updated_at)
  select pg_temp.sid('c006', c.n * 8 + k), pg_temp.sid('c003', c.n * 8 + k),
         pg_temp.sid('b003', (c.b - 1) * p.rms + c.r % p.rms + 1), 'open', 'Referred for a second opinion',
         p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p, generate_series(1, c.pipelines) k
   where p.rms > 1 and pg_temp.u(13, c.n * 8 + k) < 0.05
  on conflict do nothing returning 1)
insert into seed_scale_written select 9, 'pipeline_referrals', count(*) from w;

-- Activities: every other one about one of the customer's pipelines, where it has any.
with w as (
  insert into public.activities (id, customer_id, pipeline_id, activity_type, subject, scheduled_at, completed_at,
                                 created_at, updated_at)
  select pg_temp.sid('c004', c.n * 8 + k), c.id,
         case when c.pipelines > 0 and k % 2 = 1 then pg_temp.sid('c003', c.n * 8 + 1 + k % c.pipelines) end,
         (array['call', 'meeting', 'visit', 'email', 'note'])[1 + floor(pg_temp.u(14, c.n * 8 + k) * 5)::int],
         format('Follow-up %s-%s', c.n, k),
         s.at, case when pg_temp.u(16, c.n * 8 + k) < 0.6 then s.at + interval '1 hour' end,
         p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p, generate_series(1, c.activities) k,
         lateral (select p.base + floor(pg_temp.u(15, c.n * 8 + k) * 365 * 24)::int * interval '1 hour' as at) s
  on conflict do nothing returning 1)
insert into seed_scale_written select 10, 'activities', count(*) from w;

-- A fifth of the customers follow their branch's cadence for their segment.
with w as (
  insert into public.cadence_participants (id, customer_id, cadence_id, status, next_due_on, created_at, updated_at)
  select pg_temp.sid('c008', c.n * 8), c.id,
         pg_temp.sid('c007', (c.b - 1) * 3 + case when c.customer_type = 'company' then 1 else 2 end),
         (array['active', 'active', 'active', 'paused', 'completed'])[1 + floor(pg_temp.u(18, c.n) * 5)::int],
         date '2027-01-01' + floor(pg_temp.u(19, c.n) * 60)::int,
         p.base + c.n * interval '1 second', p.base + c.n * interval '1 second'
    from seed_scale_customers c, seed_scale_params p
   where pg_temp.u(17, c.n) < 0.2
  on conflict do nothing returning 1)
insert into seed_scale_written select 11, 'cadence_participants', count(*) from w;
