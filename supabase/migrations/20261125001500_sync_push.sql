-- The push engine: a batch of ops applied in order, each on its own, idempotent, conflict-checked
-- against base_version with the table's strategy from the registry, every conflict audited.
-- Everything runs as the caller (security invoker), so RLS and the field rules apply; dynamic SQL is
-- built only from names found in the registry and the catalog.

-- Does a row exist at all, visible to the caller or not? (insert of an existing id, missing parents)
create function sync.row_exists(p_table text, p_id uuid) returns boolean
language plpgsql stable
security definer
set search_path = ''
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

-- Client-writable columns of a syncable table.
create function sync.client_columns(p_table text) returns text[]
language sql stable
set search_path = ''
as $$
  select coalesce(array_agg(a.attname::text order by a.attnum), '{}')
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(p_table))::regclass
     and a.attnum > 0 and not a.attisdropped
     and a.attname <> all (sync.server_columns())
$$;

create function sync.op_result(
  p_op jsonb, p_status text, p_code text default null, p_message text default null,
  p_row jsonb default null, p_conflict jsonb default null, p_field text default null
) returns jsonb
language sql immutable
set search_path = ''
as $$
  -- Nulls are dropped from the envelope, never from the row (a null column is information).
  select jsonb_strip_nulls(jsonb_build_object(
    'op_id', p_op ->> 'op_id',
    'status', p_status,
    'code', p_code,
    'retryable', p_status = 'failed',
    'message', p_message,
    'field', p_field,
    'conflict', p_conflict
  )) || case when p_row is null then '{}'::jsonb else jsonb_build_object('row', p_row - 'change_xid') end
$$;

-- The parent row a child op points at must exist, be visible and be live.
create function sync.check_parent(p_op jsonb, p_reg sync.tables, p_parent_id text) returns jsonb
language plpgsql stable
set search_path = ''
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

