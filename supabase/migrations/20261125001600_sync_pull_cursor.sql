-- The pull: changes since an opaque, signed cursor, in pages, complete under concurrency.
--
-- Completeness: every write stamps the row with its transaction id (change_xid), and a cursor holds
-- the database snapshot it was issued at. The next pull delivers exactly the rows whose change_xid
-- was not visible in the cursor's snapshot and is visible in the current one, i.e. every change
-- committed in between, whatever order the writing transactions began or committed in. A
-- transaction still open at the cursor's snapshot is in its in-progress list, so its rows come with
-- the pull after it commits; nothing is skipped and nothing waits for unrelated open transactions.
-- While a pull pages, its upper snapshot stays fixed; what commits meanwhile comes in the next cycle.

-- Cursor = base64url(json) "." base64url(hmac-sha256(json, settings.cursor_secret)).
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
create function sync.sign_cursor(p_state jsonb) returns text
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select sync.b64url(convert_to(p_state::text, 'UTF8')) || '.' ||
         sync.b64url(extensions.hmac(convert_to(p_state::text, 'UTF8'), s.cursor_secret, 'sha256'))
    from sync.settings s
$$;

comment on function sync.sign_cursor(jsonb) is
  'A cursor for a pull state: base64url(json).base64url(hmac-sha256(json, sync.settings.cursor_secret)).';
-- The state in a cursor this server issued to the caller; anything else is invalid_cursor.
create function sync.read_cursor(p_cursor text) returns jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := string_to_array(p_cursor, '.');
  v_body bytea;
  v_state jsonb;
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
    v_state := convert_from(v_body, 'UTF8')::jsonb;
  exception when others then
    perform sync.request_error('invalid_cursor', 'the cursor was not issued by this server or was altered');
  end;
  if (v_state ->> 'u')::uuid is distinct from auth.uid() then
    perform sync.request_error('invalid_cursor', 'the cursor was issued to another user');
  end if;
  return v_state;
end
$$;

comment on function sync.read_cursor(text) is
  'The state of a cursor this server issued, verified (canonical encoding, signature); raises SYCR1 otherwise.';
