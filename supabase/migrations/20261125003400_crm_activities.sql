-- Activities (calls, meetings, visits) with a customer, optionally about one of its pipelines.

create table public.activities (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  pipeline_id uuid references public.pipelines (id),
  activity_type text not null check (activity_type in ('call', 'meeting', 'visit', 'email', 'note')),
  subject text not null check (length(subject) between 1 and 200),
  scheduled_at timestamptz,
  completed_at timestamptz,
  notes text check (length(notes) <= 10000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.activities is 'Calls, meetings, visits and notes with a customer.';
create index activities_customer_id_idx on public.activities (customer_id);
create index activities_pipeline_id_idx on public.activities (pipeline_id);
create index activities_change_xid_id_idx on public.activities (change_xid, id);
create index activities_updated_by_change_xid_idx on public.activities (updated_by, change_xid);

select sync.register_table('public.activities', 'activity', 'child', 'public.customers', 'customer_id');
