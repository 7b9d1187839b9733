-- The pull door for RPC callers: public.sync_pull(payload) as the signed-in user, and the health
-- probe public.sync_health(). Request-level problems raise SYRQ1 (400 invalid_request), SYCR1
-- (400 invalid_cursor), SYPR1 (426) or SYAU1 (401); a pull returns only what the caller may see.
begin;
select plan(52);


-- Pulls until has_more is false, one row per page.
create function tests.pull_pages(p_payload jsonb) returns table (page integer, answer jsonb)
language plpgsql
as $$
declare
  v_cursor jsonb := coalesce(p_payload -> 'cursor', 'null');
begin
  page := 0;
  loop
    page := page + 1;
    answer := public.sync_pull(p_payload || jsonb_build_object('cursor', v_cursor));
    return next;
    exit when not (answer ->> 'has_more')::boolean or page >= 100;
    v_cursor := answer -> 'cursor';
  end loop;
end
$$;
grant execute on function tests.pull_pages(jsonb) to anon, authenticated, service_role;

create temp table pulled (name text, page integer, answer jsonb not null) on commit drop;
grant all on pulled to authenticated, service_role;

-- The door: a security-invoker function, closed to anon.
select has_function('public', 'sync_pull', array['jsonb'], 'public.sync_pull(payload jsonb) exists');
select function_returns('public', 'sync_pull', array['jsonb'], 'json', 'sync_pull returns the pull response as json (built as text, never parsed again)');
select is_definer('public', 'sync_pull', array['jsonb'], 'sync_pull runs as the engine, whose internals no client may call');
select is((select pg_get_userbyid(proowner)::text from pg_proc where oid = 'public.sync_pull(jsonb)'::regprocedure), 'sync_engine',
          'sync_pull runs as sync_engine, a member of authenticated: RLS decides by the caller''s claims what it returns');

select tests.authenticate_as_anon();
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  '42501', 'permission denied for function sync_pull',
  'anon may not execute sync_pull'
);

select tests.authenticate_as_service_role();
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYAU1', 'a pull needs a signed-in user',
  'a caller with no user (the service role) gets SYAU1'
);

select tests.authenticate_without_user();
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYAU1', 'a pull needs a signed-in user',
  'the authenticated role with no sub in its claims gets SYAU1'
);

-- Request-level errors, as rm1.jakarta.
select tests.authenticate_as('rm1.jakarta@crm.test');

select is(
  tests.sync_error('sync_pull', '[]'),
  '{"sqlstate": "SYRQ1", "message": "the body must be a JSON object", "details": [{"path": [], "message": "expected object"}]}',
  'a body that is not an object is SYRQ1 invalid_request'
);
select is(
  tests.sync_error('sync_pull', '{"cursor": null}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["protocol"], "message": "expected 1 or 2"}]}',
  'a pull without protocol is SYRQ1 naming protocol'
);
select throws_ok(
  $$ select public.sync_pull('{"protocol": 3, "cursor": null}') $$,
  'SYPR1', 'protocol 3 is not served; supported: [1,2]',
  'protocol 3 is SYPR1 unsupported_protocol'
);
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": 5, "limit": 0, "tables": "customers"}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["cursor"], "message": "expected a string or null"}, {"path": ["limit"], "message": "expected a whole number from 1 to 1000000"}, {"path": ["tables"], "message": "expected an array of table names"}]}',
  'a cursor that is not a string, a limit of 0 and tables that is not an array are SYRQ1 naming each'
);
select is(
  tests.sync_error('sync_pull', '{"protocol": 2, "cursor": null, "limit": 1.5, "tables": ["customers", "no_such_table", 3]}'),
  '{"sqlstate": "SYRQ1", "message": "the pull request is not valid", "details": [{"path": ["limit"], "message": "expected a whole number from 1 to 1000000"}, {"path": ["tables", 1], "message": "not a syncable table"}, {"path": ["tables", 2], "message": "not a syncable table"}]}',
  'a fractional limit and unknown tables are SYRQ1 naming each'
);

