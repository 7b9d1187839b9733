-- The CRM's staff: branches, and one profile per auth user with their role and branch. The engine
-- learns who a caller is from here, through its hooks (sync.app_caller, sync.app_valid_assignment);
-- branches and profiles sync to every device that needs them (names for assignment pickers),
-- visible within the caller's branch, changed only by admins.

-- The CRM's roles. A relationship manager (rm) works the customers they own; a branch manager (bm)
-- runs their branch: sees and reassigns its customers, approves, settles conflicts; an admin
-- maintains everything.
insert into sync.roles (role, reach, writes, resolves_conflicts, note) values
  ('rm', 'own', true, false, 'relationship manager: the customers assigned to them'),
  ('bm', 'branches', true, true, 'branch manager: every customer of their branch'),
  ('admin', 'all', true, true, 'maintains everything');

create table public.branches (
  id uuid primary key default gen_random_uuid(),
  code text not null unique check (length(code) <= 16 and code ~ '^[A-Z0-9_-]{2,16}$'),
  name text not null check (length(name) between 1 and 200),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
create index branches_change_xid_id_idx on public.branches (change_xid, id);
create index branches_updated_by_change_xid_idx on public.branches (updated_by, change_xid);

create table public.profiles (
  -- The auth user's id. No foreign key: a cascade would hard-delete the profile when the user is
  -- deleted, and no device would ever learn of it; staff_left_auth (below) leaves a tombstone.
  id uuid primary key,
  role text not null references sync.roles (role) check (length(role) <= 32),
  branch_id uuid references public.branches (id),
  full_name text not null check (length(full_name) between 1 and 200),
  email text check (length(email) <= 254),
  phone text check (length(phone) <= 40),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id(),
  constraint staff_below_admin_belong_to_a_branch check (role = 'admin' or branch_id is not null)
);
comment on table public.profiles is 'Staff: one row per auth user. role rm (relationship manager), bm (branch manager) or admin (sync.roles).';
create index profiles_role_idx on public.profiles (role);
create index profiles_branch_id_change_xid_id_idx on public.profiles (branch_id, change_xid, id);
create index profiles_change_xid_id_idx on public.profiles (change_xid, id);
create index profiles_updated_by_change_xid_idx on public.profiles (updated_by, change_xid);

-- Who the caller is, for the engine: their profile's role and branch. A closed profile (deleted_at
-- set: the staff member left) is a caller that is not active.
create or replace function sync.app_caller(p_uid uuid, out role text, out branch_ids uuid[], out active boolean)
returns setof record
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select p.role, case when p.branch_id is null then '{}'::uuid[] else array[p.branch_id] end, p.deleted_at is null
      from public.profiles p
     where p.id = p_uid;
end
$$;
comment on function sync.app_caller(uuid) is
  'HOOK, defined by the CRM: the role, branches and whether the profile is open, of user p_uid, from public.profiles; no row for a user without a profile.';

-- A customer (or pipeline) belongs to an rm of its own branch, so a bm reassigns within the branch.
create or replace function sync.app_valid_assignment(p_owner uuid, p_branch uuid) returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return exists (
    select 1 from public.profiles p
     where p.id = p_owner and p.role = 'rm' and p.branch_id = p_branch and p.deleted_at is null);
end
$$;
comment on function sync.app_valid_assignment(uuid, uuid) is
  'HOOK, defined by the CRM: an owned row may be assigned only to an rm of the row''s own branch.';

-- A user deleted from Supabase Auth leaves the staff: their profile becomes a tombstone (through the
-- profiles triggers, so the change syncs), their rows stay where they are for a bm to reassign.
-- Security definer: Supabase Auth deletes as its own role, which may not write public.profiles.
create function sync.staff_left_auth() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update public.profiles set deleted_at = now() where id = old.id and deleted_at is null;
  return null;
end
$$;
comment on function sync.staff_left_auth() is
  'AFTER DELETE on auth.users: the deleted user''s staff profile becomes a tombstone instead of vanishing.';
revoke all on function sync.staff_left_auth() from public;
create trigger sync_staff_left after delete on auth.users
  for each row execute function sync.staff_left_auth();

select sync.register_table('public.branches', 'branch', 'branch', p_branch_column => 'id',
                           p_conflict_strategy => 'server_wins');
select sync.register_table('public.profiles', 'profile', 'branch', p_branch_column => 'branch_id',
                           p_conflict_strategy => 'server_wins');
