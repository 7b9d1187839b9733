-- A row with no owner (an owned row an app leaves unassigned, such as a new row waiting in a
-- branch's pool) or no branch is in no one's own scope. sync.in_scope and sync.in_branch compared
-- the missing value with "=", which answers null, not false: the pull then could not tell that a
-- user who gained such a row had not held it before, and sent none of its child rows (nor evicted
-- them from a user who lost it). Each now answers true or false, for any owner and branch.

create or replace function sync.in_scope(p_owner uuid, p_branch uuid) returns boolean
language sql stable
as $$
  select coalesce(case (select sync.current_reach())
    when 'all' then true
    when 'branches' then p_branch = any ((select sync.current_branch_ids())::uuid[])
    when 'own' then p_owner = (select auth.uid())
    else false
  end, false)
$$;
comment on function sync.in_scope(uuid, uuid) is
  'Row scope of owned tables for the caller: reach all sees every row, branches the rows of their branches, own the rows they own; false (never null) for a row without an owner or branch the caller''s reach needs.';

create or replace function sync.in_branch(p_branch uuid) returns boolean
language sql stable
as $$
  select coalesce((select sync.current_reach()) = 'all'
      or ((select sync.current_reach()) is not null and p_branch = any ((select sync.current_branch_ids())::uuid[])), false)
$$;
comment on function sync.in_branch(uuid) is
  'Row scope of branch tables for the caller: reach all sees every row, any other role its branches''; false (never null) for a row without a branch.';
