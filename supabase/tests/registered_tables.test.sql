-- A table registered after a device's cursor was issued: the device's next pull brings the new
-- table's rows from the start, the other tables go on from the cursor, and the cursor the pull hands
-- back covers the new table too. A cursor whose tables are not the set its snapshot saw (a table
-- unregistered since, another list asked for) or whose caller's scope changed still resyncs.
begin;
select plan(14);

-- A table added "after release": registered in this transaction, after the cursor's snapshot below.
create table public.late_notes (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references public.customers (id),
  body text not null,
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
create index late_notes_customer_id_idx on public.late_notes (customer_id);
create index late_notes_change_xid_id_idx on public.late_notes (change_xid, id);
create index late_notes_updated_by_change_xid_idx on public.late_notes (updated_by, change_xid);
select sync.register_table('public.late_notes', 'lateNote', 'child', 'public.customers', 'customer_id');
insert into sync.field_rules (app_role, table_name, column_name, may_write) values ('rm', 'late_notes', '*', true);

select is((select registered_xid from sync.tables where table_name = 'late_notes'), pg_current_xact_id(),
          'registering a table records the transaction that registered it');
select is((select count(*)::int from sync.tables where registered_xid is null and table_name in ('customers', 'branches', 'activities')), 3,
          'the tables registered before the registry recorded it have none, which every snapshot sees');

-- Rows the device never had, written long ago as far as any window goes (change_xid 3, before every
-- cursor): only "from the start" brings them. Two of rm1.jakarta's customers, one of rm1.surabaya's.
alter table public.late_notes disable trigger user;
insert into public.late_notes (id, customer_id, body, change_xid) values
  ('1a7e0000-0000-4000-8000-000000000001', '00000000-0000-4000-8100-000000000004', 'rm1 jakarta a', '3'),
  ('1a7e0000-0000-4000-8000-000000000002', '00000000-0000-4000-8100-000000000008', 'rm1 jakarta b', '3'),
  ('1a7e0000-0000-4000-8000-000000000003', '00000000-0000-4000-8100-000000000002', 'rm1 surabaya', '3');
alter table public.late_notes enable trigger user;
select is((select assigned_rm_id from public.customers where id = '00000000-0000-4000-8100-000000000004'),
          tests.user_id('rm1.jakarta@crm.test'), 'fixture: customer 4 is rm1.jakarta''s');

-- rm1.jakarta's device pulled before the registration. A pull cannot see this transaction's own
-- writes in its snapshot (they are not committed), so the registration is dated to the transaction
-- before this one, committed or rolled back: the device's cursor is from just before it.
select ok(not exists (select 1 from public.customers where change_xid::text::bigint >= pg_current_xact_id()::text::bigint - 1)
          and not exists (select 1 from public.activities where change_xid::text::bigint >= pg_current_xact_id()::text::bigint - 1)
          and not exists (select 1 from public.profiles where change_xid::text::bigint >= pg_current_xact_id()::text::bigint - 1),
          'fixture: nothing the device may see was written since the transaction before this one');
update sync.tables set registered_xid = (pg_current_xact_id()::text::bigint - 1)::text::xid8 where table_name = 'late_notes';
create function tests.cursor_for(p_email text, p_tables text[], p_scope_key text default null) returns text
language sql stable
as $$
  select sync.sign_cursor(row(p.id, s.schema_epoch, md5(array_to_string(p_tables, ',')),
                              coalesce(p_scope_key, md5(p.role || '/' || p.branch_id)),
                              format('%1$s:%1$s:', pg_current_xact_id()::text::bigint - 1)::pg_snapshot,
                              null, null, null, null, null, null, null, null, null,
                              sync.server_lineage(), null)::sync.pull_position)
    from public.profiles p, sync.settings s where p.id = tests.user_id(p_email)
$$;
create temp table old_tables as
  select array(select table_name from sync.tables where table_name <> 'late_notes' order by sync_order) || 'conflicts'::text as names;
create temp table cursors (name text primary key, cursor text);
insert into cursors values
  ('before', tests.cursor_for('rm1.jakarta@crm.test', (select names from old_tables))),
  ('unregistered', tests.cursor_for('rm1.jakarta@crm.test', (select names from old_tables) || 'gone_table'::text)),
  ('other scope', tests.cursor_for('rm1.jakarta@crm.test', (select names from old_tables), md5('bm/' || '00000000-0000-4000-8000-0000000000b1'))),
  ('customers only', tests.cursor_for('rm1.jakarta@crm.test', array['customers']));
grant select on cursors to authenticated;
create function tests.pages(p_cursor text, p_limit integer) returns jsonb
language plpgsql
as $$
declare
  v_answer jsonb;
  v_cursor text := p_cursor;
  v_all jsonb := '[]';
begin
  loop
    v_answer := public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', v_cursor, 'limit', p_limit))::jsonb;
    v_all := v_all || jsonb_build_array(jsonb_build_object('ids', (select jsonb_agg(c -> 'row' ->> 'id') from jsonb_array_elements(v_answer -> 'changes') c),
                                                           'resync', v_answer -> 'resync_required'));
    exit when not (v_answer ->> 'has_more')::boolean;
    v_cursor := v_answer ->> 'cursor';
  end loop;
  return v_all;
end
$$;
grant execute on function tests.pages(text, integer) to authenticated;
create temp table answers (name text primary key, answer jsonb);
grant select, insert on answers to authenticated;

select tests.authenticate_as('rm1.jakarta@crm.test');
insert into answers
  select 'delta', public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', cursor))::jsonb from cursors where name = 'before';
select is(
  (select jsonb_agg(c order by c -> 'row' ->> 'id') from answers, jsonb_array_elements(answer -> 'changes') c where name = 'delta'),
  (select jsonb_agg(jsonb_build_object('table', 'late_notes', 'op', 'upsert', 'row', to_jsonb(n) - 'change_xid') order by n.id)
     from public.late_notes n),
  'the next pull of a device that pulled before the registration brings the new table''s rows it may see, from the start, and nothing of the other tables'
);
select is((select count(*)::int from public.late_notes), 2, 'fixture: rm1.jakarta sees two of the three rows');
select is((select answer -> 'resync_required' from answers where name = 'delta'), 'false'::jsonb,
          'the device keeps its cursor: no resync');
insert into answers
  select 'after', public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', answer ->> 'cursor'))::jsonb from answers where name = 'delta';
select is((select answer -> 'changes' from answers where name = 'after'), '[]'::jsonb,
          'the cursor it hands back covers the new table: the pull after it delivers those rows no more');

-- Paged: one change a page, each row once, and the cursor within the cycle still names the old tables.
select is(
  tests.pages((select cursor from cursors where name = 'before'), 1),
  '[{"ids": ["1a7e0000-0000-4000-8000-000000000001"], "resync": false},
    {"ids": ["1a7e0000-0000-4000-8000-000000000002"], "resync": false},
    {"ids": null, "resync": false}]'::jsonb,
  'a pull that pages brings each row of the new table once, and its cursors within the cycle stay good'
);

