-- What a client role (anon, authenticated: what a user's token becomes) may do is the public API and
-- nothing more, checked by walking the catalog: no TRUNCATE, TRIGGER or REFERENCES on any table (RLS
-- does not apply to TRUNCATE), no EXECUTE outside the functions listed here with the reason they must
-- be callable, and no engine function deciding from a setting the caller's session can write unless
-- it is listed here as the caller's own statement.
begin;

-- Callable by client roles, and why. Everything else in `sync` and `public` is the engine's.
create temp table client_callable (fn text primary key, reason text not null) on commit drop;
insert into client_callable values
  ('public.sync_push(jsonb)', 'public API'),
  ('public.sync_pull(jsonb)', 'public API'),
  ('public.sync_health()', 'public API'),
  ('public.resolve_conflict(uuid,text,jsonb)', 'public API'),
  ('sync.current_app_role()', 'row-level security policies ask it as the querying role: the caller''s own role'),
  ('sync.current_branch_id()', 'column defaults ask it as the writer: the caller''s own branch'),
  ('sync.current_reach()', 'row-level security policies ask it as the querying role: how far the caller''s role sees'),
  ('sync.current_branch_ids()', 'row-level security policies ask it as the querying role: the caller''s own branches'),
  ('sync.caller_writes()', 'write policies ask it as the querying role: whether the caller''s role writes'),
  ('sync.valid_assignment(uuid,uuid)', 'the owned tables'' write policies ask it as the querying role'),
  ('sync.server_columns()', 'the field-rule trigger runs as the writer: a constant list'),
  ('sync.denied_columns(text,text,text[])', 'the field-rule trigger runs as the writer: reads the rule matrix, which clients may read'),
  ('sync.assert_may_write(text,text,text[])', 'the field-rule trigger runs as the writer: raises or returns'),
  ('sync.is_api_role()', 'the tombstone trigger runs as the deleter: who is deleting'),
  ('sync.statement_field_rules(text)', 'the field-rule trigger runs as the writer: the caller''s own rules for the statement'),
  ('sync.session_reads_all()', 'the review views call it as the querying role: whether its own session is the owner''s or service_role''s'),
  ('sync.granted_row_ids(text)', 'row-level security policies ask it as the querying role: the rows granted to the caller');

-- Settings a function of the engine may read, and why a caller setting them gains nothing.
create temp table readable_settings (name text primary key, reason text not null) on commit drop;
insert into readable_settings values
  ('request.jwt.claims', 'the caller''s identity, as PostgREST and the function set it'),
  ('role', 'the role the session acts as: only a role it is a member of (sync.session_is_api)'),
  ('sync.op_id', 'which op of the caller''s device this write is: recorded in the audit entry of its own edit'),
  ('sync.client_id', 'which device of the caller this write comes from: recorded in the audit entry of its own edit'),
  ('sync.op_base', 'the values the caller''s edit started from: decides only how its own edit is merged'),
  ('sync.last_conflict', 'the triggers'' verdict on the statement the per-op engine just ran, reset before it'),
  ('sync.replayed_lsn', 'what a standby had replayed before the caller''s own pull began: read on a standby only, and a false one can only serve the caller an older state, never another''s rows'),
  ('sync.replayed_on', 'the start time of the standby that sync.replayed_lsn was read on: one that differs makes the caller''s own pull go to the primary, never another''s rows'),
  ('transaction_isolation', 'the isolation level of the caller''s own transaction: on a standby, a pull without sync.replayed_lsn under another level than READ COMMITTED goes to the primary');

create temp table our_functions on commit drop as
  select p.oid::regprocedure as fn, p.prosrc
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'sync');

create temp table our_tables on commit drop as
  select c.oid::regclass as tbl
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('public', 'sync') and c.relkind in ('r', 'p', 'v', 'm');

select plan(
  (select count(*)::int from our_tables) * 2 * 3
  + (select count(*)::int from our_functions) * 2
  + 3 + 6
);

select is_empty(
  $$ select c.fn from client_callable c where to_regprocedure(c.fn) is null $$,
  'every function listed as client-callable exists'
);

select ok(not has_table_privilege(r.role, t.tbl, priv.p), format('%s may not %s %s', r.role, priv.p, t.tbl))
  from our_tables t
 cross join (values ('anon'), ('authenticated')) r (role)
 cross join (values ('truncate'), ('trigger'), ('references')) priv (p);

select ok(has_function_privilege('authenticated', f.fn, 'execute') = exists (select 1 from client_callable c where to_regprocedure(c.fn) = f.fn),
          format('authenticated %s execute %s', case when exists (select 1 from client_callable c where to_regprocedure(c.fn) = f.fn)
                                                     then 'may' else 'may not' end, f.fn))
  from our_functions f;
select ok(has_function_privilege('anon', f.fn, 'execute') = (f.fn = 'public.sync_health()'::regprocedure),
          format('anon %s execute %s', case when f.fn = 'public.sync_health()'::regprocedure then 'may' else 'may not' end, f.fn))
  from our_functions f;

select is_empty(
  $$ select f.fn, m[1] from our_functions f, regexp_matches(f.prosrc, 'current_setting\(\s*''([^'']*)''', 'g') m
      where m[1] not in (select name from readable_settings) $$,
  'every setting an engine function reads is the caller''s identity or its own statement about its edit'
);
select is_empty(
  $$ select f.fn from our_functions f
      where f.prosrc ~ 'current_setting\(\s*[^''\s]' $$,
  'no engine function reads a setting whose name it computes'
);

-- What the audit found, as an attacker would try it.
create temp table jakarta_conflict on commit drop as
  select gen_random_uuid() as id;
insert into sync.conflicts (id, table_name, row_id, server_version, server_row, resolution, branch_id)
select j.id, 'customers', c.id, c.version, to_jsonb(c), 'manual_pending', c.branch_id
  from jakarta_conflict j, public.customers c join public.branches b on b.id = c.branch_id
 where b.code = 'JKT' order by c.id limit 1;
grant select on jakarta_conflict to authenticated;

select tests.authenticate_as('rm1.surabaya@crm.test');
select throws_ok(
  $$ select sync.mark_conflict_resolved((select id from jakarta_conflict), 'server', null) $$,
  '42501', 'permission denied for function mark_conflict_resolved',
  'an rm of another branch cannot mark a Jakarta conflict resolved'
);
select throws_ok(
  $$ truncate public.activities $$,
  '42501', 'permission denied for table activities',
  'an rm cannot empty a table of every branch with TRUNCATE'
);
select throws_ok(
  $$ select sync.sign_cursor(row(auth.uid(), 1, '', '', null, null, null, null, null, null, null, null, null, null, null, null)) $$,
  '42501', 'permission denied for function sign_cursor',
  'a client cannot mint a cursor'
);
select throws_ok(
  $$ select * from sync.descendants('customers', (select c.id from public.customers c limit 1)) $$,
  '42501', 'permission denied for function descendants',
  'a client cannot list the child rows of a customer it may not read'
);
select throws_ok(
  $$ select sync.log_version('customers', gen_random_uuid(), 2, array['phone']) $$,
  '42501', 'permission denied for function log_version',
  'a client cannot write the change history the merge reads'
);
select tests.clear_authentication();
select is(
  (select resolution::text from sync.conflicts where id = (select id from jakarta_conflict)),
  'manual_pending',
  'the Jakarta conflict is still open'
);

select * from finish();
rollback;
