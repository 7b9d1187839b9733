-- The conflict audit: every conflict the sync engine or the triggers detect is recorded here, with
-- both sides, so no concurrent edit is ever lost silently. Written only by the database.

create type sync.conflict_resolution as enum ('client_wins', 'server_wins', 'merged', 'manual_pending', 'manual_resolved');

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
  resolution sync.conflict_resolution not null,
  resolved_by uuid,
  resolved_at timestamptz,
  detected_at timestamptz not null default clock_timestamp(),
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table sync.conflicts is
  'Conflict audit: the incoming op (user_id, client_id, op_id, client_data, base_version) against the server row at detection (server_row, server_version, written by server_user_id), and how it was resolved.';
comment on column sync.conflicts.user_id is 'Author of the incoming edit.';
comment on column sync.conflicts.server_user_id is 'Author of the version that the incoming edit collided with.';
comment on column sync.conflicts.fields is 'Columns both sides changed (or the columns of the incoming edit when the base values are unknown).';

create index conflicts_table_name_row_id_idx on sync.conflicts (table_name, row_id);
create index conflicts_user_id_idx on sync.conflicts (user_id);
create index conflicts_server_user_id_idx on sync.conflicts (server_user_id);
create index conflicts_detected_at_idx on sync.conflicts (detected_at);
create index conflicts_open_idx on sync.conflicts (detected_at) where resolution = 'manual_pending';
create index conflicts_change_xid_id_idx on sync.conflicts (change_xid, id);

alter table sync.conflicts enable row level security;
revoke all on sync.conflicts from public, anon, authenticated, service_role;
grant select on sync.conflicts to authenticated, service_role;

create policy "admins and the users whose edits were involved read conflicts"
  on sync.conflicts for select to authenticated
  using (
    (select sync.is_admin())
    or user_id = (select auth.uid())
    or server_user_id = (select auth.uid())
  );

-- Writes one audit entry for a conflict the caller's op ran into; the caller is the entry's user.
create function sync.record_conflict(
  p_table text,
  p_row_id uuid,
  p_op_id uuid,
  p_client_id uuid,
  p_base_version bigint,
  p_client_data jsonb,
  p_base_data jsonb,
  p_server_row jsonb,
  p_fields text[],
  p_resolution sync.conflict_resolution
) returns uuid
language sql
security definer
set search_path = ''
as $$
  insert into sync.conflicts (table_name, row_id, op_id, user_id, client_id, server_user_id, base_version,
                              server_version, client_data, base_data, server_row, fields, resolution)
  values (p_table, p_row_id, p_op_id, auth.uid(), p_client_id, (p_server_row ->> 'updated_by')::uuid, p_base_version,
          (p_server_row ->> 'version')::bigint, p_client_data, p_base_data, p_server_row - 'change_xid',
          coalesce(p_fields, '{}'), p_resolution)
  returning id
$$;
comment on function sync.record_conflict(text, uuid, uuid, uuid, bigint, jsonb, jsonb, jsonb, text[], sync.conflict_resolution) is
  'Records a conflict of the calling user''s op against the server row; used by the sync engine.';
grant execute on function sync.record_conflict(text, uuid, uuid, uuid, bigint, jsonb, jsonb, jsonb, text[], sync.conflict_resolution)
  to authenticated, service_role;
