-- The push engine: a batch of ops applied in order, each on its own, idempotent, conflict-checked
-- against base_version with the table's strategy from the registry, every conflict audited.
-- Everything runs as the caller (security invoker), so RLS and the field rules apply; dynamic SQL is
-- built only from names found in the registry and the catalog.

-- Does a row exist at all, visible to the caller or not? (insert of an existing id, missing parents)
create function sync.row_exists(p_table text, p_id uuid) returns boolean
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_exists boolean;
begin
  if not exists (select 1 from sync.tables t where t.table_name = p_table) then
    return false;
  end if;
  execute format('select exists (select 1 from public.%I t where t.id = $1)', p_table) into v_exists using p_id;
  return v_exists;
end
$$;

comment on function sync.row_exists(text, uuid) is
  'Does a row of a registered table exist at all, visible to the caller or not (security definer: tells a missing parent from one out of scope)?';
-- No `set search_path`: a SQL function with a SET clause is never inlined, and this one runs for
-- every op. Every name in it is pg_catalog's, which is searched first whatever the caller's path.
-- Stable, not immutable: jsonb_build_object is stable, and an immutable function whose body is
-- not is never inlined either.
create function sync.op_result(
  p_op jsonb, p_status text, p_code text default null, p_message text default null,
  p_row jsonb default null, p_conflict jsonb default null, p_field text default null
) returns jsonb
language sql stable
as $$
  select case
    -- The common answer (an applied op and its row) in one object: stripping the nulls and then
    -- concatenating the row copies the row twice more, which was most of building a bulk result.
    -- Called with the other arguments left out, the planner reduces the case to this branch.
    when p_code is null and p_message is null and p_field is null and p_conflict is null
         and p_row is not null and (p_op operator(pg_catalog.->>) 'op_id') is not null then
      pg_catalog.jsonb_build_object(
        'op_id', p_op operator(pg_catalog.->>) 'op_id',
        'status', p_status,
        'retryable', p_status operator(pg_catalog.=) 'failed',
        'row', p_row operator(pg_catalog.-) 'change_xid')
    -- Nulls are dropped from the envelope, never from the row (a null column is information).
    else pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
      'op_id', p_op operator(pg_catalog.->>) 'op_id',
      'status', p_status,
      'code', p_code,
      'retryable', p_status operator(pg_catalog.=) 'failed',
      'message', p_message,
      'field', p_field,
      'conflict', p_conflict
    )) operator(pg_catalog.||) case when p_row is null then '{}'::jsonb
                                    else pg_catalog.jsonb_build_object('row', p_row operator(pg_catalog.-) 'change_xid') end
  end
$$;

comment on function sync.op_result(jsonb, text, text, text, jsonb, jsonb, text) is
  'One op''s result object (op_id, status, code, retryable, message, field, conflict, row without change_xid). Inlined.';
-- The parent row a child op points at must exist, be visible and be live.
create function sync.check_parent(p_op jsonb, p_reg sync.tables, p_parent_id text) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_parent jsonb;
begin
  if p_parent_id is null then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s.%s is required', p_reg.table_name, p_reg.parent_column),
                          p_field => p_reg.parent_column);
  end if;
  if p_parent_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s.%s must be a uuid', p_reg.table_name, p_reg.parent_column),
                          p_field => p_reg.parent_column);
  end if;
  execute format('select to_jsonb(p) from public.%I p where p.id = $1', p_reg.parent_table)
    into v_parent using p_parent_id::uuid;
  if v_parent is null then
    if sync.row_exists(p_reg.parent_table, p_parent_id::uuid) then
      return sync.op_result(p_op, 'rejected', 'forbidden',
        format('%s %s is not in your scope', p_reg.parent_table, p_parent_id), p_field => p_reg.parent_column);
    end if;
    return sync.op_result(p_op, 'failed', 'dependency_missing',
      format('%s %s does not exist yet; push it first', p_reg.parent_table, p_parent_id), p_field => p_reg.parent_column);
  end if;
  if v_parent ->> 'deleted_at' is not null then
    return sync.op_result(p_op, 'rejected', 'invalid',
      format('%s %s is deleted', p_reg.parent_table, p_parent_id), p_field => p_reg.parent_column);
  end if;
  return null;
end
$$;

comment on function sync.check_parent(jsonb, sync.tables, text) is
  'The result for a child op whose parent is missing, out of scope or deleted; null when the parent is live and visible.';
