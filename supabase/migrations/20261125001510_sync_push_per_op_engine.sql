-- The per-op push engine: one op at a time, each as the caller, in order; its results are the
-- reference the bulk engine is held to.

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
  v_base_version bigint := (p_op ->> 'base_version')::numeric::bigint;  -- whole, though it may be written 1.0
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
