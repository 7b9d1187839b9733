-- Every table in sync.tables keeps the contract that registering it promised: the sync columns, the
-- standard triggers, row-level security with one policy per action, the indexes the pull and the
-- policies need. The assertions are generated from the registry, so a table registered later is
-- checked without touching this file.
begin;

select plan(
  (select count(*)::int * 19 from sync.tables)                        -- pk, 8 column types, 4 triggers, rls, policies, cursor and own-writes indexes, shape, bulk writer
  + (select count(*)::int from sync.tables t,
       lateral (values (t.parent_column), (t.owner_column), (t.branch_column)) s (col)
      where s.col is not null and s.col <> 'id')                      -- one index per scope column
  + (select count(*)::int from sync.tables where scope = 'child')     -- one foreign key per child
  + 6
);

-- The sync columns, by name and type.
create temp table sync_columns (ord int, col text, typ text) on commit drop;
insert into sync_columns values
  (1, 'id', 'uuid'), (2, 'version', 'bigint'), (3, 'created_at', 'timestamp with time zone'),
  (4, 'updated_at', 'timestamp with time zone'), (5, 'created_by', 'uuid'), (6, 'updated_by', 'uuid'),
  (7, 'deleted_at', 'timestamp with time zone'), (8, 'change_xid', 'xid8');

select col_is_pk('public', t.table_name, 'id', format('%s is keyed by id alone', t.table_name))
  from sync.tables t order by t.sync_order;

select col_type_is('public', t.table_name, c.col, c.typ, format('%s.%s is %s', t.table_name, c.col, c.typ))
  from sync.tables t cross join sync_columns c order by t.sync_order, c.ord;

-- The standard triggers, by their definition: calling the sync functions, enabled.
select is(
  (select pg_get_triggerdef(tg.oid) || case tg.tgenabled when 'D' then ' (disabled)' else '' end
     from pg_trigger tg
    where tg.tgrelid = format('public.%I', t.table_name)::regclass and tg.tgname = e.tgname),
  format('CREATE TRIGGER %s %s ON public.%s FOR EACH %s EXECUTE FUNCTION %s', e.tgname, e.timing, t.table_name, e.each, e.func),
  format('%s has the %s trigger', t.table_name, e.tgname)
)
  from sync.tables t
 cross join (values (1, 'sync_00_tombstone', 'BEFORE DELETE', 'ROW', 'sync.tombstone_on_delete()'),
                    (2, 'sync_09_field_rules_statement', 'BEFORE INSERT OR UPDATE', 'STATEMENT', 'sync.field_rules_for_statement()'),
                    (3, 'sync_10_field_rules', 'BEFORE INSERT OR UPDATE', 'ROW', 'sync.enforce_field_rules()'),
                    (4, 'sync_20_stamp_row', 'BEFORE INSERT OR UPDATE', 'ROW', 'sync.stamp_row()')) e (ord, tgname, timing, each, func)
 order by t.sync_order, e.ord;

select ok(
  (select c.relrowsecurity from pg_class c where c.oid = format('public.%I', t.table_name)::regclass),
  format('%s has row-level security enabled', t.table_name)
)
  from sync.tables t order by t.sync_order;

-- One permissive policy per action (r select, a insert, w update, d delete), all for authenticated,
-- and no other policy: anon gets nothing, service_role bypasses RLS.
select results_eq(
  format($$ select p.polcmd::text, p.polpermissive, p.polroles::regrole[]::text[]
              from pg_policy p where p.polrelid = %L::regclass and p.polname not like 'app: %%%%' order by p.polcmd $$,
         format('public.%I', t.table_name)),
  $$ values ('a', true, array['authenticated']), ('d', true, array['authenticated']),
            ('r', true, array['authenticated']), ('w', true, array['authenticated']) $$,
  format('%s has exactly one permissive registry policy for authenticated per action (the app''s own, named "app: ...", aside)', t.table_name)
)
  from sync.tables t order by t.sync_order;

-- Indexes, checked against the catalog here rather than through sync.has_leading_index(): the
-- pull cursor's, and the one that finds the caller's own writes in a pull window.
select ok(
  exists (
    select 1
      from pg_index i
      join pg_attribute a0 on a0.attrelid = i.indrelid and a0.attnum = i.indkey[0]
      join pg_attribute a1 on a1.attrelid = i.indrelid and a1.attnum = i.indkey[1]
     where i.indrelid = format('public.%I', t.table_name)::regclass
       and i.indisvalid and i.indpred is null
       and a0.attname = k.first and a1.attname = k.second
  ),
  format('%s has an index leading with (%s, %s) for %s', t.table_name, k.first, k.second, k.purpose)
)
  from sync.tables t,
       (values (1, 'change_xid', 'id', 'the pull cursor'),
               (2, 'updated_by', 'change_xid', 'the own writes of a pull window')) k (ord, first, second, purpose)
 order by t.sync_order, k.ord;

