-- Ownership follows the customer (issue 17). A pipeline's assigned_rm_id and branch_id are its
-- customer's, derived on every write path rather than validated: a pipeline a bm created offline
-- before the customer was reassigned still applies, and takes the customer's current owner. When a
-- customer is reassigned or moved, its live pipelines follow in the same transaction. An activity
-- that names a pipeline belongs to that pipeline's customer, and follows a pipeline moved to
-- another customer.
--
-- How devices learn the derived values: as ordinary edits. Each pipeline (or activity) whose value
-- the derivation changes gets a new version in the writing transaction, so the next delta pull
-- delivers it, with the customer's reassignment, from one consistent snapshot. Devices apply rows
-- by version and never take a row whose version they already hold, so a value changed without a
-- new version would never reach a device that holds the row. The derived writes state the version
-- they change (version = -N), so they are no conflict, and no overwrite of anyone's edit is audited.

-- The derivation, after the field rules (which judge what the client sent) and before
-- sync_20_stamp_row (which versions the row with the derived values in it). It reads the parent as
-- the writer sees it: a parent the writer cannot see is row-level security's to refuse.
create function sync.crm_pipeline_ownership() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_owner uuid;
  v_branch uuid;
begin
  select c.assigned_rm_id, c.branch_id into v_owner, v_branch from public.customers c where c.id = new.customer_id;
  if found then
    new.assigned_rm_id := v_owner;
    new.branch_id := v_branch;
  end if;
  return new;
end
$$;
comment on function sync.crm_pipeline_ownership() is
  'BEFORE INSERT/UPDATE on pipelines, after the field rules: assigned_rm_id and branch_id are the customer''s, whatever the writer sent.';
revoke all on function sync.crm_pipeline_ownership() from public;

create function sync.crm_activity_customer() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_customer uuid;
begin
  if new.pipeline_id is not null then
    select p.customer_id into v_customer from public.pipelines p where p.id = new.pipeline_id;
    if found then
      new.customer_id := v_customer;
    end if;
  end if;
  return new;
end
$$;
comment on function sync.crm_activity_customer() is
  'BEFORE INSERT/UPDATE on activities, after the field rules: an activity that names a pipeline belongs to the pipeline''s customer.';
revoke all on function sync.crm_activity_customer() from public;

-- A customer reassigned or moved takes its live pipelines with it; a pipeline moved to another
-- customer takes its activities. As the writer, through the children's own triggers: the field
-- rules, the derivation above and the versioning. Tombstones keep the values they were deleted with.
create function sync.crm_follow_customer() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update public.pipelines p
     set assigned_rm_id = new.assigned_rm_id, branch_id = new.branch_id, version = -p.version
   where p.customer_id = new.id and p.deleted_at is null
     and (p.assigned_rm_id, p.branch_id) is distinct from (new.assigned_rm_id, new.branch_id);
  return null;
end
$$;
comment on function sync.crm_follow_customer() is
  'AFTER UPDATE of a customer''s assigned_rm_id or branch_id: its live pipelines follow, each as a new version.';
revoke all on function sync.crm_follow_customer() from public;

create function sync.crm_follow_pipeline() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update public.activities a
     set customer_id = new.customer_id, version = -a.version
   where a.pipeline_id = new.id and a.deleted_at is null and a.customer_id is distinct from new.customer_id;
  return null;
end
$$;
comment on function sync.crm_follow_pipeline() is
  'AFTER UPDATE of a pipeline''s customer_id: the live activities about it move to that customer, each as a new version.';
revoke all on function sync.crm_follow_pipeline() from public;

create trigger sync_15_crm_ownership before insert or update on public.pipelines
  for each row execute function sync.crm_pipeline_ownership();
create trigger sync_15_crm_customer before insert or update on public.activities
  for each row execute function sync.crm_activity_customer();
create trigger sync_35_crm_follow_customer after update on public.customers
  for each row when (old.assigned_rm_id is distinct from new.assigned_rm_id or old.branch_id is distinct from new.branch_id)
  execute function sync.crm_follow_customer();
create trigger sync_35_crm_follow_pipeline after update on public.pipelines
  for each row when (old.customer_id is distinct from new.customer_id)
  execute function sync.crm_follow_pipeline();

-- The rows written before this rule, brought to it: as the owner, with no user behind the write, so
-- no overwrite is audited, each at the version it has (no stale edit either). Returns how many rows
-- it changed; run again, it changes none.
create function sync.crm_backfill_ownership() returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_pipelines integer;
  v_activities integer;
begin
  update public.pipelines p
     set assigned_rm_id = c.assigned_rm_id, branch_id = c.branch_id, version = -p.version
    from public.customers c
   where c.id = p.customer_id and p.deleted_at is null
     and (p.assigned_rm_id, p.branch_id) is distinct from (c.assigned_rm_id, c.branch_id);
  get diagnostics v_pipelines = row_count;
  update public.activities a
     set customer_id = p.customer_id, version = -a.version
    from public.pipelines p
   where p.id = a.pipeline_id and a.deleted_at is null and a.customer_id is distinct from p.customer_id;
  get diagnostics v_activities = row_count;
  return v_pipelines + v_activities;
end
$$;
comment on function sync.crm_backfill_ownership() is
  'Brings live pipelines to their customer''s owner and branch and activities to their pipeline''s customer, each changed row as a new version; the count of rows changed. Run by the migration as the owner.';
revoke all on function sync.crm_backfill_ownership() from public;

select sync.crm_backfill_ownership();
