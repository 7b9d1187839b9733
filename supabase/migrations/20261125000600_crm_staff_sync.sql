-- Branches and staff profiles sync to every device that needs them (names for assignment pickers).
-- Visible within the caller's branch; only admins change them.

select sync.register_table('public.branches', 'branch', 'branch', p_branch_column => 'id',
                           p_conflict_strategy => 'server_wins');
select sync.register_table('public.profiles', 'profile', 'branch', p_branch_column => 'branch_id',
                           p_conflict_strategy => 'server_wins');
