-- Operational settings of the sync engine, one row, changed by a DBA with one update.

create table sync.settings (
  singleton boolean primary key default true check (singleton),
  cursor_secret bytea not null default extensions.gen_random_bytes(32),
  schema_epoch integer not null default 1,
  tombstone_retention interval not null default '90 days',
  idempotency_retention interval not null default '90 days',
  conflict_retention interval not null default '365 days',
  purged_through_xid xid8 not null default '0',
  max_push_ops integer not null default 1000 check (max_push_ops > 0),
  default_pull_limit integer not null default 500 check (default_pull_limit > 0),
  max_pull_limit integer not null default 2000 check (max_pull_limit >= default_pull_limit),
  max_pull_bytes integer not null default 4194304 check (max_pull_bytes >= 1024)
);
comment on table sync.settings is
  'Sync engine settings. cursor_secret signs pull cursors (rotate it after a leak: every cursor then answers invalid_cursor); bump schema_epoch to send every device back to a full pull (resync_required); purged_through_xid is the newest change the retention purge removed: older cursors must resync.';
comment on column sync.settings.max_pull_bytes is
  'Most bytes of JSON the changes of one pull page add up to (4 MiB); a single larger change travels alone on its page.';
insert into sync.settings default values;
revoke all on sync.settings from public, anon, authenticated, service_role;

-- Request-level errors raised by the SQL API carry a SQLSTATE of their own, so the Edge Function
-- and RPC callers can tell them apart. The map is the registry of supabase/functions/sync/error_codes.ts
-- (error_codes.test.ts holds the two together), kept here as data the engine and the tests read.
create function sync.request_error_codes() returns table (code text, sqlstate text)
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  values ('invalid_request', 'SYRQ1'),
         ('invalid_cursor', 'SYCR1'),
         ('unsupported_protocol', 'SYPR1'),
         ('too_large', 'SYLM1'),
         ('missing_token', 'SYAU1'),
         ('not_staff', 'SYST1'),
         ('account_inactive', 'SYST2')
$$;
comment on function sync.request_error_codes() is
  'The request-level error codes the SQL API raises and the SQLSTATE of each (the registry: supabase/functions/sync/error_codes.ts): SYRQ1 invalid_request, SYCR1 invalid_cursor, SYPR1 unsupported_protocol, SYLM1 too_large, SYAU1 missing_token (no user in the claims), SYST1 not_staff, SYST2 account_inactive.';

-- The bounds of a request's values, the protocol's and not a DBA's to tune: the same numbers as the
-- function's schemas (REQUEST_LIMITS in supabase/functions/sync/contract.ts; contract.test.ts holds
-- the two together), so a body is refused alike at either door. Names and cursors are counted in
-- bytes of UTF-8, as PostgreSQL counts an identifier (63 bytes at most) and as JavaScript and SQL
-- count alike; whole numbers go up to 2^53 - 1, the largest JavaScript reads exactly.
create function sync.request_limits(out name_bytes integer, out cursor_bytes integer, out whole_number_max bigint,
                                    out pull_limit_max integer, out pull_tables_max integer)
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select 63, 65536, 9007199254740991, 1000000, 100
$$;
comment on function sync.request_limits() is
  'The bounds of a request''s values, as the function''s schemas have them (contract.ts, REQUEST_LIMITS): a table or entity name of at most name_bytes bytes, a cursor of at most cursor_bytes, whole numbers (versions, legacy item ids) up to whole_number_max (2^53 - 1), a pull limit up to pull_limit_max and at most pull_tables_max tables.';

-- Volatile: it exists to raise. Declared immutable, a call with constant arguments was evaluated by
-- the planner, so a query that called it in a branch no row takes raised while being planned.
-- A code outside the map is the engine's own mistake, not the client's: it fails as one (XX000,
-- which the function answers as 500 internal) instead of passing for an invalid request.
create function sync.request_error(p_code text, p_message text, p_details jsonb default null) returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_sqlstate text := (select c.sqlstate from sync.request_error_codes() c where c.code = p_code);
begin
  if v_sqlstate is null then
    raise exception using errcode = 'XX000',
      message = format('sync.request_error: %L is not a request error code (sync.request_error_codes)', p_code);
  end if;
  raise exception using
    errcode = v_sqlstate,
    message = p_message,
    detail = coalesce(p_details, '[]'::jsonb)::text;
end
$$;
comment on function sync.request_error(text, text, jsonb) is
  'Raises a request-level error of the sync API: the code''s SQLSTATE (sync.request_error_codes), the message, and the details (JSON) as DETAIL.';

-- The settings the engine reads on every request (only what clients may know).
create function sync.limits(out max_push_ops integer, out default_pull_limit integer, out max_pull_limit integer,
                            out schema_epoch integer, out purged_through_xid xid8, out max_pull_bytes integer)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.max_push_ops, s.default_pull_limit, s.max_pull_limit, s.schema_epoch, s.purged_through_xid, s.max_pull_bytes
    from sync.settings s
$$;

comment on function sync.limits() is
  'The engine''s limits from sync.settings (push ops, pull page sizes and bytes, schema epoch, purge horizon), readable without the settings'' secret.';
grant execute on function sync.request_error(text, text, jsonb), sync.limits(), sync.request_limits() to authenticated, service_role;