-- What resynced before still does.
select is(
  (select public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', cursor))::jsonb - 'server_time' from cursors where name = 'unregistered'),
  '{"changes": [], "cursor": null, "has_more": false, "resync_required": true}'::jsonb,
  'a cursor naming a table that is no longer registered resyncs'
);
select is(
  (select public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', cursor))::jsonb - 'server_time' from cursors where name = 'other scope'),
  '{"changes": [], "cursor": null, "has_more": false, "resync_required": true}'::jsonb,
  'a cursor issued for another role or branches resyncs'
);
select is(
  (select public.sync_pull(jsonb_build_object('protocol', 2, 'cursor', cursor))::jsonb - 'server_time' from cursors where name = 'customers only'),
  '{"changes": [], "cursor": null, "has_more": false, "resync_required": true}'::jsonb,
  'a cursor presented with another list of tables than it was issued for resyncs'
);
select is(
  (select public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', cursor))::jsonb -> 'changes'
     from cursors where name = 'customers only'),
  '[]'::jsonb,
  'a device that asks for some tables only gets nothing of a new table it did not ask for'
);

-- Re-registering (after an ALTER TABLE) is no new table: the devices that have it keep it.
select tests.clear_authentication();
create temp table registered as select registered_xid from sync.tables where table_name = 'late_notes';
select sync.register_table('public.late_notes', 'lateNote', 'child', 'public.customers', 'customer_id');
select is((select registered_xid from sync.tables where table_name = 'late_notes'), (select registered_xid from registered),
          'registering a table again keeps the transaction that first registered it');

select * from finish();
rollback;
