-- What a table must look like to sync (the sync columns, a uuid primary key, the indexes the pull
-- reads), and which of its columns a client writes. Adding a syncable table is one migration of
-- the app's: create the table, call sync.register_table() (sync_register_table).

-- What is wrong with a table's shape for syncing; empty when nothing is.
create function sync.shape_problems(
  p_table regclass,
  p_parent_column text default null,
  p_owner_column text default null,
  p_branch_column text default null
) returns setof text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_col record;
  v_indexed text;
begin
  for v_col in
    select req.col, req.typ, a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod) as actual, a.attnotnull
      from (values (1, 'id', 'uuid'), (2, 'version', 'bigint'), (3, 'created_at', 'timestamp with time zone'),
                   (4, 'updated_at', 'timestamp with time zone'), (5, 'created_by', 'uuid'), (6, 'updated_by', 'uuid'),
                   (7, 'deleted_at', 'timestamp with time zone'), (8, 'change_xid', 'xid8')) req (ord, col, typ)
      left join pg_catalog.pg_attribute a
        on a.attrelid = p_table and a.attname = req.col and not a.attisdropped
     -- A fixed order, so register_table's message does not change with the join the planner picks.
     order by req.ord
  loop
    if v_col.attnum is null then
      return next format('missing sync column %s %s', v_col.col, v_col.typ);
    elsif v_col.actual <> v_col.typ then
      return next format('sync column %s is %s, expected %s', v_col.col, v_col.actual, v_col.typ);
    elsif v_col.col in ('id', 'version', 'created_at', 'updated_at', 'change_xid') and not v_col.attnotnull then
      return next format('sync column %s must be not null', v_col.col);
    end if;
  end loop;

  if not exists (
    select 1 from pg_catalog.pg_index i
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
     where i.indrelid = p_table and i.indisprimary and i.indnkeyatts = 1 and a.attname = 'id'
  ) then
    return next 'primary key must be (id)';
  end if;

  -- The scope columns of owned and branch tables lead an index that also orders by the cursor, so
  -- a first pull reads one user's or one branch's rows in cursor order however many others there are.
  -- (A scope column that is the id itself needs nothing more than the primary key.) A delta pull
  -- looks for the caller's own writes in its window (sync.own_writes): by (updated_by, change_xid),
  -- in proportion to them, not to everything everyone wrote meanwhile.
  foreach v_indexed in array array['change_xid,id', 'updated_by,change_xid', p_parent_column,
                                   nullif(p_owner_column, 'id') || ',change_xid,id',
                                   nullif(p_branch_column, 'id') || ',change_xid,id'] loop
    continue when v_indexed is null or v_indexed = 'id';
    if not sync.has_leading_index(p_table, string_to_array(v_indexed, ',')) then
      return next format('no index leads with (%s)', v_indexed);
    end if;
  end loop;
end
$$;

comment on function sync.shape_problems(regclass, text, text, text) is
  'What is wrong with a table''s shape for syncing (sync columns, primary key, the indexes the pull needs); empty when nothing is.';
create function sync.has_leading_index(p_table regclass, p_columns text[]) returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select exists (
    select 1
      from pg_catalog.pg_index i
     where i.indrelid = p_table
       and i.indpred is null
       and (
         select array_agg(a.attname::text order by k.ord)
           from unnest(string_to_array(i.indkey::text, ' ')::int2[]) with ordinality k (attnum, ord)
           join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
          where k.ord <= cardinality(p_columns)
       ) = p_columns
  )
$$;
comment on function sync.has_leading_index(regclass, text[]) is
  'Is there a plain index whose leading key columns are exactly p_columns, in order?';

-- Client-writable columns of a syncable table: not the server's, and none the database computes
-- (a generated column, an identity column that is always generated).
create function sync.client_columns(p_table text) returns text[]
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(a.attname::text order by a.attnum), '{}')
    from pg_catalog.pg_attribute a
   where a.attrelid = ('public.' || quote_ident(p_table))::regclass
     and a.attnum > 0 and not a.attisdropped
     and a.attgenerated = '' and a.attidentity <> 'a'
     and a.attname <> all (sync.server_columns())
$$;
comment on function sync.client_columns(text) is
  'The columns of a syncable table a client may write: not the server''s, not generated, not always-identity.';
revoke all on function sync.client_columns(text) from public;
