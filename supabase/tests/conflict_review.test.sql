-- The people who review conflicts: views with both sides per field, counts, a row's history, and
-- resolve_conflict() with its choices, under each role.
begin;
select plan(27);

-- Two pending money conflicts on pipelines of rm1.jakarta's seed customer 4, and one resolved-by-rule.
insert into public.pipelines (id, customer_id, title, potential_value, stage)
values ('c2000000-0000-4000-8000-000000000001', '00000000-0000-4000-8100-000000000004', 'Review A', 100, 'prospect'),
       ('c2000000-0000-4000-8000-000000000002', '00000000-0000-4000-8100-000000000004', 'Review B', 100, 'prospect');
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set potential_value = 150, version = -1 where id in ('c2000000-0000-4000-8000-000000000001', 'c2000000-0000-4000-8000-000000000002');
select tests.authenticate_as('rm1.jakarta@crm.test');
select set_config('sync.op_base', '{"potential_value": 100}', true);
update public.pipelines set potential_value = 175, notes = 'bigger fleet', version = 1
 where id in ('c2000000-0000-4000-8000-000000000001', 'c2000000-0000-4000-8000-000000000002');
select set_config('sync.op_base', '', true);

select tests.clear_authentication();
create temp table pending as
  select id, row_id from sync.conflicts where row_id in ('c2000000-0000-4000-8000-000000000001', 'c2000000-0000-4000-8000-000000000002');
grant select on pending to authenticated;

-- The open-conflicts view puts the three values side by side.
select tests.authenticate_as('admin@crm.test');
select results_eq(
  $$ select field, server_value, client_value, base_value from sync.open_conflicts
      where row_id = 'c2000000-0000-4000-8000-000000000001' $$,
  $$ values ('potential_value'::text, '150'::jsonb, '175'::jsonb, '100'::jsonb) $$,
  'open_conflicts: server, client and base value of each pending field'
);
select is((select count(*)::int from sync.open_conflicts where row_id in (select row_id from pending)), 2,
          'admins see every open conflict');
select tests.authenticate_as('bm.jakarta@crm.test');
select is((select count(*)::int from sync.open_conflicts where row_id in (select row_id from pending)), 2,
          'the branch''s manager sees them');
select tests.authenticate_as('bm.surabaya@crm.test');
select is_empty($$ select 1 from sync.open_conflicts where row_id in (select row_id from pending) $$,
                'another branch''s manager does not');
select tests.authenticate_as('rm2.jakarta@crm.test');
select is_empty($$ select 1 from sync.open_conflicts where row_id in (select row_id from pending) $$,
                'an rm not involved does not');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is((select count(*)::int from sync.open_conflicts where row_id in (select row_id from pending)), 2,
          'the rm whose edit is waiting sees them');

select tests.authenticate_as('admin@crm.test');
select is((select sum(conflicts)::int from sync.conflict_counts
            where table_name = 'pipelines' and resolution = 'manual_pending' and user_id = tests.user_id('rm1.jakarta@crm.test')),
          (select count(*)::int from sync.conflict_history
            where table_name = 'pipelines' and resolution = 'manual_pending' and user_id = tests.user_id('rm1.jakarta@crm.test')),
          'conflict_counts counts by table, day, user and resolution');
select is((select count(*)::int from sync.conflict_history where table_name = 'pipelines' and row_id = 'c2000000-0000-4000-8000-000000000001'), 1,
          'conflict_history lists a row''s conflicts');

-- resolve_conflict
select tests.clear_authentication();
update auth.users set banned_until = now() + interval '1 day' where id = tests.user_id('bm.jakarta@crm.test');
select tests.authenticate_as('bm.jakarta@crm.test');
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'server'),
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'a banned branch manager cannot resolve a conflict');
select tests.clear_authentication();
update auth.users set banned_until = null where id = tests.user_id('bm.jakarta@crm.test');
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'client'),
  '42501', 'your role may not resolve conflicts (sync.roles.resolves_conflicts)', 'an rm cannot resolve a conflict');

select tests.authenticate_as('bm.jakarta@crm.test');
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'maybe'),
  '22023', 'choice must be server, client or custom, not maybe', 'an unknown choice is refused');
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'custom'),
  '22023', 'a custom resolution needs data: an object of column values', 'custom needs data');
select throws_ok(
  $$ select public.resolve_conflict('c2000000-0000-4000-8000-0000000000ff', 'server') $$,
  'P0002', 'conflict c2000000-0000-4000-8000-0000000000ff does not exist or is not visible to you', 'an unknown conflict');