select ok(
  exists (
    select 1
      from pg_index i
      join pg_attribute a0 on a0.attrelid = i.indrelid and a0.attnum = i.indkey[0]
     where i.indrelid = format('public.%I', t.table_name)::regclass
       and i.indisvalid and i.indpred is null
       and a0.attname = s.col
  ),
  format('%s has an index leading with its %s column %s', t.table_name, s.kind, s.col)
)
  from sync.tables t,
       lateral (values (1, 'parent', t.parent_column), (2, 'owner', t.owner_column), (3, 'branch', t.branch_column)) s (ord, kind, col)
 where s.col is not null and s.col <> 'id'
 order by t.sync_order, s.ord;

select fk_ok('public', t.table_name, t.parent_column, 'public', t.parent_table, 'id',
             format('%s.%s references its parent %s', t.table_name, t.parent_column, t.parent_table))
  from sync.tables t where t.scope = 'child' order by t.sync_order;

select is_empty(
  format('select * from sync.shape_problems(%L::regclass, %L, %L, %L)',
         format('public.%I', t.table_name), t.parent_column, t.owner_column, t.branch_column),
  format('sync.shape_problems finds nothing wrong with %s', t.table_name)
)
  from sync.tables t order by t.sync_order;

-- The bulk push engine's written-out statements (sync.bulk_write) know every table as it is now:
-- an empty insert and an empty update of its current client columns run and write nothing.
select is(
  (select w.o_written from sync.bulk_write(t.table_name, sync.client_columns(t.table_name), 'insert', '{}', '{}', '{}', '{}') w)
    + (select w.o_written from sync.bulk_write(t.table_name, sync.client_columns(t.table_name), 'update', '{}', '{}', '{}', '{}', '{}', '{}') w),
  0,
  format('the bulk writer knows %s with its current columns', t.table_name)
)
  from sync.tables t order by t.sync_order;

-- The registry as a whole.
select is_empty(
  $$ select c.table_name from sync.tables c join sync.tables p on p.table_name = c.parent_table
      where p.sync_order >= c.sync_order $$,
  'parents sort before their children in sync_order'
);

select is_empty(
  $$ select app_role, table_name, column_name from sync.field_rule_matrix where unruled $$,
  'every cell of the field-rule matrix (role x table x client column) is ruled'
);

select is_empty(
  $$ select r.app_role, r.table_name, r.column_name
       from sync.field_rules r
      where r.column_name <> '*'
        and not exists (select 1 from sync.field_rule_matrix m
                         where m.table_name = r.table_name and m.column_name = r.column_name) $$,
  'every field rule names a client column of its table (no rule is lost to a typo)'
);

-- Registering a table that lacks the sync shape is refused, naming every problem in a fixed order.
create table public.half_synced_notes (
  id uuid primary key,
  body text,
  version integer not null,
  created_at timestamptz
);

select throws_ok(
  $$ select sync.register_table('public.half_synced_notes', 'halfSyncedNote', 'shared') $$,
  '42P16',
  'half_synced_notes cannot be registered: sync column version is integer, expected bigint; '
    || 'sync column created_at must be not null; missing sync column updated_at timestamp with time zone; '
    || 'missing sync column created_by uuid; missing sync column updated_by uuid; '
    || 'missing sync column deleted_at timestamp with time zone; missing sync column change_xid xid8; '
    || 'no index leads with (change_xid,id); no index leads with (updated_by,change_xid)',
  'register_table refuses a table without the sync columns, listing what is wrong'
);
select is_empty(
  $$ select 1 from sync.tables where table_name = 'half_synced_notes'
     union all
     select 1 from pg_trigger where tgrelid = 'public.half_synced_notes'::regclass
     union all
     select 1 from pg_policy where polrelid = 'public.half_synced_notes'::regclass $$,
  'a refused table is neither registered nor given triggers or policies'
);

create table sync.internal_notes (id uuid primary key);
select throws_ok(
  $$ select sync.register_table('sync.internal_notes', 'internalNote', 'shared') $$,
  '22023',
  'syncable tables live in public; sync.internal_notes does not',
  'register_table refuses a table outside schema public'
);

select * from finish();
rollback;
