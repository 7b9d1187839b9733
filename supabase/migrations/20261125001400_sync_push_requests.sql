-- The shape of a push request, checked in SQL so RPC callers get the same answers as the Edge
-- Function: protocol 2 as is, protocol 1 (the legacy device queue) turned into protocol 2 ops.

-- False, never null, for an absent key: `if not sync.is_uuid(...)` must catch a missing op_id, id or
-- client_id too (a null there let the request through to fail later with a raw error).
-- No `set search_path` here: a SQL function with a SET clause is never inlined, and this one runs
-- three times for every op. Every name in it is
-- pg_catalog's, which is searched first whatever the caller's path.
-- 8-4-4-4-12 hex digits, spelled as a LIKE pattern (the length and the dash positions), no dash
-- elsewhere, and a character class: a regular expression with counted repeats took twice as long,
-- and substr for each dash half as long again; it runs twice for every op.
create function sync.is_uuid(p_value jsonb) returns boolean
language sql immutable parallel safe
as $$
  select coalesce(pg_catalog.jsonb_typeof(p_value) = 'string'
     and (p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.~~) '________-____-____-____-____________'
     and pg_catalog.length(pg_catalog.replace(p_value operator(pg_catalog.#>>) '{}', '-', '')) = 32
     and (p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.~) '^[-0-9a-fA-F]*$', false)
$$;

comment on function sync.is_uuid(jsonb) is
  'Is a JSON value a uuid string (8-4-4-4-12 hex digits)? False, never null, for a missing value. Inlined.';

-- A whole number by its value, as the database keeps it: 1.0 is one (a client that writes its numbers
-- as doubles sends it), 1.5 is not. Inlined like sync.is_uuid, for the same reason; the cast is
-- taken only for a number.
create function sync.is_whole_number(p_value jsonb, p_min numeric, p_max numeric) returns boolean
language sql immutable parallel safe
as $$
  select case when pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.=) 'number'
              then (p_value)::pg_catalog.numeric operator(pg_catalog.=) pg_catalog.trunc((p_value)::pg_catalog.numeric)
                   and (p_value)::pg_catalog.numeric operator(pg_catalog.>=) p_min
                   and (p_value)::pg_catalog.numeric operator(pg_catalog.<=) p_max
              else false end
$$;

comment on function sync.is_whole_number(jsonb, numeric, numeric) is
  'Is a JSON value a number whose value is whole and within [p_min, p_max] (1.0 is, 1.5 is not)? False, never null, for a missing value. Inlined.';

-- The issue for an object's keys outside p_known, worded as the function's schemas word it (its
-- strict objects), or null when there is none.
create function sync.unrecognized_keys(p_object jsonb, p_known text[], p_path jsonb) returns jsonb
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('path', p_path,
           'message', format('Unrecognized key%s: %s', case when count(*) > 1 then 's' else '' end,
                             string_agg(format('"%s"', k), ', ')))
    from jsonb_object_keys(p_object - p_known) k
  having count(*) > 0
$$;

comment on function sync.unrecognized_keys(jsonb, text[], jsonb) is
  'The request issue {path, message} for the keys of an object outside the known ones ("Unrecognized keys: ..."), or null.';
-- camelCase -> snake_case, as the mobile app's payload keys map to columns.
create function sync.snake_case(p_name text) returns text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select lower(regexp_replace(p_name, '([a-z0-9])([A-Z])', '\1_\2', 'g'))
$$;

comment on function sync.snake_case(text) is
  'camelCase to snake_case, as protocol 1 payload keys map to columns.';
-- Protocol 1 items as protocol 2 ops. The op id is derived from (client_id, item id, createdAt), so a
-- re-sent item is recognised as a duplicate. A numeric item id (a row of the app's sync_queue) has
-- the derivation devices were always answered with, the parts joined with ':', unambiguous for a
-- number: an item re-sent across an upgrade is still a duplicate. Joined so, string ids were
-- ambiguous ("7:2026-01-02T00:00:00Z" with createdAt "x" and "7" with "2026-01-02T00:00:00Z:x"
-- met, and the second item was answered as the first one's duplicate and lost): theirs is the md5
-- of the parts as a JSON array, whose quoting keeps them apart. Updates and deletes carry no base
-- version: they apply as explicit last-write-wins, and the engine logs it when they overwrite
-- another user's change.
create function sync.legacy_items_to_ops(p_client_id text, p_items jsonb) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(jsonb_agg(
    jsonb_build_object(
      'op_id', case when jsonb_typeof(i.item -> 'id') = 'number'
                    then md5('protocol1:' || p_client_id || ':' || (i.item ->> 'id') || ':' || (i.item ->> 'createdAt'))
                    else md5(jsonb_build_array('protocol1', p_client_id, i.item -> 'id', i.item -> 'createdAt')::text)
               end::uuid,
      'table', coalesce(
        (select t.table_name from sync.tables t
          where i.item ->> 'entityType' in (t.entity_name, sync.snake_case(t.entity_name), t.table_name)),
        i.item ->> 'entityType'),
      'op', case i.item ->> 'operation' when 'create' then 'insert' else i.item ->> 'operation' end,
      'id', i.item -> 'entityId',
      'base_version', null,
      'data', case when i.item ->> 'operation' = 'delete' then null else (
        select coalesce(jsonb_object_agg(sync.snake_case(p.key), p.value), '{}')
          from jsonb_each(coalesce(i.item -> 'payload', '{}')) p
         -- the app's local bookkeeping columns never reach the server
         where sync.snake_case(p.key) not in ('is_pending_sync', 'last_sync_at', 'synced_at', 'sync_status', 'retry_count')
      ) end,
      'legacy_item_id', i.item -> 'id'
    ) order by i.ord), '[]')
    from jsonb_array_elements(p_items) with ordinality i (item, ord)
$$;

comment on function sync.legacy_items_to_ops(text, jsonb) is
  'Protocol 1 queue items as protocol 2 ops: table from the entity name, snake_case columns, no base version, a derived op_id.';
-- Validates a push request and returns {client_id, ops} in protocol 2 form. Request-level problems
-- raise SYRQ1 (invalid_request, details: [{path, message}]), SYPR1 or SYLM1. The rules are the
-- function's schemas' (supabase/functions/sync/schemas.ts), path for path, with their bounds from
-- sync.request_limits(): an RPC caller is refused what the function refuses, and
-- differential.test.ts holds the two doors to it. A protocol 2 body and its ops take no other keys;
-- a protocol 1 body and its items keep whatever else the old app stored beside them.
create function sync.normalize_push(p_payload jsonb) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_limits record := sync.limits();
  v_bounds record := sync.request_limits();
  v_issues jsonb := '[]';
  v_protocol jsonb := p_payload -> 'protocol';
  v_ops jsonb;
  v_list_key text;
  v_op jsonb;
  v_i integer := 0;
begin
  if jsonb_typeof(p_payload) is distinct from 'object' then
    perform sync.request_error('invalid_request', 'the body must be a JSON object',
      jsonb_build_array(jsonb_build_object('path', '[]'::jsonb, 'message', 'expected object')));
  end if;
  if v_protocol is null or jsonb_typeof(v_protocol) <> 'number' then
    perform sync.request_error('invalid_request', 'protocol is required',
      jsonb_build_array(jsonb_build_object('path', '["protocol"]'::jsonb, 'message', 'expected 1 or 2')));
  end if;
  if v_protocol not in ('1', '2') then
    perform sync.request_error('unsupported_protocol', format('protocol %s is not served; supported: [1,2]', v_protocol));
  end if;
  if v_protocol = '2' then
    v_issues := v_issues || coalesce(sync.unrecognized_keys(p_payload, array['protocol', 'client_id', 'ops'], '[]'), '[]');
  end if;
  if not sync.is_uuid(p_payload -> 'client_id') then
    v_issues := v_issues || jsonb_build_object('path', '["client_id"]'::jsonb, 'message', 'expected a uuid');
  end if;

  v_list_key := case when v_protocol = '1' then 'items' else 'ops' end;
  if jsonb_typeof(p_payload -> v_list_key) is distinct from 'array' then
    v_issues := v_issues || jsonb_build_object('path', jsonb_build_array(v_list_key), 'message', 'expected an array');
    perform sync.request_error('invalid_request', 'the push request is not valid', v_issues);
  end if;
  if jsonb_array_length(p_payload -> v_list_key) > v_limits.max_push_ops then
    perform sync.request_error('too_large', format('a push carries at most %s ops; this one has %s',
      v_limits.max_push_ops, jsonb_array_length(p_payload -> v_list_key)));
  end if;

  if v_protocol = '1' then
    for v_op in select value from jsonb_array_elements(p_payload -> 'items') loop
      if jsonb_typeof(v_op) <> 'object' then
        v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i), 'message', 'expected object');
      else
        -- A row id of the app's queue or a non-empty string: the op id is derived from it, so a
        -- missing one is reported too.
        if not (sync.is_whole_number(v_op -> 'id', -v_bounds.whole_number_max, v_bounds.whole_number_max)
                or (jsonb_typeof(v_op -> 'id') is not distinct from 'string' and v_op ->> 'id' <> '')) then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'id'),
            'message', format('expected the queue item id: a whole number (at most %s either way) or a non-empty string',
                              v_bounds.whole_number_max));
        end if;
        if jsonb_typeof(v_op -> 'entityType') is distinct from 'string' then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'entityType'), 'message', 'expected a string');
        elsif octet_length(v_op ->> 'entityType') not between 1 and v_bounds.name_bytes then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'entityType'),
            'message', format('expected an entity name of 1 to %s bytes', v_bounds.name_bytes));
        end if;
        if not coalesce(sync.is_uuid(v_op -> 'entityId'), false) then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'entityId'), 'message', 'expected a uuid');
        end if;
        if coalesce(v_op ->> 'operation', '') not in ('create', 'update', 'delete') then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'operation'), 'message', 'expected create, update or delete');
        end if;
        -- A payload, when there is one, is an object whatever the operation (a delete ignores it);
        -- a create or update needs one. An unknown operation is reported as that alone.
        if coalesce(jsonb_typeof(v_op -> 'payload'), 'null') not in ('null', 'object') then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'payload'), 'message', 'expected an object');
        elsif v_op ->> 'operation' in ('create', 'update') and jsonb_typeof(v_op -> 'payload') is distinct from 'object' then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'payload'),
            'message', format('required for %s', v_op ->> 'operation'));
        end if;
        if jsonb_typeof(v_op -> 'createdAt') is distinct from 'string' or v_op ->> 'createdAt' = '' then
          v_issues := v_issues || jsonb_build_object('path', jsonb_build_array('items', v_i, 'createdAt'), 'message', 'expected a non-empty string');
        end if;
      end if;
      v_i := v_i + 1;
    end loop;
    if jsonb_array_length(v_issues) > 0 then
      perform sync.request_error('invalid_request', 'the push request is not valid', v_issues);
    end if;
    v_ops := sync.legacy_items_to_ops(p_payload ->> 'client_id', p_payload -> 'items');
    return jsonb_build_object('protocol', 1, 'client_id', p_payload -> 'client_id', 'ops', v_ops);
  end if;

  -- One pass over the ops, each giving the array of its issues (a loop appending to a jsonb array
  -- was the slowest part of a push). The issues of the ops are listed in order, up to the op at
  -- which there are 50 of them.
  with op as (
    -- each uuid test once: it is most of a valid op's cost
    select (e.n - 1)::integer as i, e.o, jsonb_typeof(e.o) = 'object' as is_object,
           sync.is_uuid(e.o -> 'op_id') as op_id_ok, sync.is_uuid(e.o -> 'id') as id_ok
      from jsonb_array_elements(p_payload -> 'ops') with ordinality e (o, n)
  ),
  first_use as (
    -- where each valid op_id first appears, for the duplicate check
    select op.i, min(op.i) over (partition by lower(op.o ->> 'op_id')) as first_i
      from op where op.is_object and op.op_id_ok
  ),
  checked as (
    select op.i, array_remove(case when not op.is_object then
      array[jsonb_build_object('path', jsonb_build_array('ops', op.i), 'message', 'expected object')]
    else array[
      case when not op.op_id_ok then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'op_id'), 'message', 'expected a uuid')
        when f.first_i < op.i then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'op_id'),
                             'message', format('duplicate op_id (also ops[%s])', f.first_i)) end,
      -- a name no table can have (PostgreSQL's identifiers hold 63 bytes) is the request's fault;
      -- a table that could exist but is not syncable is the op's (rejected / invalid)
      case when jsonb_typeof(op.o -> 'table') is distinct from 'string' then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'table'), 'message', 'expected a string')
        when octet_length(op.o ->> 'table') not between 1 and v_bounds.name_bytes then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'table'),
                             'message', format('expected a table name of 1 to %s bytes', v_bounds.name_bytes)) end,
      case when coalesce(op.o ->> 'op', '') not in ('insert', 'update', 'delete') then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'op'), 'message', 'expected insert, update or delete') end,
      case when not op.id_ok then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'id'), 'message', 'expected a uuid') end,
      case when coalesce(jsonb_typeof(op.o -> 'base_version'), 'null') <> 'null'
             and not sync.is_whole_number(op.o -> 'base_version', 0, v_bounds.whole_number_max) then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'base_version'),
                             'message', format('expected a whole number from 0 to %s', v_bounds.whole_number_max))
        when op.o ->> 'op' = 'delete' and coalesce(jsonb_typeof(op.o -> 'base_version'), 'null') = 'null' then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'base_version'), 'message', 'required for delete') end,
      -- data, when there is any, is an object whatever the op (a delete ignores it)
      case when coalesce(jsonb_typeof(op.o -> 'data'), 'null') not in ('null', 'object') then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'data'), 'message', 'expected an object')
        when op.o ->> 'op' in ('insert', 'update') and jsonb_typeof(op.o -> 'data') is distinct from 'object' then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'data'), 'message', format('required for %s', op.o ->> 'op')) end,
      case when coalesce(jsonb_typeof(op.o -> 'base'), 'null') not in ('null', 'object') then
          jsonb_build_object('path', jsonb_build_array('ops', op.i, 'base'), 'message', 'expected an object') end,
      -- Unknown keys are refused as the Edge Function refuses them: a misspelt base_version would
      -- otherwise turn a checked update into a silent last-write-wins.
      case when op.o - array['op_id', 'table', 'op', 'id', 'base_version', 'data', 'base'] <> '{}' then
          sync.unrecognized_keys(op.o, array['op_id', 'table', 'op', 'id', 'base_version', 'data', 'base'],
                                 jsonb_build_array('ops', op.i)) end
    ] end, null) as issues
      from op
      left join first_use f on f.i = op.i
  ),
  per_op as (
    select c.i, c.issues,
           sum(cardinality(c.issues)) over (order by c.i) - cardinality(c.issues) as before
      from checked c where cardinality(c.issues) > 0
  )
  select v_issues || coalesce(jsonb_agg(x.issue order by p.i, x.k), '[]') into v_issues
    from per_op p, unnest(p.issues) with ordinality x (issue, k)
   where p.before + jsonb_array_length(v_issues) < 50;
  if jsonb_array_length(v_issues) > 0 then
    perform sync.request_error('invalid_request', 'the push request is not valid', v_issues);
  end if;
  -- The request as it came: building a new object around its ops would copy every op once more.
  return p_payload;
