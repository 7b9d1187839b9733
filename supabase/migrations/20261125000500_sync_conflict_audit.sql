-- The conflict audit: every conflict the sync engine or the triggers detect is recorded here, with
-- both sides, so no concurrent edit is ever lost silently. Written only by the database.

create type sync.conflict_resolution as enum ('client_wins', 'server_wins', 'merged', 'manual_pending', 'manual_resolved');
comment on type sync.conflict_resolution is
  'How a conflict was resolved: client_wins (the incoming edit applied), server_wins (the server row stands), merged (both sides'' fields kept), manual_pending (waits for a person), manual_resolved (a person settled it).';

create table sync.conflicts (
  id uuid primary key default gen_random_uuid(),
  table_name text not null references sync.tables (table_name),
  row_id uuid not null,
  op_id uuid,
  user_id uuid,
  client_id uuid,
  server_user_id uuid,
  base_version bigint,
  server_version bigint not null,
  client_data jsonb,
  base_data jsonb,
  server_row jsonb not null,
  fields text[] not null default '{}',
  pending_fields text[] not null default '{}',
  row_version bigint,
  resolution sync.conflict_resolution not null,
  resolved_by uuid,
  resolved_at timestamptz,
  resolution_choice text check (resolution_choice in ('server', 'client', 'custom')),
  resolution_data jsonb,
  branch_id uuid,
  detected_at timestamptz not null default clock_timestamp(),
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table sync.conflicts is
  'Conflict audit: the incoming op (user_id, client_id, op_id, client_data, base_version) against the server row at detection (server_row, server_version, written by server_user_id), and how it was resolved.';
comment on column sync.conflicts.user_id is 'Author of the incoming edit.';
comment on column sync.conflicts.server_user_id is 'Author of the version that the incoming edit collided with.';
comment on column sync.conflicts.fields is 'Columns both sides changed (or the columns of the incoming edit when the base values are unknown).';
comment on column sync.conflicts.pending_fields is 'Columns whose value waits for a person (resolution manual_pending).';
comment on column sync.conflicts.branch_id is 'Branch of the row''s root (its owned or branch row) at detection: roles that reach the branch review the conflict.';
comment on column sync.conflicts.row_version is 'The row''s version right after the conflicting write; resolve_conflict refuses when the row has moved on since.';

create index conflicts_table_name_row_id_idx on sync.conflicts (table_name, row_id);
create index conflicts_user_id_idx on sync.conflicts (user_id);
create index conflicts_server_user_id_idx on sync.conflicts (server_user_id);
create index conflicts_detected_at_idx on sync.conflicts (detected_at);
create index conflicts_open_idx on sync.conflicts (detected_at) where resolution = 'manual_pending';
create index conflicts_change_xid_id_idx on sync.conflicts (change_xid, id);
create index conflicts_branch_id_idx on sync.conflicts (branch_id);

-- Read by the engine (the pull, resolve_conflict) and by the review views, which run as the engine
-- too: a client role reads no conflict directly, since a conflict's data must be withheld once its
-- row is no longer the reader's to see, which row-level security cannot do column by column.
alter table sync.conflicts enable row level security;
revoke all on sync.conflicts from public, anon, authenticated, service_role;
grant select on sync.conflicts to sync_engine;

create policy "reviewers and the users whose edits were involved read conflicts"
  on sync.conflicts for select to sync_engine
  using (
    (select sync.current_reach()) = 'all'
    or user_id = (select auth.uid())
    or server_user_id = (select auth.uid())
    or ((select sync.current_reach()) = 'branches' and branch_id = any ((select sync.current_branch_ids())::uuid[]))
    or (select sync.session_reads_all())
  );

-- Strategies: the table's conflict_strategy and merge_fallback live in sync.tables; a column that
-- needs another fallback under field_merge has a row here (money fields waiting for a person, say).
create table sync.column_conflict_rules (
  table_name text not null references sync.tables (table_name) on delete cascade,
  column_name text not null,
  merge_fallback sync.merge_fallback not null,
  note text,
  primary key (table_name, column_name)
);
comment on table sync.column_conflict_rules is
  'Per-column fallback under field_merge when both sides changed the column; columns without a row follow sync.tables.merge_fallback.';
revoke all on sync.column_conflict_rules from public, anon, authenticated, service_role;
grant select on sync.column_conflict_rules to authenticated, service_role;

-- Which columns each version of a row changed: a stale edit without `base` values is merged by
-- comparing its columns with those changed since its base version.
create table sync.row_versions (
  table_name text not null,
  row_id uuid not null,
  version bigint not null,
  changed_columns text[] not null,
  changed_by uuid,
  changed_at timestamptz not null default clock_timestamp(),
  primary key (table_name, row_id, version)
);
comment on table sync.row_versions is 'Compact change history: the columns version N of a row changed. Purged with tombstone retention.';
create index row_versions_changed_at_idx on sync.row_versions (changed_at);
revoke all on sync.row_versions from public, anon, authenticated, service_role;

-- PL/pgSQL so that its insert is planned once per session, not at each of the rows it runs for
-- (see sync.current_app_role).
create function sync.log_version(p_table text, p_row_id uuid, p_version bigint, p_columns text[]) returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into sync.row_versions (table_name, row_id, version, changed_columns, changed_by)
  values (p_table, p_row_id, p_version, p_columns, auth.uid())
  on conflict (table_name, row_id, version) do update set changed_columns = excluded.changed_columns;
end
$$;

comment on function sync.log_version(text, uuid, bigint, text[]) is
  'Records which columns version N of a row changed (sync.row_versions), for merging a later stale edit field by field.';
-- The first of a registered table's check constraints that a row (as jsonb) breaks: its column
-- (the first the constraint names) and its name; no row when it breaks none. For values that
-- reach the conflict audit without being written (an incoming value the server keeps out, the
-- base values an edit started from), which the table's constraints would otherwise never see:
-- they are stored for a year and delivered to the other user involved. Checked on demand, in the
-- rare paths that record such values.
create function sync.check_violation(p_table text, p_row jsonb, out column_name text, out constraint_name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cases text;
  v_hit text[];
begin
  select string_agg(format('when not coalesce((%s), true) then array[%L, %L]',
                           pg_catalog.pg_get_expr(c.conbin, c.conrelid), coalesce(a.attname::text, ''), c.conname),
                    ' ' order by c.conname)
    into v_cases
    from pg_catalog.pg_constraint c
    left join pg_catalog.pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
   where c.conrelid = ('public.' || quote_ident(p_table))::regclass and c.contype = 'c';
  if v_cases is null then
    return;
  end if;
  execute format('select case %s end from jsonb_populate_record(null::public.%I, $1)', v_cases, p_table)
    into v_hit using p_row;
  column_name := nullif(v_hit[1], '');
  constraint_name := v_hit[2];
end
$$;
comment on function sync.check_violation(text, jsonb) is
  'The first check constraint of public.p_table that the row p_row (jsonb) breaks, with its column; nulls when none. For values recorded in the conflict audit without being written.';

-- The base values the writer stated (sync.op_base: what its edit started from), as the audit keeps
-- them: only for the columns the edit changes (the others mean nothing to the merge), and only
-- values the columns could hold. A value they could not is refused (22023), naming the column.
create function sync.stated_base(p_table text, p_old jsonb, p_client_data jsonb) returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_text text := nullif(current_setting('sync.op_base', true), '');
  v_base jsonb;
  v_bad record;
begin
  if v_text is null then
    return null;
  end if;
  begin
    v_base := v_text::jsonb;
  exception when others then
    v_base := null;
  end;
  if jsonb_typeof(v_base) is distinct from 'object' then
    raise exception using errcode = '22023', message = 'sync.op_base must be a JSON object of column values';
  end if;
  select coalesce(jsonb_object_agg(b.key, b.value), '{}') into v_base
    from jsonb_each(v_base) b where coalesce(p_client_data ? b.key, false);
  if v_base = '{}' then
    return null;
  end if;
  select * into v_bad from sync.check_violation(p_table, p_old || v_base);
  if v_bad.constraint_name is not null then
    raise exception using errcode = '22023', column = coalesce(v_bad.column_name, ''),
      message = format('%s.%s: the base value breaks the column''s rule %s', p_table, coalesce(v_bad.column_name, '?'), v_bad.constraint_name);
  end if;
  return v_base;
end
$$;
comment on function sync.stated_base(text, jsonb, jsonb) is
  'The base values (sync.op_base) an audited edit started from, kept for the columns it changes, and refused (22023) when a column could not hold one.';

-- The audit entry's row as the database records it; op and device come from the sync engine.
create function sync.insert_conflict(
  p_table text, p_old jsonb, p_client_data jsonb, p_base_version bigint, p_fields text[], p_pending text[],
  p_row_version bigint, p_resolution sync.conflict_resolution
) returns uuid
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
  insert into sync.conflicts (table_name, row_id, op_id, user_id, client_id, server_user_id, base_version,
                              server_version, client_data, base_data, server_row, fields, pending_fields,
                              row_version, resolution, branch_id)
  values (p_table, (p_old ->> 'id')::uuid, nullif(current_setting('sync.op_id', true), '')::uuid, auth.uid(),
          nullif(current_setting('sync.client_id', true), '')::uuid, (p_old ->> 'updated_by')::uuid, p_base_version,
          (p_old ->> 'version')::bigint, p_client_data, sync.stated_base(p_table, p_old, p_client_data),
          p_old - 'change_xid', coalesce(p_fields, '{}'), coalesce(p_pending, '{}'), p_row_version, p_resolution,
          (select r.branch_id from sync.root_scope(p_table, (p_old ->> 'id')::uuid) r))
  returning id
$$;

comment on function sync.insert_conflict(text, jsonb, jsonb, bigint, text[], text[], bigint, sync.conflict_resolution) is
  'Records one conflict in sync.conflicts with the op, device and base values the engine stated, and returns its id.';
-- Resolves an update stated against an older version than the row's. Returns the row to write:
-- the incoming values where they win, the server's where it wins. Records the conflict and leaves
-- {id, resolution, fields} in sync.last_conflict for the sync engine to report.
create function sync.resolve_stale_update(p_table text, p_old jsonb, p_new jsonb, p_expected bigint) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_reg sync.tables;
  v_server text[] := array_remove(sync.server_columns(), 'deleted_at');
  v_base jsonb := nullif(current_setting('sync.op_base', true), '')::jsonb;
  v_client text[];
  v_server_changed text[];
  v_known boolean;
  v_overlap text[] := '{}';
  v_manual text[] := '{}';
  v_row jsonb := p_new;
  v_col text;
  v_fallback sync.merge_fallback;
  v_server_won integer := 0;
  v_resolution sync.conflict_resolution;
  v_id uuid;
  v_bad record;
begin
  select * into v_reg from sync.tables t where t.table_name = p_table;
  select coalesce(array_agg(n.key order by n.key), '{}') into v_client
    from jsonb_each(p_new - v_server) n where n.value is distinct from p_old -> n.key;
  -- The incoming values are recorded (and delivered to the other user) even where the server keeps
  -- its own: they are held to the table's rules as if written.
  select * into v_bad from sync.check_violation(p_table, p_new);
  if v_bad.constraint_name is not null then
    raise exception using errcode = '23514', column = coalesce(v_bad.column_name, ''), constraint = v_bad.constraint_name,
      table = p_table,
      message = format('new row for relation "%s" violates check constraint "%s"', p_table, v_bad.constraint_name);
  end if;

  -- What the server changed since the base version; unknown when the history does not reach back.
  select coalesce(array_agg(distinct c), '{}'), count(distinct v.version) = (p_old ->> 'version')::bigint - p_expected
    into v_server_changed, v_known
    from sync.row_versions v cross join lateral unnest(v.changed_columns) c
   where v.table_name = p_table and v.row_id = (p_old ->> 'id')::uuid and v.version > p_expected;
  if p_expected > (p_old ->> 'version')::bigint then
    v_known := false;
  end if;

  foreach v_col in array v_client loop
    if (case when v_base ? v_col then p_old -> v_col is distinct from v_base -> v_col
             when v_known then v_col = any (v_server_changed)
             else true end) then
      v_overlap := v_overlap || v_col;
    end if;
  end loop;

  case v_reg.conflict_strategy
    when 'client_wins' then
      v_resolution := 'client_wins';
    when 'server_wins', 'manual' then
      v_row := p_new || (p_old - v_server);
      v_resolution := case v_reg.conflict_strategy when 'server_wins' then 'server_wins' else 'manual_pending' end;
      if v_reg.conflict_strategy = 'manual' then
        v_manual := v_client;
      end if;
    else -- field_merge: both sides' edits to different fields survive
      if p_new ->> 'deleted_at' is not null and p_old ->> 'deleted_at' is null then
        -- A delete is an edit of the whole row: the table's fallback decides it.
        v_overlap := array['deleted_at'];
      end if;
      foreach v_col in array v_overlap loop
        v_fallback := coalesce((select r.merge_fallback from sync.column_conflict_rules r
                                 where r.table_name = p_table and r.column_name = v_col), v_reg.merge_fallback);
        if v_col = 'deleted_at' then
          v_fallback := v_reg.merge_fallback;
        end if;
        if v_fallback <> 'client' then
          v_row := case when v_col = 'deleted_at' then p_new || (p_old - v_server)
                        else jsonb_set(v_row, array[v_col], coalesce(p_old -> v_col, 'null'::jsonb)) end;
          v_server_won := v_server_won + 1;
          if v_fallback = 'manual' then
            v_manual := v_manual || v_col;
          end if;
        end if;
      end loop;
      -- merged: nothing both sides changed, or both won some; otherwise the side that won it all.
      v_resolution := case when cardinality(v_manual) > 0 then 'manual_pending'
                           when cardinality(v_overlap) = 0 then 'merged'
                           when v_server_won = 0 then 'client_wins'
                           when (v_row - v_server) = (p_old - v_server) then 'server_wins'
                           else 'merged' end;
  end case;

  v_id := sync.insert_conflict(p_table, p_old,
    (select jsonb_object_agg(c, p_new -> c) from unnest(v_client) c), p_expected,
    case when cardinality(v_overlap) > 0 then v_overlap else v_client end, v_manual,
    (p_old ->> 'version')::bigint + case when (v_row - v_server) = (p_old - v_server) then 0 else 1 end, v_resolution);
  perform set_config('sync.last_conflict', jsonb_build_object(
    'id', v_id, 'resolution', v_resolution,
    'fields', to_jsonb(case when cardinality(v_overlap) > 0 then v_overlap else v_client end),
    'manual_fields', to_jsonb(v_manual))::text, true);
  return v_row;
end
$$;
comment on function sync.resolve_stale_update(text, jsonb, jsonb, bigint) is
  'Conflict detection for every write path: called by the server-column trigger when an update states an expected version older than the row''s; resolves by sync.tables.conflict_strategy (and column fallbacks under field_merge) and audits it.';

-- A write that states no expected version over another user's change: explicit last-write-wins.
create function sync.record_overwrite(p_table text, p_old jsonb, p_new jsonb) returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_client text[];
  v_id uuid;
begin
  select coalesce(array_agg(n.key order by n.key), '{}') into v_client
    from jsonb_each(p_new - array_remove(sync.server_columns(), 'deleted_at')) n where n.value is distinct from p_old -> n.key;
  v_id := sync.insert_conflict(p_table, p_old, (select jsonb_object_agg(c, p_new -> c) from unnest(v_client) c),
                               null, v_client, '{}', (p_old ->> 'version')::bigint + 1, 'client_wins');
  perform set_config('sync.last_conflict',
    jsonb_build_object('id', v_id, 'resolution', 'client_wins', 'fields', to_jsonb(v_client), 'manual_fields', '[]'::jsonb)::text, true);
end
$$;

comment on function sync.record_overwrite(text, jsonb, jsonb) is
  'Audits an update that stated no expected version and overwrote someone else''s change (explicit last-write-wins, client_wins).';
grant execute on function sync.log_version(text, uuid, bigint, text[]),
  sync.insert_conflict(text, jsonb, jsonb, bigint, text[], text[], bigint, sync.conflict_resolution),
  sync.resolve_stale_update(text, jsonb, jsonb, bigint), sync.record_overwrite(text, jsonb, jsonb)
  to authenticated, service_role;
