-- Row grants: a user reads one row outside their scope because the app says so (a row shared with
-- one colleague for a while), without the row changing. The app gives and takes grants through two
-- engine functions, each grant tagged with the row of the app's that it comes from (its source), so
-- the app takes back everything one source gave with one call. A grant gives read access to that
-- row only: the rows below it stay in their own scope, and writing stays a matter of scope.
-- Every grant given or taken is logged in the scope-change log, so the next delta pull sends the row
-- to the user who gained it and evicts it from the devices of the user who lost it (with nothing of
-- the row itself changed, its change_xid does not move and the rows phase would not send it).

create table sync.row_grants (
  user_id uuid not null,
  table_name text not null references sync.tables (table_name),
  row_id uuid not null,
  source_table text not null references sync.tables (table_name),
  source_id uuid not null,
  granted_at timestamptz not null default clock_timestamp(),
  primary key (user_id, table_name, row_id, source_table, source_id)
);
comment on table sync.row_grants is
  'Rows a user reads outside their scope: user_id may read row_id of table_name because of the row source_id of source_table. Written by sync.set_row_grants only; the read policies of every registered table and the pull honour it.';
comment on column sync.row_grants.source_table is 'The registered table of the row that gives the grant (the app takes back a source''s grants together).';
-- The policies and the pull ask by user and table (the primary key); the app's refresh asks by source.
create index row_grants_source_idx on sync.row_grants (source_table, source_id);
create index row_grants_row_idx on sync.row_grants (table_name, row_id);
revoke all on sync.row_grants from public, anon, authenticated, service_role;

-- A grant given or taken is an entry of the scope-change log for its user: `grantee` and `granted`
-- say which, and such an entry has no previous scope.
alter table sync.scope_changes add column grantee uuid, add column granted boolean;
comment on column sync.scope_changes.grantee is
  'For a row grant given (granted true) or taken (granted false): the user whose access changed. Null for a change of the row''s own scope.';
comment on column sync.scope_changes.granted is 'For a row grant''s entry: given (true) or taken (false).';
alter table sync.scope_changes alter column old_scope drop not null;
alter table sync.scope_changes drop constraint scope_changes_old_scope_check;
alter table sync.scope_changes add constraint scope_changes_entry_kind check (
  (grantee is null and granted is null and old_scope in ('owned', 'branch'))
  or (grantee is not null and granted is not null and old_scope is null and not inherited)
);

-- The caller's grants on one table, for the read policies, which ask it once per statement as an
-- init plan ((select ...)), never per row. Security definer: no client role reads the grants table.
create function sync.granted_row_ids(p_table text) returns uuid[]
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_ids uuid[];
begin
  select coalesce(array_agg(distinct g.row_id), '{}') into v_ids
    from sync.row_grants g where g.user_id = v_uid and g.table_name = p_table;
  return v_ids;
end
$$;
comment on function sync.granted_row_ids(text) is
  'The ids of the rows of p_table granted to the caller (sync.row_grants); empty when none. Read policies ask it once per statement.';

