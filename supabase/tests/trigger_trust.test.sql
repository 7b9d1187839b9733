-- The triggers decide from what the database knows, never from a setting the caller's own session
-- can write: a session acting as a user that sets the names the engine once used to say "already
-- checked", or rewrites a setting in the middle of its own statement, gets the same answers as any
-- other write of that user.
begin;
select plan(6);

create temp table ids on commit drop as
  select (select p.id from public.pipelines p join public.profiles r on r.id = p.assigned_rm_id
           where r.email = 'rm1.jakarta@crm.test' and p.deleted_at is null order by p.id limit 1) as pipeline_id,
         (select c.id from public.customers c join public.profiles r on r.id = c.assigned_rm_id
           where r.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id limit 1) as customer_id;
grant select on ids to authenticated;

select tests.authenticate_as('rm1.jakarta@crm.test');

select set_config('sync.fields_checked', 'pipelines', true);
select throws_ok(
  format($$ update public.pipelines set approved_value = 1 where id = %L $$, (select pipeline_id from ids)),
  '42501', 'permission denied: role rm may not write pipelines.approved_value',
  'an rm who sets sync.fields_checked still may not set the approved value of a pipeline'
);
select set_config('sync.fields_checked', '', true);

select throws_ok(
  format($$ update public.pipelines
              set approved_value = 1,
                  notes = coalesce(notes, '') || left(set_config('sync.field_rules_pipelines', '{"role": "rm", "denied": {}}', true), 0)
            where id = %L $$, (select pipeline_id from ids)),
  '42501', 'permission denied: role rm may not write pipelines.approved_value',
  'a setting rewritten by an expression of the statement itself does not change the field rules of its rows'
);

select throws_ok(
  format($$ insert into public.pipelines (customer_id, title, approved_value, notes)
            values (%L, 'forged', 1, left(set_config('sync.field_rules_pipelines', '{"role": "rm", "denied": {}}', true), 0)) $$,
         (select customer_id from ids)),
  '42501', 'permission denied: role rm may not write pipelines.approved_value',
  'nor of the rows it inserts'
);

-- A stale update of a server_wins table: the version it states is older than the row's.
select tests.clear_authentication();
update sync.tables set conflict_strategy = 'server_wins' where table_name = 'customers';
update public.customers set phone = '+62 21 000 0001' where id = (select customer_id from ids);
create temp table before_edit on commit drop as
  select version, phone from public.customers where id = (select customer_id from ids);
grant select on before_edit to authenticated;
select tests.authenticate_as('rm1.jakarta@crm.test');

select set_config('sync.versions_checked', 'customers', true);
update public.customers set phone = '+62 21 000 0002', version = (select version - 1 from before_edit)
 where id = (select customer_id from ids);
select set_config('sync.versions_checked', '', true);
select tests.clear_authentication();

select is(
  (select phone from public.customers where id = (select customer_id from ids)),
  '+62 21 000 0001',
  'a stale update from a session that set sync.versions_checked does not overwrite the newer version'
);
select is(
  (select count(*)::int from sync.conflicts
    where row_id = (select customer_id from ids) and base_version = (select version - 1 from before_edit)),
  1,
  'and it is recorded in the conflict audit'
);

-- No function of the engine reads the flags any more.
select is_empty(
  $$ select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'sync' and (p.prosrc like '%versions_checked%' or p.prosrc like '%fields_checked%'
                                   or p.prosrc like '%''sync.field_rules_''%') $$,
  'no engine function reads the old checked flags or the per-statement rules setting'
);

select * from finish();
rollback;
