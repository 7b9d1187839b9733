-- Registering a table is how a table becomes syncable: its shape is checked, the standard triggers
-- and the row-level security policies of its scope kind are attached, and it joins the registry.
-- Adding a syncable table is therefore one migration: create the table, call sync.register_table().

-- What is wrong with a table's shape for syncing; empty when nothing is.
create function sync.shape_problems(
  p_table regclass,
  p_parent_column text default null,
  p_owner_column text default null,
  p_branch_column text default null
) returns setof text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_col record;
  v_indexed text;
begin
  for v_col in
    select req.col, req.typ, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod) as actual, a.attnotnull
      from (values (1, 'id', 'uuid'), (2, 'version', 'bigint'), (3, 'created_at', 'timestamp with time zone'),
                   (4, 'updated_at', 'timestamp with time zone'), (5, 'created_by', 'uuid'), (6, 'updated_by', 'uuid'),
                   (7, 'deleted_at', 'timestamp with time zone'), (8, 'change_xid', 'xid8')) req (ord, col, typ)
      left join pg_catalog.pg_attribute a
        on a.attrelid = p_table and a.attname = req.col and not a.attisdropped
     -- A fixed order, so register_table's message does not change with the join the planner picks.
     order by req.ord
  loop
    if v_col.attnum is null then
      return next format('missing sync column %s %s', v_col.col, v_col.typ);
    elsif v_col.actual <> v_col.typ then
      return next format('sync column %s is %s, expected %s', v_col.col, v_col.actual, v_col.typ);
    elsif v_col.col in ('id', 'version', 'created_at', 'updated_at', 'change_xid') and not v_col.attnotnull then
      return next format('sync column %s must be not null', v_col.col);
    end if;
  end loop;

  if not exists (
    select 1 from pg_catalog.pg_index i
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
     where i.indrelid = p_table and i.indisprimary and i.indnkeyatts = 1 and a.attname = 'id'
  ) then
    return next 'primary key must be (id)';
  end if;

  -- The scope columns of owned and branch tables lead an index that also orders by the cursor, so
  -- a first pull reads one user's or one branch's rows in cursor order however many others there are.
  -- (A scope column that is the id itself needs nothing more than the primary key.) A delta pull
  -- looks for the caller's own writes in its window (sync.own_writes): by (updated_by, change_xid),
  -- in proportion to them, not to everything everyone wrote meanwhile.
  foreach v_indexed in array array['change_xid,id', 'updated_by,change_xid', p_parent_column,
                                   nullif(p_owner_column, 'id') || ',change_xid,id',
                                   nullif(p_branch_column, 'id') || ',change_xid,id'] loop
    continue when v_indexed is null or v_indexed = 'id';
    if not sync.has_leading_index(p_table, string_to_array(v_indexed, ',')) then
      return next format('no index leads with (%s)', v_indexed);
    end if;
  end loop;
end
$$;

comment on function sync.shape_problems(regclass, text, text, text) is
  'What is wrong with a table''s shape for syncing (sync columns, primary key, the indexes the pull needs); empty when nothing is.';
create function sync.has_leading_index(p_table regclass, p_columns text[]) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select 1
      from pg_catalog.pg_index i
     where i.indrelid = p_table
       and i.indpred is null
       and (
         select array_agg(a.attname::text order by k.ord)
           from unnest(string_to_array(i.indkey::text, ' ')::int2[]) with ordinality k (attnum, ord)
           join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
          where k.ord <= cardinality(p_columns)
       ) = p_columns
  )
