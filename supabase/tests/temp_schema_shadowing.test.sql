-- A client session may create objects in its own temporary schema (TEMP is PostgreSQL's default for
-- every role), and with `search_path = ''` PostgreSQL still looks there first for type and table
-- names. A domain pg_temp.uuid whose CHECK calls the client's own function would then run that
-- function as the owner of any security definer function that names the type uuid: the table owner.
-- So every function of the engine searches pg_catalog first and pg_temp last, named explicitly.
begin;
select plan(4);

create temp table escalations (who text, via text) on commit drop;
grant insert, select on escalations to public;

select tests.authenticate_as('rm1.surabaya@crm.test');
create function pg_temp.note_who() returns boolean
language plpgsql
as $$
begin
  insert into pg_temp.escalations values (current_user, 'domain check');
  return true;
end
$$;
create domain pg_temp.uuid as pg_catalog.uuid check (pg_temp.note_who());
create domain pg_temp.jsonb as pg_catalog.jsonb check (pg_temp.note_who());
create domain pg_temp.text as pg_catalog.text check (pg_temp.note_who());

-- What a client reaches: the RLS helpers through any read, the public API, the triggers through a write.
select count(*) from public.customers;
select public.sync_pull('{"protocol": 2, "cursor": null, "limit": 1}');
select public.sync_push(jsonb_build_object('protocol', 2, 'client_id', 'c0000000-0000-4000-8000-0000000000e1',
  'ops', jsonb_build_array(jsonb_build_object('op_id', '0e000000-0000-4000-8000-0000000000e1', 'table', 'customers',
    'op', 'insert', 'id', 'e0000000-0000-4000-8000-0000000000e1', 'data', jsonb_build_object('name', 'PT Shadow')))));
update public.customers set notes = 'shadowed?' where id = 'e0000000-0000-4000-8000-0000000000e1';

drop domain pg_temp.uuid;
drop domain pg_temp.jsonb;
drop domain pg_temp.text;
select tests.clear_authentication();

select is_empty(
  $$ select who from escalations where who <> 'authenticated' $$,
  'a type a client defines in pg_temp never runs its code as another role'
);
select is(
  (select name from public.customers where id = 'e0000000-0000-4000-8000-0000000000e1'),
  'PT Shadow',
  'and the push it sat beside went through as usual'
);
select is_empty(
  $$ select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('sync', 'public') and p.prosecdef
        and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false) $$,
  'every security definer function searches pg_catalog first and pg_temp last'
);
select is_empty(
  $$ select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('sync', 'public')
        and exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')
        and not p.proconfig @> array['search_path=pg_catalog, pg_temp'] $$,
  'and so does every function of the engine that sets its path'
);

select * from finish();
rollback;
