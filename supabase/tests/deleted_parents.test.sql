-- A child row is never written under a deleted parent, whatever the path: the push answers such an
-- op itself (rejected / invalid, field named); a direct write is refused the same way, since a
-- tombstone still satisfies the foreign key.
begin;
select plan(6);

create temp table parents on commit drop as
  select row_number() over (order by c.id) as n, c.id from public.customers c join public.profiles p on p.id = c.assigned_rm_id
   where p.email = 'rm1.jakarta@crm.test' and c.deleted_at is null order by c.id limit 2;
create temp table child on commit drop as
  select k.id from public.key_persons k where k.customer_id = (select id from parents where n = 2) and k.deleted_at is null limit 1;
grant select on parents, child to authenticated;

select tests.authenticate_as('rm1.jakarta@crm.test');
delete from public.customers where id = (select id from parents where n = 1);

select throws_ok(
  format($$ insert into public.key_persons (customer_id, name) values (%L, 'Late Contact') $$, (select id from parents where n = 1)),
  '23514', format('customers %s is deleted: key_persons rows cannot be added under it', (select id from parents where n = 1)),
  'a direct insert of a key person under a deleted customer is refused'
);
select throws_ok(
  format($$ update public.key_persons set customer_id = %L where id = %L $$, (select id from parents where n = 1), (select id from child)),
  '23514', format('customers %s is deleted: key_persons rows cannot be added under it', (select id from parents where n = 1)),
  'moving a key person to a deleted customer is refused'
);
select throws_ok(
  format($$ insert into public.activities (customer_id, activity_type, subject, scheduled_at)
            values (%L, 'call', 'Too late', '2027-01-01T09:00:00Z') $$, (select id from parents where n = 1)),
  '23514', format('customers %s is deleted: activities rows cannot be added under it', (select id from parents where n = 1)),
  'and so is an activity under it'
);
select lives_ok(
  format($$ update public.key_persons set notes = 'still here' where id = %L $$, (select id from child)),
  'an edit that leaves a key person under its live customer goes through'
);
select lives_ok(
  format($$ insert into public.key_persons (customer_id, name) values (%L, 'New Contact') $$, (select id from parents where n = 2)),
  'a key person under a live customer is created'
);

select is(
  (select r ->> 'code' || ' ' || (r ->> 'field')
     from jsonb_array_elements(public.sync_push(tests.push_body(jsonb_build_array(
            tests.op('0e000000-0000-4000-8000-0000000000d1', 'insert', 'key_persons', 'd0000000-0000-4000-8000-000000000001',
                     p_data => jsonb_build_object('customer_id', (select id from parents where n = 1), 'name', 'Pushed Contact')))))
          -> 'results') r),
  'invalid customer_id',
  'the push answers the same op rejected / invalid, naming the parent column'
);

select * from finish();
rollback;
