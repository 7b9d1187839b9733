-- The pull: changes since an opaque, signed cursor, in pages, complete under concurrency.
--
-- Completeness: every write stamps the row with its transaction id (change_xid), and a cursor holds
-- the database snapshot it was issued at. The next pull delivers exactly the rows whose change_xid
-- was not visible in the cursor's snapshot and is visible in the current one, i.e. every change
-- committed in between, whatever order the writing transactions began or committed in. A
-- transaction still open at the cursor's snapshot is in its in-progress list, so its rows come with
-- the pull after it commits; nothing is skipped and nothing waits for unrelated open transactions.
-- While a pull pages, its upper snapshot stays fixed; what commits meanwhile comes in the next cycle.

-- What a cursor holds: where the device's data stands (the snapshot it was delivered up to), where
-- a cycle of pages stands within its window, and what the cursor is bound to (user, schema epoch,
-- tables, scope). A cursor is this position's text form, signed:
-- base64url(text) "." base64url(hmac-sha256(text, settings.cursor_secret)). The composite's text form
-- names no field, which keeps the cursor short, and every attribute's type prints the same whatever
-- the session's settings (no dates, no floats), so the same position always signs to the same cursor.
-- Devices hold cursors across server upgrades, and the text form is read by position: a migration
-- that changes this type keeps user_id and schema_epoch its first two attributes and bumps
-- sync.settings.schema_epoch. A cursor of the old shape then either no longer reads or reads with
-- the old epoch, and either way its device resyncs instead of resuming at a misread position.
create type sync.pull_position as (
  user_id uuid,
  schema_epoch integer,
  tables_key text,
  scope_key text,
  since_snapshot pg_snapshot,
  until_snapshot pg_snapshot,
  phase text,
  table_name text,
  after_xid xid8,
  after_id uuid,
  entry_xid xid8,
  entry_id bigint,
  below_order integer,
  below_id uuid
);
comment on type sync.pull_position is
  'What a pull cursor holds (signed by sync.sign_cursor, read back by sync.read_cursor): the snapshot the device''s data is complete up to, the position of a cycle of pages that is not finished, and what the cursor is bound to. Between cycles only the binding and since_snapshot are set.';
comment on column sync.pull_position.user_id is
  'The user the cursor was issued to; anyone else presenting it gets invalid_cursor.';
comment on column sync.pull_position.schema_epoch is
  'sync.settings.schema_epoch when issued; a cursor of another epoch resyncs.';
comment on column sync.pull_position.tables_key is
  'md5 of the pulled tables in sync order; a cursor presented with another tables set resyncs.';
comment on column sync.pull_position.scope_key is
  'md5 of the caller''s role and branches when issued; after either changes the cursor resyncs (the rows gained or lost did not change themselves).';
comment on column sync.pull_position.since_snapshot is
  'Every commit visible in this snapshot has been delivered: the window starts here. Null on a first pull, which has no window start.';
comment on column sync.pull_position.until_snapshot is
  'Within a cycle: the snapshot the cycle delivers up to, fixed while it pages. Null between cycles (the next pull takes the current snapshot).';
comment on column sync.pull_position.phase is
  'Within a cycle: the phase the next page resumes, rows (a table''s rows), own (evictions of the caller''s own writes after a table) or scope (the window''s scope changes).';
comment on column sync.pull_position.table_name is
  'Phases rows and own: the table the next page resumes in.';
comment on column sync.pull_position.after_xid is
  'Phases rows and own: the change_xid of the last row delivered in table_name (with after_id, the position in cursor order).';
comment on column sync.pull_position.after_id is
  'Phases rows and own: the id of the last row delivered in table_name.';
comment on column sync.pull_position.entry_xid is
  'Phase scope: the change_xid of the last scope-change entry passed.';
comment on column sync.pull_position.entry_id is
  'Phase scope: the id of the last scope-change entry passed.';
comment on column sync.pull_position.below_order is
  'Phase scope, when a page stopped within the rows below the entry''s row: the sync order of the table of the last row delivered.';
comment on column sync.pull_position.below_id is
  'Phase scope, with below_order: the id of the last row delivered below the entry''s row.';

create function sync.b64url(p_bytes bytea) returns text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select rtrim(translate(encode(p_bytes, 'base64'), E'+/\n', '-_'), '=')
$$;

comment on function sync.b64url(bytea) is
  'Bytes to base64url text without padding (cursor encoding).';
create function sync.b64url_decode(p_text text) returns bytea
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
  select decode(rpad(translate(p_text, '-_', '+/'), (length(p_text) + 3) / 4 * 4, '='), 'base64')
$$;

comment on function sync.b64url_decode(text) is
  'base64url text to bytes (cursor encoding).';
create function sync.sign_cursor(p_position sync.pull_position) returns text
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select sync.b64url(b.body) || '.' || sync.b64url(extensions.hmac(b.body, s.cursor_secret, 'sha256'))
    from sync.settings s, (select convert_to(p_position::text, 'UTF8') as body) b
$$;

comment on function sync.sign_cursor(sync.pull_position) is
  'A cursor for a pull position: base64url(its text form).base64url(hmac-sha256(that text, sync.settings.cursor_secret)).';
-- The position in a cursor this server issued to the caller, or null for one it signed in a form it
-- no longer reads; anything else is invalid_cursor.
create function sync.read_cursor(p_cursor text) returns sync.pull_position
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := string_to_array(p_cursor, '.');
  v_body bytea;
  v_position sync.pull_position;
begin
  begin
    if cardinality(v_parts) <> 2 or p_cursor !~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' then
      raise exception 'malformed';
    end if;
    v_body := sync.b64url_decode(v_parts[1]);
    -- Base64 leaves spare bits in the last character of most lengths, and decode() ignores them: a
    -- cursor altered there would decode to the signed body. Only the encoding this server issued is one.
    if sync.b64url(v_body) <> v_parts[1] then
      raise exception 'not canonical';
    end if;
    if sync.b64url(extensions.hmac(v_body, (select s.cursor_secret from sync.settings s), 'sha256')) <> v_parts[2] then
      raise exception 'bad signature';
    end if;
  exception when others then
    perform sync.request_error('invalid_cursor', 'the cursor was not issued by this server or was altered');
  end;
  begin
    v_position := convert_from(v_body, 'UTF8')::sync.pull_position;
  exception when others then
    -- The signature says this server issued it, so the device did nothing wrong: it holds a cursor
    -- of an earlier release (before this type the state was JSON) or of another shape of this type.
    -- Nothing in it can be read as a position any more, so the device starts over, as after a schema
    -- epoch change: null, which the pull answers with resync_required.
    return null;
  end;
  if v_position.user_id is distinct from auth.uid() then
    perform sync.request_error('invalid_cursor', 'the cursor was issued to another user');
  end if;
  return v_position;
end
$$;

comment on function sync.read_cursor(text) is
  'The position in a cursor this server issued to the caller, verified (canonical encoding, signature); null for one it signed in a form it no longer reads (the pull then answers resync_required); raises SYCR1 otherwise.';
