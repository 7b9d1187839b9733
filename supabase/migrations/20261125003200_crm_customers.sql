-- Customers, owned by a relationship manager within a branch, and their key persons and HVC links.

create table public.customers (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  customer_type text not null default 'company' check (customer_type in ('company', 'individual')),
  industry text check (length(industry) <= 100),
  email text check (length(email) <= 254 and email ~ '^[^@\s]+@[^@\s]+$'),
  phone text check (length(phone) <= 40),
  address text check (length(address) <= 500),
  city text check (length(city) <= 100),
  tax_id text check (length(tax_id) <= 20 and tax_id ~ '^[0-9][0-9.-]{14,19}$'),
  notes text check (length(notes) <= 10000),
  assigned_rm_id uuid references public.profiles (id) default auth.uid(),
  branch_id uuid not null references public.branches (id) default sync.current_branch_id(),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.customers is 'Customers; an rm sees the ones assigned to them, a bm their branch''s, an admin all.';
comment on column public.customers.tax_id is 'NPWP (15 or 16 digits, punctuation allowed).';
create index customers_assigned_rm_id_change_xid_id_idx on public.customers (assigned_rm_id, change_xid, id);
create index customers_branch_id_change_xid_id_idx on public.customers (branch_id, change_xid, id);
create index customers_change_xid_id_idx on public.customers (change_xid, id);
create index customers_updated_by_change_xid_idx on public.customers (updated_by, change_xid);

create table public.key_persons (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  name text not null check (length(name) between 1 and 200),
  position text check (length(position) <= 100),
  email text check (length(email) <= 254 and email ~ '^[^@\s]+@[^@\s]+$'),
  phone text check (length(phone) <= 40),
  is_primary boolean not null default false,
  notes text check (length(notes) <= 10000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.key_persons is 'Contacts at a customer.';
create index key_persons_customer_id_idx on public.key_persons (customer_id);
create index key_persons_change_xid_id_idx on public.key_persons (change_xid, id);
create index key_persons_updated_by_change_xid_idx on public.key_persons (updated_by, change_xid);

create table public.customer_hvc_links (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  hvc_id uuid not null references public.hvcs (id),
  relationship text check (length(relationship) <= 100),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.customer_hvc_links is 'Membership of a customer in a high-value customer group.';
create index customer_hvc_links_customer_id_idx on public.customer_hvc_links (customer_id);
create index customer_hvc_links_hvc_id_idx on public.customer_hvc_links (hvc_id);
create index customer_hvc_links_change_xid_id_idx on public.customer_hvc_links (change_xid, id);
create index customer_hvc_links_updated_by_change_xid_idx on public.customer_hvc_links (updated_by, change_xid);

select sync.register_table('public.customers', 'customer', 'owned',
                           p_owner_column => 'assigned_rm_id', p_branch_column => 'branch_id');
select sync.register_table('public.key_persons', 'keyPerson', 'child', 'public.customers', 'customer_id');
select sync.register_table('public.customer_hvc_links', 'customerHvcLink', 'child', 'public.customers', 'customer_id');
