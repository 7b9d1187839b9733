-- Who the caller is, for every policy and check: their role (a row of sync.roles) and their
-- branches, which the app knows from its own tables and tells the engine through one hook,
-- sync.app_caller. The engine defines the hook here as "nobody" (every caller is refused and sees
-- nothing) and the app's migration replaces it with `create or replace`, keeping its signature.
-- A second hook, sync.app_valid_assignment, says whether a row of an owned table may belong to an
-- owner in a branch; here, anyone may own anything.

-- PL/pgSQL, as the app's version should be: it runs in every policy's helpers, and PostgreSQL 15
-- plans a SQL function that it does not inline (a security definer one never is) at every call.
create function sync.app_caller(p_uid uuid, out role text, out branch_ids uuid[], out active boolean)
returns setof record
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return;
end
$$;
comment on function sync.app_caller(uuid) is
  'HOOK, defined by the app: the role (a row of sync.roles), the branches and whether the account is active, of user p_uid; no row for a user who is not one of the app''s. Replaced by the app''s migration with create or replace.';

create function sync.app_valid_assignment(p_owner uuid, p_branch uuid) returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return true;
end
$$;
comment on function sync.app_valid_assignment(uuid, uuid) is
  'HOOK, defined by the app: may a row of an owned table belong to owner p_owner in branch p_branch? Replaced by the app''s migration with create or replace.';

-- These helpers are PL/pgSQL although each is one query. Security definer functions are never
-- inlined, and PostgreSQL 15 plans the body of a SQL function that is not inlined at every call,
-- while PL/pgSQL keeps its plan for the session. Policies call them once per statement and the
-- assignment check and the branch default once per written row. The caller's id goes into the
-- query as a variable, not as auth.uid() written in it, for the same reason.
-- The caller's role as a row of sync.roles, or null: no role, or not active. The helpers below each
-- read one field of it.
create function sync.caller_role() returns sync.roles
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role sync.roles;
begin
  select r.* into v_role from sync.app_caller(v_uid) c join sync.roles r on r.role = c.role where c.active;
  return v_role;
end
$$;
comment on function sync.caller_role() is
  'The caller''s role (its row of sync.roles) as the app''s hook sync.app_caller says, or null (not one of the app''s users, or not active).';

create function sync.current_app_role() returns text
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return (sync.caller_role()).role;
end
$$;
comment on function sync.current_app_role() is
  'The caller''s role (a row of sync.roles) as the app''s hook sync.app_caller says, or null (not one of the app''s users, or not active).';

create function sync.current_reach() returns sync.reach
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return (sync.caller_role()).reach;
end
$$;
comment on function sync.current_reach() is 'The reach of the caller''s role (own, branches, all), or null: policies ask it once per statement.';

create function sync.current_branch_ids() returns uuid[]
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_branches uuid[];
begin
  select coalesce(c.branch_ids, '{}') into v_branches from sync.app_caller(v_uid) c where c.active;
  return coalesce(v_branches, '{}');
end
$$;
comment on function sync.current_branch_ids() is 'The caller''s branches (empty when none): policies ask it once per statement.';

-- The caller's one branch, for column defaults (a new row is in its author's branch): null for a
-- caller with none or with several, who then names the branch.
create function sync.current_branch_id() returns uuid
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_branches uuid[] := sync.current_branch_ids();
begin
  return case when cardinality(v_branches) = 1 then v_branches[1] end;
end
$$;
comment on function sync.current_branch_id() is 'The caller''s branch when they have exactly one, else null: for column defaults.';

create function sync.caller_writes() returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce((sync.caller_role()).writes, false);
end
$$;
comment on function sync.caller_writes() is 'Does the caller''s role write (false for a read-only role, or no role)? Write policies ask it once per statement.';

-- The scope rule as a function, for code that asks about other values than a row's own (the pull
-- asks whether the caller could see a row's previous owner and branch). Policies spell the same
-- rule out instead (see sync.scope_condition): a function with sub-selects is not inlined.
create function sync.in_scope(p_owner uuid, p_branch uuid) returns boolean
language sql stable
as $$
  select case (select sync.current_reach())
    when 'all' then true
    when 'branches' then p_branch = any ((select sync.current_branch_ids())::uuid[])
    when 'own' then p_owner = (select auth.uid())
    else false
  end
$$;
comment on function sync.in_scope(uuid, uuid) is
  'Row scope of owned tables for the caller: reach all sees every row, branches the rows of their branches, own the rows they own.';

create function sync.in_branch(p_branch uuid) returns boolean
language sql stable
as $$
  select (select sync.current_reach()) = 'all'
      or ((select sync.current_reach()) is not null and p_branch = any ((select sync.current_branch_ids())::uuid[]))
$$;
comment on function sync.in_branch(uuid) is 'Row scope of branch tables for the caller: reach all sees every row, any other role its branches''.';

create function sync.valid_assignment(p_owner uuid, p_branch uuid) returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return p_owner is null or sync.app_valid_assignment(p_owner, p_branch);
end
$$;
comment on function sync.valid_assignment(uuid, uuid) is
  'May a row of an owned table belong to p_owner in p_branch? No owner is always valid; otherwise the app''s hook sync.app_valid_assignment decides.';

grant execute on function sync.current_app_role(), sync.current_reach(), sync.current_branch_ids(), sync.current_branch_id(),
  sync.caller_writes(), sync.in_scope(uuid, uuid),
  sync.in_branch(uuid), sync.valid_assignment(uuid, uuid) to authenticated, service_role;
