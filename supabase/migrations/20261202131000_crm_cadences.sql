-- Cadences: a branch's rules of how often its relationship managers touch each customer segment,
-- and by which kind of activity (the research's cadenceConfig). A branch manager keeps them; the
-- rms of the branch read them on their devices to plan their calls and visits. A table added after
-- release, the way a team adds one: registered here, its devices get it on their next pull without
-- starting over (sync_registered_tables).

create table public.cadences (
  id uuid primary key default gen_random_uuid(),
  -- The branch the cadence belongs to: its rows are visible to whoever sees that branch.
  branch_id uuid not null references public.branches (id) default sync.current_branch_id(),
  name text not null check (length(name) between 1 and 200),
  segment text not null check (segment in ('company', 'individual', 'hvc')),
  activity_type text not null check (activity_type in ('call', 'meeting', 'visit', 'email')),
  interval_days integer not null check (interval_days between 1 and 366),
  active boolean not null default true,
  notes text check (length(notes) <= 2000),
  version bigint not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  updated_by uuid,
  deleted_at timestamptz,
  change_xid xid8 not null default pg_current_xact_id()
);
comment on table public.cadences is
  'How often (interval_days) and by which activity_type an rm of the branch touches each customer segment; kept by the branch manager, read by the branch''s rms.';
create index cadences_branch_id_idx on public.cadences (branch_id);
create index cadences_change_xid_id_idx on public.cadences (change_xid, id);
create index cadences_updated_by_change_xid_idx on public.cadences (updated_by, change_xid);

-- A child of its branch: whoever sees the branch row (its staff, admins) sees its cadences, and the
-- field rules below decide who of them writes.
select sync.register_table('public.cadences', 'cadence', 'child', 'public.branches', 'branch_id');

insert into sync.field_rules (app_role, table_name, column_name, may_write, note) values
  ('admin', 'cadences', '*', true, 'admins maintain everything'),
  ('bm', 'cadences', '*', true, 'the branch manager keeps the branch''s cadences'),
  ('bm', 'cadences', 'branch_id', false, 'cadences move between branches only by an admin'),
  ('rm', 'cadences', '*', false, 'rms read their branch''s cadences');

-- Two branch managers editing a cadence offline keep both edits where they touched different
-- fields; where both changed one, the later edit wins, except the branch, which stays the server's.
update sync.tables set conflict_strategy = 'field_merge', merge_fallback = 'client' where table_name = 'cadences';
insert into sync.column_conflict_rules (table_name, column_name, merge_fallback, note) values
  ('cadences', 'branch_id', 'server', 'a cadence stays in its branch'),
  ('cadences', 'name', 'client', 'the later edit wins'),
  ('cadences', 'segment', 'client', 'the later edit wins'),
  ('cadences', 'activity_type', 'client', 'the later edit wins'),
  ('cadences', 'interval_days', 'client', 'the later edit wins'),
  ('cadences', 'active', 'client', 'the later edit wins'),
  ('cadences', 'notes', 'client', 'the later edit wins');
