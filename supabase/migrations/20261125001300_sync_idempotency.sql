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

  return query
  select a.op_id, false, a.outcome
    from sync.applied_ops a
   where a.user_id = v_uid
     and a.op_id in (select (o ->> 'op_id')::uuid from jsonb_array_elements(p_ops) o)
     and a.outcome is not null;
end
$$;

-- Records the outcomes of this transaction's claims; a retryable failure gives its claim back.
create function sync.record_outcomes(p_outcomes jsonb) returns void
language sql
security definer
set search_path = ''
as $$
  with o as (
    select (x ->> 'op_id')::uuid as op_id, x as outcome from jsonb_array_elements(p_outcomes) x
  ),
  kept as (
    update sync.applied_ops a set outcome = o.outcome
      from o
     where a.user_id = auth.uid() and a.op_id = o.op_id and a.outcome is null
       and o.outcome ->> 'status' <> 'failed'
  )
  delete from sync.applied_ops a
   using o
   where a.user_id = auth.uid() and a.op_id = o.op_id and a.outcome is null and o.outcome ->> 'status' = 'failed'
$$;

grant execute on function sync.claim_ops(uuid, jsonb), sync.record_outcomes(jsonb) to authenticated, service_role;
