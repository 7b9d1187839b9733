-- Values no device should ever be served, refused on every write path, direct table writes
-- included: numbers are finite and not NaN, dates and timestamps lie between 1900-01-01 and
-- 2200-12-31. PostgreSQL has turned 'infinity', 'epoch' or '2024-01-01 BC' into values before any
-- trigger runs, so the rule is on values: one check per column, attached by sync.register_table().
-- Everything here is generated from the catalog: a table registered later is covered without
-- touching this file.
begin;

-- The first live row of a table (by id) as the caller sees it.
create function tests.first_live_row(p_table text) returns jsonb
language plpgsql
as $$
declare
  v_row jsonb;
begin
  execute format('select to_jsonb(t) from public.%I t where t.deleted_at is null order by t.id limit 1', p_table) into v_row;
  return v_row;
end
$$;

-- What a column holds after a direct write of a literal, the write undone (a subtransaction that
-- raises its own SQLSTATE once the stored value is read); null when no row was written.
create function tests.stored_after_write(p_table text, p_column text, p_id uuid, p_literal text) returns jsonb
language plpgsql
as $$
declare
  v_stored jsonb;
  v_detail text;
begin
  begin
    execute format('update public.%I set %I = %L where id = $1 returning to_jsonb(%I)', p_table, p_column, p_literal, p_column)
      into v_stored using p_id;
    raise exception using errcode = 'TSUND', message = 'undo', detail = coalesce(v_stored::text, '');
  exception when sqlstate 'TSUND' then
    get stacked diagnostics v_detail = pg_exception_detail;
  end;
  return nullif(v_detail, '')::jsonb;
end
$$;

-- A literal as a value of a type, as JSON.
create function tests.literal_as_jsonb(p_literal text, p_type text) returns jsonb
language plpgsql
as $$
declare
  v_value jsonb;
begin
  execute format('select to_jsonb(%L::%s)', p_literal, p_type) into v_value;
  return v_value;
end
$$;
grant execute on function tests.first_live_row(text), tests.stored_after_write(text, text, uuid, text),
  tests.literal_as_jsonb(text, text) to authenticated, service_role;

-- Every column of a number or time type of every registered table, server columns included, as
-- the rule sees it: its base type (through a domain) decides the kind of check and its name.
create temp table ruled on commit drop as
select t.table_name, a.attname::text as column_name, a.attnum,
       pg_catalog.format_type(a.atttypid, a.atttypmod) as type_name,
       case when b.typname in ('numeric', 'float4', 'float8') then 'finite' else 'range' end as rule,
       case when b.typname in ('numeric', 'float4', 'float8') then 'sync_finite_' else 'sync_range_' end || a.attname as check_name,
       b.typname as base_type,
       b.typname = 'numeric' and coalesce(nullif(ty.typtypmod, -1), a.atttypmod) <> -1 as constrained_numeric,
       a.attname <> all (sync.server_columns()) as client_column,
       -- who writes it directly here: an admin, or for a column no role writes (one the server
       -- records, such as who approved a pipeline) service_role, which the field rules do not bind
       case when coalesce((select m.may_write from sync.field_rule_matrix m
                            where m.app_role = 'admin' and m.table_name = t.table_name and m.column_name = a.attname), false)
            then 'admin' else 'service_role' end as writer
  from sync.tables t
  join pg_attribute a on a.attrelid = format('public.%I', t.table_name)::regclass and a.attnum > 0 and not a.attisdropped
  join pg_type ty on ty.oid = a.atttypid
  join pg_type b on b.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
 where b.typname in ('numeric', 'float4', 'float8', 'date', 'timestamp', 'timestamptz');

-- What an attacker writes into each kind of column, as the SQL literal a direct write sends.
create temp table hostile (rule text, base_type text, literal text, ord int) on commit drop;
insert into hostile values
  ('finite', null, 'NaN', 1), ('finite', null, 'Infinity', 2), ('finite', null, '-Infinity', 3),
  ('range', 'date', 'infinity', 1), ('range', 'date', '-infinity', 2), ('range', 'date', '2024-01-01 BC', 3),
  ('range', 'date', '12345-01-01', 4), ('range', 'date', '1899-12-31', 5), ('range', 'date', '2201-01-01', 6),
  ('range', 'timestamp', 'infinity', 1), ('range', 'timestamp', '-infinity', 2), ('range', 'timestamp', '2024-01-01 00:00 BC', 3),
  ('range', 'timestamp', '12345-01-01', 4), ('range', 'timestamp', '1899-12-31 23:59:59.999999', 5),
  ('range', 'timestamp', '2201-01-01 00:00:00', 6),
  ('range', 'timestamptz', 'infinity', 1), ('range', 'timestamptz', '-infinity', 2), ('range', 'timestamptz', '2024-01-01 00:00 BC', 3),
  ('range', 'timestamptz', '12345-01-01', 4), ('range', 'timestamptz', '1899-12-31 23:59:59.999999+00', 5),
  ('range', 'timestamptz', '2201-01-01 00:00:00+00', 6);

