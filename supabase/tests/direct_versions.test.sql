-- How a direct write (PostgREST, SQL) states the version it is based on, the same way the engine
-- does: `version = -N` expects version N, exactly; leaving `version` out is an explicit
-- last-write-wins, audited where it overwrites someone else's change. An upsert that copies
-- `version` from its proposed row (`version = excluded.version`) states version 1, since a new row
-- starts there: it is a stale edit of any row past version 1, which is why upserts leave it out.
begin;
select plan(6);

update sync.tables set conflict_strategy = 'server_wins' where table_name = 'customers';
create temp table target on commit drop as
  select c.id, c.version, c.name, c.branch_id from public.customers c join public.profiles p on p.id = c.assigned_rm_id
   where p.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id limit 1;
grant select on target to authenticated;
-- The audit as the owner reads it, whoever asks (a temporary view runs as the owner).
create temp view audit as select * from sync.conflicts;
grant select on audit to authenticated;
-- The branch manager edits it twice: another user's change, two versions on.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.customers set notes = 'bm 1', version = -(select version from target) where id = (select id from target);
update public.customers set notes = 'bm 2', version = -(select version + 1 from target) where id = (select id from target);
select is((select version from public.customers where id = (select id from target)), (select version + 2 from target),
          'updates stating the current version as version = -N apply');

select tests.authenticate_as('rm1.jakarta@crm.test');
update public.customers set phone = '+62 21 555 8001', version = -(select version + 2 from target) where id = (select id from target);
select is(
  (select jsonb_build_array(phone, (select count(*) from audit where row_id = (select id from target)))
     from public.customers where id = (select id from target)),
  jsonb_build_array('+62 21 555 8001', 0),
  'an update based on the current version is no conflict, even over another user''s change'
);

update public.customers set phone = '+62 21 555 8002', version = -(select version from target) where id = (select id from target);
select is(
  (select jsonb_build_array(phone, (select count(*) from audit where row_id = (select id from target) and resolution = 'server_wins'))
     from public.customers where id = (select id from target)),
  jsonb_build_array('+62 21 555 8001', 1),
  'an update stating an older version is stale: the table''s strategy decides it (server_wins keeps the row) and it is audited'
);

insert into public.customers (id, name, phone) select id, name, '+62 21 555 8003' from target
  on conflict (id) do update set phone = excluded.phone;
select is(
  (select phone from public.customers where id = (select id from target)),
  '+62 21 555 8003',
  'an upsert that leaves version out is an update of the current row'
);
select is(
  (select count(*)::int from audit where row_id = (select id from target) and resolution = 'server_wins'),
  1,
  'and, over the caller''s own last write, no conflict'
);

insert into public.customers (id, name, phone) select id, name, '+62 21 555 8004' from target
  on conflict (id) do update set phone = excluded.phone, version = excluded.version;
select is(
  (select jsonb_build_array(phone, (select count(*) from audit where row_id = (select id from target) and base_version = 1 and client_data ->> 'phone' = '+62 21 555 8004'))
     from public.customers where id = (select id from target)),
  jsonb_build_array('+62 21 555 8003', 1),
  'an upsert that sets version = excluded.version states version 1: a stale edit of a row past it'
);

select * from finish();
rollback;
