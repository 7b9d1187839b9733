-- Idempotency of pushes: an op is identified by (user, op_id). Its outcome is written in the same
-- transaction as its effect, so a replay (a lost response, a retry, two copies racing) returns the
-- original outcome and applies nothing twice. A digest of the op is kept with it: an op_id sent
-- again with other content is not a replay but another op under a used name (a client bug, or two
-- legacy queue items whose derived op ids meet). Answered as a duplicate, its edit was reported as
-- done and lost; it is `rejected` / `op_id_reused`, and applies nothing.

create table sync.applied_ops (
  user_id uuid not null,
  op_id uuid not null,
  client_id uuid,
  table_name text,
  row_id uuid,
  outcome jsonb not null,
  -- sync.op_digest of the op. Null for an outcome recorded before digests were kept: such an
  -- op_id matches whatever is sent under it, as it did then.
  op_digest bigint,
  applied_at timestamptz not null default clock_timestamp(),
  primary key (user_id, op_id)
);
comment on table sync.applied_ops is
  'Outcomes of processed push ops by (user_id, op_id), with a digest of each op (null: recorded before digests were kept, matches any op). Retryable failures are not kept, so a retry tries again.';
create index applied_ops_applied_at_idx on sync.applied_ops (applied_at);
revoke all on sync.applied_ops from public, anon, authenticated, service_role;

-- The digest of an op: jsonb's own 64-bit hash (its hash operator class's) of the op without its
-- op_id, the name it is looked up by (compared case-insensitively). It agrees with jsonb equality,
-- so key order, white space and the spelling of a number (100, 100.0, 1e2) do not change it. It is
-- made and compared by the database only. A collision would answer a reused op_id as a duplicate,
-- as every reuse was answered before.
-- No `set search_path`, so that it is inlined: every name in it is pg_catalog's.
create function sync.op_digest(p_op jsonb) returns bigint
language sql immutable parallel safe
as $$
  select pg_catalog.jsonb_hash_extended(p_op operator(pg_catalog.-) 'op_id', 0)
$$;
comment on function sync.op_digest(jsonb) is
  'Digest of a push op''s content (its jsonb value without op_id), recorded with its outcome to tell a replay from a reused op_id.';

-- The answer to an op sent under an op_id already used for another op. Not retryable: the same op
-- gets the same answer; a new op needs a new op_id.
create function sync.op_id_reused(p_op jsonb) returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'op_id', p_op ->> 'op_id', 'status', 'rejected', 'code', 'op_id_reused', 'retryable', false,
    'message', format('op_id %s was already used for a different op; this op was not applied (a new op needs a new op_id)',
                      p_op ->> 'op_id'))
$$;
comment on function sync.op_id_reused(jsonb) is
  'The result of an op whose op_id was used before for a different op: rejected/op_id_reused, not retryable.';

-- Takes the caller's push lock and returns the answers to those of p_ops processed before, by
-- lower-case op_id (the others are this push's to apply): a duplicate of the recorded outcome when
-- the op is the one recorded (its digest matches, or none was recorded), else op_id_reused. One
-- push per user at a time: a copy of a push racing its original (a retry after a timeout) waits
-- here for it to commit and then finds its outcomes. Serialising one user's devices costs little,
-- and it lets the outcomes be written once, at the end, instead of a claim row first and its
-- outcome afterwards.
create function sync.claim_ops(p_ops jsonb) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_earlier jsonb;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('sync.push/' || v_uid::text, 0));
  select coalesce(jsonb_object_agg(a.op_id::text, jsonb_build_array(a.outcome, a.op_digest)), '{}') into v_earlier
    from sync.applied_ops a
   where a.user_id = v_uid
     and a.op_id = any (array(select (o ->> 'op_id')::uuid from jsonb_array_elements(p_ops) o));
  if v_earlier = '{}' then
    return v_earlier;  -- the common push: nothing of it was processed before
  end if;
  -- A replay, mostly: each op compared with what was recorded under its op_id. An op_id twice in
  -- the request (a legacy queue item sent twice) is answered here by its first copy; the engine
  -- compares the later copies with that one.
  select jsonb_object_agg(x.k, x.answer) into v_earlier
    from (select distinct on (lower(o.op ->> 'op_id')) lower(o.op ->> 'op_id') as k,
                 case when r.digest is null or r.digest = sync.op_digest(o.op)
                      then r.outcome || jsonb_build_object('status', 'duplicate', 'original_status', r.outcome ->> 'status')
                      else sync.op_id_reused(o.op) end as answer
            from jsonb_array_elements(p_ops) with ordinality o (op, ord)
            cross join lateral (select v_earlier -> lower(o.op ->> 'op_id') -> 0 as outcome,
                                       (v_earlier -> lower(o.op ->> 'op_id') ->> 1)::bigint as digest) r
           where v_earlier ? lower(o.op ->> 'op_id')
           order by lower(o.op ->> 'op_id'), o.ord) x;
  return v_earlier;
end
$$;
comment on function sync.claim_ops(jsonb) is
  'Takes the caller''s push lock (one push per user at a time) and returns the answers to the ops processed before, by op_id: duplicate (the same op) or op_id_reused (another op under a used op_id).';

-- Records the outcomes of the ops this push processed, each with its op's digest; a retryable
-- failure is not kept, so a retry tries again, and neither is the answer to an op processed before
-- (a duplicate, an op_id reused). p_ops and p_results are the push's ops and their results, in the
-- same order. The results come as an array of values, not one jsonb array: taking a jsonb array
-- apart (or building one) walks every value in it again, rows included.
create function sync.record_outcomes(p_client_id uuid, p_ops jsonb, p_results jsonb[]) returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome, op_digest)
  select (select auth.uid()), (r.result ->> 'op_id')::uuid, p_client_id, o.op ->> 'table', (o.op ->> 'id')::uuid, r.result,
         sync.op_digest(o.op)
    from unnest(p_results) with ordinality r (result, ord)
    join jsonb_array_elements(p_ops) with ordinality o (op, ord) using (ord)
   where r.result ->> 'status' not in ('failed', 'duplicate')
     and r.result ->> 'code' is distinct from 'op_id_reused'
  -- The same op twice in one request (a legacy queue item sent twice) is recorded once.
  on conflict on constraint applied_ops_pkey do nothing
$$;
comment on function sync.record_outcomes(uuid, jsonb, jsonb[]) is
  'Records the final outcomes of a push''s ops, with their digests, for idempotency (not failed ones, nor answers to ops processed before).';

grant execute on function sync.op_digest(jsonb), sync.op_id_reused(jsonb), sync.claim_ops(jsonb),
  sync.record_outcomes(uuid, jsonb, jsonb[]) to authenticated, service_role;