-- The edges of the range, which must stay writable.
create temp table edges (base_type text, literal text, ord int) on commit drop;
insert into edges values
  ('date', '1900-01-01', 1), ('date', '2200-12-31', 2),
  ('timestamp', '1900-01-01 00:00:00', 1), ('timestamp', '2200-12-31 23:59:59.999999', 2),
  ('timestamptz', '1900-01-01 00:00:00+00', 1), ('timestamptz', '2200-12-31 23:59:59.999999+00', 2),
  ('numeric', '0', 1), ('numeric', '1234.5', 2), ('float4', '0', 1), ('float4', '-1.5', 2), ('float8', '0', 1), ('float8', '-1.5', 2);

-- One live row of each table that an admin (who may write every client column) sees, and its
-- state before the attempts.
create temp table target on commit drop as
select t.table_name, (x.r ->> 'id')::uuid as id, x.r as before
  from sync.tables t
 cross join lateral tests.first_live_row(t.table_name) x (r);
grant select on ruled, hostile, edges, target to authenticated, service_role;

select plan(
  (select count(*)::int from sync.tables)                                           -- a row to write in each table
  + (select count(*)::int from ruled)                                               -- the check exists
  + (select count(*)::int from ruled r join hostile h on h.rule = r.rule and (h.base_type is null or h.base_type = r.base_type)
      where r.client_column)                                                        -- each hostile value refused
  + (select count(*)::int from ruled r join edges e on e.base_type = r.base_type where r.client_column)  -- the edges kept
  + (select count(*)::int from sync.tables)                                         -- every row unchanged
  + 9                                                                               -- registering, the owner, the server columns
);

select isnt(t.id, null, format('%s has a live row to write', t.table_name)) from target t order by t.table_name;

-- The check of each column, by name, validated, on that column alone.
select ok(
  exists (select 1 from pg_constraint c
           where c.conrelid = format('public.%I', r.table_name)::regclass and c.contype = 'c'
             and c.conname = r.check_name and c.convalidated and c.conkey = array[r.attnum]::int2[]),
  format('%s.%s (%s) has its validated check %s', r.table_name, r.column_name, r.type_name, r.check_name)
)
  from ruled r order by r.table_name, r.attnum;

-- As an admin, through RLS, the field rules and the triggers: each hostile value of each client
-- column is refused. A numeric column with a precision cannot hold an infinity at all: PostgreSQL
-- refuses it before the check does.
select tests.authenticate_as('admin@crm.test');
select throws_ok(
  format('update public.%I set %I = %L where id = %L', r.table_name, r.column_name, h.literal, t.id),
  case when r.constrained_numeric and h.literal like '%Infinity' then '22003' else '23514' end,
  case when r.constrained_numeric and h.literal like '%Infinity' then 'numeric field overflow'
       else format('new row for relation "%s" violates check constraint "%s"', r.table_name, r.check_name) end,
  format('a direct write of %s into %s.%s is refused', h.literal, r.table_name, r.column_name)
)
  from ruled r
  join hostile h on h.rule = r.rule and (h.base_type is null or h.base_type = r.base_type)
  join target t on t.table_name = r.table_name
 where r.client_column and r.writer = 'admin'
 order by r.table_name, r.attnum, h.ord;

-- The edges of the range and ordinary numbers are written (and undone: each in a subtransaction
-- that raises after checking the stored value).
select is(
  tests.stored_after_write(r.table_name, r.column_name, t.id, e.literal),
  tests.literal_as_jsonb(e.literal, r.type_name),
  format('%s.%s keeps %s', r.table_name, r.column_name, e.literal)
)
  from ruled r
  join edges e on e.base_type = r.base_type
  join target t on t.table_name = r.table_name
 where r.client_column and r.writer = 'admin'
 order by r.table_name, r.attnum, e.ord;

-- The columns no role writes, as service_role: the checks hold where the field rules do not.
select tests.authenticate_as_service_role();
select throws_ok(
  format('update public.%I set %I = %L where id = %L', r.table_name, r.column_name, h.literal, t.id),
  case when r.constrained_numeric and h.literal like '%Infinity' then '22003' else '23514' end,
  case when r.constrained_numeric and h.literal like '%Infinity' then 'numeric field overflow'
       else format('new row for relation "%s" violates check constraint "%s"', r.table_name, r.check_name) end,
  format('a direct write of %s into %s.%s is refused', h.literal, r.table_name, r.column_name)
)
  from ruled r
  join hostile h on h.rule = r.rule and (h.base_type is null or h.base_type = r.base_type)
  join target t on t.table_name = r.table_name
 where r.client_column and r.writer = 'service_role'
 order by r.table_name, r.attnum, h.ord;

