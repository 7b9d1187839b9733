-- Idempotency of pushes: an op is identified by (user, op_id). Its outcome is written in the same
-- transaction as its effect, so a replay (a lost response, a retry, two copies racing) returns the
-- original outcome and applies nothing twice.

create table sync.applied_ops (
  user_id uuid not null,
  op_id uuid not null,
  client_id uuid,
  table_name text,
  row_id uuid,
  outcome jsonb not null,
  applied_at timestamptz not null default clock_timestamp(),
  primary key (user_id, op_id)
);
comment on table sync.applied_ops is
  'Outcomes of processed push ops by (user_id, op_id). Retryable failures are not kept, so a retry tries again.';
create index applied_ops_applied_at_idx on sync.applied_ops (applied_at);
revoke all on sync.applied_ops from public, anon, authenticated, service_role;

-- Takes the caller's push lock and returns the outcomes of those of p_ops processed before, by
-- lower-case op_id (the others are this push's to apply). One push per user at a time: a copy of a
-- push racing its original (a retry after a timeout) waits here for it to commit and then finds its
-- outcomes. Serialising one user's devices costs little, and it lets the outcomes be written once,
-- at the end, instead of a claim row first and its outcome afterwards.
create function sync.claim_ops(p_ops jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_earlier jsonb;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('sync.push/' || v_uid::text, 0));
  select coalesce(jsonb_object_agg(a.op_id::text, a.outcome), '{}') into v_earlier
    from sync.applied_ops a
   where a.user_id = v_uid
     and a.op_id = any (array(select (o ->> 'op_id')::uuid from jsonb_array_elements(p_ops) o));
  return v_earlier;
end
$$;
comment on function sync.claim_ops(jsonb) is
  'Takes the caller''s push lock (one push per user at a time) and returns the outcomes of the ops processed before, by op_id.';

-- Records the outcomes of the ops this push processed; a retryable failure is not kept, so a retry
-- tries again. p_ops and p_results are the push's ops and their results, in the same order. The
-- results come as an array of values, not one jsonb array: taking a jsonb array apart (or building
-- one) walks every value in it again, rows included.
create function sync.record_outcomes(p_client_id uuid, p_ops jsonb, p_results jsonb[]) returns void
language sql
security definer
set search_path = ''
as $$
  insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome)
  select (select auth.uid()), (r.result ->> 'op_id')::uuid, p_client_id, o.op ->> 'table', (o.op ->> 'id')::uuid, r.result
    from unnest(p_results) with ordinality r (result, ord)
    join jsonb_array_elements(p_ops) with ordinality o (op, ord) using (ord)
   where r.result ->> 'status' not in ('failed', 'duplicate')
  -- The same op twice in one request (a legacy queue item sent twice) is recorded once.
  on conflict on constraint applied_ops_pkey do nothing
$$;

grant execute on function sync.claim_ops(jsonb), sync.record_outcomes(uuid, jsonb, jsonb[]) to authenticated, service_role;
