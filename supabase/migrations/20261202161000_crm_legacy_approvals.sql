-- The old app (protocol 1) never let an rm move a pipeline's approval: its queued items carry
-- approval_status as the device last saw it. Since the approvals workflow lets an rm submit, such a
-- copy that a bm has moved since would read as a move the rm never made and refuse the item, its
-- other edits with it; it stays as the server has it, as it did when rms could not write it.

insert into sync.legacy_kept_columns (app_role, table_name, column_name, note) values
  ('rm', 'pipelines', 'approval_status', 'the old app never moved an approval');