$$;
comment on function sync.has_leading_index(regclass, text[]) is
  'Is there a plain index whose leading key columns are exactly p_columns, in order?';

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
-- The change probe: whether anything in a pull's window (changed after snapshot p_lo, visible in
-- p_hi) concerns the caller, answered by one indexed query over every registered table, so that an
-- empty delta costs one look per table instead of a page query per table. "Concerns" means: changed
-- rows the caller may see (RLS decides), their conflicts, and what means an eviction: an entry of
-- the scope-change log, or a row the caller wrote that RLS may hide from them now. Those two are
-- read through views that run as their owner, because the caller may not read the log or hidden
-- rows; they show transaction ids only (and of rows, only the caller's own writes).
-- Generated from the registry (each register_table call regenerates it): a query over "every table"
-- must name them, and a generated function keeps its plan across calls where dynamic SQL would be
-- planned anew on every pull.
create view sync.scope_change_marks as select s.change_xid from sync.scope_changes s;
comment on view sync.scope_change_marks is
  'When the scope-change log was written, and nothing else: the pull''s change probe reads it as the caller.';
revoke all on sync.scope_change_marks from public;
grant select on sync.scope_change_marks to sync_engine;

create function sync.refresh_change_probes() returns void
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

  v_rest := format($r$('conflicts' = any (p_tables) and exists (
            select 1 from sync.conflicts t
             where (t.user_id = v_uid or t.server_user_id = v_uid) and %1$s))
      or exists (select 1 from sync.scope_change_marks t where %1$s)
      or exists (select 1 from sync.own_write_marks t where t.table_name = any (p_tables) and %1$s)$r$, v_window);

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
comment on function sync.refresh_change_probes() is
  'Regenerates sync.visible_changes_exist and sync.own_write_marks from the registry; called by sync.register_table.';
$f$, v_arms);
  comment on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) is
    'Generated by sync.refresh_change_probes(): does anything in the pull window (p_lo, p_hi] concern the caller? One query, as the caller.';
  revoke all on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) from public;
  grant execute on function sync.visible_changes_exist(pg_snapshot, pg_snapshot, text[]) to sync_engine;
end
$$;
revoke all on function sync.refresh_change_probes() from public;

-- Client-writable columns of a syncable table: not the server's, and none the database computes
-- (a generated column, an identity column that is always generated).
create function sync.client_columns(p_table text) returns text[]
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(a.attname::text order by a.attnum), '{}')
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(p_table))::regclass
     and a.attnum > 0 and not a.attisdropped
     and a.attgenerated = '' and a.attidentity <> 'a'
     and a.attname <> all (sync.server_columns())
$$;
comment on function sync.client_columns(text) is
  'The columns of a syncable table a client may write: not the server''s, not generated, not always-identity.';
revoke all on function sync.client_columns(text) from public;
grant execute on function sync.client_columns(text) to authenticated, service_role;

-- The bulk push engine's writes (sync.apply_ops_in_bulk), one insert and one update statement for
-- each syncable table, written out here so that PL/pgSQL keeps their plans. Built for each batch
-- with EXECUTE, they were parsed, rewritten with the table's policies and planned at every push,
-- which was most of a small push's time in the database.
-- The insert names every client column, a column its op's data leaves out taking the column's
-- default (the owner and branch defaults once per statement: they are the caller's, the same for
-- every row); the update sets every client column, to its current value where the data leaves it
-- out. Each statement answers with its ops' results: an applied op's answer as sync.op_result
-- shapes it, made from the written row in one pass.
-- A table altered since it was registered has other columns than the statements name: the engine
-- passes the columns it checked the ops against, and a writer that does not know them refuses, so
-- the per-op engine applies the batch until sync.register_table is run again.
create function sync.refresh_bulk_writers() returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_table record;
  v_columns text[];
  v_insert_columns text;
  v_insert_values text;
  v_set text;
  v_returning text;
  v_branches text := '';
  -- The written rows are w; the ops' ids, ords and ops come as arrays.
  v_answers constant text := $a$
      select (select count(*) from w), array_agg(g.ord), array_agg(to_jsonb(x))
        into o_written, o_ords, o_results
        from w join unnest(p_ids, p_ords, p_ops) g (id, ord, op) on g.id = w.id
       cross join lateral (select g.op ->> 'op_id' as op_id, 'applied' as status, false as retryable, w as "row") x;$a$;