-- A full pull of customers: exactly the live rows the caller may see.
insert into pulled select 'full', p.page, p.answer from tests.pull_pages('{"protocol": 2, "cursor": null, "tables": ["customers"], "limit": 2000}') p;
select is((select count(*)::int from pulled where name = 'full'), 1, 'a full pull within the limit is one page');
select is(
  (select jsonb_build_array(answer -> 'has_more', answer -> 'resync_required', jsonb_typeof(answer -> 'cursor')) from pulled where name = 'full'),
  '[false, false, "string"]',
  'the last page has has_more false, resync_required false and a cursor'
);
select set_eq(
  $$ select (c -> 'row' ->> 'id')::uuid from pulled, jsonb_array_elements(answer -> 'changes') c where name = 'full' $$,
  $$ select id from public.customers where deleted_at is null $$,
  'a full pull returns every live customer the caller can read, and only those'
);
select is(
  (select count(*)::int from pulled, jsonb_array_elements(answer -> 'changes') c
    where name = 'full' and (c ->> 'table' <> 'customers' or c ->> 'op' <> 'upsert')),
  0, 'a full pull of customers is upserts of customers only'
);
select is(
  (select c -> 'row' from pulled, jsonb_array_elements(answer -> 'changes') c
    where name = 'full' and c -> 'row' ->> 'id' = '00000000-0000-4000-8100-000000000004'),
  (select to_jsonb(c) - 'change_xid' from public.customers c where c.id = '00000000-0000-4000-8100-000000000004'),
  'an upsert carries the row as the caller reads it (without the internal change_xid)'
);
select tests.clear_authentication();
select is(
  (select count(*)::int from pulled, jsonb_array_elements(answer -> 'changes') c
    where name = 'full' and (c -> 'row' ->> 'assigned_rm_id')::uuid is distinct from tests.user_id('rm1.jakarta@crm.test')),
  0, 'an rm pulls no other rm''s customer'
);
select cmp_ok(
  (select count(*)::int from public.customers where assigned_rm_id <> tests.user_id('rm1.jakarta@crm.test')), '>', 0,
  'there are other rms'' customers to leave out'
);

-- Paging: has_more until the last page; the pages together are the full pull, each row once.
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pulled select 'paged', p.page, p.answer from tests.pull_pages('{"protocol": 2, "cursor": null, "tables": ["customers"], "limit": 30}') p;
select is(
  (select count(*)::int from pulled where name = 'paged'),
  (select ceil(jsonb_array_length(answer -> 'changes') / 30.0)::int from pulled where name = 'full'),
  'a pull of limit 30 takes as many pages as 30 rows fill'
);
select is(
  (select array_agg((answer ->> 'has_more')::boolean order by page) from pulled where name = 'paged'),
  (select array_agg(g < x.n order by g) from (select count(*)::int as n from pulled where name = 'paged') x, generate_series(1, x.n) g),
  'has_more is true on every page but the last'
);
select ok(
  (select bool_and(jsonb_array_length(answer -> 'changes') <= 30) from pulled where name = 'paged'),
  'no page is larger than its limit'
);
select set_eq(
  $$ select c -> 'row' ->> 'id' from pulled, jsonb_array_elements(answer -> 'changes') c where name = 'paged' $$,
  $$ select c -> 'row' ->> 'id' from pulled, jsonb_array_elements(answer -> 'changes') c where name = 'full' $$,
  'the pages together hold the full pull'
);
select is(
  (select count(*)::int from pulled, jsonb_array_elements(answer -> 'changes') c where name = 'paged'),
  (select count(distinct c -> 'row' ->> 'id')::int from pulled, jsonb_array_elements(answer -> 'changes') c where name = 'paged'),
  'no row comes twice across the pages'
);

-- Nothing changed since the cursor: an empty delta.
insert into pulled select 'delta', 1, public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb,
  'cursor', (select answer -> 'cursor' from pulled where name = 'paged' order by page desc limit 1)));
select is(
  (select (answer - 'server_time' - 'cursor') from pulled where name = 'delta'),
  '{"changes": [], "has_more": false, "resync_required": false}',
  'an unchanged dataset gives changes [] and has_more false'
);
select is((select jsonb_typeof(answer -> 'cursor') from pulled where name = 'delta'), 'string',
          'an empty delta still hands back a cursor');
