-- Helpers every test file uses to act as a given user or role the way PostgREST would:
-- `set local role` plus `request.jwt.claims` (with sub, role and aud). Committed once, before the
-- other files run; every other file is one transaction that rolls back.
begin;

-- npm test installs pgTAP itself; under `supabase test db` this file is the first to run.
create extension if not exists pgtap with schema extensions;

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.user_id(p_email text) returns uuid
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select u.id from auth.users u where lower(u.email) = lower(p_email)
$$;

-- Act as the signed-in user with this email, as PostgREST does for a user's access token.
create or replace function tests.authenticate_as(p_email text) returns void
language plpgsql
as $$
declare
  v_id uuid := tests.user_id(p_email);
begin
  if v_id is null then
    raise exception 'tests.authenticate_as: no user %', p_email;
  end if;
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims',
    json_build_object('sub', v_id, 'role', 'authenticated', 'aud', 'authenticated', 'email', p_email)::text, true);
end
$$;

-- Act as the engine acting for the signed-in user with this email: what the public API does once
-- called (it runs as sync_engine, with the caller's claims). For specs of the engine's internals,
-- which no client role may execute.
create or replace function tests.engine_acting_for(p_email text) returns void
language plpgsql
as $$
begin
  perform tests.authenticate_as(p_email);
  perform set_config('role', 'sync_engine', true);
end
$$;

-- Act as a caller with only the anon key.
create or replace function tests.authenticate_as_anon() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claims', json_build_object('role', 'anon', 'aud', 'authenticated')::text, true);
end
$$;

-- Act as a caller with the service role key.
create or replace function tests.authenticate_as_service_role() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'service_role', true);
  perform set_config('request.jwt.claims', json_build_object('role', 'service_role')::text, true);
end
$$;

-- Back to the session's own role (the table owner), with no claims.
create or replace function tests.clear_authentication() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
end
$$;

-- A new staff member with a profile; returns the user id.
create or replace function tests.create_staff(p_email text, p_role text, p_branch_code text) returns uuid
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid;
begin
  insert into auth.users (email) values (p_email) returning id into v_id;
  insert into public.profiles (id, role, branch_id, full_name, email)
  values (v_id, p_role, (select b.id from public.branches b where b.code = p_branch_code), p_email, p_email);
  return v_id;
end
$$;

-- What an RPC caller's error looks like when calling public.<p_function>(p_payload): SQLSTATE,
-- message and the JSON detail (the failing paths); null when the call succeeds.
create or replace function tests.sync_error(p_function text, p_payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_message text;
  v_detail text;
begin
  execute format('select public.%I($1)', p_function) using p_payload;
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_detail = pg_exception_detail;
  return jsonb_build_object('sqlstate', v_state, 'message', v_message, 'details', v_detail::jsonb);
end
$$;

-- The authenticated role with claims that name no user (a token without sub).
create or replace function tests.authenticate_without_user() returns void
language plpgsql
as $$
begin
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims', '{"role": "authenticated", "aud": "authenticated"}', true);
end
$$;

-- One protocol 2 op; base_version and data only when given.
create or replace function tests.op(p_op_id uuid, p_op text, p_table text, p_id uuid, p_base_version bigint default null,
                                    p_data jsonb default null) returns jsonb
language sql immutable
as $$
  select jsonb_build_object('op_id', p_op_id, 'table', p_table, 'op', p_op, 'id', p_id)
      || case when p_base_version is null then '{}' else jsonb_build_object('base_version', p_base_version) end
      || case when p_data is null then '{}' else jsonb_build_object('data', p_data) end
$$;

-- A protocol 2 push request of p_ops from one test device.
create or replace function tests.push_body(p_ops jsonb) returns jsonb
language sql immutable
as $$
  select jsonb_build_object('protocol', 2, 'client_id', 'c0000000-0000-4000-8000-000000000001', 'ops', p_ops)
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role, sync_engine;
grant usage on schema tests to sync_engine;

-- One check that the helpers do what every other file relies on: acting as a seed user the way
-- PostgREST does, so that auth.uid(), and the policies that read it, see that user.
select plan(1);
select tests.authenticate_as('rm1.jakarta@crm.test');
select is(
  array[current_user::text, auth.uid()::text, auth.jwt() ->> 'role'],
  array['authenticated', '00000000-0000-4000-8000-000000000012', 'authenticated'],
  'tests.authenticate_as acts as a seed user: the role authenticated, auth.uid() the user''s id, the claims a user token''s'
);
select tests.clear_authentication();
select * from finish();

commit;
