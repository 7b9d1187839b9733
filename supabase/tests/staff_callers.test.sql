-- Sync serves staff: a signed-in user with a live staff profile whose account is neither banned nor
-- deleted. Anyone else with a valid token (any user who signed up, a staff member who left, a
-- banned or deleted account) is refused on every push and pull before anything is written: SYST1
-- (not_staff, 403) without a profile, SYST2 (account_inactive, 403) for a closed profile or a
-- banned, deleted or missing account.
begin;
select plan(21);

-- The callers, made by the table owner.
select tests.clear_authentication();
insert into auth.users (id, email) values ('5a000000-0000-4000-8000-000000000001', 'signed.up@example.com');
select tests.create_staff('left.jakarta@crm.test', 'rm', 'JKT');
update public.profiles set deleted_at = now() where id = tests.user_id('left.jakarta@crm.test');
select tests.create_staff('banned.jakarta@crm.test', 'rm', 'JKT');
update auth.users set banned_until = now() + interval '1 day' where id = tests.user_id('banned.jakarta@crm.test');
select tests.create_staff('unbanned.jakarta@crm.test', 'rm', 'JKT');
update auth.users set banned_until = now() - interval '1 second' where id = tests.user_id('unbanned.jakarta@crm.test');
select tests.create_staff('deleted.jakarta@crm.test', 'rm', 'JKT');
update auth.users set deleted_at = now() where id = tests.user_id('deleted.jakarta@crm.test');

-- As a caller whose token names this user id (the user row need not exist).
create function pg_temp.act_as(p_id uuid) returns void
language sql
as $$
  select set_config('role', 'authenticated', true),
         set_config('request.jwt.claims',
                    json_build_object('sub', p_id, 'role', 'authenticated', 'aud', 'authenticated')::text, true)
$$;

create function pg_temp.one_insert(p_op_id uuid) returns jsonb
language sql
as $$
  select tests.push_body(jsonb_build_array(tests.op(p_op_id, 'insert', 'customers', p_op_id, null, '{"name": "PT Not Staff"}')))
$$;

grant execute on function pg_temp.act_as(uuid), pg_temp.one_insert(uuid) to authenticated;

-- Without a profile.
select pg_temp.act_as('5a000000-0000-4000-8000-000000000001');
select throws_ok(
  $$ select public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c001')) $$,
  'SYST1', 'sync serves the app''s users: this user has none of its roles',
  'a signed-up user without a staff profile may not push (SYST1)'
);
select throws_ok(
  $$ select public.sync_push(tests.push_body('[]')) $$,
  'SYST1', 'sync serves the app''s users: this user has none of its roles',
  'not even an empty push'
);
select throws_ok(
  $$ select public.sync_push('{"protocol": 1, "client_id": "c0000000-0000-4000-8000-000000000001", "items": [
       {"id": 1, "entityType": "customer", "entityId": "f0000000-0000-4000-8000-00000000c002", "operation": "create",
        "payload": {"name": "PT Legacy Not Staff"}, "createdAt": "2026-01-01T00:00:00Z"}]}') $$,
  'SYST1', 'sync serves the app''s users: this user has none of its roles',
  'nor a legacy (protocol 1) push'
);
select throws_ok(
  $$ select public.sync_push('{"protocol": 2}') $$,
  'SYST1', 'sync serves the app''s users: this user has none of its roles',
  'the caller is refused before the request is read'
);
select throws_ok(
  $$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYST1', 'sync serves the app''s users: this user has none of its roles',
  'a user without a staff profile may not pull (SYST1)'
);

-- Staff who left, or whose account is banned, deleted or gone.
select pg_temp.act_as(tests.user_id('left.jakarta@crm.test'));
select throws_ok($$ select public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c011')) $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'a staff member whose profile is closed (deleted_at) may not push (SYST2)');
select throws_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'nor pull');

select pg_temp.act_as(tests.user_id('banned.jakarta@crm.test'));
select throws_ok($$ select public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c021')) $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'a banned user (banned_until in the future) may not push');
select throws_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'nor pull');

select pg_temp.act_as(tests.user_id('deleted.jakarta@crm.test'));
select throws_ok($$ select public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c031')) $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'a deleted user (auth.users.deleted_at) may not push');
select throws_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'nor pull');

select pg_temp.act_as('5a000000-0000-4000-8000-0000000000ff');
select throws_ok($$ select public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c041')) $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'a token of a user that no longer exists may not push');
select throws_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$,
  'SYST2', 'this account is not active: the app closed it, or the user is banned or deleted',
  'nor pull');

-- Nothing of the refused requests was written.
select tests.clear_authentication();
select is(
  (select count(*)::int from sync.applied_ops
    where user_id in ('5a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-0000000000ff',
                      tests.user_id('left.jakarta@crm.test'), tests.user_id('banned.jakarta@crm.test'),
                      tests.user_id('deleted.jakarta@crm.test'))),
  0,
  'a refused caller leaves no idempotency record'
);
select is(
  (select count(*)::int from public.customers
    where id in ('0e000000-0000-4000-8000-00000000c001', 'f0000000-0000-4000-8000-00000000c002', '0e000000-0000-4000-8000-00000000c011',
                 '0e000000-0000-4000-8000-00000000c021', '0e000000-0000-4000-8000-00000000c031', '0e000000-0000-4000-8000-00000000c041')),
  0,
  'and no row'
);

-- An expired ban, and live staff, sync as before.
select pg_temp.act_as(tests.user_id('unbanned.jakarta@crm.test'));
select is(
  public.sync_push(pg_temp.one_insert('0e000000-0000-4000-8000-00000000c051')) #>> '{results,0,status}',
  'applied',
  'a user whose ban has expired pushes again'
);
select lives_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null, "limit": 1}') $$, 'and pulls');
select tests.authenticate_as('rm1.jakarta@crm.test');
select lives_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null, "limit": 1}') $$, 'a live rm pulls');
select lives_ok($$ select public.sync_push(tests.push_body('[]')) $$, 'and pushes');

-- A caller with no user at all is still told to sign in first.
select tests.authenticate_without_user();
select throws_ok($$ select public.sync_push(tests.push_body('[]')) $$, 'SYAU1', 'a push needs a signed-in user',
  'a token without a user is SYAU1, as before');
select throws_ok($$ select public.sync_pull('{"protocol": 2, "cursor": null}') $$, 'SYAU1', 'a pull needs a signed-in user',
  'for a pull too');

select * from finish();
rollback;
