-- A refusal names its field whenever one column is at fault (docs/protocol.md, Results). Three
-- refusals raised by a statement did not: a field rule's (42501, the column only in the message),
-- a missing referenced row (23503) and a taken unique value (23505), whose errors name a constraint
-- but no column. The field rule now raises with the column, and the mapping of a failed statement
-- to a result takes it from there, or from the constraint when it covers one column the op wrote.

-- The refused column goes with the error as its column, where a caller reads it without parsing
-- the message (the message stays as it was).
create or replace function sync.assert_may_write(p_role text, p_table text, p_columns text[]) returns void
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
      column = v_denied[1],
      message = format('permission denied: role %s may not write %s.%s', p_role, p_table, v_denied[1]),
      detail = format('denied columns: %s', array_to_string(v_denied, ', ')),
      hint = 'see sync.field_rules';
  end if;
end
$$;

comment on function sync.assert_may_write(text, text, text[]) is
  'Raises 42501 naming role, table and column (in the message and as the error''s column) when p_role may not write one of p_columns.';

create or replace function sync.op_failure(p_op jsonb, p_sqlstate text, p_message text, p_column text, p_constraint text, p_table text)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_field text := nullif(p_column, '');
  v_key text;
  v_columns text[];
begin
  if p_sqlstate = '23514' and p_constraint <> '' then
    select a.attname into v_field
      from pg_catalog.pg_constraint c
      join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
     where c.conname = p_constraint and c.conrelid = ('public.' || quote_ident(p_op ->> 'table'))::regclass;
  elsif p_sqlstate in ('23503', '23505') and v_field is null and p_constraint <> '' then
    -- A key over one column the op wrote is that column's fault; the op's own id (taken by a row
    -- the caller may not see) and a key over several columns are the row's.
    select array_agg(a.attname::text) into v_columns
      from pg_catalog.pg_constraint c
      join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
     where c.conname = p_constraint and c.conrelid = ('public.' || quote_ident(p_op ->> 'table'))::regclass;
    if cardinality(v_columns) = 1 and jsonb_typeof(p_op -> 'data') = 'object'
       and (p_op -> 'data') - sync.server_columns() ? v_columns[1] then
      v_field := v_columns[1];
    end if;
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
    when p_sqlstate = '23505' then sync.op_result(p_op, 'rejected', 'already_exists', p_message, p_field => v_field)
    when p_sqlstate = '23503' then sync.op_result(p_op, 'failed', 'dependency_missing', p_message, p_field => v_field)
    when p_sqlstate in ('23502', '23514') or p_sqlstate like '22%' then
      sync.op_result(p_op, 'rejected', 'invalid',
        case when v_field is not null then format('%s.%s: %s', p_op ->> 'table', v_field, p_message) else p_message end,
        p_field => v_field)
    -- A field rule's refusal names its column (sync.assert_may_write); a scope rule's names none.
    when p_sqlstate = '42501' then sync.op_result(p_op, 'rejected', 'forbidden', p_message, p_field => v_field)
    when p_sqlstate = '55000' then sync.op_result(p_op, 'rejected', 'deleted', p_message)
    when p_sqlstate in ('40001', '40P01', '55P03') then
      sync.op_result(p_op, 'failed', 'busy', 'the row was busy; retry')
    else sync.op_result(p_op, 'failed', 'server_error', 'the server could not apply this op; retry later')
  end;
end
$$;

comment on function sync.op_failure(jsonb, text, text, text, text, text) is
  'Maps the error an op raised to its result: permanent problems rejected with the field or rule (the column of a field rule, of a one-column key the op wrote), passing ones failed and retryable; no SQL text reaches the client.';