select is(
  public.resolve_conflict((select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'client') -> 'row' ->> 'potential_value',
  '175.00', 'client: the incoming value becomes the row''s value');
select results_eq(
  $$ select version, notes from public.pipelines where id = 'c2000000-0000-4000-8000-000000000001' $$,
  $$ values (4::bigint, 'bigger fleet'::text) $$,
  'client: as a new version through the normal triggers, keeping the merged fields');
select results_eq(
  $$ select resolution::text, resolved_by, resolution_choice from sync.conflict_history
      where conflict_id = (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001') $$,
  $$ values ('manual_resolved'::text, tests.user_id('bm.jakarta@crm.test'), 'client'::text) $$,
  'the conflict records who resolved it and how');
select isnt((select resolved_at from sync.conflict_history where conflict_id = (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001')), null,
            'and when');
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001'), 'server'),
  '55000', format('conflict %s is already resolved (manual_resolved)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000001')),
  'a conflict is resolved once');
select tests.clear_authentication();
select is(
  (select count(*)::int from sync.row_versions where table_name = 'pipelines' and row_id = 'c2000000-0000-4000-8000-000000000001'), 3,
  'the resolution is one more recorded version');
select tests.authenticate_as('bm.jakarta@crm.test');

-- A row that changed again since the conflict must be reviewed again.
update public.pipelines set title = 'Review B (renamed)' where id = 'c2000000-0000-4000-8000-000000000002';
select throws_ok(
  format('select public.resolve_conflict(%L, %L)', (select id from pending where row_id = 'c2000000-0000-4000-8000-000000000002'), 'client'),
  '40001', 'pipelines c2000000-0000-4000-8000-000000000002 changed since the conflict (version 3, now 4); review it again',
  'a stale resolution is refused and says why');

select is(
  public.resolve_conflict((select id from pending where row_id = 'c2000000-0000-4000-8000-000000000002'), 'server') -> 'conflict' ->> 'resolution_choice',
  'server', 'keeping the server value is allowed even after the row moved on (it dismisses the conflict)');

-- custom and server, on fresh conflicts.
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.pipelines set potential_value = 190, version = 1 where id = 'c2000000-0000-4000-8000-000000000002';
select tests.authenticate_as('bm.jakarta@crm.test');
update public.pipelines set stage = 'proposal' where id = 'c2000000-0000-4000-8000-000000000001';
select tests.authenticate_as('rm1.jakarta@crm.test');
update public.pipelines set stage = 'won', version = 4 where id = 'c2000000-0000-4000-8000-000000000001';
select tests.authenticate_as('admin@crm.test');
select is(
  public.resolve_conflict((select conflict_id from sync.open_conflicts where row_id = 'c2000000-0000-4000-8000-000000000002' limit 1),
                          'custom', '{"potential_value": 180}') -> 'row' ->> 'potential_value',
  '180.00', 'custom: the reviewer''s value is applied');
select is(
  public.resolve_conflict((select conflict_id from sync.open_conflicts where row_id = 'c2000000-0000-4000-8000-000000000001' limit 1),
                          'server') -> 'row' ->> 'stage',
  'proposal', 'server: the server value stays');
select is((select version from public.pipelines where id = 'c2000000-0000-4000-8000-000000000001'), 5::bigint,
          'server: no new version is needed');
select is((select count(*)::int from sync.open_conflicts where row_id in (select row_id from pending)), 0,
          'nothing is left open');

-- Retention: resolved entries age out, open ones never.
select tests.clear_authentication();
update sync.conflicts set detected_at = now() - interval '2 years', resolved_at = now() - interval '2 years'
 where row_id in (select row_id from pending);
insert into sync.conflicts (table_name, row_id, server_version, server_row, resolution, detected_at)
values ('pipelines', 'c2000000-0000-4000-8000-000000000001', 1, '{}', 'manual_pending', now() - interval '3 years');
select sync.purge_expired();
select is((select count(*)::int from sync.conflicts where row_id in (select row_id from pending) and resolution <> 'manual_pending'), 0,
          'resolved conflicts older than conflict_retention are purged');
select is((select count(*)::int from sync.conflicts where row_id = 'c2000000-0000-4000-8000-000000000001' and resolution = 'manual_pending'), 1,
          'an open conflict is never purged');

select * from finish();
rollback;
