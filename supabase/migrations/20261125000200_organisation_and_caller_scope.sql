-- Branches and staff profiles, and the helpers that tell policies who the caller is and what they
-- may see. Profiles are keyed by the auth user's id; a user without a profile sees and writes nothing.

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
  role text not null check (role in ('rm', 'bm', 'admin')),
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
comment on table public.profiles is 'Staff: one row per auth user. role rm (relationship manager), bm (branch manager) or admin.';
create index profiles_branch_id_change_xid_id_idx on public.profiles (branch_id, change_xid, id);
create index profiles_change_xid_id_idx on public.profiles (change_xid, id);
create index profiles_updated_by_change_xid_idx on public.profiles (updated_by, change_xid);

-- These helpers are PL/pgSQL although each is one query. Security definer functions are never
-- inlined, and PostgreSQL 15 plans the body of a SQL function that is not inlined at every call,
-- while PL/pgSQL keeps its plan for the session. Policies call them once per statement and the
-- assignment check and the branch default once per written row: planned each time they were a
-- third of a push's time. The caller's id goes into the query as a variable: with auth.uid()
-- written in the query each call took four times as long.
create function sync.current_app_role() returns text
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role text;
begin
  select p.role into v_role from public.profiles p where p.id = v_uid and p.deleted_at is null;
  return v_role;
end
$$;
comment on function sync.current_app_role() is
  'The caller''s application role (rm, bm, admin) from their profile, or null. Security definer so policies on profiles can use it without recursion.';

create function sync.current_branch_id() returns uuid
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_branch uuid;
begin
  select p.branch_id into v_branch from public.profiles p where p.id = v_uid and p.deleted_at is null;
  return v_branch;
end
$$;
comment on function sync.current_branch_id() is 'The caller''s branch from their profile, or null.';

-- The scope rule as a function, for code that asks about other values than a row's own (the pull
-- asks whether the caller could see a row's previous owner and branch). Policies spell the same rule
-- out instead (see sync.register_table): a function with sub-selects is not inlined.
create function sync.in_scope(p_owner uuid, p_branch uuid) returns boolean
language sql stable
as $$
  select case (select sync.current_app_role())
    when 'admin' then true
    when 'bm' then p_branch = (select sync.current_branch_id())
    when 'rm' then p_owner = (select auth.uid())
    else false
  end
$$;
comment on function sync.in_scope(uuid, uuid) is
  'Row scope of owned tables: admin sees all, bm their branch, rm the rows they own.';

create function sync.in_branch(p_branch uuid) returns boolean
language sql stable
as $$
  select (select sync.current_app_role()) = 'admin'
      or ((select sync.current_app_role()) is not null and p_branch = (select sync.current_branch_id()))
$$;
comment on function sync.in_branch(uuid) is 'Row scope of branch tables: admin sees all, staff their own branch.';

create function sync.valid_assignment(p_owner uuid, p_branch uuid) returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return p_owner is null
      or exists (
        select 1 from public.profiles p
         where p.id = p_owner and p.role = 'rm' and p.branch_id = p_branch and p.deleted_at is null
      );
end
$$;
comment on function sync.valid_assignment(uuid, uuid) is
  'An owned row may only be assigned to an rm of the row''s own branch (so a bm reassigns within their branch).';

grant execute on function sync.current_app_role(), sync.current_branch_id(), sync.in_scope(uuid, uuid),
  sync.in_branch(uuid), sync.valid_assignment(uuid, uuid) to authenticated, service_role;

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
create trigger sync_staff_left after delete on auth.users
  for each row execute function sync.staff_left_auth();
