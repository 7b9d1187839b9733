-- Triggers, not clients, own the server columns of every syncable table; client deletes become
-- tombstones; the field-rule matrix is enforced on every write path (PostgREST, RPC, the function).

-- Roles that reach the database on behalf of an API caller. The table owner and maintenance jobs are
-- not among them: they may hard-delete (retention purge) and are not bound by field rules.
create function sync.is_api_role() returns boolean
language sql stable parallel safe
set search_path = ''
as $$
  select current_user in ('anon', 'authenticated', 'service_role')
$$;

create function sync.stamp_row() returns trigger
language plpgsql
set search_path = ''
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
    if sync.is_api_role()
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

  -- An update that states the version it expects (the sync engine passes an op's base_version in
  -- sync.expected_version; a direct client writes it into `version`) is checked here, on every path,
  -- and a stale one is resolved by the table's strategy and audited.
  -- The bulk push engine writes many rows per statement, each guarded in its WHERE clause by the
  -- version its op expects (re-checked on the locked row), and says so by naming the table in
  -- sync.versions_checked.
  v_expected := case
    when current_setting('sync.versions_checked', true) = tg_table_name then old.version
    else coalesce(nullif(current_setting('sync.expected_version', true), '')::bigint,
                  case when new.version is distinct from old.version then new.version end) end;
  -- Each row image as JSON once: these comparisons run for every updated row.
  v_old := to_jsonb(old);
  v_new := to_jsonb(new);
  v_changed := (v_new - v_server) <> (v_old - v_server)
               or new.deleted_at is distinct from old.deleted_at;
  if v_changed and v_expected is not null and v_expected <> old.version then
    new := jsonb_populate_record(new, sync.resolve_stale_update(tg_table_name, v_old, v_new, v_expected));
    v_new := to_jsonb(new);
  elsif v_changed and v_expected is null and v_uid is not null and old.updated_by is distinct from v_uid
        and old.updated_by is not null then
    -- No expected version: an explicit last-write-wins, recorded where it overwrites another user.
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

create function sync.tombstone_on_delete() returns trigger
language plpgsql
set search_path = ''
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

-- The columns of p_columns that p_role may not write to p_table, in the order given.
-- PL/pgSQL, to keep its plan: it runs once per table of every write (see sync.current_app_role).
create function sync.denied_columns(p_role text, p_table text, p_columns text[]) returns text[]
language plpgsql stable
set search_path = ''
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

-- Raises 42501 naming role, table and column when p_role may not write one of p_columns.
create function sync.assert_may_write(p_role text, p_table text, p_columns text[]) returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_denied text[];
begin
  if p_role is null then
    raise exception using
      errcode = '42501',
      message = format('permission denied: %s has no profile and may not write %s', current_user, p_table);
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

-- What the field rules say for the caller on one table, worked out once per statement by a
-- statement-level trigger: the app role and, for each column the role may not write, the value its
-- default takes (an rm's new customer defaults to being theirs, in their branch). The row trigger
-- then needs no catalog lookups and no dynamic SQL per row. Keyed by table in a transaction-local
-- setting that every statement overwrites, so nothing a caller sets beforehand is ever trusted.
create function sync.field_rules_for_statement() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
  v_denied jsonb := '{}';
  v_col text;
  v_default_expr text;
  v_default jsonb;
begin
  -- Not needed where no row will look at it: another role, or a statement of the bulk push engine,
  -- which has checked the rules for its whole batch (see sync.enforce_field_rules).
  if current_user <> 'authenticated' or current_setting('sync.fields_checked', true) = tg_table_name then
    return null;
  end if;
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
  perform set_config('sync.field_rules_' || tg_table_name,
                     jsonb_build_object('role', v_role, 'denied', v_denied)::text, true);
  return null;
end
$$;
comment on function sync.field_rules_for_statement() is
  'BEFORE INSERT/UPDATE FOR EACH STATEMENT on syncable tables: caches the caller''s role and denied columns (with their default values) for sync.enforce_field_rules.';

create function sync.enforce_field_rules() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_new jsonb;
  v_old jsonb;
  v_rules jsonb;
  v_role text;
  v_written text[];
begin
  if current_user not in ('anon', 'authenticated') then
    return new;
  end if;
  if current_user = 'anon' then
    -- Refused before any name in `sync` is resolved: anon has no usage on the schema, so otherwise
    -- the error would depend on whether this connection had already cached the plans below.
    raise exception using
      errcode = '42501',
      message = format('permission denied: anon has no profile and may not write %s', tg_table_name);
  end if;
  -- The bulk push engine checks the field rules of a whole batch before it writes (no denied column
  -- given, none changed) and says so, naming the table, for the duration of its own statements.
  if current_setting('sync.fields_checked', true) = tg_table_name then
    return new;
  end if;
  v_rules := nullif(current_setting('sync.field_rules_' || tg_table_name, true), '')::jsonb;
  v_role := v_rules ->> 'role';
  if v_role is not null and v_rules -> 'denied' = '{}' then
    return new;  -- the common case: the role may write every column of this table
  end if;

  v_new := to_jsonb(new);
  if tg_op = 'UPDATE' then
    v_old := to_jsonb(old);
  end if;
  -- Only the denied columns are looked at first (a few, against some twenty per row); the full
  -- list of written columns is worked out only to word a refusal.
  if v_role is not null and not exists (
       select 1 from jsonb_each(v_rules -> 'denied') d
        where case when tg_op = 'UPDATE' then v_new -> d.key is distinct from v_old -> d.key
                   -- on insert, a column the role may not write may still hold its default
                   else v_new -> d.key <> 'null' and v_new -> d.key is distinct from d.value -> 'default' end) then
    return new;
  end if;
  if tg_op = 'UPDATE' then
    select coalesce(array_agg(n.key), '{}') into v_written
      from jsonb_each(v_new) n
     where n.key <> all (sync.server_columns()) and n.value is distinct from v_old -> n.key;
  else
    select coalesce(array_agg(n.key), '{}') into v_written
      from jsonb_each(v_new) n
     where n.key <> all (sync.server_columns()) and n.value <> 'null'::jsonb
       and (v_rules -> 'denied' -> n.key -> 'default') is distinct from n.value;
  end if;

  if v_role is null or exists (select 1 from unnest(v_written) c where v_rules -> 'denied' ? c) then
    perform sync.assert_may_write(v_role, tg_table_name, v_written);
  end if;
  return new;
end
$$;
comment on function sync.enforce_field_rules() is
  'BEFORE INSERT/UPDATE on syncable tables: refuses (42501) a change to a column the caller''s role may not write, per sync.field_rules (as cached for the statement by sync.field_rules_for_statement). service_role and the owner are unrestricted.';

grant execute on function sync.is_api_role(), sync.stamp_row(), sync.tombstone_on_delete(),
  sync.enforce_field_rules(), sync.field_rules_for_statement(), sync.denied_columns(text, text, text[]),
  sync.assert_may_write(text, text, text[]), sync.changed_between(xid8, pg_snapshot, pg_snapshot) to authenticated, service_role;