select ok((select (answer ->> 'server_time')::timestamptz between now() and clock_timestamp() from pulled where name = 'delta'),
          'server_time comes from the database clock');

-- The server clamps the limit to sync.settings.max_pull_limit and defaults it to default_pull_limit.
select tests.clear_authentication();
update sync.settings set default_pull_limit = 5, max_pull_limit = 10;
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pulled select 'clamped', 1, public.sync_pull('{"protocol": 2, "cursor": null, "tables": ["customers"], "limit": 1000000}');
insert into pulled select 'default', 1, public.sync_pull('{"protocol": 2, "cursor": null, "tables": ["customers"]}');
select is(
  (select jsonb_build_array(jsonb_array_length(answer -> 'changes'), answer -> 'has_more') from pulled where name = 'clamped'),
  '[10, true]', 'a limit above max_pull_limit is clamped to it'
);
select is(
  (select jsonb_build_array(jsonb_array_length(answer -> 'changes'), answer -> 'has_more') from pulled where name = 'default'),
  '[5, true]', 'no limit means default_pull_limit'
);
select tests.clear_authentication();
update sync.settings set default_pull_limit = 500, max_pull_limit = 2000;

-- A page is bounded by bytes as well: sync.settings.max_pull_bytes (4 MiB), the DBA's setting.
select is((select max_pull_bytes from sync.limits()), 4194304, 'a page holds at most 4 MiB of changes by default');
update sync.settings set max_pull_bytes = 1024;
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into pulled select 'bytes', p.page, p.answer
  from tests.pull_pages('{"protocol": 2, "cursor": null, "tables": ["customers"], "limit": 1000}') p;
select is_empty(
  $$ select p.page from pulled p
      where p.name = 'bytes' and jsonb_array_length(p.answer -> 'changes') > 1
        and (select sum(octet_length(c::text)) from jsonb_array_elements(p.answer -> 'changes') c) > 1024 $$,
  'with max_pull_bytes 1024 no page of several changes holds more than 1024 bytes of them'
);
select is(
  (select jsonb_build_array(count(distinct c -> 'row' ->> 'id'), max(p.page) > 1)
     from pulled p, jsonb_array_elements(p.answer -> 'changes') c where p.name = 'bytes'),
  (select jsonb_build_array(count(*), true) from public.customers where deleted_at is null),
  'and every page makes progress: all of the caller''s customers arrive, over several pages where the limit alone takes one'
);
select tests.clear_authentication();
update sync.settings set max_pull_bytes = 4194304;

-- Cursors: only this server's, unaltered, for this user.
select tests.authenticate_as('rm1.jakarta@crm.test');
create temp table issued on commit drop as
  select answer ->> 'cursor' as cursor, null::text as forged from pulled where name = 'delta';
grant select on issued to authenticated;
-- The same state rewritten to another user, under the old signature (made by the owner: the
-- encoding helpers are the engine's).
select tests.clear_authentication();
update issued set forged =
  sync.b64url(convert_to(replace(convert_from(sync.b64url_decode(split_part(cursor, '.', 1)), 'UTF8'),
                                 tests.user_id('rm1.jakarta@crm.test')::text, tests.user_id('rm2.jakarta@crm.test')::text), 'UTF8'))
  || '.' || split_part(cursor, '.', 2);
select tests.authenticate_as('rm1.jakarta@crm.test');
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": "not-a-cursor", "tables": ["customers"]}') $$,
  'SYCR1', 'the cursor was not issued by this server or was altered',
  'a cursor that is not one of ours is SYCR1 invalid_cursor'
);
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": "abc.def", "tables": ["customers"]}') $$,
  'SYCR1', 'the cursor was not issued by this server or was altered',
  'a well-formed cursor with a wrong signature is SYCR1'
);
select throws_ok(
  $$ select public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor',
       (select left(cursor, -1) || case when right(cursor, 1) = 'A' then 'B' else 'A' end from issued))) $$,
  'SYCR1', 'the cursor was not issued by this server or was altered',
  'a cursor with one character of its signature changed is SYCR1'
);
select throws_ok(
  $$ select public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor',
       (select forged from issued))) $$,
  'SYCR1', 'the cursor was not issued by this server or was altered',
  'a cursor whose state was rewritten (to another user) under the old signature is SYCR1'
);
select tests.authenticate_as('rm2.jakarta@crm.test');
select throws_ok(
  $$ select public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', (select cursor from issued))) $$,
  'SYCR1', 'the cursor was issued to another user',
  'another user''s cursor is SYCR1: a cursor is bound to the user it was issued to'
);

