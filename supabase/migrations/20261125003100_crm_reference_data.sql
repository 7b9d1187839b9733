-- Reference data every signed-in user reads and only admins write: HVC groups and brokers.

create table public.hvcs (
  id uuid primary key default gen_random_uuid(),
  code text not null unique check (length(code) <= 32 and code ~ '^[A-Z0-9_-]{2,32}$'),
  name text not null check (length(name) between 1 and 200),
  description text check (length(description) <= 2000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.hvcs is 'High-value customer groups (reference data).';
create index hvcs_change_xid_id_idx on public.hvcs (change_xid, id);
create index hvcs_updated_by_change_xid_idx on public.hvcs (updated_by, change_xid);

create table public.brokers (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  license_no text check (length(license_no) <= 64),
  phone text check (length(phone) <= 40),
  email text check (length(email) <= 254 and email ~ '^[^@\s]+@[^@\s]+$'),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.brokers is 'Insurance brokers (reference data).';
create index brokers_change_xid_id_idx on public.brokers (change_xid, id);
create index brokers_updated_by_change_xid_idx on public.brokers (updated_by, change_xid);

select sync.register_table('public.hvcs', 'hvc', 'shared', p_conflict_strategy => 'server_wins');
select sync.register_table('public.brokers', 'broker', 'shared', p_conflict_strategy => 'server_wins');
