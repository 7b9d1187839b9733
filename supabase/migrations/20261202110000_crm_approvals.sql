-- Approvals as a workflow (issue 17). A pipeline's approval_status moves only along transitions
-- the CRM declares as data, (role, from, to), on every write path; who submitted and who decided
-- are the server's to record; once approved, the money and the stage are the branch manager's.
--
-- Why an rm could not submit: the field rules (crm_field_rules) denied rms the whole column
-- approval_status, so every value was refused, `submitted` included. The column is now the rm's
-- to write, and the transitions below say which moves each role may make.

-- Who moved the pipeline to `submitted`, so that nobody approves their own submission.
alter table public.pipelines add column submitted_by uuid references public.profiles (id);
comment on column public.pipelines.submitted_by is
  'Who submitted the pipeline for approval; set by the server (crm approval trigger), null while a draft.';
comment on column public.pipelines.approved_by is
  'Who decided the approval (approved or rejected); set by the server, null until decided.';
comment on column public.pipelines.approved_at is
  'When the approval was decided (approved or rejected); set by the server, null until decided.';
create index pipelines_submitted_by_idx on public.pipelines (submitted_by);

create table sync.crm_approval_transitions (
  app_role text not null references sync.roles (role) on delete cascade,
  from_status text not null check (from_status in ('draft', 'submitted', 'approved', 'rejected')),
  to_status text not null check (to_status in ('draft', 'submitted', 'approved', 'rejected')),
  note text check (length(note) <= 1000),
  primary key (app_role, from_status, to_status),
  constraint a_transition_changes_the_status check (from_status <> to_status)
);
comment on table sync.crm_approval_transitions is
  'The CRM''s approval workflow as data: role app_role may move a pipeline''s approval_status from from_status to to_status (a new pipeline starts from draft). Missing transitions are refused (42501, the column and the transition named). A bm reaches only the pipelines of their branch (row-level security), so a bm''s transition is one of their branch''s.';

create table sync.crm_approved_columns (
  app_role text not null references sync.roles (role) on delete cascade,
  column_name text not null check (length(column_name) <= 63),
  note text check (length(note) <= 1000),
  primary key (app_role, column_name)
);
comment on table sync.crm_approved_columns is
  'Columns of an approved pipeline that only some roles may change: every column named here is locked once approval_status is approved, for every role without a row for it.';

revoke all on sync.crm_approval_transitions, sync.crm_approved_columns from public, anon, authenticated, service_role;
-- The approval trigger runs as the writer, as the field-rule trigger does; clients may read the
-- rules as they read sync.field_rules.
grant select on sync.crm_approval_transitions, sync.crm_approved_columns to authenticated, service_role;

insert into sync.crm_approval_transitions (app_role, from_status, to_status, note) values
  ('rm', 'draft', 'submitted', 'an rm submits a pipeline for approval'),
  ('rm', 'submitted', 'draft', 'an rm withdraws a submission'),
  ('bm', 'submitted', 'approved', 'a bm approves a pipeline of their branch'),
  ('bm', 'submitted', 'rejected', 'a bm rejects a pipeline of their branch');
insert into sync.crm_approval_transitions (app_role, from_status, to_status, note)
select 'admin', f.s, t.s, 'admins may make any move'
  from unnest(array['draft', 'submitted', 'approved', 'rejected']) f (s)
 cross join unnest(array['draft', 'submitted', 'approved', 'rejected']) t (s)
 where f.s <> t.s;

insert into sync.crm_approved_columns (app_role, column_name, note)
select r.app_role, c.column_name, 'the approved figures are the branch manager''s'
  from (values ('bm'), ('admin')) r (app_role)
 cross join (values ('approved_value'), ('currency'), ('potential_value'), ('stage')) c (column_name);

-- The field rules: an rm now writes approval_status (the transitions decide the values); who
-- submitted and who decided are recorded by the server, so no role writes them. A client that
-- sends one of them is refused (42501, the column named) rather than silently overruled: a device
-- that believes it set the approver must learn that it did not.
update sync.field_rules set may_write = true, note = 'the moves are sync.crm_approval_transitions'''
 where app_role = 'rm' and table_name = 'pipelines' and column_name = 'approval_status';
update sync.field_rules set note = 'set by the server when a pipeline is decided'
 where app_role = 'rm' and table_name = 'pipelines' and column_name in ('approved_by', 'approved_at');
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
select r.app_role, 'pipelines', c.column_name, false,
       case when c.column_name = 'submitted_by' then 'set by the server when a pipeline is submitted'
            else 'set by the server when a pipeline is decided' end
  from (values ('bm'), ('admin')) r (app_role)
 cross join (values ('approved_by'), ('approved_at'), ('submitted_by')) c (column_name);
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
values ('rm', 'pipelines', 'submitted_by', false, 'set by the server when a pipeline is submitted');

