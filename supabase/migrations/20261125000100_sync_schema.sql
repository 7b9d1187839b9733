-- The sync backend's internal schema and its registry of syncable tables.
-- Nothing in `sync` is exposed through the Data API; clients reach it only through the small
-- public RPC surface (sync_push, sync_pull) and the Edge Function.

create extension if not exists pgcrypto with schema extensions;

create schema if not exists sync;
comment on schema sync is
  'Internals of the sync backend: registry of syncable tables, field-rule matrix, conflict audit, idempotency records. Not exposed through the API.';
revoke all on schema sync from public;

-- The role the engine runs as. The public API (sync_push, sync_pull, resolve_conflict) is security
-- definer, owned by this role, so the engine's internals are executable by it alone and never by a
-- client. It is a member of `authenticated`: every policy and grant a signed-in user has applies to
-- it in the same way (RLS decides by the caller's claims, as for the user), so the engine sees and
-- writes exactly what the user may, and nothing a client session can do reaches its internals.
-- Roles belong to the cluster, not the database: a second database in the same cluster (tests,
-- bench) finds it there already.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'sync_engine') then
    create role sync_engine nologin inherit nobypassrls;
  end if;
end
$$;
comment on role sync_engine is
  'The sync engine: owner of the public sync API functions (security definer), the only role that may execute the engine''s internals. A member of authenticated, so RLS applies to it by the caller''s claims.';
grant authenticated to sync_engine;
-- The migration role owns what it creates and hands the public API over to the engine role.
grant sync_engine to current_user;
-- Triggers and policy helpers run as the calling role, so it needs to resolve names in `sync`;
-- table privileges below decide what it may actually read.
grant usage on schema sync to authenticated, service_role, sync_engine;
-- PostgreSQL lets PUBLIC execute every new function, and a default privilege scoped to a schema
-- cannot take that away (only one for the whole database could, which would change every other
-- schema's functions too). So every engine function is granted explicitly: the privileges
-- migration (sync_privileges) revokes them all from PUBLIC and the API roles and grants what each
-- role needs; what sync.register_table generates, and the app's functions in `sync`, revoke PUBLIC
-- themselves. client_privileges.test.sql walks the catalog for anything left callable.

create type sync.scope_kind as enum ('owned', 'child', 'branch', 'shared');
comment on type sync.scope_kind is
  'How a row''s visibility is decided: owned (an owner column and a branch column), child (visible when its parent row is), branch (visible within its branch), shared (reference data every signed-in user reads).';

create type sync.conflict_strategy as enum ('client_wins', 'server_wins', 'field_merge', 'manual');
comment on type sync.conflict_strategy is
  'What happens when an edit arrives for a row that changed since the version it was based on: client_wins (explicit last-write-wins, logged), server_wins (the edit is not applied), field_merge (edits to different fields both survive; a field both sides changed follows its fallback), manual (the server value stays and the conflict waits for a person).';
create type sync.merge_fallback as enum ('client', 'server', 'manual');
comment on type sync.merge_fallback is 'Under field_merge, who wins a field both sides changed: the incoming edit, the server, or a person (manual review).';

create table sync.tables (
  table_name text primary key,
  entity_name text not null unique,
  scope sync.scope_kind not null,
  parent_table text references sync.tables (table_name),
  parent_column text,
  owner_column text,
  branch_column text,
  sync_order integer not null unique,
  conflict_strategy sync.conflict_strategy not null default 'client_wins',
  merge_fallback sync.merge_fallback not null default 'client',
  registered_at timestamptz not null default now(),
  constraint child_tables_name_their_parent check (
    (scope = 'child') = (parent_table is not null and parent_column is not null)
  ),
  constraint owned_tables_name_owner_and_branch check (
    scope <> 'owned' or (owner_column is not null and branch_column is not null)
  ),
  constraint branch_tables_name_their_branch check (scope <> 'branch' or branch_column is not null)
);
comment on table sync.tables is
  'The registry of syncable tables (all in schema public). One row per table, written by sync.register_table(); parents sort before children in sync_order. A DBA changes a table''s conflict strategy with one update of this table.';
comment on column sync.tables.entity_name is 'Protocol 1 entityType (camelCase singular, e.g. keyPerson); snake_case spellings are accepted too.';
create index tables_parent_table_idx on sync.tables (parent_table);

-- The app's roles, as data: what each may reach and do. The engine knows no role by name; an app
-- adds a role with an insert here (and its field rules), and says who has which role through the
-- hook sync.app_caller (see the caller-scope migration).
create type sync.reach as enum ('own', 'branches', 'all');
comment on type sync.reach is
  'How far a role sees rows of owned tables: own (the rows it owns), branches (the rows of its branches), all. Branch tables: all, or its branches; shared tables: every role.';

create table sync.roles (
  role text primary key check (role ~ '^[a-z][a-z0-9_]{0,31}$'),
  reach sync.reach not null,
  writes boolean not null default true,
  resolves_conflicts boolean not null default false,
  note text check (length(note) <= 1000)
);
comment on table sync.roles is
  'The app''s roles: reach (own, branches, all: which rows the role sees), writes (false: reads only), resolves_conflicts (may settle conflicts it can see with resolve_conflict). Written by the app''s migrations.';

-- The field-rule matrix: role x table x column -> may write. '*' is the rule for every column of
-- the table that has no row of its own. Missing rules deny (fail closed).
create table sync.field_rules (
  app_role text not null references sync.roles (role) on delete cascade,
  table_name text not null references sync.tables (table_name) on delete cascade,
  column_name text not null,
  may_write boolean not null,
  note text,
  primary key (app_role, table_name, column_name)
);
comment on table sync.field_rules is
  'Field-level write rules: may role app_role change column_name of table_name? column_name ''*'' covers the table''s other columns. Enforced by sync.enforce_field_rules() on every write path; service_role is unrestricted.';
create index field_rules_table_name_idx on sync.field_rules (table_name);

-- The columns every syncable table carries and that only the database writes.
create function sync.server_columns() returns text[]
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select array['id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by', 'deleted_at', 'change_xid']
$$;
comment on function sync.server_columns() is
  'Columns owned by the database on every syncable table; never taken from client data.';

revoke all on all tables in schema sync from public, anon, authenticated, service_role;
grant select on sync.tables, sync.field_rules, sync.roles to authenticated, service_role;
revoke all on function sync.server_columns() from public;
grant execute on function sync.server_columns() to authenticated, service_role;

-- The matrix as a DBA reads it: one row per role, syncable table and client-writable column.
create view sync.field_rule_matrix
with (security_invoker = true)
as
select roles.app_role,
       t.table_name,
       a.attname::text as column_name,
       coalesce(exact.may_write, star.may_write, false) as may_write,
       coalesce(exact.note, star.note) as note,
       exact.may_write is null and star.may_write is null as unruled
  from sync.tables t
  join pg_catalog.pg_attribute a
    on a.attrelid = ('public.' || quote_ident(t.table_name))::regclass
   and a.attnum > 0 and not a.attisdropped
   and a.attname <> all (sync.server_columns())
 cross join (select r.role as app_role from sync.roles r) roles
  left join sync.field_rules exact
    on exact.app_role = roles.app_role and exact.table_name = t.table_name and exact.column_name = a.attname
  left join sync.field_rules star
    on star.app_role = roles.app_role and star.table_name = t.table_name and star.column_name = '*';
comment on view sync.field_rule_matrix is
  'Every cell of the field-rule matrix (role x syncable table x client column) with the rule that decides it; unruled cells deny.';
grant select on sync.field_rule_matrix to authenticated, service_role;