-- The app's one way to give and take grants: after the call, source p_source_id of p_source_table
-- grants exactly the rows (p_tables[i], p_row_ids[i]) to p_user, and nothing to anyone else (a null
-- user, or no rows, takes everything back). Grants it no longer gives are deleted, new ones
-- inserted, and each of those is logged for the pull; grants that stay are left alone.
create function sync.set_row_grants(p_source_table text, p_source_id uuid, p_user uuid, p_tables text[], p_row_ids uuid[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if cardinality(coalesce(p_tables, '{}')) <> cardinality(coalesce(p_row_ids, '{}')) then
    raise exception using errcode = '22023', message = 'set_row_grants: p_tables and p_row_ids differ in length';
  end if;
  with wanted as (
    select distinct w.table_name, w.row_id
      from unnest(coalesce(p_tables, '{}'), coalesce(p_row_ids, '{}')) w (table_name, row_id)
     where p_user is not null and w.row_id is not null
  ), taken as (
    delete from sync.row_grants g
     where g.source_table = p_source_table and g.source_id = p_source_id
       and (g.user_id is distinct from p_user
            or not exists (select 1 from wanted w where w.table_name = g.table_name and w.row_id = g.row_id))
    returning g.user_id, g.table_name, g.row_id
  ), given as (
    insert into sync.row_grants (user_id, table_name, row_id, source_table, source_id)
    select p_user, w.table_name, w.row_id, p_source_table, p_source_id from wanted w
     where not exists (select 1 from sync.row_grants g
                        where g.user_id = p_user and g.table_name = w.table_name and g.row_id = w.row_id
                          and g.source_table = p_source_table and g.source_id = p_source_id)
    returning user_id, table_name, row_id
  )
  insert into sync.scope_changes (table_name, row_id, grantee, granted)
  select x.table_name, x.row_id, x.user_id, x.granted
    from (select t.table_name, t.row_id, t.user_id, false as granted from taken t
          union all
          select g.table_name, g.row_id, g.user_id, true from given g) x
   order by x.granted, x.table_name, x.row_id;
end
$$;
comment on function sync.set_row_grants(text, uuid, uuid, text[], uuid[]) is
  'Makes the grants of one source exactly the given rows to p_user (null: none), logging each grant given or taken in sync.scope_changes for the pull. For the app''s triggers (security definer, not callable by clients).';

-- A registered table's scope rule on the row p_alias.*, without grants, as the policies write it:
-- a child row is in scope when its parent is in scope, not merely readable. A grant on a parent row
-- would otherwise open every row below it. The parent's own read policy still applies inside (it is
-- the scope rule or a grant), so a parent that is not granted to the caller is asked nothing more;
-- only a granted one has its scope spelled out, up to the root. Each level stays a look-up of the
-- parent by its key ("offset 0", see sync.register_table).
create function sync.scope_sql(p_table text, p_alias text, p_depth integer default 1) returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_parent_alias text := 'p' || p_depth;
begin
  select * into v_reg from sync.tables t where t.table_name = p_table;
  if v_reg.scope = 'child' then
    return format('exists (select 1 from public.%1$I %2$I where %2$I.id = %3$I.%4$I and (%2$I.id <> all ((select sync.granted_row_ids(%5$L))::uuid[]) or %6$s) offset 0)',
                  v_reg.parent_table, v_parent_alias, p_alias, v_reg.parent_column, v_reg.parent_table,
                  sync.scope_sql(v_reg.parent_table, v_parent_alias, p_depth + 1));
  end if;
  return sync.scope_condition(v_reg.scope, v_reg.owner_column, v_reg.branch_column, p_alias,
                              '(select sync.current_reach())', '(select sync.current_branch_ids())', '(select auth.uid())');
end
$$;
comment on function sync.scope_sql(text, text, integer) is
  'SQL text: a registered table''s scope rule on the row p_alias.* for the caller, grants left out (a child row is in scope when its parent is in scope), with the caller''s helpers as init plans.';

-- The policies of a registered table's scope kind: read when in scope or granted; write when in
-- scope (a grant reads, never writes). One permissive policy per action, for `authenticated` only
-- (anon has none, service_role bypasses RLS). Policies whose name begins with "app: " are the app's
-- own additions and stay; every other policy of the table is the registry's and is replaced.
create function sync.attach_scope_policies(p_table regclass) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_policy record;
  v_scope_sql text;
  v_read_sql text;
  v_write_check text;
  v_label text;
begin
  select t.* into v_reg from sync.tables t join pg_catalog.pg_class c on c.relname = t.table_name
   where c.oid = p_table;
  if v_reg is null then
    raise exception using errcode = '22023', message = format('%s is not registered', p_table);
  end if;
  execute format('alter table %s enable row level security', p_table);
  for v_policy in select pol.polname from pg_catalog.pg_policy pol
                   where pol.polrelid = p_table and pol.polname not like 'app: %' loop
    execute format('drop policy %I on %s', v_policy.polname, p_table);
  end loop;

  -- Writing needs a role that writes (sync.roles.writes): a read-only role sees and changes nothing.
  -- Branch and shared tables are written by reach-all roles only.
  v_scope_sql := sync.scope_sql(v_reg.table_name, v_reg.table_name);
  v_read_sql := format('%s or %I.id = any ((select sync.granted_row_ids(%L))::uuid[])', v_scope_sql, v_reg.table_name, v_reg.table_name);
  case v_reg.scope
    when 'owned' then
      v_write_check := format('(select sync.caller_writes()) and %s and sync.valid_assignment(%I, %I)',
                              v_scope_sql, v_reg.owner_column, v_reg.branch_column);
      v_label := 'in their scope';
    when 'child' then
      v_write_check := format('(select sync.caller_writes()) and %s', v_scope_sql);
      v_label := format('whose %s they see', v_reg.parent_table);
    else
      v_write_check := '(select sync.caller_writes()) and (select sync.current_reach()) = ''all''';
      v_label := case v_reg.scope when 'branch' then 'of their branches' else '(reference data)' end;
  end case;

  execute format('create policy %I on %s for select to authenticated using (%s)',
                 format('read %s %s', v_reg.table_name, v_label), p_table, v_read_sql);
  if v_reg.scope in ('owned', 'child') then
    execute format('create policy %I on %s for insert to authenticated with check (%s)',
                   format('insert %s %s', v_reg.table_name, v_label), p_table, v_write_check);
    execute format('create policy %I on %s for update to authenticated using (%s) with check (%s)',
                   format('update %s %s', v_reg.table_name, v_label), p_table, v_scope_sql, v_write_check);
    execute format('create policy %I on %s for delete to authenticated using ((select sync.caller_writes()) and %s)',
                   format('delete %s %s', v_reg.table_name, v_label), p_table, v_scope_sql);
  else
    execute format('create policy %I on %s for insert to authenticated with check (%s)',
                   format('reach-all roles insert %s', v_reg.table_name), p_table, v_write_check);
    execute format('create policy %I on %s for update to authenticated using (%s) with check (%s)',
                   format('reach-all roles update %s', v_reg.table_name), p_table, v_write_check, v_write_check);
    execute format('create policy %I on %s for delete to authenticated using (%s)',
                   format('reach-all roles delete %s', v_reg.table_name), p_table, v_write_check);
  end if;
end
$$;
comment on function sync.attach_scope_policies(regclass) is
  'Replaces a registered table''s row-level security policies with those of its scope kind: read in scope or granted (sync.row_grants), write in scope. Policies named "app: ..." are the app''s and stay.';

-- Registration attaches its policies through sync.attach_scope_policies; the rest is as before.
create or replace function sync.register_table(
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
  v_scope_sql text;
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

  -- RLS does not apply to TRUNCATE, and no client needs to add triggers or foreign keys to it.
  execute format('revoke truncate, trigger, references on %s from public, anon, authenticated', p_table);
  perform sync.attach_scope_policies(p_table);

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
  'Makes a public table syncable: checks its shape (sync columns, primary key, cursor and scope indexes), attaches the standard triggers and the RLS policies of its scope kind (sync.attach_scope_policies), and records it in sync.tables. Re-running re-registers.';

-- The pull's scope rule with literals (see sync.caller_scope_condition) takes in the caller's
-- grants on the table too, when they have any: with none, the condition is what it was.
create or replace function sync.caller_scope_condition(p_table text, p_alias text) returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_granted uuid[];
  v_condition text;
begin
  select * into v_reg from sync.tables t where t.table_name = p_table;
  if v_reg.scope = 'child' then
    return null;
  end if;
  v_condition := sync.scope_condition(v_reg.scope, v_reg.owner_column, v_reg.branch_column, p_alias,
                                      quote_nullable(sync.current_reach()::text) || '::sync.reach',
                                      quote_literal(sync.current_branch_ids()::text) || '::uuid[]',
                                      quote_nullable(auth.uid()::text) || '::uuid');
  v_granted := sync.granted_row_ids(p_table);
  if cardinality(v_granted) > 0 then
    v_condition := format('(%s or %I.id = any (%L::uuid[]))', v_condition, p_alias, v_granted::text);
  end if;
  return v_condition;
end
$$;
comment on function sync.caller_scope_condition(text, text) is
  'SQL text: the caller''s read scope on a table as a condition with their reach, branches, id and granted rows as literals, so the planner finds their rows by the scope index; null for child tables. RLS stays the rule.';

-- What an entry of the scope-change log means for the caller (see the pull's scope phase). A row
-- grant's entry concerns its grantee alone: a row granted that they read now arrives (unless it was
-- written in the window too: the rows phase sent it then); a row whose grant was taken and that they no
-- longer read is evicted. The rows below it were never granted with it, so nothing more follows.
create or replace function sync.scope_change_entries(p_lo pg_snapshot, p_hi pg_snapshot, p_after_xid xid8, p_after_id bigint, p_tables text[], p_limit integer)
returns table (change_xid xid8, entry_id bigint, changes jsonb, expand text, entry_table text, entry_row uuid)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry record;
  v_had boolean;
  v_row jsonb;
  v_written boolean;
  v_uid uuid := auth.uid();
begin
  for v_entry in
    select s.* from sync.scope_changes_in(p_lo, p_hi, p_after_xid, p_after_id, p_limit) s
  loop
    change_xid := v_entry.change_xid;
    entry_id := v_entry.id;
    entry_table := v_entry.table_name;
    entry_row := v_entry.row_id;
    changes := '[]';
    expand := null;
    if v_entry.grantee is not null then
      if v_entry.grantee = v_uid and v_entry.table_name = any (p_tables) then
        -- A row written in the window (a row made and granted at once) came with the rows already.
        execute format('select to_jsonb(t) - ''change_xid'', sync.changed_between(t.change_xid, $2, $3)
                          from public.%I t where t.id = $1 and t.deleted_at is null',
                       v_entry.table_name)
          into v_row, v_written using v_entry.row_id, p_lo, p_hi;
        if v_entry.granted and v_row is not null and not v_written then
          changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'upsert', 'row', v_row));
        elsif not v_entry.granted and v_row is null then
          changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'evict', 'id', v_entry.row_id));
        end if;
      end if;
    elsif v_entry.table_name = any (p_tables) then
      v_had := case v_entry.old_scope
                 when 'owned' then sync.in_scope(v_entry.old_owner, v_entry.old_branch)
                 when 'branch' then sync.in_branch(v_entry.old_branch)
                 else false end;
      -- As the caller sees the row now (RLS applies: this runs as the caller).
      execute format('select to_jsonb(t) - ''change_xid'' from public.%I t where t.id = $1 and t.deleted_at is null',
                     v_entry.table_name)
        into v_row using v_entry.row_id;
      if v_had and v_row is null then
        changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'evict', 'id', v_entry.row_id));
        if not v_entry.inherited then
          expand := 'evict';
        end if;
      elsif v_row is not null and not v_had then
        if v_entry.inherited then
          changes := jsonb_build_array(jsonb_build_object('table', v_entry.table_name, 'op', 'upsert', 'row', v_row));
        else
          expand := 'upsert';
        end if;
      end if;
    end if;
    return next;
  end loop;