end
$$;

comment on function sync.normalize_push(jsonb) is
  'Validates a push request (protocol 1 or 2) and returns it in protocol 2 form; raises SYRQ1, SYPR1 or SYLM1 with the paths at fault.';
grant execute on function sync.is_uuid(jsonb), sync.snake_case(text), sync.legacy_items_to_ops(text, jsonb),
  sync.normalize_push(jsonb) to authenticated, service_role;
-- Where the Edge Function found a number the database cannot hold, marked on the op that holds it.
-- Such a number would fail the cast of the whole request text, on every retry: the function sends
-- it on as its text and names its place apart from the request (sync.apply_push's second argument),
-- as paths within the request: ["ops", 3, "data", "potential_value"], or for a legacy item
-- ["items", 3, "payload", "potentialValue"]. Each op so named carries the paths within it as
-- unstorable_numbers, and sync.refused_value refuses that op alone, naming the field. The key is the
-- engine's own: normalize_push refuses it in a client's op, and a legacy item's is not copied, so no
-- client has an op refused this way but through the function's finding.
create function sync.mark_unstorable_numbers(p_request jsonb, p_paths jsonb) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_list text := case when p_request ->> 'protocol' = '1' then 'items' else 'ops' end;
  v_own text[] := case when p_request ->> 'protocol' = '1' then array['payload'] else array['data', 'base'] end;
  v_marks jsonb;
begin
  if p_paths = '[]' then
    return p_request;
  end if;
  -- The function's own argument: a path that names no value of an op is its mistake, not the
  -- client's, and fails as one (XX000, the function's 500 internal).
  if jsonb_typeof(p_paths) is distinct from 'array' or exists (
       select 1 from jsonb_array_elements(p_paths) p
        where case when jsonb_typeof(p) <> 'array' then true
                   else jsonb_array_length(p) < 4 or p ->> 0 is distinct from v_list
                        or not sync.is_whole_number(p -> 1, 0, jsonb_array_length(p_request -> 'ops') - 1)
                        or p ->> 2 is null or not (p ->> 2 = any (v_own)) end) then
    raise exception using errcode = 'XX000',
      message = format('sync.mark_unstorable_numbers: %s does not name values of the ops of a protocol %s request',
                       left(p_paths::text, 200), p_request ->> 'protocol');
  end if;
  select jsonb_object_agg(x.i, x.paths) into v_marks
    from (select (p.path ->> 1)::numeric::integer as i, jsonb_agg((p.path - 0) - 0 order by p.n) as paths
            from jsonb_array_elements(p_paths) with ordinality p (path, n)
           group by 1) x;
  return jsonb_set(p_request, '{ops}', (
    select jsonb_agg(case when v_marks ? (e.n - 1)::text
                          then e.o || jsonb_build_object('unstorable_numbers', v_marks -> (e.n - 1)::text)
                          else e.o end order by e.n)
      from jsonb_array_elements(p_request -> 'ops') with ordinality e (o, n)));
end
$$;

comment on function sync.mark_unstorable_numbers(jsonb, jsonb) is
  'A normalized push request with each op that holds a number the database cannot hold (paths within the request, found by the Edge Function) marked: unstorable_numbers, the paths within the op. Raises XX000 for paths that name no value of an op.';