-- An op whose values its columns would not keep as sent: the first such value as the op's result
-- (rejected / invalid, naming the field), or null. A number the database cannot hold never reaches
-- it as a number: the Edge Function sends its text and names where it was (unstorable_numbers,
-- paths within the op: data or base, or a legacy item's payload); the op is refused wherever it
-- was, since it cannot be checked or applied as sent. The others are the columns' value rules
-- (sync.value_faults: finite numbers with no more decimals than the column keeps, ISO 8601 dates
-- and timestamps from 1900 to 2200).
create function sync.refused_value(p_op jsonb, p_table text, p_data jsonb) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_field text;
  v_message text;
begin
  if p_op ? 'unstorable_numbers' then
    v_field := coalesce(p_op -> 'unstorable_numbers' -> 0 ->> 1, 'data');
    if p_op ? 'legacy_item_id' then
      v_field := sync.snake_case(v_field);
    end if;
    return sync.op_result(p_op, 'rejected', 'invalid',
      format('%s.%s: is a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)',
             p_table, v_field),
      p_field => v_field);
  end if;
  select f.column_name, f.message into v_field, v_message from sync.value_faults(p_table, p_data) f limit 1;
  if v_field is not null then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s.%s: %s', p_table, v_field, v_message), p_field => v_field);
  end if;
  return null;
end
$$;
comment on function sync.refused_value(jsonb, text, jsonb) is
  'The result of an op whose values its columns would not keep as sent (a number the database cannot hold, a value sync.value_faults finds), or null.';

-- Applies one op. Returns its result; raises when a statement fails (the caller maps the error).
create function sync.apply_op(p_op jsonb, p_client_id uuid) returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_table text := p_op ->> 'table';
  v_kind text := p_op ->> 'op';
  v_id uuid := (p_op ->> 'id')::uuid;
  v_base_version bigint := (p_op ->> 'base_version')::bigint;
  v_reg sync.tables;
  v_data jsonb;
  v_cols text[];
  v_unknown text;
  v_current jsonb;
  v_row jsonb;
  v_changed text[];
  v_denied text[];
  v_check jsonb;
  v_conflict jsonb;
  v_conflict_id uuid;
  v_base jsonb;
  v_bad record;
begin
  select * into v_reg from sync.tables t where t.table_name = v_table;
  if not found then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s is not a syncable table', v_table), p_field => 'table');
  end if;

  -- Server-managed columns are never taken from the client. A delete's "data" (null in a legacy
  -- queue's delete, or anything else) is no data: subtracting keys from a scalar raises.
  v_data := case when jsonb_typeof(p_op -> 'data') = 'object' then p_op -> 'data' else '{}' end - sync.server_columns();
  v_cols := sync.client_columns(v_table);
  select k into v_unknown from jsonb_object_keys(v_data) k where k <> all (v_cols) limit 1;
  if v_unknown is not null then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s has no column %s', v_table, v_unknown), p_field => v_unknown);
  end if;
  v_check := sync.refused_value(p_op, v_table, v_data);
  if v_check is not null then
    return v_check;
  end if;

  execute format('select to_jsonb(t) from public.%I t where t.id = $1', v_table) into v_current using v_id;

  if v_kind = 'insert' then
    if v_current is not null or sync.row_exists(v_table, v_id) then
      return sync.op_result(p_op, 'rejected', 'already_exists', format('%s %s already exists', v_table, v_id),
                            v_current);
    end if;
    if v_reg.parent_table is not null then
      v_check := sync.check_parent(p_op, v_reg, v_data ->> v_reg.parent_column);
      if v_check is not null then
        return v_check;
      end if;
    end if;
    select array_agg(k) into v_cols from jsonb_object_keys(v_data) k;
    execute format(
      'insert into public.%1$I as t (id%2$s) select $1%3$s from jsonb_populate_record(null::public.%1$I, $2) r returning to_jsonb(t)',
      v_table,
      coalesce((select string_agg(', ' || quote_ident(c), '') from unnest(v_cols) c), ''),
      coalesce((select string_agg(', r.' || quote_ident(c), '') from unnest(v_cols) c), ''))
      into v_row using v_id, v_data;
    return sync.op_result(p_op, 'applied', p_row => v_row);
  end if;

  -- update or delete
  if v_current is null then
    return sync.op_result(p_op, 'rejected', 'not_found', format('%s %s does not exist or is not visible to you', v_table, v_id));
  end if;

  -- The values the device started from, for the columns it changes (the others mean nothing).
  select coalesce(jsonb_object_agg(b.key, b.value), '{}') into v_base
    from jsonb_each(case when jsonb_typeof(p_op -> 'base') = 'object' then p_op -> 'base' else '{}' end) b
   where v_data ? b.key;
  -- Values the audit may record without writing them (a stale edit the server keeps out, an edit
  -- of a deleted row, the base values) meet the table's rules first, as written ones do: they are
  -- stored for a year and delivered to the other user involved.
  if v_kind = 'update' and (v_current ->> 'deleted_at' is not null or v_base <> '{}'
                            or v_base_version is distinct from (v_current ->> 'version')::bigint and v_base_version is not null) then
    select * into v_bad from sync.check_violation(v_table, v_current || v_data);
    if v_bad.constraint_name is null and v_base <> '{}' then
      select * into v_bad from sync.check_violation(v_table, v_current || v_base);
      if v_bad.constraint_name is not null then
        return sync.op_result(p_op, 'rejected', 'invalid',
          format('%s.%s: the base value breaks the column''s rule %s', v_table, v_bad.column_name, v_bad.constraint_name),
          p_field => v_bad.column_name);
      end if;
    end if;
    if v_bad.constraint_name is not null then
      return sync.op_result(p_op, 'rejected', 'invalid',
        format('%s.%s: the value breaks the column''s rule %s', v_table, v_bad.column_name, v_bad.constraint_name),
        p_field => v_bad.column_name);
    end if;
  end if;

  -- What the triggers need to attribute and resolve a conflict: the op, the device, the values
  -- the device started from and the version it expects.
  perform set_config('sync.op_id', p_op ->> 'op_id', true);
  perform set_config('sync.client_id', coalesce(p_client_id::text, ''), true);
  perform set_config('sync.op_base', case when v_base = '{}' then '' else v_base::text end, true);
  perform set_config('sync.last_conflict', '', true);

  if v_current ->> 'deleted_at' is not null then
    if v_kind = 'delete' then
      return sync.op_result(p_op, 'applied', p_row => v_current);
    end if;
    -- No silent resurrection: the edit is refused and the author is told, with an audit entry.
    v_conflict_id := sync.insert_conflict(v_table, v_current, v_data, v_base_version,
                                          array(select jsonb_object_keys(v_data)), '{}',
                                          (v_current ->> 'version')::bigint, 'server_wins');
    return sync.op_result(p_op, 'rejected', 'deleted', format('%s %s was deleted; the edit was not applied', v_table, v_id),
                          v_current, jsonb_build_object('id', v_conflict_id, 'resolution', 'server_wins',
                                                        'fields', array(select jsonb_object_keys(v_data))));
  end if;

  select coalesce(array_agg(k order by k), '{}') into v_changed
    from jsonb_object_keys(v_data) k where v_data -> k is distinct from v_current -> k;
  -- A legacy (protocol 1) payload is the whole entity as the device last saw it. A column there that
  -- the caller's role may not write and that differs from the server is someone else's later change
  -- (an approval, say), not this device's edit: it stays as the server has it, and the device's own
  -- edits apply instead of the whole item being refused (and the edits lost).
  if p_op ? 'legacy_item_id' and current_user in ('authenticated', 'sync_engine') then
    v_denied := sync.denied_columns(sync.current_app_role(), v_table, v_changed);
    v_changed := array(select c from unnest(v_changed) c where c <> all (v_denied));
  end if;

  -- The version the op expects goes with the statement, as `version = -N` (see sync.stamp_row).
  if v_kind = 'delete' then
    execute format('update public.%I t set deleted_at = now(), version = coalesce(-$2, t.version) where t.id = $1 returning to_jsonb(t)', v_table)
      into v_row using v_id, v_base_version;
  else
    if cardinality(v_changed) = 0 then
      return sync.op_result(p_op, 'applied', p_row => v_current);
    end if;
    if current_user in ('authenticated', 'sync_engine') then
      v_denied := sync.denied_columns(coalesce(sync.current_app_role(), '-'), v_table, v_changed);
      if cardinality(v_denied) > 0 then
        return sync.op_result(p_op, 'rejected', 'forbidden',
          format('permission denied: role %s may not write %s.%s', coalesce(sync.current_app_role(), 'without a role'),
                 v_table, v_denied[1]),
          p_field => v_denied[1]);
      end if;
    end if;
    if v_reg.parent_column = any (v_changed) then
      v_check := sync.check_parent(p_op, v_reg, v_data ->> v_reg.parent_column);
      if v_check is not null then
        return v_check;
      end if;
    end if;
    execute format('update public.%1$I t set %2$s, version = coalesce(-$3, t.version) from jsonb_populate_record(null::public.%1$I, $2) r where t.id = $1 returning to_jsonb(t)',
                   v_table, (select string_agg(format('%1$I = r.%1$I', c), ', ') from unnest(v_changed) c))
      into v_row using v_id, v_data, v_base_version;
  end if;
  if v_row is null then
    return sync.op_result(p_op, 'rejected', 'forbidden', format('you may not %s %s %s', v_kind, v_table, v_id));
  end if;

  -- The triggers resolved any conflict by the table's strategy and left their verdict here.
  v_conflict := nullif(current_setting('sync.last_conflict', true), '')::jsonb;
  if v_conflict ->> 'resolution' in ('server_wins', 'manual_pending') then
    return sync.op_result(p_op, 'conflict', 'stale',
      format('%s %s changed since version %s (now %s); %s', v_table, v_id, v_base_version, v_current ->> 'version',
             case
               when v_conflict ->> 'resolution' = 'server_wins' then 'the server''s version stands'
               when v_reg.conflict_strategy = 'manual' then 'the change waits for review'
               else format('%s wait%s for review; the other changes were merged',
                           array_to_string(array(select jsonb_array_elements_text(v_conflict -> 'manual_fields')), ', '),
                           case when jsonb_array_length(v_conflict -> 'manual_fields') = 1 then 's' else '' end) end),
      v_row, v_conflict - 'manual_fields');
  end if;
  return sync.op_result(p_op, 'applied', p_row => v_row, p_conflict => v_conflict - 'manual_fields');
end
$$;

comment on function sync.apply_op(jsonb, uuid) is
  'The per-op push engine: applies one op as the caller and returns its result; raises when a statement fails, for sync.op_failure to word.';
-- Maps the error a failed op raised to its result: permanent problems are rejected (naming the field
-- or rule), passing ones failed and retryable. No SQL text reaches the client.
create function sync.op_failure(p_op jsonb, p_sqlstate text, p_message text, p_column text, p_constraint text, p_table text)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_field text := nullif(p_column, '');
  v_key text;
begin
  if p_sqlstate = '23514' and p_constraint <> '' then
    select a.attname into v_field
      from pg_catalog.pg_constraint c
      join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
     where c.conname = p_constraint and c.conrelid = ('public.' || quote_ident(p_op ->> 'table'))::regclass;
  elsif p_sqlstate like '22%' then
    -- Find the field whose value the column's type or length refused.
    for v_key in select jsonb_object_keys(coalesce(nullif(p_op -> 'data', 'null'), '{}') - sync.server_columns()) loop
      begin
        execute format('select jsonb_populate_record(null::public.%I, $1)', p_op ->> 'table')
          using jsonb_build_object(v_key, p_op -> 'data' -> v_key);
        execute format('select $1::%s', (
          select pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
           where a.attrelid = ('public.' || quote_ident(p_op ->> 'table'))::regclass and a.attname = v_key))
          using p_op -> 'data' ->> v_key;
      exception when others then
        v_field := v_key;
        exit;
      end;
    end loop;
  end if;

  return case
    when p_sqlstate = '23505' then sync.op_result(p_op, 'rejected', 'already_exists', p_message)
    when p_sqlstate = '23503' then sync.op_result(p_op, 'failed', 'dependency_missing', p_message, p_field => v_field)
    when p_sqlstate in ('23502', '23514') or p_sqlstate like '22%' then
      sync.op_result(p_op, 'rejected', 'invalid',
        case when v_field is not null then format('%s.%s: %s', p_op ->> 'table', v_field, p_message) else p_message end,
        p_field => v_field)
    when p_sqlstate = '42501' then sync.op_result(p_op, 'rejected', 'forbidden', p_message)
    when p_sqlstate = '55000' then sync.op_result(p_op, 'rejected', 'deleted', p_message)
    when p_sqlstate in ('40001', '40P01', '55P03') then
      sync.op_result(p_op, 'failed', 'busy', 'the row was busy; retry')
    else sync.op_result(p_op, 'failed', 'server_error', 'the server could not apply this op; retry later')
  end;
end
$$;

comment on function sync.op_failure(jsonb, text, text, text, text, text) is
  'Maps the error an op raised to its result: permanent problems rejected with the field or rule, passing ones failed and retryable; no SQL text reaches the client.';
-- Runs the ops in order. With p_isolate every op gets its own subtransaction, so one op's failure
-- cannot undo another's; without, a failing statement raises (apply_push then retries isolated).
create function sync.run_ops(p_ops jsonb, p_earlier jsonb, p_client_id uuid, p_isolate boolean) returns jsonb[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_op jsonb;
  v_key text;
  v_earlier jsonb;
  v_result jsonb;
  -- Results in an array, and the ops seen by the position of their result: a jsonb value grown
  -- with || is re-encoded whole at every op.
  v_results jsonb[] := '{}';
  v_blocked jsonb := '{}';
  v_seen jsonb := '{}';       -- lower(op_id) -> position of its first op and result
  v_first integer;
  v_state text;
  v_message text;
  v_column text;
  v_constraint text;
  v_tab text;
begin
  for v_op in select o from jsonb_array_elements(p_ops) o loop
    v_key := (v_op ->> 'table') || '/' || lower(v_op ->> 'id');
    v_earlier := p_earlier -> lower(v_op ->> 'op_id');
    if v_seen ? lower(v_op ->> 'op_id') then
      -- An op_id twice in one request (a legacy queue item sent twice): the same op is a duplicate
      -- of the first copy (answered as it was, when that was processed before), another op is not.
      v_first := (v_seen ->> lower(v_op ->> 'op_id'))::integer;
      if (p_ops -> (v_first - 1)) - 'op_id' <> v_op - 'op_id' then
        v_result := sync.op_id_reused(v_op);
      elsif v_earlier is not null then
        v_result := v_earlier;
      else
        v_result := v_results[v_first] || jsonb_build_object('status', 'duplicate', 'original_status', v_results[v_first] ->> 'status');
      end if;
    elsif v_earlier is not null then
      -- processed before: claim_ops answered it (a duplicate, or op_id_reused)
      v_result := v_earlier;
    elsif v_blocked ? v_key then
      v_result := sync.op_result(v_op, 'failed', 'blocked',
        format('an earlier op on %s %s in this request was not applied', v_op ->> 'table', v_op ->> 'id'));
    elsif p_isolate then
      begin
        v_result := sync.apply_op(v_op, p_client_id);
      exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_column = column_name,
                                v_constraint = constraint_name, v_tab = table_name;
        v_result := sync.op_failure(v_op, v_state, v_message, v_column, v_constraint, v_tab);
      end;
    else
      v_result := sync.apply_op(v_op, p_client_id);
    end if;

    if v_result ->> 'status' not in ('applied', 'duplicate') then
      v_blocked := v_blocked || jsonb_build_object(v_key, true);
    end if;
    v_results := array_append(v_results, v_result);
    if not v_seen ? lower(v_op ->> 'op_id') then
      v_seen := v_seen || jsonb_build_object(lower(v_op ->> 'op_id'), cardinality(v_results));
    end if;
  end loop;
  return v_results;
end
$$;

comment on function sync.run_ops(jsonb, jsonb, uuid, boolean) is
  'The per-op engine over a batch: ops in order, each in its own subtransaction when p_isolate, later ops of a row blocked after one that was not applied; returns the results.';
-- "table/id" -> the row ('row') or whether it is deleted ('deleted'), of the rows named by p_tables
-- and p_ids side by side: one statement for all the tables named, the rows read as the caller sees
-- them.
create function sync.rows_by_key(p_tables text[], p_ids uuid[], p_what text) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_sql text;
  v_rows jsonb;
begin
  if p_what is null or p_what not in ('row', 'deleted') then
    raise exception 'sync.rows_by_key: p_what must be row or deleted, not %', p_what;
  end if;
  select string_agg(format('select %L || t.id, %s from public.%I t
                             where t.id = any (array(select x.id from unnest($1, $2) x (tbl, id) where x.tbl = %L))',
                           r.table_name || '/', case p_what when 'row' then 'to_jsonb(t)' when 'deleted' then 't.deleted_at is not null' end,
                           r.table_name, r.table_name), ' union all ')
    into v_sql
    from sync.tables r
   where r.table_name = any (p_tables);
  if v_sql is null then
    return '{}';
  end if;
  execute 'select coalesce(jsonb_object_agg(k, v), ''{}'') from (' || v_sql || ') r (k, v)' into v_rows using p_tables, p_ids;
  return v_rows;
end
$$;

comment on function sync.rows_by_key(text[], uuid[], text) is
  'The current rows (p_what row) or deleted flags (p_what deleted) of several tables'' rows by id, as the caller sees them, keyed table/id: one statement for a batch.';
-- A duplicate repeats its op's first outcome, but with the row as it is now, as the caller may see
-- it, and with no row once they may not: the row of the first answer may be older than what the
-- device has pulled since, or a row it has since been told to evict, and a device that applied it
-- would go back in time for good (its cursor is already past the changes that came after). As the
-- caller: the engine's own reads are under the caller's row-level security.
create function sync.with_current_rows(p_ops jsonb, p_earlier jsonb) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tables text[];
  v_ids uuid[];
  v_now jsonb;
begin
  select array_agg(o ->> 'table'), array_agg((o ->> 'id')::uuid) into v_tables, v_ids
    from jsonb_array_elements(p_ops) o
   where p_earlier -> lower(o ->> 'op_id') ->> 'status' = 'duplicate' and sync.is_uuid(o -> 'id');
  if v_tables is null then
    return p_earlier;
  end if;
  v_now := sync.rows_by_key(v_tables, v_ids, 'row');
  return p_earlier || coalesce((
    select jsonb_object_agg(lower(o ->> 'op_id'),
             ((p_earlier -> lower(o ->> 'op_id')) - 'row')
             || case when v_now ? ((o ->> 'table') || '/' || lower(o ->> 'id'))
                     then jsonb_build_object('row', (v_now -> ((o ->> 'table') || '/' || lower(o ->> 'id'))) - 'change_xid')
                     else '{}' end)
      from jsonb_array_elements(p_ops) o
     where p_earlier -> lower(o ->> 'op_id') ->> 'status' = 'duplicate' and sync.is_uuid(o -> 'id')), '{}');
end
$$;
comment on function sync.with_current_rows(jsonb, jsonb) is
  'The earlier outcomes of a push''s ops, each duplicate with the row as the caller sees it now (none when they may not see it).';

-- The bulk engine: the common batch (new rows, edits based on the current version, deletes) applied
-- with a few statements per table instead of several per op. It writes the rows whose ops' outcome
-- cannot depend on the order of the ops or on a conflict: updates and deletes are based on the
-- current version, nothing changes a row's scope, and every parent is there before its children.
-- A row with several ops (a create and its edits, as offline queues send them) is written in
-- waves: the first op of every row, then the second, each wave checked against what the one before
-- wrote. The rows whose first op it may not decide, and the rows tied to them as parent or child,
-- go to the per-op engine after the rest. Anything else (a later op it may not decide, any
-- statement that fails or writes fewer rows than planned) returns the whole batch to the per-op
-- engine, whose results are the reference.
create type sync.bulk_op as (
  ord integer,
  op jsonb,
  table_name text,
  kind text,
  id uuid,
  base_version bigint,
  data jsonb,
  earlier jsonb, -- its answer when it was processed before (a duplicate, or op_id_reused), or null
  wave integer,  -- 1 for the first op on its row in the batch, 2 for the second, ...
  -- The table's registry entry, read once for the batch: a join for each of the engine's queries
  -- probed the registry once per op.
  sync_order integer,   -- null: not a registered table
  parent_table text,
  parent_column text,
  owner_column text,
  branch_column text,
  parent_id uuid        -- the parent its data names, when that is a uuid
);
comment on type sync.bulk_op is 'One op of a push as the bulk engine plans it (sync.apply_ops_in_bulk).';


-- Returns the results of the batch, or null when it is not a bulk batch (see above). Raises when a
-- statement fails; the caller runs it in a subtransaction and falls back to the per-op engine.
create function sync.apply_ops_in_bulk(p_ops jsonb, p_earlier jsonb, p_client_id uuid default null) returns jsonb[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role text := case when current_user in ('authenticated', 'sync_engine') then sync.current_app_role() end;
  v_all sync.bulk_op[];       -- the batch
  v_ops sync.bulk_op[];       -- the wave being applied
  v_waves integer;
  v_wave integer;
  v_results jsonb[];          -- ord -> the op's result, filled wave by wave
  v_current jsonb := '{}';    -- "table/id" -> the row as the caller sees it now
  v_parents jsonb := '{}';    -- "table/id" -> deleted? for parents named by inserts
  v_columns jsonb;            -- "table" and "table/column" -> true, of its client columns
  v_inserts jsonb;            -- "table/id" -> ord, of the batch's inserts
  v_deletes jsonb;            -- "table/id" -> ord, of the batch's deletes
  v_denied jsonb;             -- "table/column" -> true, of columns the caller's role may not write
  v_table_columns jsonb;      -- table -> its client columns, as the checks saw them
  v_refused jsonb;            -- "table/id" -> true, of rows with an op whose values the push refuses
  v_group record;
  v_tables text[];            -- the rows a wave's checks read: their tables and ids
  v_ids uuid[];
  v_undecided jsonb;          -- "table/id" -> true, of rows with an op the bulk engine cannot decide
  v_per_op jsonb := '{}';     -- "table/id" -> true, of rows left to the per-op engine
  v_added jsonb;
  v_link_rows text[];         -- the first wave's child rows, and their parent rows
  v_link_parents text[];
  v_request jsonb;            -- the ops of those rows, for the per-op engine
  v_count integer;
  v_ords integer[];           -- the ords of the ops a statement wrote, and their results:
  v_done jsonb[];             -- arrays, not jsonb objects merged with ||, which re-encode it all
  v_unwritten record;
  v_i integer;
begin
  -- Whenever the per-op engine takes ops the bulk engine could not, the server log says so and why
  -- (RAISE LOG: a DBA's record, and a client that lowers client_min_messages sees it too).
  if current_user in ('authenticated', 'sync_engine') and v_role is null then
    raise log 'supasync push by %: the per-op engine applies the batch: the caller has no role', auth.uid();
    return null;  -- no role: the per-op engine names the refusal
  end if;
  -- An op_id reused for another op is not applied, so the per-op engine blocks a later op on its
  -- row; the bulk engine would apply that one.
  if exists (select 1 from jsonb_each(p_earlier) e where e.value ->> 'code' = 'op_id_reused') then
    return null;
  end if;
  select array_agg(row(o.ord, o.op, o.op ->> 'table', o.op ->> 'op', (o.op ->> 'id')::uuid,
                       (o.op ->> 'base_version')::bigint, o.data,
                       p_earlier -> lower(o.op ->> 'op_id'), o.wave,
                       t.sync_order, t.parent_table, t.parent_column, t.owner_column, t.branch_column,
                       case when sync.is_uuid(o.data -> t.parent_column) then (o.data ->> t.parent_column)::uuid end
                      )::sync.bulk_op order by o.ord)
    into v_all
    from (select e.op, e.ord::integer,
                 case when jsonb_typeof(e.op -> 'data') = 'object' then e.op -> 'data' else '{}' end
                   - sync.server_columns() as data,
                 row_number() over (partition by e.op ->> 'table', lower(e.op ->> 'id') order by e.ord)::integer as wave
            from jsonb_array_elements(p_ops) with ordinality e (op, ord)) o
    left join sync.tables t on t.table_name = o.op ->> 'table';

  -- Shape: registered tables, known columns, no legacy entity payloads (their per-field handling is
  -- the per-op engine's). With each table's columns (keyed "table/column", so that a check is one
  -- look-up in a flat object, and as the list the writes are made for) come those the caller's
  -- role may not write.
  with t as (
    select r.table_name, c.columns,
           case when v_role is null then '{}' else sync.denied_columns(v_role, r.table_name, c.columns) end as denied
      from sync.tables r
     cross join lateral (select sync.client_columns(r.table_name) as columns offset 0) c
     where r.table_name in (select o.table_name from unnest(v_all) o))
  select (select coalesce(jsonb_object_agg(k.key, true), '{}')
            from t, lateral (select t.table_name union all select t.table_name || '/' || x from unnest(t.columns) x) k (key)),
         (select coalesce(jsonb_object_agg(t.table_name || '/' || x, true), '{}') from t, unnest(t.denied) x),
         (select coalesce(jsonb_object_agg(t.table_name, to_jsonb(t.columns)), '{}') from t)
    into v_columns, v_denied, v_table_columns;
  if v_all is null
     or exists (select 1 from unnest(v_all) o
                 where o.op ? 'legacy_item_id' or not v_columns ? o.table_name)
     or exists (select 1 from unnest(v_all) o, jsonb_object_keys(o.data) k
                 where not v_columns ? (o.table_name || '/' || k)) then
    if v_all is not null then
      raise log 'supasync push by %: the per-op engine applies the batch: it holds legacy (protocol 1) items, an unknown table or an unknown column',
        auth.uid();
    end if;
    return null;
  end if;
  -- The rows with an op whose values the push refuses (sync.refused_value) are the per-op
  -- engine's, which names the value: each op's values of the ruled client columns of its table.
  -- The rules are read in a subquery of their own ("offset 0"), so that sync.value_fault gets
  -- plain columns and is inlined (handed the view's expressions, it is planned at every call).
  select coalesce(jsonb_object_agg(x.row_key, true), '{}') into v_refused
    from (select o.table_name || '/' || o.id as row_key from unnest(v_all) o where o.op ? 'unstorable_numbers'
          union
          select o.table_name || '/' || o.id
            from unnest(v_all) o
            join (select r.* from sync.column_value_rules r
                   where r.table_name in (select jsonb_object_keys(v_table_columns))
                     and v_table_columns -> r.table_name ? r.column_name offset 0) r on r.table_name = o.table_name
           where o.data ? r.column_name
             and sync.value_fault(r.kind, r.numeric_precision, r.scale, o.data -> r.column_name) is not null) x;
  -- "table/id" -> ord of the batch's first insert and first delete of each row, for the order
  -- checks below: they hold across waves (a parent deleted by an earlier op, in whatever wave).
  select coalesce(jsonb_object_agg(x.row_key, x.first_ord) filter (where x.kind = 'insert'), '{}'),
         coalesce(jsonb_object_agg(x.row_key, x.first_ord) filter (where x.kind = 'delete'), '{}')
    into v_inserts, v_deletes
    from (select o.table_name || '/' || o.id as row_key, o.kind, min(o.ord) as first_ord
            from unnest(v_all) o where o.kind in ('insert', 'delete') group by 1, 2) x;
  select max(o.wave) into v_waves from unnest(v_all) o;
  v_results := array_fill(null::jsonb, array[cardinality(v_all)]);

  for v_wave in 1 .. v_waves loop
    v_ops := array(select o from unnest(v_all) o
                    where o.wave = v_wave and not v_per_op ? (o.table_name || '/' || o.id) order by o.ord);

    -- What the checks need from the database, one query for each purpose over all the tables: the
    -- current rows of the updates and deletes (as the caller sees them), and whether the parents
    -- named by inserts are live. Insert ids are not looked up: one that is taken (by a row the
    -- caller may not see, too) fails its insert on the primary key, and the per-op engine takes the
    -- batch and names it.
    select array_agg(o.table_name), array_agg(o.id) into v_tables, v_ids
      from unnest(v_ops) o where o.kind <> 'insert';
    v_current := sync.rows_by_key(v_tables, v_ids, 'row');
    select array_agg(x.parent_table), array_agg(x.parent_id) into v_tables, v_ids
      from (select distinct o.parent_table, o.parent_id from unnest(v_ops) o
             where o.kind = 'insert' and o.parent_id is not null) x;
    v_parents := sync.rows_by_key(v_tables, v_ids, 'deleted');

    -- The rows with an op the bulk engine may not decide.
    select coalesce(jsonb_object_agg(o.table_name || '/' || o.id, true), '{}') into v_undecided
      from unnest(v_ops) o
      cross join lateral (select v_current -> (o.table_name || '/' || o.id) as cur,
                                 o.parent_table || '/' || coalesce(o.data ->> o.parent_column,
                                   v_current -> (o.table_name || '/' || o.id) ->> o.parent_column) as parent_key) c
     where (o.earlier is null and not coalesce(case o.kind
          when 'insert' then
            c.cur is null
            -- nothing the role may not write, not even a default's value or a null (the per-op engine knows)
            and not exists (select 1 from jsonb_each(o.data) d
                             where v_denied ? (o.table_name || '/' || d.key))
            and (o.parent_column is null or (
              o.parent_id is not null
              -- the parent is live now, or inserted by an earlier op of this batch
              and (v_parents -> c.parent_key = 'false' or (v_inserts ->> c.parent_key)::integer < o.ord)))
          else
            c.cur is not null
            and (o.kind = 'delete' and c.cur ->> 'deleted_at' is not null
              or c.cur ->> 'deleted_at' is null
                 and case when o.base_version is null
                          -- unversioned, only over the caller's own last write (a write with no
                          -- user is someone else's: the per-op engine records the overwrite)
                          then o.kind = 'update' and coalesce((c.cur ->> 'updated_by')::uuid = v_uid, false)
                          else o.base_version = (c.cur ->> 'version')::bigint end
                 and not exists (
                   select 1 from jsonb_each(o.data) d
                    where d.value is distinct from c.cur -> d.key
                      and (v_denied ? (o.table_name || '/' || d.key) or d.key in (o.parent_column, o.owner_column, o.branch_column))))
          end, false))
        -- a new row under a parent that an earlier op of this batch deletes is refused
        or (o.kind = 'insert' and (v_deletes ->> c.parent_key)::integer < o.ord)
        or (o.earlier is null and v_refused ? (o.table_name || '/' || o.id));
    if v_undecided <> '{}' then
      if v_wave > 1 then
        -- The waves before wrote rows: the caller's subtransaction must undo them.
        raise exception 'wave % of the batch needs the per-op engine', v_wave;
      end if;
      -- Those rows go to the per-op engine, and with them every row of the batch tied to one as
      -- parent or child, so that what the bulk engine writes does not depend on them, nor they on
      -- it (a child under a parent the batch reassigns, a parent whose child's edit is stale). Their
      -- ops run after the others, in their order. A device back after days offline sends a few
      -- stale edits among hundreds of current ones; those few no longer take the whole batch to
      -- the per-op engine.
      select array_agg(o.table_name || '/' || o.id),
             array_agg(o.parent_table || '/' || lower(coalesce(o.data ->> o.parent_column,
                                                               v_current -> (o.table_name || '/' || o.id) ->> o.parent_column)))
        into v_link_rows, v_link_parents
        from unnest(v_ops) o
       where o.parent_table is not null;
      v_per_op := v_undecided;
      loop
        select jsonb_object_agg(x.k, true) into v_added
          from (select l.r as k from unnest(v_link_rows, v_link_parents) l (r, p)
                 where v_per_op ? l.p and not v_per_op ? l.r
                union
                -- a parent only when the batch has ops on it: another child of a parent the batch
                -- leaves alone does not depend on this one
                select l.p from unnest(v_link_rows, v_link_parents) l (r, p)
                 where v_per_op ? l.r and not v_per_op ? l.p
                   and exists (select 1 from unnest(v_ops) o where o.table_name || '/' || o.id = l.p)) x;
        exit when v_added is null;
        v_per_op := v_per_op || v_added;
      end loop;
      v_ops := array(select o from unnest(v_ops) o where not v_per_op ? (o.table_name || '/' || o.id) order by o.ord);
      raise log 'supasync push by %: the per-op engine applies the ops of % rows after the bulk engine: % of them have an op it cannot decide (a stale or unversioned edit of another''s change, a scope change, a denied column, a parent not live), the others are tied to those as parent or child',
        auth.uid(), (select count(*) from jsonb_object_keys(v_per_op)), (select count(*) from jsonb_object_keys(v_undecided));
      if cardinality(v_ops) = 0 then
        return null;  -- nothing left for the bulk engine
      end if;
    end if;

    -- The rows are written as their ops were checked: each update and delete only if the row still
    -- has the version (or, unversioned, the caller as its last author) its op expects, re-checked on
    -- the locked row. The triggers check them again all the same (field rules, and the version each
    -- row's statement states as `version = -N`): nothing tells a trigger that a write was checked
    -- before, since whatever could tell it a client session could tell it too.

    -- Inserts, parents before children, one statement per table; then the updates that change
    -- something and the deletes of live rows, one statement per table (a delete sets deleted_at and
    -- takes nothing from its data). Each statement answers with its ops' results (sync.bulk_write).
    for v_group in
      select o.table_name, o.kind = 'insert' as is_insert,
             array_agg(o.id order by o.ord) as ids, array_agg(o.ord order by o.ord) as ords, array_agg(o.op order by o.ord) as ops,
             array_agg(case when o.kind = 'delete' then '{}' else o.data end order by o.ord) as datas,
             array_agg(o.base_version order by o.ord) as versions, array_agg(o.kind = 'delete' order by o.ord) as deletes
        from unnest(v_ops) o
        cross join lateral (select v_current -> (o.table_name || '/' || o.id) as cur) c
       where o.earlier is null
         and (o.kind = 'insert'
              or c.cur ->> 'deleted_at' is null
                 and (o.kind = 'delete' or exists (select 1 from jsonb_each(o.data) d where d.value is distinct from c.cur -> d.key)))
       group by o.kind = 'insert', o.sync_order, o.table_name
       order by o.kind = 'insert' desc, o.sync_order
    loop
      select w.o_written, w.o_ords, w.o_results into v_count, v_ords, v_done
        from sync.bulk_write(v_group.table_name, array(select jsonb_array_elements_text(v_table_columns -> v_group.table_name)),
                             case when v_group.is_insert then 'insert' else 'update' end,
                             v_group.ids, v_group.ords, v_group.ops, v_group.datas, v_group.versions, v_group.deletes, v_uid) w;
      if v_count is distinct from cardinality(v_group.ids) then
        raise exception 'bulk % of % wrote % of % rows', case when v_group.is_insert then 'insert into' else 'update of' end,
          v_group.table_name, coalesce(v_count, 0), cardinality(v_group.ids);
      end if;
      for v_i in 1 .. v_count loop
        v_results[v_ords[v_i]] := v_done[v_i];
      end loop;
    end loop;
    -- An edit that changes nothing, and the delete of a deleted row, wrote nothing: their row is the
    -- current one.
    for v_unwritten in
      select o.ord, sync.op_result(o.op, 'applied', p_row => v_current -> (o.table_name || '/' || o.id)) as result
        from unnest(v_ops) o
       where o.earlier is null and v_results[o.ord] is null
    loop
      v_results[v_unwritten.ord] := v_unwritten.result;
    end loop;
  end loop;

  -- The rows left to the per-op engine, after everything the bulk engine wrote.
  if v_per_op <> '{}' then
    select array_agg(o.ord order by o.ord), jsonb_agg(o.op order by o.ord) into v_ords, v_request
      from unnest(v_all) o
     where v_per_op ? (o.table_name || '/' || o.id);
    v_done := sync.run_ops(v_request, p_earlier, p_client_id, true);
    for v_i in 1 .. cardinality(v_ords) loop
      v_results[v_ords[v_i]] := v_done[v_i];
    end loop;
  end if;

  return (
    select array_agg(coalesce(v_results[o.ord], o.earlier) order by o.ord)
      from unnest(v_all) o);
end
$$;
comment on function sync.apply_ops_in_bulk(jsonb, jsonb, uuid) is
  'The bulk push engine: applies a batch of independent, current-version ops with a few statements per table, and the rows it may not decide (with the rows tied to them) through the per-op engine; returns null for a batch the per-op engine must apply whole.';

create function sync.apply_push(p_payload jsonb) returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
-- The row-set estimates of jsonb and array functions are guesses far above a batch's size, so
-- the JIT would compile (tens of milliseconds per statement) what runs in one: a push is OLTP work.
set jit = off
-- The engine's own statements take whole batches as array and jsonb parameters, whose values do
-- not change a plan (the estimates are the same guesses), and its triggers look rows up by key.
-- Left to choose, the plan cache kept planning them anew at every push. Dynamic statements
-- (EXECUTE) are planned for their values anyway.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_request jsonb;
  v_client_id uuid;
  v_earlier jsonb;
  v_results jsonb[];  -- one value per op: built into the answer once, recorded as they are
  v_failed boolean := false;
begin
  perform sync.require_staff('a push');
  v_request := sync.normalize_push(p_payload);
  v_client_id := (v_request ->> 'client_id')::uuid;

  v_earlier := sync.claim_ops(v_request -> 'ops');
  if v_earlier <> '{}' then
    v_earlier := sync.with_current_rows(v_request -> 'ops', v_earlier);
  end if;

  -- The bulk engine first. Otherwise, optimistically all ops in one subtransaction; only when a
  -- statement fails are they re-run with one subtransaction each (many subtransactions overflow the
  -- backend's subxid cache).
  begin
    v_results := sync.apply_ops_in_bulk(v_request -> 'ops', v_earlier, v_client_id);
  exception when others then
    v_failed := true;
    raise log 'supasync push by %: the per-op engine applies the batch, one op at a time: the bulk engine stopped (%: %)',
      auth.uid(), sqlstate, sqlerrm;
  end;
  if v_results is null and not v_failed then
    begin
      v_results := sync.run_ops(v_request -> 'ops', v_earlier, v_client_id, false);
    exception when others then
      v_results := null;
      raise log 'supasync push by %: the per-op engine applies the batch again, one op at a time: an op failed (%: %)',
        auth.uid(), sqlstate, sqlerrm;
    end;
  end if;
  if v_results is null then
    v_results := sync.run_ops(v_request -> 'ops', v_earlier, v_client_id, true);
  end if;

  perform sync.record_outcomes(v_client_id, v_request -> 'ops', v_results);
  return jsonb_build_object('server_time', clock_timestamp(), 'results', v_results);
end
$$;
comment on function sync.apply_push(jsonb) is
  'Applies a push request (protocol 1 or 2) as the calling user: ops in order, idempotent by (user, op_id), conflict-checked by base_version, every conflict audited. Returns {server_time, results}.';

create function public.sync_push(payload jsonb) returns jsonb
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
  select sync.apply_push(payload)
$$;
comment on function public.sync_push(jsonb) is
  'Sync push (see docs/protocol.md): batched, idempotent, conflict-checked. Runs as the caller, under RLS.';

revoke all on function public.sync_push(jsonb) from public, anon;
grant execute on function public.sync_push(jsonb) to authenticated, service_role;
grant execute on function sync.row_exists(text, uuid), sync.op_result(jsonb, text, text, text, jsonb, jsonb, text),
  sync.check_parent(jsonb, sync.tables, text), sync.refused_value(jsonb, text, jsonb), sync.apply_op(jsonb, uuid), sync.op_failure(jsonb, text, text, text, text, text),
  sync.run_ops(jsonb, jsonb, uuid, boolean), sync.rows_by_key(text[], uuid[], text),
  sync.apply_ops_in_bulk(jsonb, jsonb, uuid),
  sync.apply_push(jsonb) to authenticated, service_role;
grant usage on type sync.bulk_op to authenticated, service_role;
