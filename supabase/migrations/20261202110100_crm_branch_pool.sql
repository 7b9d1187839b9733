-- A branch pool (issue 17): a bm creates a customer without an rm (assigned_rm_id null). It sits in
-- the branch's pool, which the bm and admins see (their reach is the branch, or all) and rms do not
-- (theirs is the rows they own), until the bm assigns it; the assignment is a scope change like any
-- reassignment, so the rm's device receives the customer and its child rows in its next pull.
--
-- A new customer used to default to its author as rm, so a bm who left the rm out named themselves,
-- not an rm of the branch, and row-level security refused the row with its raw error. Only a role
-- whose reach is its own rows now owns what it creates; any other role's new customer defaults to
-- the pool.
alter table public.customers alter column assigned_rm_id
  set default (case when sync.current_reach() = 'own' then auth.uid() end);

-- An assignment the hook refuses (not an rm, or an rm of another branch) is named, with its
-- column, before row-level security would refuse the row without saying why.
create function sync.crm_customer_assignment() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if current_user not in ('authenticated', 'sync_engine') or new.assigned_rm_id is null then
    return new;
  end if;
  if tg_op = 'UPDATE' and new.assigned_rm_id is not distinct from old.assigned_rm_id
     and new.branch_id is not distinct from old.branch_id then
    return new;
  end if;
  if not sync.valid_assignment(new.assigned_rm_id, new.branch_id) then
    raise exception using
      errcode = '42501',
      column = 'assigned_rm_id',
      message = format('permission denied: customers.assigned_rm_id %s is not a relationship manager of branch %s',
                       new.assigned_rm_id, new.branch_id),
      hint = 'assign an rm of the customer''s branch, or leave assigned_rm_id null for the branch pool';
  end if;
  return new;
end
$$;
comment on function sync.crm_customer_assignment() is
  'BEFORE INSERT/UPDATE on customers, after the field rules: refuses (42501, column assigned_rm_id) an assignment to anyone but an rm of the customer''s branch, which row-level security would refuse without naming it.';
revoke all on function sync.crm_customer_assignment() from public;

create trigger sync_15_crm_assignment before insert or update on public.customers
  for each row execute function sync.crm_customer_assignment();
