-- What a push answers for each op, and the checks that decide it before anything is written:
-- the result object, the parent and value checks, and the mapping of a failed statement to a
-- result. Dynamic SQL is built only from names found in the registry and the catalog.

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
-- it as a number: the Edge Function sends its text and names where it was, and the op carries the
-- paths within it (unstorable_numbers: data or base, or a legacy item's payload; set by
-- sync.mark_unstorable_numbers alone); the op is refused wherever it was, since it cannot be
-- checked or applied as sent. The others are the columns' value rules
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
