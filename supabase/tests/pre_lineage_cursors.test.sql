-- Cursors issued before they carried a lineage and a WAL position (release 0.1.0's shape, two
-- attributes fewer) resume after the upgrade instead of sending every device back to a full pull.
-- They were issued by the server the upgrade ran on, so that lineage is theirs: after a failover they
-- resync, as any cursor of another lineage does. (That a standby leaves them to the primary, since
-- they name no WAL position, is held by replica.test.ts against a real standby.)
begin;
select plan(7);

select is((select legacy_cursor_lineage from sync.settings), sync.server_lineage(),
          'the upgrade keeps the lineage of the server it ran on, for the cursors issued before it');

-- The same position twice, signed in the shape before lineage and wal_lsn and in today's, from just
-- before this transaction; rm1.jakarta's customer 4 changes after it.
create function tests.position_for(p_email text, p_tables text[], p_lineage text, p_wal_lsn pg_lsn) returns sync.pull_position
language sql stable
as $$
  select row(p.id, s.schema_epoch, md5(array_to_string(p_tables, ',')), md5(p.role || '/' || p.branch_id),
             format('%1$s:%1$s:', pg_current_xact_id()::text::bigint - 1)::pg_snapshot,
             null, null, null, null, null, null, null, null, null, p_lineage, p_wal_lsn)::sync.pull_position
    from public.profiles p, sync.settings s where p.id = tests.user_id(p_email)
$$;
create function tests.signed(p_body text) returns text
language sql stable
as $$
  select sync.b64url(convert_to(p_body, 'UTF8')) || '.'
         || sync.b64url(extensions.hmac(convert_to(p_body, 'UTF8'), s.cursor_secret, 'sha256'))
    from sync.settings s
$$;
create temp table cursors (name text primary key, cursor text);
grant select on cursors to authenticated;
insert into cursors
  select 'old shape', tests.signed(left(p::text, -3) || ')')
    from tests.position_for('rm1.jakarta@crm.test', array['customers'], null, null) p
  union all
  select 'today''s shape', sync.sign_cursor(p)
    from tests.position_for('rm1.jakarta@crm.test', array['customers'], sync.server_lineage(), sync.wal_position()) p;
select is((select length(convert_from(sync.b64url_decode(split_part(cursor, '.', 1)), 'UTF8'))
                  - length(replace(convert_from(sync.b64url_decode(split_part(cursor, '.', 1)), 'UTF8'), ',', ''))
             from cursors where name = 'old shape'), 13,
          'fixture: the old cursor''s body has the fourteen attributes of release 0.1.0''s position');

-- A pull cannot see this transaction's own writes as committed, so the change is dated to the
-- transaction before this one, which the cursor's snapshot has not seen.
alter table public.customers disable trigger user;
update public.customers set city = 'Bogor', change_xid = (pg_current_xact_id()::text::bigint - 1)::text::xid8
 where id = '00000000-0000-4000-8100-000000000004';
alter table public.customers enable trigger user;

create temp table answers (name text primary key, answer jsonb);
grant select, insert on answers to authenticated;
select tests.authenticate_as('rm1.jakarta@crm.test');
insert into answers
  select name, public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', cursor))::jsonb
    from cursors;
select is((select answer -> 'resync_required' from answers where name = 'old shape'), 'false'::jsonb,
          'a cursor of the shape before lineage and wal_lsn resumes: no resync');
select is((select answer -> 'changes' from answers where name = 'old shape'),
          (select answer -> 'changes' from answers where name = 'today''s shape'),
          'it delivers what the same position in today''s shape delivers');
select ok((select answer -> 'changes' @> '[{"op": "upsert", "row": {"city": "Bogor"}}]' from answers where name = 'old shape'),
          'fixture: that is the change made after the cursor');
reset role;
select is((select row((p).lineage, (p).wal_lsn is not null)::text
             from answers,
                  lateral (select convert_from(sync.b64url_decode(split_part(answer ->> 'cursor', '.', 1)), 'UTF8')::sync.pull_position as p) r
            where name = 'old shape'),
          row(sync.server_lineage(), true)::text,
          'the cursor it gets back carries this server''s lineage and a WAL position');

-- A failover since the upgrade: the server's lineage is no longer the one those cursors came from.
update sync.settings set legacy_cursor_lineage = (split_part(sync.server_lineage(), '/', 1) || '/999');
select tests.authenticate_as('rm1.jakarta@crm.test');
select is((select public.sync_pull(jsonb_build_object('protocol', 2, 'tables', '["customers"]'::jsonb, 'cursor', cursor))::jsonb
                  - 'server_time' from cursors where name = 'old shape'),
          '{"changes": [], "cursor": null, "has_more": false, "resync_required": true}'::jsonb,
          'after a failover such a cursor resyncs, as a cursor of another lineage does');

select * from finish();
rollback;