-- Applies one op. Returns its result; raises when a statement fails (the caller maps the error).
create function sync.apply_op(p_op jsonb, p_client_id uuid) returns jsonb
language plpgsql
set search_path = ''
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
begin
  select * into v_reg from sync.tables t where t.table_name = v_table;
  if not found then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s is not a syncable table', v_table), p_field => 'table');
  end if;

  -- Server-managed columns are never taken from the client. "data": null (a delete's, a legacy
  -- queue's delete) is no data: subtracting keys from a JSON null raises and failed the whole request.
  v_data := coalesce(nullif(p_op -> 'data', 'null'), '{}') - sync.server_columns();
  v_cols := sync.client_columns(v_table);
  select k into v_unknown from jsonb_object_keys(v_data) k where k <> all (v_cols) limit 1;
  if v_unknown is not null then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s has no column %s', v_table, v_unknown), p_field => v_unknown);
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

  -- What the triggers need to attribute and resolve a conflict: the op, the device, the values
  -- the device started from and the version it expects.
  perform set_config('sync.op_id', p_op ->> 'op_id', true);
  perform set_config('sync.client_id', coalesce(p_client_id::text, ''), true);
  perform set_config('sync.op_base', coalesce(nullif(p_op -> 'base', 'null')::text, ''), true);
  perform set_config('sync.expected_version', coalesce(v_base_version::text, ''), true);
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
  if p_op ? 'legacy_item_id' and current_user = 'authenticated' then
    v_denied := sync.denied_columns(sync.current_app_role(), v_table, v_changed);
    v_changed := array(select c from unnest(v_changed) c where c <> all (v_denied));
  end if;

  if v_kind = 'delete' then
    execute format('update public.%I t set deleted_at = now() where t.id = $1 returning to_jsonb(t)', v_table)
      into v_row using v_id;
  else
    if cardinality(v_changed) = 0 then
      return sync.op_result(p_op, 'applied', p_row => v_current);
    end if;
    if current_user = 'authenticated' then
      v_denied := sync.denied_columns(coalesce(sync.current_app_role(), '-'), v_table, v_changed);
      if cardinality(v_denied) > 0 then
        return sync.op_result(p_op, 'rejected', 'forbidden',
          format('permission denied: role %s may not write %s.%s', coalesce(sync.current_app_role(), 'without a profile'),
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
    execute format('update public.%1$I t set %2$s from jsonb_populate_record(null::public.%1$I, $2) r where t.id = $1 returning to_jsonb(t)',
                   v_table, (select string_agg(format('%1$I = r.%1$I', c), ', ') from unnest(v_changed) c))
      into v_row using v_id, v_data;
  end if;
  perform set_config('sync.expected_version', '', true);
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

-- Maps the error a failed op raised to its result: permanent problems are rejected (naming the field
-- or rule), passing ones failed and retryable. No SQL text reaches the client.
create function sync.op_failure(p_op jsonb, p_sqlstate text, p_message text, p_column text, p_constraint text, p_table text)
returns jsonb
language plpgsql
set search_path = ''
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

-- Runs the ops in order. With p_isolate every op gets its own subtransaction, so one op's failure
-- cannot undo another's; without, a failing statement raises (apply_push then retries isolated).
create function sync.run_ops(p_ops jsonb, p_claims jsonb, p_client_id uuid, p_isolate boolean) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_op jsonb;
  v_key text;
  v_claim jsonb;
  v_result jsonb;
  v_results jsonb := '[]';
  v_blocked jsonb := '{}';
  v_seen jsonb := '{}';
  v_state text;
  v_message text;
  v_column text;
  v_constraint text;
  v_tab text;
begin
  for v_op in select o from jsonb_array_elements(p_ops) o loop
    v_key := (v_op ->> 'table') || '/' || lower(v_op ->> 'id');
    v_claim := p_claims -> lower(v_op ->> 'op_id');
    if v_seen ? lower(v_op ->> 'op_id') then
      -- The same op twice in one request (a legacy queue item sent twice).
      v_result := (v_seen -> lower(v_op ->> 'op_id')) || jsonb_build_object(
        'status', 'duplicate', 'original_status', v_seen -> lower(v_op ->> 'op_id') ->> 'status');
    elsif v_claim is null or not (v_claim ->> 'claimed')::boolean then
      if v_claim -> 'outcome' is null or jsonb_typeof(v_claim -> 'outcome') = 'null' then
        v_result := sync.op_result(v_op, 'failed', 'in_progress', 'this op is being applied by another request; retry');
      else
        v_result := (v_claim -> 'outcome') || jsonb_build_object(
          'status', 'duplicate', 'original_status', v_claim -> 'outcome' ->> 'status');
      end if;
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
    if v_claim is not null and (v_claim ->> 'claimed')::boolean and not v_seen ? lower(v_op ->> 'op_id') then
      v_seen := v_seen || jsonb_build_object(lower(v_op ->> 'op_id'), v_result);
    end if;
    v_results := v_results || jsonb_build_array(v_result);
  end loop;
  return v_results;
end
$$;

create function sync.apply_push(p_payload jsonb) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_request jsonb;
  v_client_id uuid;
  v_claims jsonb;
  v_results jsonb;
begin
  if auth.uid() is null then
    perform sync.request_error('missing_token', 'a push needs a signed-in user');
  end if;
  v_request := sync.normalize_push(p_payload);
  v_client_id := (v_request ->> 'client_id')::uuid;

  select coalesce(jsonb_object_agg(lower(c.op_id::text), jsonb_build_object('claimed', c.claimed, 'outcome', c.outcome)), '{}')
    into v_claims
    from sync.claim_ops(v_client_id, v_request -> 'ops') c;

  -- Optimistically all ops in one subtransaction; only when a statement fails are they re-run with
  -- one subtransaction each (many subtransactions overflow the backend's subxid cache).
  begin
    v_results := sync.run_ops(v_request -> 'ops', v_claims, v_client_id, false);
  exception when others then
    v_results := null;
  end;
  if v_results is null then
    v_results := sync.run_ops(v_request -> 'ops', v_claims, v_client_id, true);
  end if;

  perform sync.record_outcomes(coalesce((
    select jsonb_agg(r) from jsonb_array_elements(v_results) r where r ->> 'status' <> 'duplicate'), '[]'));
  return jsonb_build_object('server_time', clock_timestamp(), 'results', v_results);
end
$$;
comment on function sync.apply_push(jsonb) is
  'Applies a push request (protocol 1 or 2) as the calling user: ops in order, idempotent by (user, op_id), conflict-checked by base_version, every conflict audited. Returns {server_time, results}.';

create function public.sync_push(payload jsonb) returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select sync.apply_push(payload)
$$;
comment on function public.sync_push(jsonb) is
  'Sync push (see docs/protocol.md): batched, idempotent, conflict-checked. Runs as the caller, under RLS.';

revoke all on function public.sync_push(jsonb) from public, anon;
grant execute on function public.sync_push(jsonb) to authenticated, service_role;
grant execute on function sync.row_exists(text, uuid), sync.client_columns(text), sync.op_result(jsonb, text, text, text, jsonb, jsonb, text),
  sync.check_parent(jsonb, sync.tables, text), sync.apply_op(jsonb, uuid), sync.op_failure(jsonb, text, text, text, text, text),
  sync.run_ops(jsonb, jsonb, uuid, boolean), sync.apply_push(jsonb) to authenticated, service_role;