-- What a cursor holds: the text form of a sync.pull_position (signed), named fields of real types.
select tests.clear_authentication();
create function tests.position_of(p_cursor text) returns sync.pull_position
language sql stable
as $$
  select convert_from(sync.b64url_decode(split_part(p_cursor, '.', 1)), 'UTF8')::sync.pull_position
$$;
select is(
  (select row(p.user_id, p.schema_epoch, p.tables_key, p.scope_key, p.since_snapshot is not null,
              p.until_snapshot, p.phase, p.table_name, p.after_xid, p.after_id, p.entry_xid, p.entry_id, p.below_order, p.below_id)::text
     from issued, tests.position_of(cursor) p),
  row(tests.user_id('rm1.jakarta@crm.test'), (select schema_epoch from sync.settings), md5('customers'),
      md5('rm/' || (select branch_id from public.profiles where id = tests.user_id('rm1.jakarta@crm.test'))),
      true, null, null, null, null, null, null, null, null, null)::text,
  'a cursor between cycles holds its user, schema epoch, tables, scope (digests) and the snapshot the device is complete up to, nothing else'
);
select is(
  (select sync.sign_cursor(tests.position_of(cursor)) from issued),
  (select cursor from issued),
  'the position read back from a cursor signs to the same cursor: its text form is canonical'
);
select is(
  (select row(p.phase, p.table_name, p.after_xid is not null, p.after_id is not null, p.since_snapshot, p.until_snapshot is not null)::text
     from pulled, tests.position_of(answer ->> 'cursor') p
    where name = 'paged' and page = 1),
  row('rows', 'customers', true, true, null, true)::text,
  'a first pull''s cursor within its cycle holds the phase, table and row it resumes after and the snapshot the cycle reads up to'
);

-- Devices hold cursors across an upgrade. One this server signed in a form it no longer reads (the
-- JSON state of the cursors before sync.pull_position, or any other body) was not altered and not
-- misused: its device resyncs, never an internal error. One with a wrong signature stays invalid.
create function tests.signed(p_body bytea) returns text
language sql stable
as $$
  select sync.b64url(p_body) || '.' || sync.b64url(extensions.hmac(p_body, s.cursor_secret, 'sha256')) from sync.settings s
$$;
create function tests.pull_outcome(p_cursor text) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_message text;
begin
  return public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', p_cursor))::jsonb
         - 'server_time';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
  return jsonb_build_object('sqlstate', v_state, 'message', v_message);
end
$$;
grant execute on function tests.pull_outcome(text) to authenticated;
create temp table unreadable (body text, cursor text) on commit drop;
grant select on unreadable to authenticated;
-- As the server before sync.pull_position signed them: after a cycle, and within one.
insert into unreadable (body)
  select jsonb_build_object('u', p.id, 'e', s.schema_epoch, 'k', md5('customers'), 's', p.role || '/' || p.branch_id,
                            'lo', pg_current_snapshot()::text)::text
    from public.profiles p, sync.settings s where p.id = tests.user_id('rm1.jakarta@crm.test')
  union all
  select jsonb_build_object('u', p.id, 'e', s.schema_epoch, 'k', md5('customers'), 's', p.role || '/' || p.branch_id,
                            'lo', pg_current_snapshot()::text, 'hi', pg_current_snapshot()::text, 'ph', 'rows',
                            't', 'customers', 'x', '0', 'i', '00000000-0000-0000-0000-000000000000')::text
    from public.profiles p, sync.settings s where p.id = tests.user_id('rm1.jakarta@crm.test');
