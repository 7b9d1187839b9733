-- Local development data: two branches, each with a branch manager and two relationship managers,
-- one admin, and a few hundred customers with key persons, pipelines and activities.
-- Every seed user's password is `password123`. Ids are fixed so tests and docs can name them.

insert into auth.users (id, email, encrypted_password, email_confirmed_at, raw_app_meta_data)
select u.id, u.email, extensions.crypt('password123', extensions.gen_salt('bf', 6)), now(),
       '{"provider":"email","providers":["email"]}'::jsonb
  from (values
    ('00000000-0000-4000-8000-000000000001'::uuid, 'admin@crm.test'),
    ('00000000-0000-4000-8000-000000000011'::uuid, 'bm.jakarta@crm.test'),
    ('00000000-0000-4000-8000-000000000012'::uuid, 'rm1.jakarta@crm.test'),
    ('00000000-0000-4000-8000-000000000013'::uuid, 'rm2.jakarta@crm.test'),
    ('00000000-0000-4000-8000-000000000021'::uuid, 'bm.surabaya@crm.test'),
    ('00000000-0000-4000-8000-000000000022'::uuid, 'rm1.surabaya@crm.test'),
    ('00000000-0000-4000-8000-000000000023'::uuid, 'rm2.surabaya@crm.test')
  ) u (id, email)
on conflict (id) do nothing;

insert into public.branches (id, code, name) values
  ('00000000-0000-4000-8000-0000000000b1', 'JKT', 'Jakarta'),
  ('00000000-0000-4000-8000-0000000000b2', 'SBY', 'Surabaya')
on conflict (id) do nothing;

insert into public.profiles (id, role, branch_id, full_name, email) values
  ('00000000-0000-4000-8000-000000000001', 'admin', null, 'Ayu Admin', 'admin@crm.test'),
  ('00000000-0000-4000-8000-000000000011', 'bm', '00000000-0000-4000-8000-0000000000b1', 'Budi Manager', 'bm.jakarta@crm.test'),
  ('00000000-0000-4000-8000-000000000012', 'rm', '00000000-0000-4000-8000-0000000000b1', 'Rina RM', 'rm1.jakarta@crm.test'),
  ('00000000-0000-4000-8000-000000000013', 'rm', '00000000-0000-4000-8000-0000000000b1', 'Dewi RM', 'rm2.jakarta@crm.test'),
  ('00000000-0000-4000-8000-000000000021', 'bm', '00000000-0000-4000-8000-0000000000b2', 'Sari Manager', 'bm.surabaya@crm.test'),
  ('00000000-0000-4000-8000-000000000022', 'rm', '00000000-0000-4000-8000-0000000000b2', 'Agus RM', 'rm1.surabaya@crm.test'),
  ('00000000-0000-4000-8000-000000000023', 'rm', '00000000-0000-4000-8000-0000000000b2', 'Wati RM', 'rm2.surabaya@crm.test')
on conflict (id) do nothing;

insert into public.hvcs (id, code, name)
select ('00000000-0000-4000-8001-' || lpad(i::text, 12, '0'))::uuid, 'HVC-' || i, 'HVC group ' || i
  from generate_series(1, 10) i
on conflict (id) do nothing;

insert into public.brokers (id, name, license_no, phone)
select ('00000000-0000-4000-8002-' || lpad(i::text, 12, '0'))::uuid, 'Broker ' || i, 'LIC-' || (1000 + i), '+62 21 555 ' || lpad(i::text, 4, '0')
  from generate_series(1, 10) i
on conflict (id) do nothing;

-- 300 customers: 75 for each rm, ids 00000000-0000-4000-8100-<n>.
with rms (n, rm_id, branch_id) as (
  values (0, '00000000-0000-4000-8000-000000000012'::uuid, '00000000-0000-4000-8000-0000000000b1'::uuid),
         (1, '00000000-0000-4000-8000-000000000013'::uuid, '00000000-0000-4000-8000-0000000000b1'::uuid),
         (2, '00000000-0000-4000-8000-000000000022'::uuid, '00000000-0000-4000-8000-0000000000b2'::uuid),
         (3, '00000000-0000-4000-8000-000000000023'::uuid, '00000000-0000-4000-8000-0000000000b2'::uuid)
)
insert into public.customers (id, name, industry, email, phone, city, tax_id, assigned_rm_id, branch_id)
select ('00000000-0000-4000-8100-' || lpad(i::text, 12, '0'))::uuid,
       'PT Customer ' || i,
       (array['manufacturing', 'retail', 'logistics', 'agriculture'])[1 + i % 4],
       'contact' || i || '@customer.test',
       '+62 812 0000 ' || lpad(i::text, 4, '0'),
       case when rms.n < 2 then 'Jakarta' else 'Surabaya' end,
       lpad(i::text, 15, '0'),
       rms.rm_id, rms.branch_id
  from generate_series(1, 300) i
  join rms on rms.n = i % 4
on conflict (id) do nothing;

insert into public.key_persons (id, customer_id, name, position, phone, is_primary)
select ('00000000-0000-4000-8200-' || lpad((c * 10 + k)::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8100-' || lpad(c::text, 12, '0'))::uuid,
       'Contact ' || c || '-' || k, (array['Director', 'Finance Manager'])[k], '+62 813 ' || c || k, k = 1
  from generate_series(1, 300) c, generate_series(1, 2) k
on conflict (id) do nothing;

insert into public.pipelines (id, customer_id, title, stage, potential_value, expected_close_date, notes,
                              assigned_rm_id, branch_id)
select ('00000000-0000-4000-8300-' || lpad(c.n::text, 12, '0'))::uuid, c.id,
       'Fleet insurance ' || c.n,
       (array['prospect', 'qualified', 'proposal', 'negotiation'])[1 + c.n % 4],
       100000000 + c.n * 1000000, date '2027-03-31', 'Initial notes ' || c.n,
       c.assigned_rm_id, c.branch_id
  from (select id, assigned_rm_id, branch_id, substr(id::text, 25)::int as n from public.customers) c
on conflict (id) do nothing;

insert into public.activities (id, customer_id, pipeline_id, activity_type, subject, scheduled_at)
select ('00000000-0000-4000-8400-' || lpad((c * 10 + k)::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8100-' || lpad(c::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8300-' || lpad(c::text, 12, '0'))::uuid,
       (array['call', 'visit'])[k], 'Follow-up ' || c || '-' || k,
       timestamptz '2026-12-01 09:00+07' + (c % 20) * interval '1 day'
  from generate_series(1, 300) c, generate_series(1, 2) k
on conflict (id) do nothing;

insert into public.customer_hvc_links (id, customer_id, hvc_id, relationship)
select ('00000000-0000-4000-8500-' || lpad(c::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8100-' || lpad(c::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8001-' || lpad((1 + c % 10)::text, 12, '0'))::uuid, 'member'
  from generate_series(1, 300, 3) c
on conflict (id) do nothing;

insert into public.pipeline_referrals (id, pipeline_id, referred_rm_id, notes)
select ('00000000-0000-4000-8600-' || lpad(c::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8300-' || lpad(c::text, 12, '0'))::uuid,
       '00000000-0000-4000-8000-000000000013'::uuid, 'Referred for a second opinion'
  from generate_series(4, 300, 20) c
on conflict (id) do nothing;
