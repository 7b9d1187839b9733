-- When a row changes scope (reassigned to another owner, moved to another branch, a child row
-- moved to another parent), the users who lose it must be told to evict it, with its child
-- rows, and the users who gain it must receive its child rows. The pull reads this log for both.
-- The child rows are logged by the writing transaction, one entry each, as they are at that moment:
-- a child moved elsewhere afterwards is still evicted from the devices that lost it with its parent,
-- and the pull pages evictions one change per entry, like any other change.

create table sync.scope_changes (
  id bigint generated always as identity primary key,
  table_name text not null references sync.tables (table_name),
  row_id uuid not null,
  old_scope sync.scope_kind not null check (old_scope in ('owned', 'branch')),
  old_owner uuid,
  old_branch uuid,
  inherited boolean not null default false,
  change_xid xid8 not null default pg_current_xact_id(),
  changed_at timestamptz not null default clock_timestamp()
);
comment on table sync.scope_changes is
  'Scope changes of syncable rows: the scope the row had before (resolved to its root: owner and branch), in the writing transaction. Read by the pull to send evict and to send the child rows to the new owner.';
comment on column sync.scope_changes.inherited is
  'True for a descendant that changed scope with the row above it (it did not change itself, so the pull sends it to a user who gained it).';
create index scope_changes_change_xid_id_idx on sync.scope_changes (change_xid, id);
create index scope_changes_changed_at_idx on sync.scope_changes (changed_at);
revoke all on sync.scope_changes from public, anon, authenticated, service_role;

-- The scope (kind, owner, branch) a row of p_table gets from its root ancestor; null for shared rows.
create function sync.root_scope(p_table text, p_id uuid, out scope sync.scope_kind, out owner_id uuid, out branch_id uuid)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_row jsonb;
begin
  select * into v_reg from sync.tables t where t.table_name = p_table;
  if v_reg is null or p_id is null then
    return;
  end if;
  execute format('select to_jsonb(t) from public.%I t where t.id = $1', p_table) into v_row using p_id;
  if v_row is null then
    return;
  end if;
  case v_reg.scope
    when 'owned' then
      scope := 'owned';
      owner_id := (v_row ->> v_reg.owner_column)::uuid;
      branch_id := (v_row ->> v_reg.branch_column)::uuid;
    when 'branch' then
      scope := 'branch';
      branch_id := (v_row ->> v_reg.branch_column)::uuid;
    when 'child' then
      select r.scope, r.owner_id, r.branch_id into scope, owner_id, branch_id
        from sync.root_scope(v_reg.parent_table, (v_row ->> v_reg.parent_column)::uuid) r;
    else
      return;
  end case;
end
$$;

comment on function sync.root_scope(text, uuid) is
  'The scope (kind, owner, branch) a row takes from its root ancestor through the registry''s parent links; null for shared rows.';
create function sync.record_scope_change() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_old jsonb := to_jsonb(old);
  v_new jsonb := to_jsonb(new);
  v_scope sync.scope_kind;
  v_owner uuid;
  v_branch uuid;
begin
  select * into v_reg from sync.tables t where t.table_name = tg_table_name;
  if v_reg.scope = 'owned' then
    if v_old -> v_reg.owner_column is distinct from v_new -> v_reg.owner_column
       or v_old -> v_reg.branch_column is distinct from v_new -> v_reg.branch_column then
      v_scope := 'owned';
      v_owner := (v_old ->> v_reg.owner_column)::uuid;
      v_branch := (v_old ->> v_reg.branch_column)::uuid;
    end if;
  elsif v_reg.scope = 'branch' then
    if v_old -> v_reg.branch_column is distinct from v_new -> v_reg.branch_column then
      v_scope := 'branch';
      v_branch := (v_old ->> v_reg.branch_column)::uuid;
    end if;
  elsif v_reg.scope = 'child' then
    if v_old -> v_reg.parent_column is distinct from v_new -> v_reg.parent_column then
      select r.scope, r.owner_id, r.branch_id into v_scope, v_owner, v_branch
        from sync.root_scope(v_reg.parent_table, (v_old ->> v_reg.parent_column)::uuid) r;
    end if;
  end if;
  -- Shared rows are everyone's: no one loses or gains them.
  if v_scope is null or v_scope not in ('owned', 'branch') then
    return null;
  end if;

  insert into sync.scope_changes (table_name, row_id, old_scope, old_owner, old_branch)
  values (tg_table_name, old.id, v_scope, v_owner, v_branch);
  -- Its descendants as they are now, parents before children (the log's order is the pull's order).
  insert into sync.scope_changes (table_name, row_id, old_scope, old_owner, old_branch, inherited)
  select d.table_name, d.id, v_scope, v_owner, v_branch, true
    from sync.descendants(tg_table_name, old.id) with ordinality d (table_name, id, ord)
   order by d.ord;
  return null;
end
$$;
comment on function sync.record_scope_change() is
  'AFTER UPDATE on syncable tables: logs the row''s previous root scope in sync.scope_changes when its owner, branch or parent changed, with one entry for each of its descendants.';

-- Every descendant of a row, through the registry's parent links (rows the caller may no longer see).
create function sync.descendants(p_table text, p_id uuid) returns table (table_name text, id uuid)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_child sync.tables;
  v_ids uuid[];
  v_id uuid;
begin
  for v_child in select * from sync.tables t where t.parent_table = p_table order by t.sync_order loop
    execute format('select coalesce(array_agg(c.id order by c.id), ''{}'') from public.%I c where c.%I = $1',
                   v_child.table_name, v_child.parent_column)
      into v_ids using p_id;
    foreach v_id in array v_ids loop
      table_name := v_child.table_name;
      id := v_id;
      return next;
      return query select * from sync.descendants(v_child.table_name, v_id);
    end loop;
  end loop;
end
$$;

comment on function sync.descendants(text, uuid) is
  'Every descendant row of a row, through the registry''s parent links, parents before children, visible or not (security definer: the scope-change log records them for users who lose the parent).';
grant execute on function sync.root_scope(text, uuid), sync.record_scope_change(), sync.descendants(text, uuid)
  to authenticated, service_role;
