-- Who may sync. A valid token proves that a user signed up, not that they work here: a push or a
-- pull serves a user the app knows (sync.app_caller) and keeps active, whose account is neither
-- banned nor deleted, and refuses anyone else before it reads or writes anything (a stranger's push
-- wrote up to a batch's worth of idempotency records, each rejected op being an outcome to remember).
--
-- How "no longer active" is represented, each by what already owns the fact:
--   - someone who left: the app's hook says the user is not active (sync.app_caller);
--   - a suspension: Supabase Auth's ban, auth.users.banned_until (lifted by clearing it, or when
--     it passes);
--   - a deleted account: Supabase Auth's soft delete, auth.users.deleted_at, or no row at all.

-- Raises the caller's refusal (SYAU1 missing_token, SYST1 not_staff, SYST2 account_inactive) or
-- returns. p_request names the request in the missing_token message ('a push', 'a pull').
-- Volatile, as anything that raises: the planner evaluates an immutable call with constant
-- arguments, and a stable one for estimates, while it plans.
create function sync.require_staff(p_request text) returns void
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := auth.uid();
  v_user record;
begin
  if v_uid is null then
    perform sync.request_error('missing_token', format('%s needs a signed-in user', p_request));
  end if;
  -- The app says whether the user is one of its own and still active (sync.app_caller).
  select u.banned_until, u.deleted_at as user_deleted_at, c.role is not null as has_profile, c.active
    into v_user
    from auth.users u
    left join lateral (select * from sync.app_caller(u.id) limit 1) c on true
   where u.id = v_uid;
  if not found or v_user.user_deleted_at is not null or v_user.banned_until > now()
     or (v_user.has_profile and not coalesce(v_user.active, false)) then
    perform sync.request_error('account_inactive',
      'this account is not active: the app closed it, or the user is banned or deleted');
  end if;
  if not v_user.has_profile then
    perform sync.request_error('not_staff', 'sync serves the app''s users: this user has none of its roles');
  end if;
end
$$;
comment on function sync.require_staff(text) is
  'Refuses a caller sync does not serve, before a request reads or writes anything: no user (SYAU1), none of the app''s roles (SYST1 not_staff), closed by the app or a banned, deleted or missing account (SYST2 account_inactive). Security definer: it reads auth.users.';

grant execute on function sync.require_staff(text) to authenticated, service_role;