update unreadable set cursor = tests.signed(convert_to(body, 'UTF8'));
create temp table garbled (body bytea, cursor text) on commit drop;
grant select on garbled to authenticated;
-- Bodies no server ever signed: not a record, a record of another shape or types, not UTF-8.
insert into garbled (body) values
  (convert_to('garbage', 'UTF8')), (convert_to('(', 'UTF8')), (convert_to('()', 'UTF8')),
  (convert_to('{}', 'UTF8')), (convert_to('null', 'UTF8')),
  (convert_to(format('(%s,1,x,y,1:1:,,,,,,,,)', tests.user_id('rm1.jakarta@crm.test')), 'UTF8')),
  (convert_to(format('(%s,1,x,y,1:1:,,,,,,,,,,)', tests.user_id('rm1.jakarta@crm.test')), 'UTF8')),
  (convert_to('(rm1,1,x,y,1:1:,,,,,,,,,)', 'UTF8')),
  (convert_to(format('(%s,one,x,y,not-a-snapshot,,,,,,,,,)', tests.user_id('rm1.jakarta@crm.test')), 'UTF8')),
  ('\xff28'::bytea);
update garbled set cursor = tests.signed(body);
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  (select jsonb_agg(tests.pull_outcome(cursor)) from unreadable),
  '[{"changes": [], "cursor": null, "has_more": false, "resync_required": true},
    {"changes": [], "cursor": null, "has_more": false, "resync_required": true}]',
  'a cursor this server signed before the position type, after a cycle or within one, asks for a resync'
);
select is(
  (select jsonb_agg(distinct tests.pull_outcome(cursor)) from garbled),
  '[{"changes": [], "cursor": null, "has_more": false, "resync_required": true}]',
  'so does any other body under this server''s signature that reads as no position: never an internal error'
);
select is(
  (select jsonb_agg(distinct tests.pull_outcome(left(cursor, -1) || case when right(cursor, 1) = 'A' then 'B' else 'A' end))
     from unreadable),
  '[{"message": "the cursor was not issued by this server or was altered", "sqlstate": "SYCR1"}]',
  'an old cursor with its signature altered is SYCR1, as any altered cursor'
);

-- A cursor for another set of tables, or from another schema epoch, asks for a full resync.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["pipelines"]'::jsonb, 'cursor', (select cursor from issued)))::jsonb
    - 'server_time',
  '{"changes": [], "cursor": null, "has_more": false, "resync_required": true}',
  'a cursor issued for other tables gets resync_required'
);
select tests.clear_authentication();
update sync.settings set schema_epoch = schema_epoch + 1;
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', (select cursor from issued)))
    ->> 'resync_required',
  'true',
  'a cursor from before a schema epoch change gets resync_required'
);
select tests.clear_authentication();
update sync.settings set schema_epoch = schema_epoch - 1;

-- Protocol 1 clients pull with the same request.
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  json_array_length(public.sync_pull('{"protocol": 1, "cursor": null, "tables": ["customers"], "limit": 2000}') -> 'changes'),
  (select jsonb_array_length(answer -> 'changes') from pulled where name = 'full'),
  'protocol 1 pulls the same changes'
);

-- Health: callable without a user, cheap, on the database clock.
select has_function('public', 'sync_health', '{}'::name[], 'public.sync_health() exists');
select is_definer('public', 'sync_health', '{}'::name[], 'sync_health is a definer, so anon reaches it without access to the sync schema');
select tests.authenticate_as_anon();
select lives_ok($$ select public.sync_health() $$, 'anon may call sync_health');
select is(
  (select jsonb_build_array(h ->> 'status', h -> 'protocols') from public.sync_health() h),
  '["ok", [1, 2]]', 'sync_health reports status ok and the protocols served'
);
select ok(
  (select (h ->> 'server_time')::timestamptz between now() and clock_timestamp() from public.sync_health() h),
  'sync_health reports the database clock'
);
select tests.authenticate_as('rm1.jakarta@crm.test');
select is((select public.sync_health() ->> 'status'), 'ok', 'a signed-in user may call sync_health');

select * from finish();
rollback;