-- Two devices that change an approval offline are not reconciled by a machine: like the money,
-- the approval fields wait for a person (resolve_conflict).
insert into sync.column_conflict_rules (table_name, column_name, merge_fallback, note) values
  ('pipelines', 'approval_status', 'manual', 'an approval is settled by a person'),
  ('pipelines', 'approved_by', 'manual', 'an approval is settled by a person'),
  ('pipelines', 'approved_at', 'manual', 'an approval is settled by a person'),
  ('pipelines', 'submitted_by', 'manual', 'an approval is settled by a person');

-- The workflow on every write path: the push (both engines write through these triggers), the RPC
-- and direct table writes. It runs after sync_20_stamp_row, on the row as the table's conflict
-- strategy left it: a stale edit whose approval fields wait for a person has not moved the status,
-- so no transition is asked of it. It runs as the writer: API callers are held to the workflow;
-- the owner (migrations, maintenance) and service_role are not, as with the field rules.
create function sync.crm_pipeline_approval() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role text;
  v_from text := case when tg_op = 'INSERT' then 'draft' else old.approval_status end;
  v_col text;
begin
  if current_user not in ('authenticated', 'sync_engine') then
    return new;
  end if;
  v_role := sync.current_app_role();

  if tg_op = 'UPDATE' and old.approval_status = 'approved' then
    for v_col in select distinct a.column_name from sync.crm_approved_columns a order by 1 loop
      if to_jsonb(new) -> v_col is distinct from to_jsonb(old) -> v_col
         and not exists (select 1 from sync.crm_approved_columns a where a.app_role = v_role and a.column_name = v_col) then
        raise exception using
          errcode = '42501',
          column = v_col,
          message = format('permission denied: role %s may not change pipelines.%s of an approved pipeline',
                           coalesce(v_role, 'without a role'), v_col),
          hint = 'see sync.crm_approved_columns';
      end if;
    end loop;
  end if;

  -- No move, or a value that is not a status at all (no transition names it): the column's own
  -- check refuses the latter (23514), as for any other value a column does not take.
  if new.approval_status is not distinct from v_from
     or not exists (select 1 from sync.crm_approval_transitions t
                     where new.approval_status in (t.from_status, t.to_status)) then
    return new;
  end if;
  if not exists (select 1 from sync.crm_approval_transitions t
                  where t.app_role = v_role and t.from_status = v_from and t.to_status = new.approval_status) then
    raise exception using
      errcode = '42501',
      column = 'approval_status',
      message = format('permission denied: role %s may not move pipelines.approval_status from %s to %s',
                       coalesce(v_role, 'without a role'), v_from, new.approval_status),
      hint = 'see sync.crm_approval_transitions';
  end if;
  if new.approval_status = 'approved' and tg_op = 'UPDATE' and old.submitted_by = v_uid then
    raise exception using
      errcode = '42501',
      column = 'approval_status',
      message = format('permission denied: pipelines.approval_status from %s to approved: nobody approves their own submission',
                       v_from),
      hint = 'another bm of the branch, or an admin, approves it';
  end if;

  case new.approval_status
    when 'submitted' then
      new.submitted_by := v_uid;
      new.approved_by := null;
      new.approved_at := null;
    when 'draft' then
      new.submitted_by := null;
      new.approved_by := null;
      new.approved_at := null;
    else
      new.approved_by := v_uid;
      new.approved_at := new.updated_at;
  end case;
  return new;
end
$$;
comment on function sync.crm_pipeline_approval() is
  'BEFORE INSERT/UPDATE on pipelines, after sync_20_stamp_row: holds API callers to sync.crm_approval_transitions and sync.crm_approved_columns (42501 naming the column and the move) and records submitted_by, approved_by and approved_at.';
revoke all on function sync.crm_pipeline_approval() from public;

-- BEFORE row triggers fire in name order: after the engine's sync_10_field_rules and
-- sync_20_stamp_row.
create trigger sync_25_crm_approval before insert or update on public.pipelines
  for each row execute function sync.crm_pipeline_approval();

-- The new column: the registry re-registered (the bulk writers name every column), its strategy
-- as before.
select sync.register_table('public.pipelines', 'pipeline', 'child', 'public.customers', 'customer_id',
                           p_conflict_strategy => 'field_merge');
