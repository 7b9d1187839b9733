-- The engine explains itself to a DBA: every function, table, view and type of the sync schema has
-- a COMMENT, so `\df+ sync.*` and `\d+ sync.*` say what each is for; so has each attribute of what a
-- pull cursor holds.
begin;
select plan(4);

select is_empty(
  $$ select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'sync' and obj_description(p.oid, 'pg_proc') is null $$,
  'every function of the sync schema has a comment'
);
select is_empty(
  $$ select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'sync' and c.relkind in ('r', 'p', 'v', 'm') and obj_description(c.oid, 'pg_class') is null $$,
  'every table and view of the sync schema has a comment'
);
select is_empty(
  $$ select t.oid::regtype from pg_type t join pg_namespace n on n.oid = t.typnamespace
      where n.nspname = 'sync' and (t.typtype = 'e' or (t.typtype = 'c' and t.typrelid <> 0
                                    and (select relkind from pg_class where oid = t.typrelid) = 'c'))
        and obj_description(t.oid, 'pg_type') is null $$,
  'every type of the sync schema has a comment'
);

select is_empty(
  $$ select t.oid::regtype::text || '.' || a.attname
       from pg_type t
       join pg_namespace n on n.oid = t.typnamespace
       join pg_class c on c.oid = t.typrelid and c.relkind = 'c'
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = 'sync' and col_description(a.attrelid, a.attnum) is null $$,
  'every attribute of every composite type of the sync schema (what a cursor holds, what the bulk engine plans) has a comment'
);

select * from finish();
rollback;
