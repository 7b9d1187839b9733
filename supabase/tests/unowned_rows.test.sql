-- A row without an owner (or a branch) is in no one's own scope: the scope rules answer false for
-- it, never null, so the pull can tell that a user who gains such a row did not hold it before (and
-- sends its child rows), and that one who loses it did.
begin;
select plan(5);

select tests.engine_acting_for('rm1.jakarta@crm.test');
select is(sync.in_scope(null, '00000000-0000-4000-8000-0000000000b1'), false,
          'a row without an owner is not in the own scope of a reach-own caller (false, not null)');
select is(sync.in_branch(null), false, 'a row without a branch is not in a branch caller''s scope (false, not null)');
select is(sync.in_scope(tests.user_id('rm1.jakarta@crm.test'), null), true, 'their own row is, whatever its branch');
select tests.engine_acting_for('bm.jakarta@crm.test');
select is(sync.in_scope(null, '00000000-0000-4000-8000-0000000000b1'), true,
          'a row without an owner in their branch is in a reach-branches caller''s scope');
select is(sync.in_scope(null, null), false, 'a row without an owner or a branch is in no reach-branches scope');
select tests.clear_authentication();

select * from finish();
rollback;
