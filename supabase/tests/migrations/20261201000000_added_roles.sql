-- Applied only in tests, after the migrations and the seed: two roles a real bank has that the CRM
-- does not, added the way an app adds a role, with no change to an engine file. A regional manager
-- works several branches (the CRM records a staff member's further branches in a table of its own,
-- and its hook says so to the engine); an auditor reads everything and writes nothing.

insert into sync.roles (role, reach, writes, resolves_conflicts, note) values
  ('regional', 'branches', true, true, 'regional manager: every customer of the branches of their region'),
  ('auditor', 'all', false, false, 'reads everything, writes nothing');

-- Staff of no single branch: admins, auditors, and regional managers (whose branches are listed).
alter table public.profiles drop constraint staff_below_admin_belong_to_a_branch;
alter table public.profiles add constraint staff_below_admin_belong_to_a_branch
  check (role in ('admin', 'auditor', 'regional') or branch_id is not null);

-- A staff member's branches beyond their own (all of a regional manager's).
create table public.staff_branches (
  profile_id uuid not null references public.profiles (id),
  branch_id uuid not null references public.branches (id),
  primary key (profile_id, branch_id)
);
create index staff_branches_branch_id_idx on public.staff_branches (branch_id);
alter table public.staff_branches enable row level security;
revoke truncate, trigger, references on public.staff_branches from public, anon, authenticated;
create policy "staff read their own branches" on public.staff_branches for select to authenticated
  using (profile_id = (select auth.uid()));
create policy "reach-all roles that write insert staff branches" on public.staff_branches for insert to authenticated
  with check ((select sync.current_reach()) = 'all' and (select sync.caller_writes()));
create policy "reach-all roles that write update staff branches" on public.staff_branches for update to authenticated
  using ((select sync.current_reach()) = 'all' and (select sync.caller_writes()));
create policy "reach-all roles that write delete staff branches" on public.staff_branches for delete to authenticated
  using ((select sync.current_reach()) = 'all' and (select sync.caller_writes()));

create or replace function sync.app_caller(p_uid uuid, out role text, out branch_ids uuid[], out active boolean)
returns setof record
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select p.role,
           array(select b from (select p.branch_id as b union select s.branch_id from public.staff_branches s where s.profile_id = p.id) x
                  where b is not null order by b),
           p.deleted_at is null
      from public.profiles p
     where p.id = p_uid;
end
$$;

-- The regional manager's rules are a branch manager's; the auditor's deny everything.
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
select 'regional', f.table_name, f.column_name, f.may_write, f.note from sync.field_rules f where f.app_role = 'bm';
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
select 'auditor', t.table_name, '*', false, 'auditors read' from sync.tables t;

insert into auth.users (id, email) values
  ('00000000-0000-4000-8000-000000000031', 'regional.java@crm.test'),
  ('00000000-0000-4000-8000-000000000041', 'auditor@crm.test');
insert into public.profiles (id, role, branch_id, full_name, email) values
  ('00000000-0000-4000-8000-000000000031', 'regional', null, 'Rudi Regional', 'regional.java@crm.test'),
  ('00000000-0000-4000-8000-000000000041', 'auditor', null, 'Aini Auditor', 'auditor@crm.test');
insert into public.staff_branches (profile_id, branch_id) values
  ('00000000-0000-4000-8000-000000000031', '00000000-0000-4000-8000-0000000000b1'),
  ('00000000-0000-4000-8000-000000000031', '00000000-0000-4000-8000-0000000000b2');
