-- Sales pipelines of a customer (money, stage, approval) and referrals of a pipeline to another rm.

create table public.pipelines (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  title text not null check (length(title) between 1 and 200),
  stage text not null default 'prospect'
    check (stage in ('prospect', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
  potential_value numeric(18, 2) check (potential_value >= 0),
  approved_value numeric(18, 2) check (approved_value >= 0),
  currency text not null default 'IDR' check (length(currency) <= 3 and currency ~ '^[A-Z]{3}$'),
  approval_status text not null default 'draft'
    check (approval_status in ('draft', 'submitted', 'approved', 'rejected')),
  approved_by uuid references public.profiles (id),
  approved_at timestamptz,
  expected_close_date date,
  notes text check (length(notes) <= 10000),
  assigned_rm_id uuid references public.profiles (id) default auth.uid(),
  branch_id uuid references public.branches (id) default sync.current_branch_id(),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.pipelines is 'Sales opportunities of a customer; a bm approves them.';
create index pipelines_customer_id_idx on public.pipelines (customer_id);
create index pipelines_approved_by_idx on public.pipelines (approved_by);
create index pipelines_assigned_rm_id_idx on public.pipelines (assigned_rm_id);
create index pipelines_branch_id_idx on public.pipelines (branch_id);
create index pipelines_change_xid_id_idx on public.pipelines (change_xid, id);
create index pipelines_updated_by_change_xid_idx on public.pipelines (updated_by, change_xid);

create table public.pipeline_referrals (
  id uuid primary key default gen_random_uuid(),
  pipeline_id uuid not null references public.pipelines (id),
  referred_rm_id uuid references public.profiles (id),
  status text not null default 'open' check (status in ('open', 'accepted', 'declined', 'closed')),
  notes text check (length(notes) <= 10000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.pipeline_referrals is 'A pipeline referred to another relationship manager.';
create index pipeline_referrals_pipeline_id_idx on public.pipeline_referrals (pipeline_id);
create index pipeline_referrals_referred_rm_id_idx on public.pipeline_referrals (referred_rm_id);
create index pipeline_referrals_change_xid_id_idx on public.pipeline_referrals (change_xid, id);
create index pipeline_referrals_updated_by_change_xid_idx on public.pipeline_referrals (updated_by, change_xid);

select sync.register_table('public.pipelines', 'pipeline', 'child', 'public.customers', 'customer_id');
select sync.register_table('public.pipeline_referrals', 'pipelineReferral', 'child', 'public.pipelines', 'pipeline_id');
