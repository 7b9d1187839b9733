-- The local view and the outbox's coalescing rules. Every local edit goes through one insert into
-- sync_edits (the statement `sync_queue_edit` at the end); the triggers below refuse it or queue it,
-- coalesced with the row's last op while that op was never sent. One statement, so an edit is
-- queued whole or not at all, and SQLite runs it alone: no push can take the op between the moment
-- the rule reads it and the moment it changes it.

-- Each column of each row as the app sees it: the latest queued value of the column (any op of the
-- row, sent or not, in edit order), else the server's. JSON text.
CREATE VIEW sync_local_values AS
SELECT o.tbl, o.id, v.col, v.value
  FROM sync_outbox_values v
  JOIN sync_outbox o ON o.seq = v.seq
 WHERE v.seq = (SELECT max(v2.seq)
                  FROM sync_outbox_values v2
                  JOIN sync_outbox o2 ON o2.seq = v2.seq
                 WHERE o2.tbl = o.tbl AND o2.id = o.id AND v2.col = v.col)
UNION ALL
SELECT r.tbl, r.id, j.key, r.data -> j.fullkey
  FROM sync_rows r, json_each(r.data) j
 WHERE NOT EXISTS (SELECT 1
                     FROM sync_outbox o
                     JOIN sync_outbox_values v ON v.seq = o.seq
                    WHERE o.tbl = r.tbl AND o.id = r.id AND v.col = j.key);

-- Where each row stands on this device: live, deleted (by the server, or by a queued delete) or
-- absent. A row counts as present when the server sent it or an insert of it is queued.
CREATE VIEW sync_local_state AS
SELECT k.tbl, k.id,
       CASE
         WHEN r.deleted = 1 THEN 'deleted'
         WHEN EXISTS (SELECT 1 FROM sync_outbox d WHERE d.tbl = k.tbl AND d.id = k.id AND d.op = 'delete')
           THEN 'deleted'
         WHEN r.id IS NOT NULL THEN 'live'
         WHEN EXISTS (SELECT 1 FROM sync_outbox i WHERE i.tbl = k.tbl AND i.id = k.id AND i.op = 'insert')
           THEN 'live'
         ELSE 'absent'
       END AS state,
       coalesce(r.version, 0) AS version
  FROM (SELECT tbl, id FROM sync_rows UNION SELECT tbl, id FROM sync_outbox) k
  LEFT JOIN sync_rows r ON r.tbl = k.tbl AND r.id = k.id;

-- The live rows as the app reads them: the server's row with the pending edits on top. A view, so
-- it is recomputed on every read: a pull that brings new server rows never hides a pending edit,
-- and an edit made while a push or a pull is under way shows at once. `version` is the server
-- version the row is at (0 while only this device has it); `pending` counts its queued ops.
CREATE VIEW sync_local AS
SELECT s.tbl, s.id, s.version,
       (SELECT json_group_object(lv.col, json(lv.value))
          FROM sync_local_values lv
         WHERE lv.tbl = s.tbl AND lv.id = s.id) AS data,
       (SELECT count(*) FROM sync_outbox o WHERE o.tbl = s.tbl AND o.id = s.id) AS pending
  FROM sync_local_state s
 WHERE s.state = 'live';

-- An op's values go with it, whether or not the connection enforces foreign keys.
CREATE TRIGGER sync_outbox_values_go AFTER DELETE ON sync_outbox
BEGIN
  DELETE FROM sync_outbox_values WHERE seq = OLD.seq;
END;

-- Refusals, before anything is queued. The message starts with the code the server would answer,
-- so the app maps it as it maps a push result.
CREATE TRIGGER sync_edit_refuse_shape BEFORE INSERT ON sync_edits
WHEN NEW.op <> 'delete' AND (NEW.data IS NULL OR json_valid(NEW.data) = 0 OR json_type(NEW.data) <> 'object')
BEGIN
  SELECT RAISE(ABORT, 'invalid: data must be a JSON object');