end
$$;
comment on function sync.scope_change_entries(pg_snapshot, pg_snapshot, xid8, bigint, text[], integer) is
  'What each scope-change entry of a pull''s window means for the caller: at most one change (evict, or upsert of a gained child row or granted row), and whether the rows below the entry''s row that it did not list are to be evicted or sent.';

-- The change probe asks about granted rows too (a row granted to the caller and changed since).
create or replace function sync.refresh_change_probes() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window constant text := 'sync.changed_between(t.change_xid, p_lo, p_hi)';
  v_reach text;
  v_tables text;
  v_own text;
  v_rest text;
  v_arms text := '';
begin
  select string_agg(format('select %L::text as table_name, t.change_xid from public.%I t where t.updated_by = (select auth.uid())',
                           r.table_name, r.table_name), E'\n  union all ' order by r.sync_order)
    into v_own
    from sync.tables r;

  execute format('create or replace view sync.own_write_marks as %s',
                 coalesce(v_own, 'select null::text as table_name, null::xid8 as change_xid where false'));
  comment on view sync.own_write_marks is
    'Generated by sync.refresh_change_probes(): when the caller wrote rows of each syncable table, whether or not they may still see them.';
  revoke all on sync.own_write_marks from public;
  grant select on sync.own_write_marks to sync_engine;

  -- The rows granted to the caller and when they were last written: the caller reads them, but
  -- the scope rules written into the probe below do not find them.
  select string_agg(format('select %L::text as table_name, t.change_xid from sync.row_grants g join public.%I t on t.id = g.row_id where g.user_id = (select auth.uid()) and g.table_name = %L',
                           r.table_name, r.table_name, r.table_name), E'\n  union all ' order by r.sync_order)
    into v_own
    from sync.tables r;
  execute format('create or replace view sync.granted_row_marks as %s',
                 coalesce(v_own, 'select null::text as table_name, null::xid8 as change_xid where false'));
  comment on view sync.granted_row_marks is
    'Generated by sync.refresh_change_probes(): when the rows granted to the caller (sync.row_grants) were last written.';
  revoke all on sync.granted_row_marks from public;
  grant select on sync.granted_row_marks to sync_engine;

  v_rest := format($r$('conflicts' = any (p_tables) and exists (
            select 1 from sync.conflicts t
             where (t.user_id = v_uid or t.server_user_id = v_uid) and %1$s))
      or exists (select 1 from sync.scope_change_marks t where %1$s)
      or exists (select 1 from sync.own_write_marks t where t.table_name = any (p_tables) and %1$s)
      or exists (select 1 from sync.granted_row_marks t where t.table_name = any (p_tables) and %1$s)$r$, v_window);

  -- One expression for each reach that sync.scope_condition knows, the reach written in it as a
  -- literal: the planner folds each table's scope rule to the arm that applies, and finds the own
  -- reach's changed rows of an owned table in the owner index (branches': the branch index) however much
  -- others changed in the window. Read through RLS alone, the rule is an OR the planner cannot
  -- narrow, and a window holding many changes by others was read whole. RLS stays the rule.
  -- A child table's rows are found from its parent's, when the parent has a scope rule of its own:
  -- the planner may then go from the caller's parent rows to their children, or read the window and
  -- join, whichever it finds cheaper for the window at hand, where RLS alone made it read every
  -- child row changed in the window.
  foreach v_reach in array enum_range(null::sync.reach)::text[] loop
    select string_agg(
             case when r.scope = 'child' and parent.scope <> 'child' then
               format('(%L = any (p_tables) and exists (select 1 from public.%I p join public.%I t on t.%I = p.id where %s and %s))',
                      r.table_name, parent.table_name, r.table_name, r.parent_column, v_window,
                      sync.scope_condition(parent.scope, parent.owner_column, parent.branch_column, 'p',
                                           quote_literal(v_reach), 'v_branches', 'v_uid'))
             else
               format('(%L = any (p_tables) and exists (select 1 from public.%I t where %s and %s))',
                      r.table_name, r.table_name, v_window,
                      coalesce(sync.scope_condition(r.scope, r.owner_column, r.branch_column, 't',
                                                    quote_literal(v_reach), 'v_branches', 'v_uid'), 'true'))
             end,
             E'\n      or ' order by r.sync_order)
      into v_tables
      from sync.tables r
      left join sync.tables parent on parent.table_name = r.parent_table;
    v_arms := v_arms || format(E'  if v_reach = %L then\n    return %s\n      or %s;\n  end if;\n',
                               v_reach, coalesce(v_tables, 'false'), v_rest);
  end loop;
  -- Without a role nothing of the synced tables is visible; what may still concern the caller
  -- (the logs, their own writes) is asked as for anyone.
  v_arms := v_arms || format(E'  return %s;\n', v_rest);

  execute format($f$
create or replace function sync.visible_changes_exist(p_lo pg_snapshot, p_hi pg_snapshot, p_tables text[]) returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
-- Planned for each window: a generic plan, not knowing how narrow the window is, may look for the
-- first changed row by reading a whole table, which finds none in the common, empty, case.
set plan_cache_mode = force_custom_plan
as $body$
declare
  v_reach sync.reach := sync.current_reach();
  v_branches uuid[] := sync.current_branch_ids();
  v_uid uuid := auth.uid();
begin
%s
end
$body$;
$f$, v_arms);
  comment on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) is
    'Generated by sync.refresh_change_probes(): does anything in the pull window (p_lo, p_hi] concern the caller? One query, as the caller.';
  revoke all on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) from public;
  grant execute on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) to sync_engine;
end
$$;
comment on function sync.refresh_change_probes() is
  'Regenerates sync.visible_changes_exist and sync.own_write_marks from the registry; called by sync.register_table.';
revoke all on function sync.refresh_change_probes() from public, sync_engine;

select sync.refresh_change_probes();

-- The registry's policies, with grants, on every table registered so far.
do $$
declare
  v_table text;
begin
  for v_table in select t.table_name from sync.tables t order by t.sync_order loop
    perform sync.attach_scope_policies(('public.' || quote_ident(v_table))::regclass);
  end loop;
end
$$;

-- Row-level security asks for the caller's grants as the querying role; giving, taking and
-- registering are the owner's (the app's triggers run as the owner).
revoke all on function sync.granted_row_ids(text), sync.scope_sql(text, text, integer),
  sync.attach_scope_policies(regclass), sync.set_row_grants(text, uuid, uuid, text[], uuid[])
  from public, anon, authenticated, service_role;
grant execute on function sync.granted_row_ids(text) to authenticated, service_role, sync_engine;
