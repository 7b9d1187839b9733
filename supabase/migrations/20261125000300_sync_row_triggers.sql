-- Triggers, not clients, own the server columns of every syncable table; client deletes become
-- tombstones; the field-rule matrix is enforced on every write path (PostgREST, RPC, the function).

-- Roles that reach the database on behalf of an API caller. The table owner and maintenance jobs are
-- not among them: they may hard-delete (retention purge) and are not bound by field rules.
create function sync.is_api_role() returns boolean
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select current_user in ('anon', 'authenticated', 'service_role', 'sync_engine')
$$;
comment on function sync.is_api_role() is
  'Does the current role act for an API caller (anon, authenticated, service_role, or the engine acting for a user)? For invoker code: the table owner and maintenance jobs are not API callers.';

-- The same question inside a security definer function, where current_user is the function's owner:
-- the role the session acts as is the `role` setting (SET ROLE, as PostgREST and the function
-- use), else the role it logged in as. A session may set `role` only to a role it is a member of,
-- so no client passes for the owner this way.
create function sync.session_is_api() returns boolean
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(nullif(current_setting('role'), 'none'), session_user::text)
         in ('anon', 'authenticated', 'service_role', 'authenticator', 'sync_engine')
$$;
comment on function sync.session_is_api() is
  'For security definer code: does the session act as an API role (its SET ROLE, else its login role)? The table owner and maintenance jobs do not.';

-- Who reads everything the engine keeps (every conflict, unredacted): a session that acts neither as
-- a client role nor as the engine: the owner, a maintenance job, service_role (which bypasses
-- row-level security everywhere else too). Asked where code runs as sync_engine, which RLS otherwise
-- treats as the caller's claims.
create function sync.session_reads_all() returns boolean
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(nullif(current_setting('role'), 'none'), session_user::text)
         not in ('anon', 'authenticated', 'authenticator', 'sync_engine')
$$;
comment on function sync.session_reads_all() is
  'Does the session act as neither a client role nor the engine (the owner, a maintenance job, service_role)? Such a session reads every conflict, unredacted, through the review views.';

-- Security definer: it records the change history and the conflict audit, which no client role may
-- write (or call the functions that write them). So it asks sync.session_is_api() who is writing.
create function sync.stamp_row() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_uid uuid := auth.uid();
  v_server text[] := sync.server_columns();
  v_expected bigint;
  v_changed boolean;
  v_old jsonb;
  v_new jsonb;
begin
  if tg_op = 'INSERT' then
    new.version := 1;
    new.created_at := v_now;
    new.updated_at := v_now;
    new.created_by := v_uid;
    new.updated_by := v_uid;
    new.deleted_at := null;
    new.change_xid := pg_current_xact_id();
    return new;
  end if;

  new.id := old.id;
  new.created_at := old.created_at;
  new.created_by := old.created_by;

  if old.deleted_at is not null then
    -- A tombstone is final for API callers: no silent resurrection by a late edit.
    if sync.session_is_api()
       and (new.deleted_at is null or (to_jsonb(new) - v_server) <> (to_jsonb(old) - v_server)) then
      raise exception using
        errcode = '55000',
        message = format('%s row %s is deleted and cannot be changed', tg_table_name, old.id),
        hint = 'deleted rows stay deleted; create a new row instead';
    end if;
    if new.deleted_at is not null then
      new.deleted_at := old.deleted_at;
    end if;
  elsif new.deleted_at is not null then
    new.deleted_at := v_now;
  end if;

  -- An update that states the version it expects is checked here, on every path, and a stale one
  -- is resolved by the table's strategy and audited. The statement says it in the row itself, so
  -- nothing outside the statement can say it for it: `version = -N` expects version N (what the
  -- engines write, exact even when N is the current version); a `version` set to another positive
  -- number than the row's expects that number (a direct client's shorthand). An upsert that sets
  -- `version = excluded.version` therefore expects version 1: upserts should leave `version` out.
  v_expected := case when new.version < 0 then -new.version
                     when new.version is distinct from old.version then new.version end;
  -- Each row image as JSON once: these comparisons run for every updated row.
  v_old := to_jsonb(old);
  v_new := to_jsonb(new);
  v_changed := (v_new - v_server) <> (v_old - v_server)
               or new.deleted_at is distinct from old.deleted_at;
  if v_changed and v_expected is not null and v_expected <> old.version then
    new := jsonb_populate_record(new, sync.resolve_stale_update(tg_table_name, v_old, v_new, v_expected));
    v_new := to_jsonb(new);
  elsif v_changed and v_expected is null and v_uid is not null and old.updated_by is distinct from v_uid then
    -- No expected version: an explicit last-write-wins, recorded where it overwrites a change by
    -- anyone else, a write with no user (a service job, the owner) included.
    perform sync.record_overwrite(tg_table_name, v_old, v_new);
  end if;

  if (v_new - v_server) = (v_old - v_server)
     and new.deleted_at is not distinct from old.deleted_at then
    -- Nothing changed: keep the row's identity in the change feed instead of re-sending it.
    new.version := old.version;
    new.updated_at := old.updated_at;
    new.updated_by := old.updated_by;
    new.change_xid := old.change_xid;
    return new;
  end if;

  new.version := old.version + 1;
  new.updated_at := greatest(v_now, old.updated_at);
  new.updated_by := v_uid;
  new.change_xid := pg_current_xact_id();
  -- Which columns each version changed, so a later stale edit can be merged field by field.
  perform sync.log_version(tg_table_name, new.id, new.version, array(
    select n.key from jsonb_each(v_new - array_remove(v_server, 'deleted_at')) n
     where n.value is distinct from v_old -> n.key));
  return new;