END;

CREATE TRIGGER sync_edit_refuse_server_columns BEFORE INSERT ON sync_edits
WHEN NEW.op <> 'delete' AND EXISTS (
  SELECT 1 FROM json_each(NEW.data)
   WHERE key IN ('id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by', 'deleted_at'))
BEGIN
  SELECT RAISE(ABORT, 'invalid: data names a server column; the server sets it');
END;

CREATE TRIGGER sync_edit_refuse_deleted BEFORE INSERT ON sync_edits
WHEN NEW.op <> 'insert' AND EXISTS (
  SELECT 1 FROM sync_local_state s WHERE s.tbl = NEW.tbl AND s.id = NEW.id AND s.state = 'deleted')
BEGIN
  SELECT RAISE(ABORT, 'deleted: the row is deleted, and deleted rows are never edited');
END;

CREATE TRIGGER sync_edit_refuse_missing BEFORE INSERT ON sync_edits
WHEN NEW.op <> 'insert' AND NOT EXISTS (
  SELECT 1 FROM sync_local_state s WHERE s.tbl = NEW.tbl AND s.id = NEW.id AND s.state <> 'absent')
BEGIN
  SELECT RAISE(ABORT, 'not_found: the row is not on this device');
END;

CREATE TRIGGER sync_edit_refuse_existing BEFORE INSERT ON sync_edits
WHEN NEW.op = 'insert' AND EXISTS (
  SELECT 1 FROM sync_local_state s WHERE s.tbl = NEW.tbl AND s.id = NEW.id AND s.state <> 'absent')
BEGIN
  SELECT RAISE(ABORT, 'already_exists: a row with this id exists');
END;

