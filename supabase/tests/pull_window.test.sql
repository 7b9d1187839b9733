-- The pull's window, sync.changed_between(change_xid, lo, hi): a row belongs to the changes a
-- cursor has not delivered when its transaction had not committed in the cursor's snapshot (lo) and
-- had in the pull's (hi). Snapshots here are written out: '100:105:102' is "everything below 100
-- had finished, 102 was still running, nothing from 105 on had started".
begin;
select plan(11);

select is(sync.changed_between('99', '100:105:102', '110:110:'), false,
          'a transaction that had committed before the cursor''s snapshot was delivered then');
select is(sync.changed_between('104', '100:105:102', '110:110:'), false,
          'so was one that committed between the snapshot''s xmin and xmax and was not running');
select is(sync.changed_between('102', '100:105:102', '110:110:'), true,
          'a transaction still running at the cursor''s snapshot is in the window once it has committed');
select is(sync.changed_between('105', '100:105:102', '110:110:'), true,
          'one that began after the cursor''s snapshot is in the window');
select is(sync.changed_between('108', '100:105:102', '108:110:108'), false,
          'one still running at the pull''s snapshot waits for the next pull');
select is(sync.changed_between('110', '100:105:102', '110:110:'), false,
          'one that began after the pull''s snapshot waits for the next pull');
select is(sync.changed_between('3', null, '110:110:'), true,
          'without a cursor (a first pull) the window starts at the beginning');
select is(sync.changed_between('110', null, '110:110:'), false,
          'and still ends at the pull''s snapshot');

-- Inlined, so the planner sees the bounds on change_xid: a SQL function without a SET clause and
-- as immutable as its body.
select is((select row(l.lanname, p.provolatile, p.proconfig, p.prosecdef)::text
             from pg_proc p join pg_language l on l.oid = p.prolang
            where p.oid = 'sync.changed_between(xid8, pg_snapshot, pg_snapshot)'::regprocedure),
          row('sql', 'i', null::text[], false)::text,
          'changed_between is an immutable SQL function without settings, so it can be inlined');
select ok((select count(*) = 0 from pg_proc p
            where p.pronamespace = 'sync'::regnamespace
              and p.oid <> 'sync.changed_between(xid8, pg_snapshot, pg_snapshot)'::regprocedure
              and p.prosrc like '%pg_visible_in_snapshot%'),
          'no other function of the sync schema spells the window out');
select ok(pg_get_functiondef('sync.visible_changes_exist'::regproc) like '%sync.changed_between(t.change_xid, p_lo, p_hi)%',
          'the generated change probe asks the window through changed_between');

select * from finish();
rollback;