begin
  for v_table in select t.table_name, t.owner_column, t.branch_column from sync.tables t order by t.sync_order loop
    v_columns := sync.client_columns(v_table.table_name);
    select string_agg(', ' || quote_ident(c.name), '' order by c.ord),
           string_agg(format(', case when o.data ? %L then r.%I else %s end', c.name, c.name,
                             case when d.expr is null then 'null'
                                  when c.name in (v_table.owner_column, v_table.branch_column) then '(select ' || d.expr || ')'
                                  else d.expr end), '' order by c.ord),
           string_agg(format(', %1$I = case when o.data ? %2$L then r.%1$I else t.%1$I end', c.name, c.name), '' order by c.ord)
      into v_insert_columns, v_insert_values, v_set
      from unnest(v_columns) with ordinality c (name, ord)
      left join lateral (
        select pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) as expr
          from pg_catalog.pg_attribute a
          join pg_catalog.pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
         where a.attrelid = ('public.' || quote_ident(v_table.table_name))::regclass and a.attname = c.name) d on true;
    -- The row as a result shows it: every column but change_xid (the pull's bookkeeping).
    select string_agg('t.' || quote_ident(a.attname), ', ' order by a.attnum) into v_returning
      from pg_catalog.pg_attribute a
     where a.attrelid = ('public.' || quote_ident(v_table.table_name))::regclass
       and a.attnum > 0 and not a.attisdropped and a.attname <> 'change_xid';
    v_branches := v_branches || format($b$
  if p_table = %1$L then
    if p_columns is distinct from %2$L::text[] then
      raise exception using message = %8$L;
    end if;
    if p_kind = 'insert' then
      with w as (
        insert into public.%1$I as t (id%3$s)
        select o.id%4$s
          from unnest(p_ids, p_datas) o (id, data)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.%1$I, o.data) r
        returning %6$s)%7$s
    else
      with w as (
        update public.%1$I as t set deleted_at = case when o.is_delete then pg_catalog.now() else t.deleted_at end,
               version = coalesce(-o.base_version, t.version)%5$s
          from unnest(p_ids, p_versions, p_datas, p_deletes) o (id, base_version, data, is_delete)
         cross join lateral pg_catalog.jsonb_populate_record(null::public.%1$I, o.data) r
         where t.id = o.id and t.deleted_at is null
           and case when o.base_version is null then t.updated_by = p_uid
                    else t.version = o.base_version end
        returning %6$s)%7$s
    end if;
    return;
  end if;$b$,
      v_table.table_name, v_columns, coalesce(v_insert_columns, ''), coalesce(v_insert_values, ''), coalesce(v_set, ''),
      v_returning, v_answers,
      format('sync.bulk_write: the columns of public.%I are not those it was registered with; run sync.register_table again',
             v_table.table_name));
  end loop;

  execute format($f$
create or replace function sync.bulk_write(
  p_table text, p_columns text[], p_kind text,
  p_ids uuid[], p_ords integer[], p_ops jsonb[], p_datas jsonb[],
  p_versions bigint[] default null, p_deletes boolean[] default null, p_uid uuid default null,
  out o_written integer, out o_ords integer[], out o_results jsonb[])
language plpgsql
set search_path = pg_catalog, pg_temp
as $body$
#variable_conflict use_column
begin%s
  raise exception 'sync.bulk_write: %% is not a syncable table', p_table;
end
$body$;
comment on function sync.refresh_bulk_writers() is
  'Regenerates sync.bulk_write (the bulk push engine''s static insert and update per registered table) from the registry; called by sync.register_table.';
$f$, v_branches);
  comment on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) is
    'Generated by sync.refresh_bulk_writers(): the bulk push engine''s insert (p_kind insert) or guarded update and delete of a batch''s rows of one table, as the caller; returns how many rows it wrote and their ops'' results.';
  revoke all on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid) from public;
  grant execute on function sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid)
    to sync_engine;
end
$$;
revoke all on function sync.refresh_bulk_writers() from public;

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
grant execute on function sync.shape_problems(regclass, text, text, text), sync.has_leading_index(regclass, text[])
  to service_role;
grant execute on function sync.scope_condition(sync.scope_kind, text, text, text, text, text, text),
  sync.caller_scope_condition(text, text) to authenticated, service_role;
