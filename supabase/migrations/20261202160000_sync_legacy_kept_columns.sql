-- Columns a role's legacy (protocol 1) payloads never change. A legacy payload is the whole entity
-- as the device last saw it, so a column there that differs from the server is either this device's
-- edit or someone else's later change that the device never saw. For a column the role may not write
-- at all, the engine already reads it as the latter. An app whose rules later let a role write a
-- column that its old clients only ever carried (a workflow status the old app never moved, say)
-- names the column here, so that those clients' queued items keep applying their own edits, as
-- they did, instead of being refused as a move the user never made.

create table sync.legacy_kept_columns (
  app_role text not null references sync.roles (role) on delete cascade,
  table_name text not null references sync.tables (table_name) on delete cascade,
  column_name text not null,
  note text,
  primary key (app_role, table_name, column_name)
);
comment on table sync.legacy_kept_columns is
  'Columns a role''s legacy (protocol 1) payloads never change: a value there that differs from the server is someone else''s later change, kept as the server has it, while the item''s other edits apply. Written by the app''s migrations.';
create index legacy_kept_columns_table_name_idx on sync.legacy_kept_columns (table_name);
revoke all on sync.legacy_kept_columns from public, anon, authenticated, service_role;
grant select on sync.legacy_kept_columns to sync_engine;

-- The columns of p_columns that p_role's legacy payloads never change on p_table.
create function sync.legacy_kept_columns(p_role text, p_table text, p_columns text[]) returns text[]
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(k.column_name order by k.column_name), '{}')
    from sync.legacy_kept_columns k
   where k.app_role = p_role and k.table_name = p_table and k.column_name = any (p_columns)
$$;
comment on function sync.legacy_kept_columns(text, text, text[]) is
  'The columns of p_columns that role p_role''s legacy (protocol 1) payloads never change on p_table (sync.legacy_kept_columns).';
revoke execute on function sync.legacy_kept_columns(text, text, text[]) from public, anon, authenticated, service_role;
grant execute on function sync.legacy_kept_columns(text, text, text[]) to sync_engine;

-- The per-op engine, as 20261125001510_sync_push_per_op_engine.sql made it, with the kept columns
-- of a legacy payload read as the denied ones are.
create or replace function sync.apply_op(p_op jsonb, p_client_id uuid) returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_table text := p_op ->> 'table';
  v_kind text := p_op ->> 'op';
  v_id uuid := (p_op ->> 'id')::uuid;
  v_base_version bigint := (p_op ->> 'base_version')::numeric::bigint;  -- whole, though it may be written 1.0
  v_reg sync.tables;
  v_data jsonb;
  v_cols text[];
  v_unknown text;
  v_current jsonb;
  v_row jsonb;
  v_changed text[];
  v_denied text[];
  v_check jsonb;
  v_conflict jsonb;
  v_conflict_id uuid;
  v_base jsonb;
  v_bad record;
