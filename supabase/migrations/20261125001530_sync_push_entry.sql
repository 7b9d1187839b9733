-- The push's entry: the request checked, the caller's earlier ops found, the bulk engine first and
-- the per-op engine for what it leaves, the outcomes recorded; public.sync_push is the RPC door.

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

-- The push's one entry, for both doors: public.sync_push (RPC) hands it the payload alone; the Edge
-- Function, acting as sync_engine, also the paths where it found numbers the database cannot hold
-- (sync.mark_unstorable_numbers), which no client can state.
create function sync.apply_push(p_payload jsonb, p_unstorable_numbers jsonb) returns jsonb
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
  v_request := sync.mark_unstorable_numbers(sync.normalize_push(p_payload), p_unstorable_numbers);
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
comment on function sync.apply_push(jsonb, jsonb) is
  'Applies a push request (protocol 1 or 2) as the calling user: ops in order, idempotent by (user, op_id), conflict-checked by base_version, every conflict audited; the ops at the paths of p_unstorable_numbers (the Edge Function''s, [] from RPC) are refused as holding a number the database cannot hold. Returns {server_time, results}.';

create function public.sync_push(payload jsonb) returns jsonb
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
  select sync.apply_push(payload, '[]')
$$;
comment on function public.sync_push(jsonb) is
  'Sync push (see docs/protocol.md): batched, idempotent, conflict-checked. Runs as sync_engine, under RLS by the caller''s claims.';

revoke all on function public.sync_push(jsonb) from public, anon;
grant execute on function public.sync_push(jsonb) to authenticated, service_role;
-- The engine's own functions are granted in sync_privileges.
