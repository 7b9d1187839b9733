-- Values that reach the conflict audit without being written are held to the table's rules all the
-- same: a stale edit the server keeps out (a field waiting for a person, server_wins), an edit of a
-- deleted row, and the base values an edit started from are stored for a year and delivered to the
-- other user involved, so nothing the columns could not hold may get there.
begin;
select plan(9);

create temp table ids on commit drop as
  select (select p.id from public.pipelines p join public.profiles r on r.id = p.assigned_rm_id
           where r.email = 'rm1.jakarta@crm.test' and p.deleted_at is null order by p.id limit 1) as pipeline_id,
         (select c.id from public.customers c join public.profiles r on r.id = c.assigned_rm_id
           where r.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id limit 1) as customer_id,
         (select c.id from public.customers c join public.profiles r on r.id = c.assigned_rm_id
           where r.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id offset 1 limit 1) as deleted_customer_id;
grant select on ids to authenticated;
create temp view audit as select * from sync.conflicts;
grant select on audit to authenticated;
create temp table base on commit drop as
  select (select version from public.pipelines where id = (select pipeline_id from ids)) as pipeline_version,
         (select version from public.customers where id = (select customer_id from ids)) as customer_version;
grant select on base to authenticated;

-- The branch manager moves the stage on and edits the customer; then deletes the other customer.
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set stage = 'proposal', version = -(select pipeline_version from base) where id = (select pipeline_id from ids);
update public.customers set city = 'Depok', version = -(select customer_version from base) where id = (select customer_id from ids);
delete from public.customers where id = (select deleted_customer_id from ids);

select tests.authenticate_as('rm1.jakarta@crm.test');
create temp table answers (name text, answer jsonb) on commit drop;
grant all on answers to authenticated;
insert into answers
select 'manual stage', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0a000000-0000-4000-8000-000000000001', 'update', 'pipelines', (select pipeline_id from ids),
           (select pipeline_version from base), jsonb_build_object('stage', repeat('z', 100000)))))) -> 'results' -> 0;
insert into answers
select 'junk base', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0a000000-0000-4000-8000-000000000002', 'update', 'customers', (select customer_id from ids),
           (select customer_version from base), '{"phone": "+62 21 555 9001"}')
  || jsonb_build_object('base', jsonb_build_object('phone', '+62 21 555 0000', 'junk', repeat('j', 100000)))))) -> 'results' -> 0;
insert into answers
select 'long base value', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0a000000-0000-4000-8000-000000000003', 'update', 'customers', (select customer_id from ids),
           (select customer_version from base), '{"email": "a@b.test"}')
  || jsonb_build_object('base', jsonb_build_object('email', repeat('e', 100000) || '@x.test'))))) -> 'results' -> 0;
insert into answers
select 'deleted row', public.sync_push(tests.push_body(jsonb_build_array(
  tests.op('0a000000-0000-4000-8000-000000000004', 'update', 'customers', (select deleted_customer_id from ids), 1,
           jsonb_build_object('email', repeat('e', 100000) || '@x.test'))))) -> 'results' -> 0;

select is(
  (select answer ->> 'status' || ' ' || (answer ->> 'code') || ' ' || (answer ->> 'field') from answers where name = 'manual stage'),
  'rejected invalid stage',
  'a stale edit whose value the column could not hold is invalid, though the server would have kept it out'
);
select is(
  (select answer ->> 'status' || ' ' || (answer ->> 'code') || ' ' || (answer ->> 'field') from answers where name = 'deleted row'),
  'rejected invalid email',
  'so is an edit of a deleted row with such a value'
);
select is(
  (select answer ->> 'status' || ' ' || (answer ->> 'code') || ' ' || (answer ->> 'field') from answers where name = 'long base value'),
  'rejected invalid email',
  'and a base value the column could not hold'
);
select is(
  (select answer ->> 'status' from answers where name = 'junk base'),
  'applied',
  'base values of columns the op does not change are no reason to refuse it'
);
select is(
  (select base_data from audit where op_id = '0a000000-0000-4000-8000-000000000002'),
  '{"phone": "+62 21 555 0000"}'::jsonb,
  'and they are not recorded: the audit keeps the base of the columns the edit changed'
);
select is(
  (select count(*)::int from audit where op_id in ('0a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000003',
                                                   '0a000000-0000-4000-8000-000000000004')),
  0,
  'nothing of the refused ops is in the audit'
);

-- The same rules for a direct write.
select throws_ok(
  format($$ update public.pipelines set stage = 'nowhere', version = -%s where id = %L $$,
         (select pipeline_version from base), (select pipeline_id from ids)),
  '23514', 'new row for relation "pipelines" violates check constraint "pipelines_stage_check"',
  'a direct stale edit with a value the column could not hold is refused, though the server keeps its own'
);
select set_config('sync.op_base', jsonb_build_object('notes', repeat('n', 20000))::text, true);
select throws_ok(
  format($$ update public.customers set notes = 'mine', version = -%s where id = %L $$,
         (select customer_version from base), (select customer_id from ids)),
  '22023', 'customers.notes: the base value breaks the column''s rule customers_notes_check',
  'a direct write''s stated base value is held to the column''s rules'
);
select set_config('sync.op_base', jsonb_build_object('notes', 'before', 'junk', repeat('j', 100000))::text, true);
update public.customers set notes = 'mine again', version = -(select customer_version from base) where id = (select customer_id from ids);
select set_config('sync.op_base', '', true);
select is(
  (select base_data from audit where row_id = (select customer_id from ids) and client_data ->> 'notes' = 'mine again'),
  '{"notes": "before"}'::jsonb,
  'and only the base of the columns it changes is recorded'
);

select * from finish();
rollback;