end
$$;
comment on function sync.stamp_row() is
  'BEFORE INSERT/UPDATE on syncable tables: version starts at 1 and rises by one per change; updated_at from the database clock; created_by/updated_by from auth.uid(); id, created_at, created_by immutable; change_xid records the writing transaction for the commit-safe pull cursor.';

-- The pull's window, the one rule of what a cursor has not yet delivered: a row stamped with
-- p_xid changed after snapshot p_lo (null: since the beginning) when its transaction had not
-- committed in p_lo, and belongs to the window when it had committed in p_hi (see the completeness
-- note in the pull's migration). Every reader of the change feed asks it through this function.
-- No SET clause, pg_catalog names only, immutable like its parts: it is inlined, so the planner
-- still sees the bounds on change_xid as index conditions. coalesce, not "p_lo is null or": a bound
-- inside an OR is no index condition where p_lo is a parameter the plan does not know.
create function sync.changed_between(p_xid xid8, p_lo pg_snapshot, p_hi pg_snapshot) returns boolean
language sql immutable parallel safe
as $$
  select p_xid operator(pg_catalog.>=) coalesce(pg_catalog.pg_snapshot_xmin(p_lo), '0'::pg_catalog.xid8)
     and p_xid operator(pg_catalog.<) pg_catalog.pg_snapshot_xmax(p_hi)
     and not coalesce(pg_catalog.pg_visible_in_snapshot(p_xid, p_lo), false)
     and pg_catalog.pg_visible_in_snapshot(p_xid, p_hi)
$$;

comment on function sync.changed_between(xid8, pg_snapshot, pg_snapshot) is
  'The pull window''s one rule: was a row stamped with p_xid committed after snapshot p_lo (null: ever) and visible in p_hi? Inlined, so the bounds stay index conditions.';
create function sync.tombstone_on_delete() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if not sync.is_api_role() then
    return old;
  end if;
  if old.deleted_at is null then
    -- Runs as the caller, so the table's update policy and triggers apply to the tombstone.
    execute format('update %I.%I set deleted_at = now() where id = $1', tg_table_schema, tg_table_name)
      using old.id;
  end if;
  return null;
end
$$;
comment on function sync.tombstone_on_delete() is
  'BEFORE DELETE on syncable tables: an API caller''s DELETE becomes a tombstone (deleted_at set, version bumped) so every device learns of it; only the owner (retention purge) hard-deletes.';

-- A child row may not be created under, or moved to, a deleted parent: the tombstone keeps the
-- foreign key satisfied, so the database alone would allow it, and every device would then hold a
-- child of a row it deleted. The push answers such an op itself; this holds every other path to the
-- same rule. Once per statement, over the rows it wrote (a transition table), and as the writer: a
-- parent the writer may not see is row-level security's to refuse, not this trigger's to reveal.
create function sync.refuse_deleted_parents() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_parent uuid;
begin
  select * into v_reg from sync.tables t where t.table_name = tg_table_name;
  if v_reg.parent_table is null then
    return null;
  end if;
  if tg_op = 'INSERT' then
    execute format('select p.id from new_rows n join public.%I p on p.id = n.%I where p.deleted_at is not null limit 1',
                   v_reg.parent_table, v_reg.parent_column) into v_parent;
  else
    execute format('select p.id from new_rows n join old_rows o on o.id = n.id join public.%I p on p.id = n.%2$I
                     where n.%2$I is distinct from o.%2$I and p.deleted_at is not null limit 1',
                   v_reg.parent_table, v_reg.parent_column) into v_parent;
  end if;
  if v_parent is not null then
    raise exception using
      errcode = '23514',
      column = v_reg.parent_column,
      message = format('%s %s is deleted: %s rows cannot be added under it', v_reg.parent_table, v_parent, tg_table_name),
      hint = 'deleted rows stay deleted; create a new parent row instead';
  end if;
  return null;
end
$$;
comment on function sync.refuse_deleted_parents() is
  'AFTER INSERT/UPDATE FOR EACH STATEMENT on child tables: refuses (23514, column named) a row written under a deleted parent, on every write path.';

-- The columns of p_columns that p_role may not write to p_table, in the order given.
-- PL/pgSQL, to keep its plan: it runs once per table of every write (see sync.current_app_role).
create function sync.denied_columns(p_role text, p_table text, p_columns text[]) returns text[]
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    select coalesce(array_agg(u.col order by u.ord), '{}')
      from unnest(p_columns) with ordinality u (col, ord)
     where not coalesce(
             (select r.may_write from sync.field_rules r
               where r.app_role = p_role and r.table_name = p_table and r.column_name = u.col),
             (select r.may_write from sync.field_rules r
               where r.app_role = p_role and r.table_name = p_table and r.column_name = '*'),
             false));
