-- Local development data for the tables added after 0.1.0 (supabase/seed.sql is that release's,
-- frozen by its checksum in supabase/releases.json): each branch's cadences, and every fifth
-- customer enrolled in its branch's company cadence. Ids are fixed so tests and docs can name them.

insert into public.cadences (id, branch_id, name, segment, activity_type, interval_days)
select ('00000000-0000-4000-8700-' || lpad((b.n * 10 + c.n)::text, 12, '0'))::uuid, b.id, c.name, c.segment, c.activity_type, c.interval_days
  from (values (1, '00000000-0000-4000-8000-0000000000b1'::uuid), (2, '00000000-0000-4000-8000-0000000000b2'::uuid)) b (n, id),
       (values (1, 'Monthly visit', 'company', 'visit', 30),
               (2, 'Fortnightly call', 'individual', 'call', 14),
               (3, 'Weekly HVC meeting', 'hvc', 'meeting', 7)) c (n, name, segment, activity_type, interval_days)
on conflict (id) do nothing;

insert into public.cadence_participants (id, customer_id, cadence_id, next_due_on)
select ('00000000-0000-4000-8800-' || lpad(c.n::text, 12, '0'))::uuid, c.id,
       ('00000000-0000-4000-8700-' || case when c.branch_id = '00000000-0000-4000-8000-0000000000b1' then '000000000011' else '000000000021' end)::uuid,
       date '2026-12-01' + c.n % 30
  from (select id, branch_id, substr(id::text, 25)::int as n from public.customers
         where id::text like '00000000-0000-4000-8100-%') c
 where c.n % 5 = 0
on conflict (id) do nothing;