begin
  select * into v_reg from sync.tables t where t.table_name = v_table;
  if not found then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s is not a syncable table', v_table), p_field => 'table');
  end if;

  -- Server-managed columns are never taken from the client. A delete's "data" (null in a legacy
  -- queue's delete, or anything else) is no data: subtracting keys from a scalar raises.
  v_data := case when jsonb_typeof(p_op -> 'data') = 'object' then p_op -> 'data' else '{}' end - sync.server_columns();
  v_cols := sync.client_columns(v_table);
  select k into v_unknown from jsonb_object_keys(v_data) k where k <> all (v_cols) limit 1;
  if v_unknown is not null then
    return sync.op_result(p_op, 'rejected', 'invalid', format('%s has no column %s', v_table, v_unknown), p_field => v_unknown);
  end if;
  v_check := sync.refused_value(p_op, v_table, v_data);
  if v_check is not null then
    return v_check;
  end if;

  execute format('select to_jsonb(t) from public.%I t where t.id = $1', v_table) into v_current using v_id;

  if v_kind = 'insert' then
    if v_current is not null or sync.row_exists(v_table, v_id) then
      return sync.op_result(p_op, 'rejected', 'already_exists', format('%s %s already exists', v_table, v_id),
                            v_current);
    end if;
    if v_reg.parent_table is not null then
      v_check := sync.check_parent(p_op, v_reg, v_data ->> v_reg.parent_column);
      if v_check is not null then
        return v_check;
      end if;
    end if;
    select array_agg(k) into v_cols from jsonb_object_keys(v_data) k;
    execute format(
      'insert into public.%1$I as t (id%2$s) select $1%3$s from jsonb_populate_record(null::public.%1$I, $2) r returning to_jsonb(t)',
      v_table,
      coalesce((select string_agg(', ' || quote_ident(c), '') from unnest(v_cols) c), ''),
      coalesce((select string_agg(', r.' || quote_ident(c), '') from unnest(v_cols) c), ''))
      into v_row using v_id, v_data;
    return sync.op_result(p_op, 'applied', p_row => v_row);
  end if;

  -- update or delete
  if v_current is null then
    return sync.op_result(p_op, 'rejected', 'not_found', format('%s %s does not exist or is not visible to you', v_table, v_id));
  end if;

  -- The values the device started from, for the columns it changes (the others mean nothing).
  select coalesce(jsonb_object_agg(b.key, b.value), '{}') into v_base
    from jsonb_each(case when jsonb_typeof(p_op -> 'base') = 'object' then p_op -> 'base' else '{}' end) b
   where v_data ? b.key;
  -- Values the audit may record without writing them (a stale edit the server keeps out, an edit
  -- of a deleted row, the base values) meet the table's rules first, as written ones do: they are
  -- stored for a year and delivered to the other user involved.
  if v_kind = 'update' and (v_current ->> 'deleted_at' is not null or v_base <> '{}'
                            or v_base_version is distinct from (v_current ->> 'version')::bigint and v_base_version is not null) then
    select * into v_bad from sync.check_violation(v_table, v_current || v_data);
    if v_bad.constraint_name is null and v_base <> '{}' then
      select * into v_bad from sync.check_violation(v_table, v_current || v_base);
      if v_bad.constraint_name is not null then
        return sync.op_result(p_op, 'rejected', 'invalid',
          format('%s.%s: the base value breaks the column''s rule %s', v_table, v_bad.column_name, v_bad.constraint_name),
          p_field => v_bad.column_name);
      end if;
    end if;
    if v_bad.constraint_name is not null then
      return sync.op_result(p_op, 'rejected', 'invalid',
        format('%s.%s: the value breaks the column''s rule %s', v_table, v_bad.column_name, v_bad.constraint_name),
        p_field => v_bad.column_name);
    end if;
  end if;

  -- What the triggers need to attribute and resolve a conflict: the op, the device, the values
  -- the device started from and the version it expects.
  perform set_config('sync.op_id', p_op ->> 'op_id', true);
  perform set_config('sync.client_id', coalesce(p_client_id::text, ''), true);
  perform set_config('sync.op_base', case when v_base = '{}' then '' else v_base::text end, true);
  perform set_config('sync.last_conflict', '', true);

  if v_current ->> 'deleted_at' is not null then
    if v_kind = 'delete' then
      return sync.op_result(p_op, 'applied', p_row => v_current);
    end if;
    -- No silent resurrection: the edit is refused and the author is told, with an audit entry.
    v_conflict_id := sync.insert_conflict(v_table, v_current, v_data, v_base_version,
                                          array(select jsonb_object_keys(v_data)), '{}',
                                          (v_current ->> 'version')::bigint, 'server_wins');
    return sync.op_result(p_op, 'rejected', 'deleted', format('%s %s was deleted; the edit was not applied', v_table, v_id),
                          v_current, jsonb_build_object('id', v_conflict_id, 'resolution', 'server_wins',
                                                        'fields', array(select jsonb_object_keys(v_data))));
  end if;

  select coalesce(array_agg(k order by k), '{}') into v_changed
    from jsonb_object_keys(v_data) k where v_data -> k is distinct from v_current -> k;
  -- A legacy (protocol 1) payload is the whole entity as the device last saw it. A column there that
  -- the caller's role may not write and that differs from the server is someone else's later change
  -- (an approval, say), not this device's edit: it stays as the server has it, and the device's own
  -- edits apply instead of the whole item being refused (and the edits lost).
  if p_op ? 'legacy_item_id' and current_user in ('authenticated', 'sync_engine') then
    v_denied := sync.denied_columns(sync.current_app_role(), v_table, v_changed)
                || sync.legacy_kept_columns(sync.current_app_role(), v_table, v_changed);
    v_changed := array(select c from unnest(v_changed) c where c <> all (v_denied));
  end if;

  -- The version the op expects goes with the statement, as `version = -N` (see sync.stamp_row).
  if v_kind = 'delete' then
    execute format('update public.%I t set deleted_at = now(), version = coalesce(-$2, t.version) where t.id = $1 returning to_jsonb(t)', v_table)
      into v_row using v_id, v_base_version;
  else
    if cardinality(v_changed) = 0 then
      return sync.op_result(p_op, 'applied', p_row => v_current);
    end if;
    if current_user in ('authenticated', 'sync_engine') then
      v_denied := sync.denied_columns(coalesce(sync.current_app_role(), '-'), v_table, v_changed);
      if cardinality(v_denied) > 0 then
        return sync.op_result(p_op, 'rejected', 'forbidden',
          format('permission denied: role %s may not write %s.%s', coalesce(sync.current_app_role(), 'without a role'),
                 v_table, v_denied[1]),
          p_field => v_denied[1]);
      end if;
    end if;
    if v_reg.parent_column = any (v_changed) then
      v_check := sync.check_parent(p_op, v_reg, v_data ->> v_reg.parent_column);
      if v_check is not null then
        return v_check;
      end if;
    end if;
    execute format('update public.%1$I t set %2$s, version = coalesce(-$3, t.version) from jsonb_populate_record(null::public.%1$I, $2) r where t.id = $1 returning to_jsonb(t)',
                   v_table, (select string_agg(format('%1$I = r.%1$I', c), ', ') from unnest(v_changed) c))
      into v_row using v_id, v_data, v_base_version;
  end if;
  if v_row is null then
    return sync.op_result(p_op, 'rejected', 'forbidden', format('you may not %s %s %s', v_kind, v_table, v_id));
  end if;

  -- The triggers resolved any conflict by the table's strategy and left their verdict here.
  v_conflict := nullif(current_setting('sync.last_conflict', true), '')::jsonb;
  if v_conflict ->> 'resolution' in ('server_wins', 'manual_pending') then
    return sync.op_result(p_op, 'conflict', 'stale',
      format('%s %s changed since version %s (now %s); %s', v_table, v_id, v_base_version, v_current ->> 'version',
             case
               when v_conflict ->> 'resolution' = 'server_wins' then 'the server''s version stands'
               when v_reg.conflict_strategy = 'manual' then 'the change waits for review'
               else format('%s wait%s for review; the other changes were merged',
                           array_to_string(array(select jsonb_array_elements_text(v_conflict -> 'manual_fields')), ', '),
                           case when jsonb_array_length(v_conflict -> 'manual_fields') = 1 then 's' else '' end) end),
      v_row, v_conflict - 'manual_fields');
  end if;
  return sync.op_result(p_op, 'applied', p_row => v_row, p_conflict => v_conflict - 'manual_fields');
end
$$;