end
$$;

comment on function sync.denied_columns(text, text, text[]) is
  'The columns of p_columns that role p_role may not write to p_table, per sync.field_rules (missing rules deny).';
-- Raises 42501 naming role, table and column when p_role may not write one of p_columns.
create function sync.assert_may_write(p_role text, p_table text, p_columns text[]) returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_denied text[];
begin
  if p_role is null then
    raise exception using
      errcode = '42501',
      message = format('permission denied: %s has no role and may not write %s', current_user, p_table);
  end if;
  v_denied := sync.denied_columns(p_role, p_table, p_columns);
  if cardinality(v_denied) > 0 then
    raise exception using
      errcode = '42501',
      message = format('permission denied: role %s may not write %s.%s', p_role, p_table, v_denied[1]),
      detail = format('denied columns: %s', array_to_string(v_denied, ', ')),
      hint = 'see sync.field_rules';
  end if;
end
$$;

comment on function sync.assert_may_write(text, text, text[]) is
  'Raises 42501 naming role, table and column when p_role may not write one of p_columns.';
-- What the field rules say for the caller on one table, worked out once per statement by a
-- statement-level trigger: the app role and, for each column the role may not write, the value its
-- default takes (a new row of an owned table defaults to being the caller's, in their branch). The row trigger
-- then needs no catalog lookups and no dynamic SQL per row. The answer is kept where no client role
-- can write it, keyed by the backend and the transaction: a setting would be the caller's to
-- rewrite, even from an expression of the statement whose rows it decides.
create unlogged table sync.statement_rules_cache (
  backend_pid integer not null,
  table_name text not null,
  xact xid8 not null,
  rules jsonb not null,
  primary key (backend_pid, table_name)
);
comment on table sync.statement_rules_cache is
  'The field rules of the statement running in each backend, per table: {role, denied: {column: {default}}}, written by sync.field_rules_for_statement, read by sync.enforce_field_rules through sync.statement_field_rules. Valid only for the transaction (xact) that wrote it. Unlogged: it is rebuilt by every statement.';
revoke all on sync.statement_rules_cache from public, anon, authenticated, service_role;

-- Security definer: it writes the cache no client role may touch. What it writes depends on the
-- caller's identity (their claims) and the rule matrix only.
create function sync.field_rules_for_statement() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text;
  v_denied jsonb := '{}';
  v_col text;
  v_default_expr text;
  v_default jsonb;
begin
  v_role := sync.current_app_role();
  if v_role is not null then
    for v_col in
      select c from unnest(sync.denied_columns(v_role, tg_table_name, array(
          select a.attname::text from pg_catalog.pg_attribute a
           where a.attrelid = tg_relid and a.attnum > 0 and not a.attisdropped
             and a.attname <> all (sync.server_columns())))) c
    loop
      v_default := null;
      select pg_catalog.pg_get_expr(d.adbin, d.adrelid) into v_default_expr
        from pg_catalog.pg_attrdef d
        join pg_catalog.pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
       where d.adrelid = tg_relid and a.attname = v_col;
      if v_default_expr is not null then
        execute format('select to_jsonb(%s)', v_default_expr) into v_default;
      end if;
      -- {"column": {"default": value}}, or {} when the column has no default
      v_denied := v_denied || jsonb_build_object(v_col, jsonb_strip_nulls(jsonb_build_object('default', v_default)));
    end loop;
  end if;
  insert into sync.statement_rules_cache as c (backend_pid, table_name, xact, rules)
  values (pg_catalog.pg_backend_pid(), tg_table_name, pg_catalog.pg_current_xact_id(),
          jsonb_build_object('role', v_role, 'denied', v_denied))
  on conflict (backend_pid, table_name) do update set xact = excluded.xact, rules = excluded.rules;
  return null;
end
$$;
comment on function sync.field_rules_for_statement() is
  'BEFORE INSERT/UPDATE FOR EACH STATEMENT on syncable tables: works out the caller''s role and denied columns (with their default values) for sync.enforce_field_rules, in sync.statement_rules_cache.';

-- The row trigger runs as the writer (it must know who that is), so it reads the cache through this.
create function sync.statement_field_rules(p_table text) returns jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rules jsonb;
begin
  select c.rules into v_rules from sync.statement_rules_cache c
   where c.backend_pid = pg_catalog.pg_backend_pid() and c.table_name = p_table
     and c.xact = pg_catalog.pg_current_xact_id();
  return v_rules;
end
$$;
comment on function sync.statement_field_rules(text) is
  'The caller''s field rules on p_table for the statement running now, as sync.field_rules_for_statement worked them out; null when it did not run in this transaction.';

create function sync.enforce_field_rules() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new jsonb;
  v_old jsonb;
  v_rules jsonb;
  v_role text;
  v_written text[];
begin
  if current_user not in ('anon', 'authenticated', 'sync_engine') then
    return new;
  end if;
  if current_user = 'anon' then
    -- Refused before any name in `sync` is resolved: anon has no usage on the schema, so otherwise
    -- the error would depend on whether this connection had already cached the plans below.
    raise exception using
      errcode = '42501',
      message = format('permission denied: anon has no role and may not write %s', tg_table_name);
  end if;
  v_rules := sync.statement_field_rules(tg_table_name);
  if v_rules is null then
    -- The statement trigger always runs first; without its answer nothing is allowed.
    raise exception using
      errcode = '42501',
      message = format('permission denied: the field rules of %s were not worked out for this statement', tg_table_name);
  end if;
  v_role := v_rules ->> 'role';
  if v_role is not null and v_rules -> 'denied' = '{}' then
    return new;  -- the common case: the role may write every column of this table
  end if;

  v_new := to_jsonb(new);
  if tg_op = 'UPDATE' then
    v_old := to_jsonb(old);
  end if;
  -- Only the denied columns are looked at first (a few, against some twenty per row); the full
  -- list of written columns is worked out only to word a refusal. On insert, a column the role may
  -- not write must hold its default (null where it has none): an explicit null is a value too.
  if v_role is not null and not exists (
       select 1 from jsonb_each(v_rules -> 'denied') d
        where case when tg_op = 'UPDATE' then v_new -> d.key is distinct from v_old -> d.key
                   else v_new -> d.key is distinct from coalesce(d.value -> 'default', 'null') end) then
    return new;
  end if;
  if tg_op = 'UPDATE' then
    select coalesce(array_agg(n.key), '{}') into v_written
      from jsonb_each(v_new) n
     where n.key <> all (sync.server_columns()) and n.value is distinct from v_old -> n.key;
  else
    select coalesce(array_agg(n.key), '{}') into v_written
      from jsonb_each(v_new) n
     where n.key <> all (sync.server_columns())
       and case when v_rules -> 'denied' ? n.key
                then n.value is distinct from coalesce(v_rules -> 'denied' -> n.key -> 'default', 'null')
                else n.value <> 'null'::jsonb end;
  end if;

  if v_role is null or exists (select 1 from unnest(v_written) c where v_rules -> 'denied' ? c) then
    perform sync.assert_may_write(v_role, tg_table_name, v_written);
  end if;
  return new;
end
$$;
comment on function sync.enforce_field_rules() is
  'BEFORE INSERT/UPDATE on syncable tables: refuses (42501) a change to a column the caller''s role may not write, per sync.field_rules (as worked out for the statement by sync.field_rules_for_statement). service_role and the owner are unrestricted.';

grant execute on function sync.is_api_role(), sync.session_is_api(), sync.stamp_row(), sync.tombstone_on_delete(),
  sync.enforce_field_rules(), sync.field_rules_for_statement(), sync.statement_field_rules(text), sync.denied_columns(text, text, text[]),
  sync.assert_may_write(text, text, text[]), sync.changed_between(xid8, pg_snapshot, pg_snapshot) to authenticated, service_role;
