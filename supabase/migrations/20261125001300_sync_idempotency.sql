-- Idempotency of pushes: an op is identified by (user, op_id). Its claim is written in the same
-- transaction as its effect, so a replay (a lost response, a retry, two copies racing) returns the
-- original outcome and applies nothing twice.

create table sync.applied_ops (
  user_id uuid not null,
  op_id uuid not null,
  client_id uuid,
  table_name text,
  row_id uuid,
  outcome jsonb,
  applied_at timestamptz not null default clock_timestamp(),
  primary key (user_id, op_id)
);
comment on table sync.applied_ops is
  'Outcomes of processed push ops by (user_id, op_id). Retryable failures are not kept, so a retry tries again.';
create index applied_ops_applied_at_idx on sync.applied_ops (applied_at);
revoke all on sync.applied_ops from public, anon, authenticated, service_role;

-- Claims the caller's ops. The ops already claimed (by an earlier push, or by a concurrent copy of
-- this one, whose commit this waits for on the primary key) come back with their outcome; the rest
-- are now this transaction's to process. Sorted by op_id so two racing copies lock in one order.
create function sync.claim_ops(p_client_id uuid, p_ops jsonb)
returns table (op_id uuid, claimed boolean, outcome jsonb)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_claimed bigint;
begin
  return query
  with wanted as (
    select (o ->> 'op_id')::uuid as op_id, o ->> 'table' as table_name, (o ->> 'id')::uuid as row_id
      from jsonb_array_elements(p_ops) o
  ),
  claimed as (
    insert into sync.applied_ops as a (user_id, op_id, client_id, table_name, row_id)
    select v_uid, w.op_id, p_client_id, w.table_name, w.row_id from wanted w order by w.op_id
    on conflict on constraint applied_ops_pkey do nothing
    returning a.op_id
  )
  select w.op_id, true, null::jsonb from wanted w where w.op_id in (select c.op_id from claimed c);

  -- The claims that others hold, only when there are any (the common push claims all its ops).
  get diagnostics v_claimed = row_count;
  if v_claimed < jsonb_array_length(p_ops) then
    return query
    select a.op_id, false, a.outcome
      from sync.applied_ops a
     where a.user_id = v_uid
       and a.op_id in (select (o ->> 'op_id')::uuid from jsonb_array_elements(p_ops) o)
       and a.outcome is not null;
  end if;
end
$$;

-- Records the outcomes of this transaction's claims; a retryable failure gives its claim back.
create function sync.record_outcomes(p_outcomes jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_kept jsonb;
  v_kept_ids uuid[];
  v_failed_ids uuid[];
begin
  -- Looked up by key, not joined: the planner cannot know how many ops a batch has, and a nested
  -- loop over the outcomes made this quadratic in the batch size.
  select coalesce(jsonb_object_agg(lower(x ->> 'op_id'), x) filter (where x ->> 'status' <> 'failed'), '{}'),
         coalesce(array_agg((x ->> 'op_id')::uuid) filter (where x ->> 'status' <> 'failed'), '{}'),
         coalesce(array_agg((x ->> 'op_id')::uuid) filter (where x ->> 'status' = 'failed'), '{}')
    into v_kept, v_kept_ids, v_failed_ids
    from jsonb_array_elements(p_outcomes) x;
  update sync.applied_ops a set outcome = v_kept -> a.op_id::text
   where a.user_id = v_uid and a.op_id = any (v_kept_ids) and a.outcome is null;
  delete from sync.applied_ops a
   where a.user_id = v_uid and a.op_id = any (v_failed_ids) and a.outcome is null;
end
$$;

grant execute on function sync.claim_ops(uuid, jsonb), sync.record_outcomes(jsonb) to authenticated, service_role;
