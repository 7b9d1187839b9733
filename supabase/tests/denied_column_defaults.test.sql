-- On insert, a column the caller's role may not write takes its default: a value, an explicit
-- null included, is a write of that column and is refused naming it. (Spelled out on a column
-- added for the test, since in the CRM's tables row-level security refuses most such nulls too.)
begin;
select plan(4);

alter table public.customers add column tier text default 'standard';
select sync.register_table('public.customers', 'customer', 'owned', p_owner_column => 'assigned_rm_id', p_branch_column => 'branch_id');
insert into sync.field_rules (app_role, table_name, column_name, may_write, note)
values ('rm', 'customers', 'tier', false, 'the branch manager sets the tier');

select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ insert into public.customers (name, tier) values ('PT Null Tier', null) $$,
  '42501', 'permission denied: role rm may not write customers.tier',
  'an rm may not insert a customer whose tier, a column it may not write, is set to null'
);
select throws_ok(
  $$ insert into public.customers (name, tier) values ('PT Gold Tier', 'gold') $$,
  '42501', 'permission denied: role rm may not write customers.tier',
  'nor to another value than its default'
);
select lives_ok(
  $$ insert into public.customers (name) values ('PT Default Tier') $$,
  'leaving it out gives it its default'
);
select lives_ok(
  $$ insert into public.customers (name, tier) values ('PT Stated Default', 'standard') $$,
  'and stating the default is no write of it'
);

select * from finish();
rollback;
