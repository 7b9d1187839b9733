-- Deleting a user from Supabase Auth does not make their staff profile vanish: it becomes a
-- tombstone that every device of the branch pulls, and the rows assigned to them stay for a branch
-- manager to reassign.
begin;
select plan(4);

select tests.create_staff('leaver.jakarta@crm.test', 'rm', 'JKT') is not null;
create temp table leaver on commit drop as
  select id, version, change_xid from public.profiles where email = 'leaver.jakarta@crm.test';
insert into public.customers (name, assigned_rm_id, branch_id)
select 'PT Left Behind', l.id, p.branch_id from leaver l join public.profiles p on p.id = l.id;

delete from auth.users where id = (select id from leaver);

select is(
  (select jsonb_build_object('deleted', deleted_at is not null, 'version', version)
     from public.profiles where id = (select id from leaver)),
  jsonb_build_object('deleted', true, 'version', (select version + 1 from leaver)),
  'the profile of a user deleted from Supabase Auth is a tombstone, one version on'
);
select is(
  (select changed_columns from sync.row_versions
    where table_name = 'profiles' and row_id = (select id from leaver) and version = (select version + 1 from leaver)),
  array['deleted_at'],
  'written through the sync triggers like any delete, so the next pull delivers it'
);
select is(
  (select count(*)::int from public.customers where name = 'PT Left Behind' and assigned_rm_id = (select id from leaver)),
  1,
  'the customers assigned to them are still there'
);
select is(
  (select count(*)::int from pg_catalog.pg_constraint c
    where c.conrelid = 'public.profiles'::regclass and c.confrelid = 'auth.users'::regclass and c.confdeltype = 'c'),
  0,
  'no foreign key cascades a user''s deletion to a hard delete of their profile'
);

select * from finish();
rollback;
