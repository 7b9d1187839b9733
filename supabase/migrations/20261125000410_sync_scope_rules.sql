-- The scope rules of the registry's scope kinds as SQL: written once, used by the policies that
-- sync.register_table attaches, by the change probe and by the pull.

-- A scope kind's read rule as a SQL condition on the row p_alias.*, given SQL expressions for the
-- caller's reach (sync.reach), branches (uuid[]) and user id: the one place the rule of owned,
-- branch and shared tables is written. The policies pass the caller's helpers as init plans
-- ((select ...), evaluated once per statement: a SQL function with sub-selects is never inlined,
-- so a helper called per row would ask the app's hook once per row). The pull and the change probe
-- pass the reach as a literal, so the planner folds the rule down to the one arm that applies
-- (reach own: owner = them) and reads those rows from the scope index in cursor order.
create function sync.scope_condition(
  p_scope sync.scope_kind, p_owner_column text, p_branch_column text, p_alias text,
  p_reach_sql text, p_branches_sql text, p_uid_sql text
) returns text
language sql immutable
set search_path = pg_catalog, pg_temp
as $$
  select case p_scope
    when 'owned' then format(
      '(%1$s = ''all'' or (%1$s = ''branches'' and %4$I.%6$I = any (%2$s::uuid[])) or (%1$s = ''own'' and %4$I.%5$I = %3$s))',
      p_reach_sql, p_branches_sql, p_uid_sql, p_alias, p_owner_column, p_branch_column)
    when 'branch' then format('(%1$s = ''all'' or (%1$s is not null and %3$I.%4$I = any (%2$s::uuid[])))',
                              p_reach_sql, p_branches_sql, p_alias, p_branch_column)
    when 'shared' then format('(%s is not null)', p_reach_sql)
  end
$$;
comment on function sync.scope_condition(sync.scope_kind, text, text, text, text, text, text) is
  'SQL text: the read rule of a scope kind on the row p_alias.*, for the caller''s reach, branches and user id given as SQL expressions.';

-- The caller's read scope on p_table as a condition on p_alias.*, with their role, branch and id as
-- literals (see sync.scope_condition). RLS stays the rule: this only tells the planner which index
-- finds the rows. Null for a child table: its rows have no scope column of their own, and the
-- parent's scope restated as a join made the planner collect and sort all of a user's child rows
-- for every page, where the cursor index with RLS reads them in order.
create function sync.caller_scope_condition(p_table text, p_alias text) returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
begin
  select * into v_reg from sync.tables t where t.table_name = p_table;
  if v_reg.scope = 'child' then
    return null;
  end if;
  return sync.scope_condition(v_reg.scope, v_reg.owner_column, v_reg.branch_column, p_alias,
                              quote_nullable(sync.current_reach()::text) || '::sync.reach',
                              quote_literal(sync.current_branch_ids()::text) || '::uuid[]',
                              quote_nullable(auth.uid()::text) || '::uuid');
end
$$;

comment on function sync.caller_scope_condition(text, text) is
  'SQL text: the caller''s read scope on a table as a condition with their reach, branches and id as literals, so the planner finds their rows by the scope index; null for child tables. RLS stays the rule.';
