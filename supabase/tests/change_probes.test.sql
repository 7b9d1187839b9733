-- A delta pull first asks sync.visible_changes_exist() whether anything in its window concerns the
-- caller, so an up-to-date device costs one query. The probe must never say "nothing" when the pull
-- would send something: rows the caller sees, scope changes and the caller's own writes that RLS
-- hides (both mean evictions). The window here is exactly this test's transaction: changed after a
-- snapshot in which it is running, visible in one taken after it.
begin;
select plan(19);

create function tests.probe(p_tables text[] default null) returns boolean
language sql volatile
as $$
  select sync.visible_changes_exist(
    format('%s:%s:', pg_current_xact_id(), pg_current_xact_id())::pg_snapshot,
    format('%s:%s:', pg_current_xact_id()::text::bigint + 1, pg_current_xact_id()::text::bigint + 1)::pg_snapshot,
    coalesce(p_tables, (select array_agg(table_name) || '{conflicts}' from sync.tables)))
$$;
grant execute on function tests.probe(text[]) to authenticated;

select isnt_definer('sync', 'visible_changes_exist', array['pg_snapshot', 'pg_snapshot', 'text[]'],
                    'the probe runs as the caller, under RLS');
select is(
  (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
    where a.attrelid = 'sync.scope_change_marks'::regclass and a.attnum > 0),
  array['change_xid'], 'of the scope-change log, the caller''s probe sees only when it was written');
select is(
  (select array_agg(t.table_name order by t.sync_order) from sync.tables t
    where pg_get_functiondef('sync.visible_changes_exist'::regproc) like format('%%public.%I t%%', t.table_name)),
  (select array_agg(t.table_name order by t.sync_order) from sync.tables t),
  'the probe looks at every registered table');

select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(tests.probe(), false, 'nothing written in the window: an up-to-date device is told nothing changed');
select tests.engine_acting_for('admin@crm.test');
select is(tests.probe(), false, 'nor is an admin, who sees every row');

-- rm2.jakarta's customer 1 changes: news for rm2, not for rm1.
select tests.clear_authentication();
update public.customers set notes = 'changed for rm2' where id = '00000000-0000-4000-8100-000000000001';
select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(tests.probe(), false, 'a change to a row the caller cannot see is not news to them');
select tests.engine_acting_for('rm2.jakarta@crm.test');
select is(tests.probe(), true, 'a change to a row the caller sees is');
select is(tests.probe(array['key_persons']), false, 'but only in the tables the pull asked for');

-- A row rm1 wrote that RLS hides from them (written under their name where they cannot see it):
-- the pull must evict it, so the probe must not say "nothing".
select tests.clear_authentication();
select set_config('request.jwt.claims', json_build_object('sub', tests.user_id('rm1.jakarta@crm.test'))::text, true);
update public.customers set notes = 'written by rm1' where id = '00000000-0000-4000-8100-000000000005';
select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(tests.probe(), true, 'a row the caller wrote but cannot see now is news (an eviction)');
select is((select count(*)::int from sync.own_write_marks where table_name = 'customers'), 1,
          'the own-write marks show the caller their own writes, hidden ones included');
select tests.engine_acting_for('rm2.jakarta@crm.test');
select is((select count(*)::int from sync.own_write_marks m join public.customers c on c.change_xid = m.change_xid
            where c.id = '00000000-0000-4000-8100-000000000005'), 0, 'and nobody else''s');

-- The probe asks each role its own question (the scope rule with the role written in), and finds
-- child rows from their parents': a key person of rm2.surabaya's customer is news to rm2.surabaya,
-- to Surabaya's bm and to an admin, and to nobody else.
select tests.clear_authentication();
update public.key_persons set notes = 'changed for rm2.surabaya'
 where id = (select k.id from public.key_persons k join public.customers c on c.id = k.customer_id
              where c.assigned_rm_id = tests.user_id('rm2.surabaya@crm.test') order by k.id limit 1);
select tests.engine_acting_for('rm2.surabaya@crm.test');
select is(tests.probe(array['key_persons']), true, 'a changed key person of the caller''s customer is news');
select tests.engine_acting_for('bm.surabaya@crm.test');
select is(tests.probe(array['key_persons']), true, 'and to the bm of the customer''s branch');
select tests.engine_acting_for('admin@crm.test');
select is(tests.probe(array['key_persons']), true, 'and to an admin');
select tests.engine_acting_for('rm1.surabaya@crm.test');
select is(tests.probe(array['key_persons']), false, 'not to another rm of the branch');
select tests.engine_acting_for('bm.jakarta@crm.test');
select is(tests.probe(array['key_persons']), false, 'nor to the bm of another branch');

-- A reassignment is news even to users who see neither side: the scope-change log decides.
select tests.engine_acting_for('rm1.surabaya@crm.test');
select is(tests.probe(), false, 'rm1.surabaya has nothing new yet');
select tests.clear_authentication();
update public.customers set assigned_rm_id = tests.user_id('rm1.jakarta@crm.test') where id = '00000000-0000-4000-8100-000000000009';
select tests.engine_acting_for('rm1.surabaya@crm.test');
select is(tests.probe(), true, 'an entry of the scope-change log in the window is news');

-- Registering a table regenerates the probes, so the new table is looked at too.
select tests.clear_authentication();
create table public.probe_notes (
  id uuid primary key default gen_random_uuid(),
  body text,
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
create index probe_notes_change_xid_id_idx on public.probe_notes (change_xid, id);
create index probe_notes_updated_by_change_xid_idx on public.probe_notes (updated_by, change_xid);
select sync.register_table('public.probe_notes', 'probeNote', 'shared');
select ok(pg_get_functiondef('sync.visible_changes_exist'::regproc) like '%public.probe_notes t%',
          'a table registered later is in the regenerated probe');

select * from finish();
rollback;