-- The edges of the range and ordinary numbers are written (and undone: each in a subtransaction
-- that raises after checking the stored value).
select is(
  tests.stored_after_write(r.table_name, r.column_name, t.id, e.literal),
  tests.literal_as_jsonb(e.literal, r.type_name),
  format('%s.%s keeps %s', r.table_name, r.column_name, e.literal)
)
  from ruled r
  join edges e on e.base_type = r.base_type
  join target t on t.table_name = r.table_name
 where r.client_column and r.writer = 'service_role'
 order by r.table_name, r.attnum, e.ord;

select tests.clear_authentication();
select is(
  tests.first_live_row(t.table_name) - 'change_xid',
  t.before - 'change_xid',
  format('the %s row is unchanged by every refused write', t.table_name)
)
  from target t order by t.table_name;

-- The checks bind the table owner too, and they hold where the triggers do not run (a replica
-- apply, a restore with triggers off): a server column cannot be given a poison value either.
set local session_replication_role = replica;
select throws_ok(
  $$ update public.customers set updated_at = 'infinity' where id = '00000000-0000-4000-8100-000000000004' $$,
  '23514', 'new row for relation "customers" violates check constraint "sync_range_updated_at"',
  'with the triggers off, the owner cannot write infinity into a server column'
);
select throws_ok(
  $$ update public.pipelines set potential_value = 'NaN' where id = '00000000-0000-4000-8300-000000000004' $$,
  '23514', 'new row for relation "pipelines" violates check constraint "sync_finite_potential_value"',
  'with the triggers off, the owner cannot write NaN'
);
set local session_replication_role = origin;

-- A table registered later gets its checks by registering, whatever its number and time types.
create domain public.probe_amount as numeric(12, 2);
create table public.value_probes (
  id uuid primary key default gen_random_uuid(),
  amount public.probe_amount,
  ratio float8,
  score real,
  due date,
  local_at timestamp,
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
create index value_probes_change_xid_id_idx on public.value_probes (change_xid, id);
create index value_probes_updated_by_change_xid_idx on public.value_probes (updated_by, change_xid);
insert into public.value_probes (amount) values ('NaN');
select throws_ok(
  $$ select sync.register_table('public.value_probes', 'valueProbe', 'shared') $$,
  '23514', 'check constraint "sync_finite_amount" of relation "value_probes" is violated by some row',
  'a table holding a poison value cannot be registered until the row is corrected'
);
delete from public.value_probes;
select sync.register_table('public.value_probes', 'valueProbe', 'shared');
select sync.register_table('public.value_probes', 'valueProbe', 'shared');
select is(
  (select array_agg(c.conname::text order by c.conname) from pg_constraint c
    where c.conrelid = 'public.value_probes'::regclass and c.contype = 'c'),
  array['sync_finite_amount', 'sync_finite_ratio', 'sync_finite_score', 'sync_range_created_at', 'sync_range_deleted_at',
        'sync_range_due', 'sync_range_local_at', 'sync_range_updated_at'],
  'a newly registered table has one check per number or time column, a domain''s included, once however often it is registered'
);
select throws_ok(
  $$ insert into public.value_probes (ratio) values ('-Infinity') $$,
  '23514', 'new row for relation "value_probes" violates check constraint "sync_finite_ratio"',
  'the new table refuses an infinite float'
);
select throws_ok(
  $$ insert into public.value_probes (score) values ('NaN') $$,
  '23514', 'new row for relation "value_probes" violates check constraint "sync_finite_score"',
  'the new table refuses a NaN real'
);
select throws_ok(
  $$ insert into public.value_probes (due) values ('1899-12-31') $$,
  '23514', 'new row for relation "value_probes" violates check constraint "sync_range_due"',
  'the new table refuses a date before 1900'
);
select throws_ok(
  $$ insert into public.value_probes (local_at) values ('infinity') $$,
  '23514', 'new row for relation "value_probes" violates check constraint "sync_range_local_at"',
  'the new table refuses an infinite timestamp'
);
select lives_ok(
  $$ insert into public.value_probes (amount, ratio, score, due, local_at) values (12.5, 0.25, 1, '2200-12-31', '1900-01-01 00:00') $$,
  'the new table takes ordinary values and the edges of the range'
);

select * from finish();
rollback;
