-- Referrals reach the person referred. A referral of a pipeline to another rm was a child of the
-- pipeline and so inherited the customer's scope: the rm it was made to never saw it. Now:
-- - The referred rm always reads the referrals made to them (a row grant from the referral to them,
--   kept while the referral exists, tombstone included, so its deletion reaches them too).
-- - A referral carries a summary of what it is about (the customer's name, type and city, the
--   pipeline's title and stage), set by the server and kept current. Denormalised columns rather
--   than a read grant of the customer and pipeline: an rm who has not accepted a referral learns
--   what it is about and nothing more (not the customer's phone, tax id or notes, nor the
--   pipeline's value), and the summary reaches their device with the referral row itself.
-- - The referred rm accepts or declines it; the referring side (whoever has the pipeline in scope:
--   its rm, the branch's bm) closes it; an admin may set any status. The transitions are data
--   (sync.referral_transitions) and are held on every path by a trigger.
-- - While a referral is accepted, its rm reads its pipeline, the pipeline's customer and the
--   activities on that pipeline (row grants from the referral), and logs activities on that pipeline.
--   Not the customer's other pipelines, key persons, HVC links or other activities: a grant opens
--   one row, never the rows below it. Declined, closed or deleted, the grants are taken back, and the
--   next delta pull evicts those rows from the referred rm's devices.

alter table public.pipeline_referrals
  add column customer_name text check (length(customer_name) <= 200),
  add column customer_type text check (length(customer_type) <= 20),
  add column customer_city text check (length(customer_city) <= 100),
  add column pipeline_title text check (length(pipeline_title) <= 200),
  add column pipeline_stage text check (length(pipeline_stage) <= 20);
comment on column public.pipeline_referrals.customer_name is 'Set by the server: the name of the pipeline''s customer, for the referred rm.';
comment on column public.pipeline_referrals.customer_type is 'Set by the server: the type of the pipeline''s customer, for the referred rm.';
comment on column public.pipeline_referrals.customer_city is 'Set by the server: the city of the pipeline''s customer, for the referred rm.';
comment on column public.pipeline_referrals.pipeline_title is 'Set by the server: the pipeline''s title, for the referred rm.';
comment on column public.pipeline_referrals.pipeline_stage is 'Set by the server: the pipeline''s stage, for the referred rm.';

-- The table changed shape: registering it again writes out its bulk writer with the new columns.
-- Its conflict strategy stays client_wins (the new columns follow it: the server writes them, so a
-- device's stale edit never carries them).
select sync.register_table('public.pipeline_referrals', 'pipelineReferral', 'child', 'public.pipelines', 'pipeline_id',
                           p_conflict_strategy => 'client_wins');

-- No role writes the summary: the server does.
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
select r.role, 'pipeline_referrals', c.col, false, 'a summary of the customer and pipeline, set by the server'
  from (values ('rm'), ('bm'), ('admin')) r (role),
       unnest(array['customer_name', 'customer_type', 'customer_city', 'pipeline_title', 'pipeline_stage']) c (col);

-- Who may move a referral from one status to another: the rm it is made to ('referred') or the
-- side that made it ('referring': whoever writes the pipeline's referrals in their scope). An admin
-- may make any move.
create table sync.referral_transitions (
  actor text not null check (actor in ('referred', 'referring')),
  from_status text not null check (from_status in ('open', 'accepted', 'declined', 'closed')),
  to_status text not null check (to_status in ('open', 'accepted', 'declined', 'closed')),
  primary key (actor, from_status, to_status)
);
comment on table sync.referral_transitions is
  'The CRM''s referral workflow as data: which side (referred: the rm it is made to; referring: who has the pipeline in scope) may move a referral''s status from from_status to to_status. Admins may make any move.';
insert into sync.referral_transitions (actor, from_status, to_status) values
  ('referred', 'open', 'accepted'),
  ('referred', 'open', 'declined'),
  ('referring', 'open', 'closed'),
  ('referring', 'accepted', 'closed'),
  ('referring', 'declined', 'closed');
revoke all on sync.referral_transitions from public, anon, authenticated, service_role;
grant select on sync.referral_transitions to authenticated, service_role;

-- The summary of a pipeline and its customer, whoever may see them.
create function sync.referral_summary(p_pipeline uuid, out customer_name text, out customer_type text,
                                      out customer_city text, out pipeline_title text, out pipeline_stage text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  select c.name, c.customer_type, c.city, p.title, p.stage
    into customer_name, customer_type, customer_city, pipeline_title, pipeline_stage
    from public.pipelines p join public.customers c on c.id = p.customer_id
   where p.id = p_pipeline;
end
$$;
comment on function sync.referral_summary(uuid) is
  'The customer''s name, type and city and the pipeline''s title and stage, which a referral of that pipeline carries.';

-- BEFORE INSERT/UPDATE on pipeline_referrals, after the field rules (which refuse a client's value
-- for these columns) and before the row is stamped (so a changed summary is a new version).
create function sync.referral_set_summary() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_summary record;
begin
  select * into v_summary from sync.referral_summary(new.pipeline_id);
  new.customer_name := v_summary.customer_name;
  new.customer_type := v_summary.customer_type;
  new.customer_city := v_summary.customer_city;
  new.pipeline_title := v_summary.pipeline_title;
  new.pipeline_stage := v_summary.pipeline_stage;
  return new;
end
$$;
comment on function sync.referral_set_summary() is
  'BEFORE INSERT/UPDATE on pipeline_referrals: the summary columns from the pipeline and its customer, whatever was written.';
create trigger sync_15_referral_summary before insert or update on public.pipeline_referrals
  for each row execute function sync.referral_set_summary();

-- The grants of one referral: the referral itself to its rm, always; while it is accepted and not
-- deleted, its pipeline, the pipeline's customer and the activities on the pipeline too (with
-- p_activity, an activity being inserted on it, not in the table yet).
create function sync.referral_refresh_grants(p_referral uuid, p_activity uuid default null) returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ref public.pipeline_referrals;
  v_tables text[] := '{}';
  v_ids uuid[] := '{}';
begin
  select r.* into v_ref from public.pipeline_referrals r where r.id = p_referral;
  if v_ref.id is null then
    perform sync.set_row_grants('pipeline_referrals', p_referral, null, '{}', '{}');
    return;
  end if;
  v_tables := array['pipeline_referrals'];
  v_ids := array[v_ref.id];
  if v_ref.status = 'accepted' and v_ref.deleted_at is null then
    select v_tables || array['pipelines', 'customers'], v_ids || array[p.id, p.customer_id]
      into v_tables, v_ids
      from public.pipelines p where p.id = v_ref.pipeline_id;
    select v_tables || coalesce(array_agg('activities'::text), '{}'), v_ids || coalesce(array_agg(a.id), '{}')
      into v_tables, v_ids
      from (select a.id from public.activities a where a.pipeline_id = v_ref.pipeline_id
            union select p_activity where p_activity is not null) a;
  end if;
  perform sync.set_row_grants('pipeline_referrals', v_ref.id, v_ref.referred_rm_id, v_tables, v_ids);
end
$$;
comment on function sync.referral_refresh_grants(uuid, uuid) is
  'Makes a referral''s row grants what its status says: the referral to its rm; while accepted, the pipeline, its customer and its activities too.';

-- AFTER INSERT/UPDATE on pipeline_referrals: the workflow's rules for API callers, then the grants.
-- Raised with the column at fault, so the push answers rejected / forbidden or invalid naming it.
create function sync.referral_rules() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_role text := sync.current_app_role();
  v_actor text;
  v_column text;
begin
  if sync.session_is_api() and v_role is distinct from 'admin' then
    if tg_op = 'INSERT' then
      if new.status <> 'open' then
        raise exception using errcode = '42501', column = 'status',
          message = format('pipeline_referrals.status: a referral starts open, not %s', new.status);
      end if;
      if new.referred_rm_id is null or not exists (
           select 1 from public.profiles p where p.id = new.referred_rm_id and p.role = 'rm' and p.deleted_at is null) then
        raise exception using errcode = '23514', column = 'referred_rm_id',
          message = 'pipeline_referrals.referred_rm_id: a referral is made to an active relationship manager';
      end if;
      if new.referred_rm_id = v_uid then
        raise exception using errcode = '23514', column = 'referred_rm_id',
          message = 'pipeline_referrals.referred_rm_id: a referral is made to someone else';
      end if;
    else
      if new.pipeline_id is distinct from old.pipeline_id or new.referred_rm_id is distinct from old.referred_rm_id then
        v_column := case when new.pipeline_id is distinct from old.pipeline_id then 'pipeline_id' else 'referred_rm_id' end;
        raise exception using errcode = '42501', column = v_column,
          message = format('permission denied: a referral''s %s does not change; make a new referral', v_column);
      end if;
      v_actor := case when v_uid = new.referred_rm_id then 'referred' else 'referring' end;
      if v_actor = 'referred' then
        -- The rm it is made to answers it: the status is all they change (the summary is the server's).
        select n.key into v_column
          from jsonb_each(to_jsonb(new)) n
         where n.key <> all (sync.server_columns() || array['customer_name', 'customer_type', 'customer_city',
                                                             'pipeline_title', 'pipeline_stage', 'status'])
           and n.value is distinct from to_jsonb(old) -> n.key
         order by n.key
         limit 1;
        if v_column is null and new.deleted_at is distinct from old.deleted_at then
          v_column := 'deleted_at';
        end if;
        if v_column is not null then
          raise exception using errcode = '42501', column = v_column,
            message = format('permission denied: the rm a referral is made to changes only its status, not %s', v_column);
        end if;
      end if;
      if new.status is distinct from old.status and not exists (
           select 1 from sync.referral_transitions t
            where t.actor = v_actor and t.from_status = old.status and t.to_status = new.status) then
        raise exception using errcode = '42501', column = 'status',
          message = format('permission denied: pipeline_referrals.status may not go from %s to %s by the %s side',
                           old.status, new.status, v_actor),
          hint = 'the rm a referral is made to accepts or declines it; the side that made it closes it';
      end if;
    end if;
  end if;
  if tg_op = 'INSERT' or new.status is distinct from old.status or new.deleted_at is distinct from old.deleted_at
     or new.referred_rm_id is distinct from old.referred_rm_id or new.pipeline_id is distinct from old.pipeline_id then
    perform sync.referral_refresh_grants(new.id);
  end if;
  return null;
end
$$;
comment on function sync.referral_rules() is
  'AFTER INSERT/UPDATE on pipeline_referrals: for API callers other than admins, a new referral is open and made to another active rm, its pipeline and rm do not change, the referred rm changes only the status, and status moves follow sync.referral_transitions; then the referral''s grants follow its status.';
create trigger crm_referral_rules after insert or update on public.pipeline_referrals
  for each row execute function sync.referral_rules();

-- The summary follows the customer and the pipeline, and an accepted referral's customer grant
-- follows its pipeline to another customer. Each referral is written at its current version
-- (`version = -N`, see sync.stamp_row): a server-side follow-up, not an edit that overwrites anyone.
create function sync.referral_follow_source() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name = 'customers' then
    update public.pipeline_referrals r set customer_name = new.name, version = -r.version
      from public.pipelines p
     where p.customer_id = new.id and r.pipeline_id = p.id;
  else
    update public.pipeline_referrals r set pipeline_title = new.title, version = -r.version
     where r.pipeline_id = new.id;
    if new.customer_id is distinct from old.customer_id then
      perform sync.referral_refresh_grants(r.id) from public.pipeline_referrals r where r.pipeline_id = new.id;
    end if;
  end if;
  return null;
end
$$;
comment on function sync.referral_follow_source() is
  'AFTER UPDATE on customers and pipelines: the summary of their referrals follows (and an accepted referral''s grants follow its pipeline to another customer).';
create trigger crm_referral_summary after update on public.customers
  for each row when (old.name is distinct from new.name or old.customer_type is distinct from new.customer_type
                     or old.city is distinct from new.city)
  execute function sync.referral_follow_source();
create trigger crm_referral_summary after update on public.pipelines
  for each row when (old.title is distinct from new.title or old.stage is distinct from new.stage
                     or old.customer_id is distinct from new.customer_id)
  execute function sync.referral_follow_source();

-- An activity logged on a pipeline with an accepted referral is read by the referral's rm too. The
-- grant is given before the row is written: an insert that returns its row (as the push does) must
-- be able to read it, and the rm who logs it reads it only through that grant. Moved to another
-- pipeline, it follows.
create function sync.referral_activity_grants() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    perform sync.referral_refresh_grants(r.id, new.id)
       from public.pipeline_referrals r
      where r.pipeline_id = new.pipeline_id and r.status = 'accepted' and r.deleted_at is null;
    return new;
  end if;
  perform sync.referral_refresh_grants(r.id)
     from public.pipeline_referrals r
    where r.pipeline_id in (old.pipeline_id, new.pipeline_id) and r.status = 'accepted';
  return null;
end
$$;
comment on function sync.referral_activity_grants() is
  'BEFORE INSERT and AFTER UPDATE OF pipeline_id on activities: the rms of the pipeline''s accepted referrals read the activity.';
create trigger sync_25_referral_grants before insert on public.activities
  for each row when (new.pipeline_id is not null) execute function sync.referral_activity_grants();
create trigger crm_referral_grants after update of pipeline_id on public.activities
  for each row when (old.pipeline_id is distinct from new.pipeline_id) execute function sync.referral_activity_grants();

-- The rm a referral is made to answers it (the trigger above says what they may change) and, while
-- it is accepted, logs activities on its pipeline, for its customer. The app's own policies, beside
-- the registry's ("app: ..." stays when a table is registered again).
-- The activities on a granted pipeline are granted too (sync.referral_refresh_grants: the pull learns
-- of them from the grants), so the read policy below shows the same rows. It is there for the
-- statement that logs one: the grant its trigger gives is not visible to that statement's own
-- snapshot, and an insert that returns its row (as the push does) must read it.
create policy "app: the rm a referral is made to answers it" on public.pipeline_referrals
  for update to authenticated
  using ((select sync.caller_writes()) and referred_rm_id = (select auth.uid()))
  with check ((select sync.caller_writes()) and referred_rm_id = (select auth.uid()));
create policy "app: the rm of an accepted referral reads the activities on its pipeline" on public.activities
  for select to authenticated
  using (pipeline_id = any ((select sync.granted_row_ids('pipelines'))::uuid[]));
create policy "app: the rm of an accepted referral logs activities on its pipeline" on public.activities
  for insert to authenticated
  with check ((select sync.caller_writes())
              and pipeline_id = any ((select sync.granted_row_ids('pipelines'))::uuid[])
              and exists (select 1 from public.pipelines p where p.id = activities.pipeline_id and p.customer_id = activities.customer_id));

-- The referrals made so far: their summary, and their grants. The summary is filled in without a
-- new version: every value a row held stays as it was (the referring side has the customer and the
-- pipeline themselves), and the referred rm receives each referral whole with its grant, which the
-- next delta pull sends them.
alter table public.pipeline_referrals disable trigger user;
update public.pipeline_referrals r
   set customer_name = s.customer_name, customer_type = s.customer_type, customer_city = s.customer_city,
       pipeline_title = s.pipeline_title, pipeline_stage = s.pipeline_stage
  from public.pipelines p, sync.referral_summary(p.id) s
 where p.id = r.pipeline_id;
alter table public.pipeline_referrals enable trigger user;
select sync.referral_refresh_grants(r.id) from public.pipeline_referrals r;

revoke all on function sync.referral_summary(uuid), sync.referral_set_summary(), sync.referral_refresh_grants(uuid, uuid),
  sync.referral_rules(), sync.referral_follow_source(), sync.referral_activity_grants()
  from public, anon, authenticated, service_role;
