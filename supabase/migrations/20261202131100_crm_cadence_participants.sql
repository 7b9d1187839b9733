-- Cadence participants: a customer enrolled in one of its branch's cadences, worked by the customer's
-- rm (the customer's assigned_rm_id: it follows the customer). A row under its customer, so whoever
-- sees the customer sees its enrolments. A second table added after release, in its own migration.

create table public.cadence_participants (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  cadence_id uuid not null references public.cadences (id),
  status text not null default 'active' check (status in ('active', 'paused', 'completed')),
  next_due_on date,
  last_touched_at timestamptz,
  notes text check (length(notes) <= 2000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.cadence_participants is
  'A customer enrolled in a cadence of its branch: its status and when it is next due.';
create index cadence_participants_customer_id_idx on public.cadence_participants (customer_id);
create index cadence_participants_cadence_id_idx on public.cadence_participants (cadence_id);
create index cadence_participants_change_xid_id_idx on public.cadence_participants (change_xid, id);
create index cadence_participants_updated_by_change_xid_idx on public.cadence_participants (updated_by, change_xid);

-- A customer follows its own branch's cadences: enrolling it in another branch's would put a rule on
-- the rm's device that the rm cannot read. Checked on every path (the function's push, the RPC, a
-- direct write), as the table's owner, since the caller may not see the other branch's cadence.
create function sync.crm_participant_in_branch() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from public.cadences d join public.customers c on c.branch_id = d.branch_id
                  where d.id = new.cadence_id and c.id = new.customer_id) then
    -- The column goes with the error, so a push's refusal names the field (sync.op_failure).
    raise exception using errcode = '23514', column = 'cadence_id', table = 'cadence_participants',
      message = format('cadence %s is not of the branch of customer %s', new.cadence_id, new.customer_id);
  end if;
  return new;
end
$$;
comment on function sync.crm_participant_in_branch() is
  'BEFORE INSERT OR UPDATE OF customer_id, cadence_id on public.cadence_participants: the cadence is of the customer''s branch.';
revoke all on function sync.crm_participant_in_branch() from public;
create trigger crm_participant_in_branch before insert or update of customer_id, cadence_id on public.cadence_participants
  for each row execute function sync.crm_participant_in_branch();

select sync.register_table('public.cadence_participants', 'cadenceParticipant', 'child', 'public.customers', 'customer_id');

insert into sync.field_rules (app_role, table_name, column_name, may_write, note) values
  ('admin', 'cadence_participants', '*', true, 'admins maintain everything'),
  ('bm', 'cadence_participants', '*', true, null),
  ('rm', 'cadence_participants', '*', true, 'the customer''s rm enrols it and records progress');

-- The rm on the road and the bm at the desk both touch enrolments: different fields both survive;
-- where both changed one, the later edit wins, and which customer and cadence stay the server's.
update sync.tables set conflict_strategy = 'field_merge', merge_fallback = 'client' where table_name = 'cadence_participants';
insert into sync.column_conflict_rules (table_name, column_name, merge_fallback, note) values
  ('cadence_participants', 'customer_id', 'server', 'an enrolment stays with its customer'),
  ('cadence_participants', 'cadence_id', 'server', 'an enrolment stays in its cadence'),
  ('cadence_participants', 'status', 'client', 'the later edit wins'),
  ('cadence_participants', 'next_due_on', 'client', 'the later edit wins'),
  ('cadence_participants', 'last_touched_at', 'client', 'the later edit wins'),
  ('cadence_participants', 'notes', 'client', 'the later edit wins');
