-- Who may call what. Client roles (anon, authenticated) reach the engine only through the public
-- API, whose functions run as sync_engine (security definer); the engine's internals are
-- executable by that role alone. A few functions stay callable by the client roles because
-- PostgreSQL runs them as the querying role: the helpers row-level security policies call, and the
-- ones the field-rule and tombstone triggers (which must know who writes) call. Each of those tells
-- the caller nothing about others and writes nothing. supabase/tests/client_privileges.test.sql
-- walks the catalog and holds the list to this.
-- This migration comes last among the engine's: it settles the grants of every function above it.
-- Functions created later are executable by no one until granted (see the default privileges in
-- the schema migration); sync.register_table grants what it generates to sync_engine.

revoke execute on all functions in schema sync from public, anon, authenticated, service_role;
grant execute on all functions in schema sync to sync_engine;
-- Maintenance and registration are the owner's: the engine never alters tables or purges.
revoke execute on function
  sync.register_table(regclass, text, sync.scope_kind, regclass, text, text, text, sync.conflict_strategy),
  sync.refresh_change_probes(), sync.refresh_bulk_writers(),
  sync.shape_problems(regclass, text, text, text), sync.has_leading_index(regclass, text[]),
  sync.purge_expired(timestamptz), sync.attach_value_checks(regclass), sync.refresh_bulk_writer(text)
  from sync_engine;

grant execute on function
  -- row-level security policies
  sync.current_app_role(), sync.current_reach(), sync.current_branch_ids(), sync.caller_writes(),
  sync.valid_assignment(uuid, uuid),
  -- column defaults (a new row is in its author's branch)
  sync.current_branch_id(),
  -- the triggers that run as the writer
  sync.server_columns(), sync.denied_columns(text, text, text[]), sync.assert_may_write(text, text, text[]),
  sync.is_api_role(), sync.statement_field_rules(text),
  -- the review views (run as sync_engine, but their function calls as the querying role)
  sync.session_reads_all()
  to authenticated, service_role;

-- The public API runs as the engine.
alter function public.sync_push(jsonb) security definer;
alter function public.sync_push(jsonb) owner to sync_engine;
alter function public.sync_pull(jsonb) security definer;
alter function public.sync_pull(jsonb) owner to sync_engine;
alter function public.resolve_conflict(uuid, text, jsonb) security definer;
alter function public.resolve_conflict(uuid, text, jsonb) owner to sync_engine;
revoke all on function public.sync_push(jsonb), public.sync_pull(jsonb), public.resolve_conflict(uuid, text, jsonb)
  from public, anon;
grant execute on function public.sync_push(jsonb), public.sync_pull(jsonb), public.resolve_conflict(uuid, text, jsonb)
  to authenticated, service_role;

-- The engine reads and writes, as the caller, what the caller may: it is a member of authenticated.
-- The internals it keeps it reaches through the security definer functions above.

-- RLS does not apply to TRUNCATE; no client adds triggers or foreign keys to these tables either.
revoke truncate, trigger, references on all tables in schema public from public, anon, authenticated;
revoke truncate, trigger, references on all tables in schema sync from public, anon, authenticated;
alter default privileges in schema public revoke truncate, trigger, references on tables from public, anon, authenticated;
