-- Values no device should be served, refused for every syncable table from its catalog entry, so a
-- table gets the protection by being registered:
--  * on every write path (direct table writes included), a number is finite and not NaN, and a date
--    or timestamp lies between 1900-01-01 and 2200-12-31: one check constraint per column, attached
--    by sync.register_table(). PostgreSQL has turned 'infinity', 'epoch' or '2024-01-01 BC' into a
--    value before any trigger or check sees it, so these rules are on values.
--  * where the request's JSON exists (the push, protocols 1 and 2, and resolve_conflict), a value is
--    taken only as the column will keep it: a number with no more decimals than its column keeps
--    and within its precision, a date or a timestamp as ISO 8601 text (no words such as 'now').
--    sync.value_faults() says what is wrong with an op's data; the push answers rejected / invalid.

-- The rule of every column of a registered table whose type has one, read from the catalog (a
-- domain's base type decides): kind number (numeric, real, double precision), date or timestamp
-- (with or without time zone). For a numeric with a declared precision, its precision and scale;
-- for a timestamp, the fractional-second digits it keeps. Integers need no rule: they are finite,
-- and PostgreSQL refuses a fraction for them.
create view sync.column_value_rules
with (security_invoker = true)
as
select t.table_name,
       a.attname::text as column_name,
       a.attnum,
       case when b.typname in ('numeric', 'float4', 'float8') then 'number'
            when b.typname = 'date' then 'date'
            else 'timestamp' end as kind,
       b.typname::text as base_type,
       case when b.typname = 'numeric' and m.typmod <> -1 then ((m.typmod - 4) >> 16) & 65535 end as numeric_precision,
       case when b.typname = 'numeric' and m.typmod <> -1 then (((m.typmod - 4) & 2047) # 1024) - 1024
            when b.typname in ('timestamp', 'timestamptz') then coalesce(nullif(m.typmod, -1), 6) end as scale
  from sync.tables t
  join pg_catalog.pg_attribute a
    on a.attrelid = ('public.' || quote_ident(t.table_name))::regclass and a.attnum > 0 and not a.attisdropped
  join pg_catalog.pg_type ty on ty.oid = a.atttypid
  join pg_catalog.pg_type b on b.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
 cross join lateral (select case when ty.typtype = 'd' and ty.typtypmod <> -1 then ty.typtypmod else a.atttypmod end as typmod) m
 where b.typnamespace = 'pg_catalog'::regnamespace
   and b.typname in ('numeric', 'float4', 'float8', 'date', 'timestamp', 'timestamptz');
comment on view sync.column_value_rules is
  'Every column of a syncable table whose values have a rule (sync.attach_value_checks, sync.value_fault): its kind (number, date, timestamp), a numeric''s precision and scale, a timestamp''s fractional digits (scale).';
revoke all on sync.column_value_rules from public;
grant select on sync.column_value_rules to authenticated, service_role;

-- What is wrong with a JSON value for a column of the kind given, or null when it is taken. Kept
-- to one expression over pg_catalog names (no SET clause, no sub-select, no stable function such
-- as format): it is inlined where the bulk push engine asks it for every typed value of a batch.
-- A number is a JSON number or a string of plain decimal digits (no exponent, no 'NaN' or
-- 'Infinity', no blanks; at most 1000 characters, always within what numeric holds).
-- A timestamp without an offset is read in the database's time zone (UTC on Supabase); a date
-- alone means its midnight. The range is checked by its year here, for the message; the check
-- constraint holds it exactly, offsets included.
create function sync.value_fault(p_kind text, p_precision integer, p_scale integer, p_value jsonb) returns text
language sql immutable parallel safe
as $$
  select case
    when p_value is null or pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.=) 'null' then null
    when p_kind operator(pg_catalog.=) 'number' then case
      when not (pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.=) 'number'
                or pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.=) 'string'
                   and pg_catalog.length(p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.<=) 1000
                   and (p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.~) '^-?[0-9]+(\.[0-9]+)?$') then
        'expected a finite number: a JSON number or a string of decimal digits'
      when p_scale is not null
           and (p_value operator(pg_catalog.#>>) '{}')::pg_catalog.numeric
               operator(pg_catalog.<>) pg_catalog.round((p_value operator(pg_catalog.#>>) '{}')::pg_catalog.numeric, p_scale) then
        'has more decimal places than the column keeps (' operator(pg_catalog.||) p_scale::pg_catalog.text operator(pg_catalog.||) ')'
      when p_precision is not null
           and pg_catalog.abs((p_value operator(pg_catalog.#>>) '{}')::pg_catalog.numeric)
               operator(pg_catalog.>=) (10::pg_catalog.numeric operator(pg_catalog.^) (p_precision operator(pg_catalog.-) p_scale)::pg_catalog.numeric) then
        'is out of range for numeric(' operator(pg_catalog.||) p_precision::pg_catalog.text operator(pg_catalog.||) ','
          operator(pg_catalog.||) p_scale::pg_catalog.text operator(pg_catalog.||) ')'
    end
    when p_kind operator(pg_catalog.=) 'date' then case
      when pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.<>) 'string'
           or not (p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.~) '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then
        'expected a date as YYYY-MM-DD (ISO 8601)'
      when pg_catalog.substr(p_value operator(pg_catalog.#>>) '{}', 1, 4) operator(pg_catalog.<) '1900'
           or pg_catalog.substr(p_value operator(pg_catalog.#>>) '{}', 1, 4) operator(pg_catalog.>) '2200' then
        'must lie between 1900-01-01 and 2200-12-31'
    end
    when p_kind operator(pg_catalog.=) 'timestamp' then case
      when pg_catalog.jsonb_typeof(p_value) operator(pg_catalog.<>) 'string'
           or not (p_value operator(pg_catalog.#>>) '{}') operator(pg_catalog.~)
                  '^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?$' then
        'expected an ISO 8601 date and time, such as 2026-01-31T09:30:00Z'
      when pg_catalog.length(pg_catalog.substring(p_value operator(pg_catalog.#>>) '{}', '\.([0-9]+)'))
           operator(pg_catalog.>) coalesce(p_scale, 6) then
        'has more fractional digits than the column keeps (' operator(pg_catalog.||) coalesce(p_scale, 6)::pg_catalog.text operator(pg_catalog.||) ')'
      when pg_catalog.substr(p_value operator(pg_catalog.#>>) '{}', 1, 4) operator(pg_catalog.<) '1900'
           or pg_catalog.substr(p_value operator(pg_catalog.#>>) '{}', 1, 4) operator(pg_catalog.>) '2200' then
        'must lie between 1900-01-01 and 2200-12-31'
    end
  end
$$;
comment on function sync.value_fault(text, integer, integer, jsonb) is
  'What is wrong with a JSON value for a column of kind number, date or timestamp (sync.column_value_rules), or null when the column keeps it as sent.';

-- The faults of an op's data (column -> JSON value) for a syncable table, in column order.
-- PL/pgSQL, to keep its plan: the per-op engine asks it for every op. The rules are read in a
-- subquery of their own ("offset 0") so that sync.value_fault gets plain columns: handed the
-- view's expressions, which it reads several times, it is not inlined but planned at every call.
create function sync.value_faults(p_table text, p_data jsonb) returns table (column_name text, message text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select f.column_name, f.message
      from (select r.column_name, r.attnum, sync.value_fault(r.kind, r.numeric_precision, r.scale, p_data -> r.column_name) as message
              from (select * from sync.column_value_rules v where v.table_name = p_table and p_data ? v.column_name offset 0) r) f
     where f.message is not null
     order by f.attnum;
end
$$;
comment on function sync.value_faults(text, jsonb) is
  'The values of p_data (column -> JSON value) that a column of p_table would not keep as sent, with what is wrong with each, in column order.';

-- The check constraint of each ruled column of a registered table, added when it has none: one
-- per column, named sync_finite_<column> (numbers) or sync_range_<column> (dates, timestamps),
-- found again by its prefix and column (a renamed column keeps its check). Adding one validates
-- the rows already there: a table holding a poison value is not registered until it is corrected.
create function sync.attach_value_checks(p_table regclass) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rule record;
  v_prefix text;
  v_name text;
  v_condition text;
begin
  for v_rule in
    select r.column_name, r.attnum, r.kind, r.base_type
      from sync.column_value_rules r
      join pg_catalog.pg_class c on c.relname = r.table_name and c.relnamespace = 'public'::regnamespace
     where c.oid = p_table
     order by r.attnum
  loop
    v_prefix := case v_rule.kind when 'number' then 'sync_finite_' else 'sync_range_' end;
    continue when exists (
      select 1 from pg_catalog.pg_constraint k
       where k.conrelid = p_table and k.contype = 'c' and k.conkey = array[v_rule.attnum]::int2[]
         and k.conname like replace(v_prefix, '_', '\_') || '%');
    v_name := v_prefix || v_rule.column_name;
    if octet_length(v_name) > 63 then
      v_name := left(v_name, 50) || '_' || v_rule.attnum;
    end if;
    v_condition := case v_rule.base_type
      -- NaN sorts above every number, infinity included: one comparison each side refuses all three.
      when 'numeric' then '%1$I > ''-Infinity''::pg_catalog.numeric and %1$I < ''Infinity''::pg_catalog.numeric'
      when 'float4' then '%1$I > ''-Infinity''::pg_catalog.float4 and %1$I < ''Infinity''::pg_catalog.float4'
      when 'float8' then '%1$I > ''-Infinity''::pg_catalog.float8 and %1$I < ''Infinity''::pg_catalog.float8'
      when 'date' then '%1$I >= ''1900-01-01''::pg_catalog.date and %1$I <= ''2200-12-31''::pg_catalog.date'
      when 'timestamp' then '%1$I >= ''1900-01-01 00:00:00''::pg_catalog.timestamp and %1$I < ''2201-01-01 00:00:00''::pg_catalog.timestamp'
      when 'timestamptz' then '%1$I >= ''1900-01-01 00:00:00+00''::pg_catalog.timestamptz and %1$I < ''2201-01-01 00:00:00+00''::pg_catalog.timestamptz'
    end;
    execute format('alter table %s add constraint %I check (%s)', p_table, v_name, format(v_condition, v_rule.column_name));
  end loop;
end
$$;
comment on function sync.attach_value_checks(regclass) is
  'Adds the value check of every number, date and timestamp column of a registered table that lacks one (numbers finite and not NaN; dates and timestamps from 1900-01-01 to 2200-12-31). Called by sync.register_table().';

revoke all on function sync.attach_value_checks(regclass) from public;
grant execute on function sync.value_fault(text, integer, integer, jsonb), sync.value_faults(text, jsonb)
  to authenticated, service_role;