-- The coalescing rules. The first statement decides, on the state before the edit, which op the
-- edit merges into: the row's last op, if it was never sent (an op once sent is fixed: the server
-- may have applied it, so a later edit queues behind it). Each rule after it reads that decision.
CREATE TRIGGER sync_edit_queue AFTER INSERT ON sync_edits
BEGIN
  UPDATE sync_edits
     SET open_seq = (SELECT o.seq FROM sync_outbox o
                      WHERE o.seq = (SELECT max(seq) FROM sync_outbox WHERE tbl = NEW.tbl AND id = NEW.id)
                        AND o.state = 'queued' AND o.format = 1),
         open_op = (SELECT o.op FROM sync_outbox o
                     WHERE o.seq = (SELECT max(seq) FROM sync_outbox WHERE tbl = NEW.tbl AND id = NEW.id)
                       AND o.state = 'queued' AND o.format = 1)
   WHERE rowid = NEW.rowid;
  -- A delete merged into an update would go at the update's place, before the ops queued since;
  -- when one of them depends on the row (a child created under it), the server would refuse it for
  -- naming a deleted row. The delete then queues behind them instead.
  UPDATE sync_edits SET open_seq = NULL, open_op = NULL
   WHERE rowid = NEW.rowid AND open_op = 'update' AND NEW.op = 'delete'
     AND EXISTS (SELECT 1
                   FROM sync_outbox o
                   JOIN sync_outbox_values v ON v.seq = o.seq
                  WHERE o.seq > open_seq AND o.id <> NEW.id AND lower(v.value) = lower(json_quote(NEW.id)));

  -- Create then update: one create with the merged data.
  INSERT INTO sync_outbox_values (seq, col, value)
  SELECT e.open_seq, j.key, NEW.data -> j.fullkey
    FROM sync_edits e, json_each(NEW.data) j
   WHERE e.rowid = NEW.rowid AND e.open_op = 'insert' AND NEW.op = 'update'
      ON CONFLICT (seq, col) DO UPDATE SET value = excluded.value;

  -- Update then update: one update on the first base_version, each column keeping the base value
  -- it had when it was first changed; a column changed for the first time takes the value it had
  -- just before this edit.
  INSERT INTO sync_outbox_values (seq, col, value, base)
  SELECT e.open_seq, j.key, NEW.data -> j.fullkey,
         coalesce((SELECT lv.value FROM sync_local_values lv
                    WHERE lv.tbl = NEW.tbl AND lv.id = NEW.id AND lv.col = j.key), 'null')
    FROM sync_edits e, json_each(NEW.data) j
   WHERE e.rowid = NEW.rowid AND e.open_op = 'update' AND NEW.op = 'update'
      ON CONFLICT (seq, col) DO UPDATE SET value = excluded.value;

  -- Update then delete: a delete on the first base_version.
  DELETE FROM sync_outbox_values
   WHERE seq = (SELECT open_seq FROM sync_edits WHERE rowid = NEW.rowid AND open_op = 'update')
     AND NEW.op = 'delete';
  UPDATE sync_outbox SET op = 'delete'
   WHERE seq = (SELECT open_seq FROM sync_edits WHERE rowid = NEW.rowid AND open_op = 'update')
     AND NEW.op = 'delete';

  -- Create then delete: nothing to send; the row never reaches the server. Nor does what depends
  -- on it: the ops whose values name it (a child created under it, an edit that points at it),
  -- and, for each child created so, the ops on the child and those that name it, in turn. Those
  -- rows leave the device with it: the app need not delete a cancelled row's children first.
  DELETE FROM sync_outbox
   WHERE NEW.op = 'delete'
     AND EXISTS (SELECT 1 FROM sync_edits e WHERE e.rowid = NEW.rowid AND e.open_op = 'insert')
     AND seq IN (WITH RECURSIVE gone (id) AS (
                   SELECT NEW.id
                   UNION
                   SELECT o.id
                     FROM gone g
                     JOIN sync_outbox_values v ON lower(v.value) = lower(json_quote(g.id))
                     JOIN sync_outbox o ON o.seq = v.seq AND o.op = 'insert')
                 SELECT o.seq
                   FROM sync_outbox o, gone g
                  WHERE o.id = g.id
                     OR EXISTS (SELECT 1 FROM sync_outbox_values v
                                 WHERE v.seq = o.seq AND lower(v.value) = lower(json_quote(g.id))));

  -- Nothing to merge into: a new op. Its base_version is the server version the device holds;
  -- behind an unanswered insert there is none yet, and the insert's answer sets it.
  INSERT INTO sync_outbox (op_id, tbl, id, op, base_version)
  SELECT NEW.op_id, NEW.tbl, NEW.id, NEW.op,
         CASE WHEN NEW.op = 'insert' THEN NULL
              ELSE (SELECT r.version FROM sync_rows r WHERE r.tbl = NEW.tbl AND r.id = NEW.id AND r.deleted = 0)
         END
    FROM sync_edits e
   WHERE e.rowid = NEW.rowid AND e.open_seq IS NULL;
  INSERT INTO sync_outbox_values (seq, col, value, base)
  SELECT o.seq, j.key, NEW.data -> j.fullkey,
         CASE WHEN NEW.op = 'update'
              THEN coalesce((SELECT lv.value FROM sync_local_values lv
                              WHERE lv.tbl = NEW.tbl AND lv.id = NEW.id AND lv.col = j.key), 'null')
         END
    FROM sync_outbox o, json_each(NEW.data) j
   WHERE o.op_id = NEW.op_id AND NEW.op <> 'delete';

  DELETE FROM sync_edits WHERE rowid = NEW.rowid;
END;

-- name: sync_queue_edit
INSERT INTO sync_edits (op_id, tbl, id, op, data) VALUES (:op_id, :tbl, :id, :op, :data);

-- name: sync_local_row
SELECT id, version, data, pending FROM sync_local WHERE tbl = :tbl AND id = :id;

-- name: sync_pending_count
SELECT count(*) AS pending FROM sync_outbox;
