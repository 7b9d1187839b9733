-- Registering a table: its shape checked, the standard triggers and the row-level security policies
-- of its scope kind attached, the code that follows from the registry written out again.

grant execute on function sync.client_columns(text) to authenticated, service_role;

create function sync.register_table(
  p_table regclass,
  p_entity_name text,
  p_scope sync.scope_kind,
  p_parent regclass default null,
  p_parent_column text default null,
  p_owner_column text default null,
  p_branch_column text default null,
  p_conflict_strategy sync.conflict_strategy default 'client_wins'
) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_schema text;
  v_name text;
  v_parent text;
  v_problems text;
  v_policy record;
  v_scope_sql text;
  v_write_check text;
  v_label text;
begin
  select n.nspname, c.relname into v_schema, v_name
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_table;
  if v_schema <> 'public' then
    raise exception using errcode = '22023', message = format('syncable tables live in public; %s does not', p_table);
  end if;
  if p_parent is not null then
    select c.relname into v_parent from pg_catalog.pg_class c where c.oid = p_parent;
  end if;

  select string_agg(problem, '; ') into v_problems
    from sync.shape_problems(p_table, p_parent_column, p_owner_column, p_branch_column) problem;
  if v_problems is not null then
    raise exception using errcode = '42P16', message = format('%s cannot be registered: %s', v_name, v_problems);
  end if;

  insert into sync.tables as t (table_name, entity_name, scope, parent_table, parent_column, owner_column,
                                branch_column, sync_order, conflict_strategy)
  values (v_name, p_entity_name, p_scope, v_parent, p_parent_column, p_owner_column, p_branch_column,
          coalesce((select max(sync_order) from sync.tables), 0) + 10, p_conflict_strategy)
  on conflict (table_name) do update
    set entity_name = excluded.entity_name, scope = excluded.scope, parent_table = excluded.parent_table,
        parent_column = excluded.parent_column, owner_column = excluded.owner_column,
        branch_column = excluded.branch_column, conflict_strategy = excluded.conflict_strategy;

  execute format('drop trigger if exists sync_00_tombstone on %s', p_table);
  execute format('drop trigger if exists sync_09_field_rules_statement on %s', p_table);
  execute format('drop trigger if exists sync_10_field_rules on %s', p_table);
  execute format('drop trigger if exists sync_20_stamp_row on %s', p_table);
  execute format('drop trigger if exists sync_30_scope_change on %s', p_table);
  execute format('drop trigger if exists sync_40_live_parent_insert on %s', p_table);
  execute format('drop trigger if exists sync_40_live_parent_update on %s', p_table);
  execute format('create trigger sync_00_tombstone before delete on %s for each row execute function sync.tombstone_on_delete()', p_table);
  execute format('create trigger sync_09_field_rules_statement before insert or update on %s for each statement execute function sync.field_rules_for_statement()', p_table);
  execute format('create trigger sync_10_field_rules before insert or update on %s for each row execute function sync.enforce_field_rules()', p_table);
  execute format('create trigger sync_20_stamp_row before insert or update on %s for each row execute function sync.stamp_row()', p_table);
  if p_parent is not null then
    execute format('create trigger sync_40_live_parent_insert after insert on %s referencing new table as new_rows for each statement execute function sync.refuse_deleted_parents()', p_table);
    execute format('create trigger sync_40_live_parent_update after update on %s referencing old table as old_rows new table as new_rows for each statement execute function sync.refuse_deleted_parents()', p_table);
  end if;
  -- Only rows whose scope columns changed reach the scope-change log.
  v_scope_sql := case p_scope
    when 'owned' then format('old.%1$I is distinct from new.%1$I or old.%2$I is distinct from new.%2$I', p_owner_column, p_branch_column)
    when 'branch' then format('old.%1$I is distinct from new.%1$I', p_branch_column)
    when 'child' then format('old.%1$I is distinct from new.%1$I', p_parent_column)
  end;
  if v_scope_sql is not null then
    execute format('create trigger sync_30_scope_change after update on %s for each row when (%s) execute function sync.record_scope_change()',
                   p_table, v_scope_sql);
  end if;

  -- The registry owns a registered table's policies: one permissive policy per action, for
  -- `authenticated` only (anon has none, service_role bypasses RLS).
  execute format('alter table %s enable row level security', p_table);
  -- RLS does not apply to TRUNCATE, and no client needs to add triggers or foreign keys to it.
  execute format('revoke truncate, trigger, references on %s from public, anon, authenticated', p_table);
  for v_policy in select pol.polname from pg_catalog.pg_policy pol where pol.polrelid = p_table loop
    execute format('drop policy %I on %s', v_policy.polname, p_table);
  end loop;

  -- A child row is visible when its parent is. "offset 0" keeps that a look-up of the parent by its
  -- key for each row: without it the planner may hash every parent the caller sees instead, a scan
  -- of the whole parent table on every statement (a million parent rows for ten child rows).
  -- Writing needs a role that writes (sync.roles.writes): a read-only role sees and changes nothing.
  -- Branch and shared tables are written by reach-all roles only.
  v_scope_sql := case when p_scope = 'child'
    then format('exists (select 1 from public.%I p where p.id = %I.%I offset 0)', v_parent, v_name, p_parent_column)
    else sync.scope_condition(p_scope, p_owner_column, p_branch_column, v_name,
                              '(select sync.current_reach())', '(select sync.current_branch_ids())', '(select auth.uid())') end;
  case p_scope
    when 'owned' then
      v_write_check := format('(select sync.caller_writes()) and %s and sync.valid_assignment(%I, %I)',
                              v_scope_sql, p_owner_column, p_branch_column);
      v_label := 'in their scope';
    when 'child' then
      v_write_check := format('(select sync.caller_writes()) and %s', v_scope_sql);
      v_label := format('whose %s they see', v_parent);
    else
      v_write_check := '(select sync.caller_writes()) and (select sync.current_reach()) = ''all''';
      v_label := case p_scope when 'branch' then 'of their branches' else '(reference data)' end;
  end case;

  execute format('create policy %I on %s for select to authenticated using (%s)',
                 format('read %s %s', v_name, v_label), p_table, v_scope_sql);
  if p_scope in ('owned', 'child') then
    execute format('create policy %I on %s for insert to authenticated with check (%s)',
                   format('insert %s %s', v_name, v_label), p_table, v_write_check);
    execute format('create policy %I on %s for update to authenticated using (%s) with check (%s)',
                   format('update %s %s', v_name, v_label), p_table, v_scope_sql, v_write_check);
    execute format('create policy %I on %s for delete to authenticated using ((select sync.caller_writes()) and %s)',
                   format('delete %s %s', v_name, v_label), p_table, v_scope_sql);
  else
    execute format('create policy %I on %s for insert to authenticated with check (%s)',
                   format('reach-all roles insert %s', v_name), p_table, v_write_check);
    execute format('create policy %I on %s for update to authenticated using (%s) with check (%s)',
                   format('reach-all roles update %s', v_name), p_table, v_write_check, v_write_check);
    execute format('create policy %I on %s for delete to authenticated using (%s)',
                   format('reach-all roles delete %s', v_name), p_table, v_write_check);
  end if;

  -- Numbers finite, dates and timestamps from 1900 to 2200, on every path (sync_value_rules).
  perform sync.attach_value_checks(p_table);

  perform sync.refresh_change_probes();
  perform sync.refresh_bulk_writer(v_name);
  perform sync.refresh_bulk_writers();
  -- The review views name every registered table (they come in a later migration).
  if to_regprocedure('sync.define_conflict_review_views()') is not null then
    perform sync.define_conflict_review_views();
  end if;
end
$$;
comment on function sync.register_table(regclass, text, sync.scope_kind, regclass, text, text, text, sync.conflict_strategy) is
  'Makes a public table syncable: checks its shape (sync columns, primary key, cursor and scope indexes), attaches the standard triggers and the RLS policies of its scope kind, and records it in sync.tables. Re-running re-registers.';

revoke all on function sync.register_table(regclass, text, sync.scope_kind, regclass, text, text, text, sync.conflict_strategy) from public;
-- The engine's own functions are granted in sync_privileges.
