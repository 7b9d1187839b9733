-- The push: which ops go, as the wire carries them, and how each result settles its op. Only the
-- head op of each row (its lowest seq) is sent: the ops behind it wait for its answer, which gives
-- them their base_version. Nothing of protocol 2 goes while the legacy queue holds items.

-- Each op as a protocol 2 op on the wire, and whether it is its row's head.
CREATE VIEW sync_outbox_wire AS
SELECT o.seq, o.state, o.batch, o.format,
       o.seq = (SELECT min(h.seq) FROM sync_outbox h WHERE h.tbl = o.tbl AND h.id = o.id) AS head,
       CASE o.op
         WHEN 'insert' THEN json_object(
           'op_id', o.op_id, 'table', o.tbl, 'op', o.op, 'id', o.id,
           'data', json((SELECT json_group_object(v.col, json(v.value)) FROM sync_outbox_values v WHERE v.seq = o.seq)))
         WHEN 'update' THEN json_object(
           'op_id', o.op_id, 'table', o.tbl, 'op', o.op, 'id', o.id, 'base_version', o.base_version,
           'data', json((SELECT json_group_object(v.col, json(v.value)) FROM sync_outbox_values v WHERE v.seq = o.seq)),
           'base', json((SELECT json_group_object(v.col, json(v.base)) FROM sync_outbox_values v WHERE v.seq = o.seq)))
         ELSE json_object('op_id', o.op_id, 'table', o.tbl, 'op', o.op, 'id', o.id, 'base_version', o.base_version)
       END AS op
  FROM sync_outbox o;

-- name: sync_take_batch
-- Takes the next batch (heads of rows, in edit order, within the server's limits of ops and bytes;
-- always at least one op) and marks it sent under batch number :batch. Run in one transaction with
-- sync_batch_ops and sync_next_batch: from here on the ops are fixed, and edits queue behind them.
-- An op sent before whose answer never came goes again, unchanged (the server answers a duplicate).
UPDATE sync_outbox
   SET state = 'sent', batch = :batch, tries = tries + 1
 WHERE seq IN (
   SELECT seq FROM (
     SELECT w.seq,
            row_number() OVER (ORDER BY w.seq) AS n,
            sum(length(w.op) + 1) OVER (ORDER BY w.seq) AS bytes
       FROM sync_outbox_wire w
      WHERE w.head AND w.state <> 'held' AND w.format = 1)
    WHERE n <= :max_ops AND (n = 1 OR bytes <= :max_bytes))
   AND NOT EXISTS (SELECT 1 FROM sync_queue);

-- name: sync_batch_ops
SELECT w.seq, json(w.op) AS op FROM sync_outbox_wire w WHERE w.batch = :batch ORDER BY w.seq;

-- name: sync_next_batch
UPDATE sync_state SET value = CAST(value AS INTEGER) + 1 WHERE key = 'next_batch' RETURNING CAST(value AS INTEGER) - 1 AS batch;

-- The statements below settle one result each, all of a push's results in one transaction.

-- name: sync_put_server_row
-- :row is the row as JSON text: a push result's `row`, or a pull change's.
-- A row from a push answer or a pull page (an `upsert`): its values are taken unless the device
-- already holds that version or a newer one (rows arrive twice, and answers late); either way it
-- counts as delivered by the current pull cycle.
INSERT INTO sync_rows (tbl, id, version, deleted, data, seen)
VALUES (:tbl, json_extract(:row, '$.id'), json_extract(:row, '$.version'),
        json_extract(:row, '$.deleted_at') IS NOT NULL,
        CASE WHEN json_extract(:row, '$.deleted_at') IS NULL THEN json(:row) END,
        coalesce((SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'cycle'), 0))
    ON CONFLICT (tbl, id) DO UPDATE
   SET version = max(version, excluded.version),
       deleted = CASE WHEN excluded.version > version THEN excluded.deleted ELSE deleted END,
       data = CASE WHEN excluded.version > version THEN excluded.data ELSE data END,
       seen = max(seen, excluded.seen);

-- name: sync_ack_applied
-- applied (a duplicate counts as its original status): the op is done; the ops queued behind it on
-- the row are now based on the version it made. Run after sync_put_server_row with its row.
UPDATE sync_outbox SET base_version = :version
 WHERE tbl = (SELECT tbl FROM sync_outbox WHERE op_id = :op_id)
   AND id = (SELECT id FROM sync_outbox WHERE op_id = :op_id)
   AND op <> 'insert' AND state = 'queued'
   AND (base_version IS NULL OR base_version < :version);

-- name: sync_ack_conflict
-- conflict: the server kept its row (put it with sync_put_server_row); the conflict stays for the UI.
INSERT INTO sync_conflicts (id, tbl, row_id, resolution, fields)
SELECT json_extract(:conflict, '$.id'), tbl, id, json_extract(:conflict, '$.resolution'),
       json_extract(:conflict, '$.fields')
  FROM sync_outbox WHERE op_id = :op_id AND :conflict IS NOT NULL
    ON CONFLICT (id) DO UPDATE SET resolution = excluded.resolution, fields = excluded.fields;

-- name: sync_ack_rejected
-- rejected: dropped for good, kept in sync_rejected for the UI with the code and the field. The
-- server's row shows again, since the view no longer lays the op over it.
INSERT INTO sync_rejected (op_id, tbl, id, op, code, field, message, data)
SELECT o.op_id, o.tbl, o.id, o.op, :code, :field, :message,
       (SELECT json_group_object(v.col, json(v.value)) FROM sync_outbox_values v WHERE v.seq = o.seq)
  FROM sync_outbox o WHERE o.op_id = :op_id;

-- name: sync_reject_dependants
-- After a rejected insert: the ops that can never apply are refused locally too, as parent_rejected:
-- the later ops on the same row, and the queued inserts and edits whose values point at the row
-- (a child created under it), with their own dependants in turn.
WITH RECURSIVE gone (tbl, id) AS (
  SELECT tbl, id FROM sync_outbox WHERE op_id = :op_id AND op = 'insert'
  UNION
  SELECT o.tbl, o.id
    FROM gone g
    JOIN sync_outbox_values v ON v.value = json_quote(g.id)
    JOIN sync_outbox o ON o.seq = v.seq AND o.op = 'insert'
)
INSERT INTO sync_rejected (op_id, tbl, id, op, code, field, message, data)
SELECT o.op_id, o.tbl, o.id, o.op, 'parent_rejected', NULL,
       'depends on a create the server refused',
       (SELECT json_group_object(v.col, json(v.value)) FROM sync_outbox_values v WHERE v.seq = o.seq)
  FROM sync_outbox o
 WHERE o.op_id <> :op_id AND o.state <> 'sent'
   AND ((o.tbl, o.id) IN (SELECT tbl, id FROM gone)
        OR EXISTS (SELECT 1 FROM sync_outbox_values v, gone g WHERE v.seq = o.seq AND v.value = json_quote(g.id)));

-- name: sync_drop_rejected
-- Removes from the outbox every op now recorded in sync_rejected (the op and its dependants).
DELETE FROM sync_outbox WHERE op_id IN (SELECT op_id FROM sync_rejected);

-- name: sync_drop_op
-- applied, conflict: the op is settled.
DELETE FROM sync_outbox WHERE op_id = :op_id;

-- name: sync_ack_failed
-- failed (dependency_missing, blocked, busy, server_error): kept, sent again later, unchanged.
UPDATE sync_outbox SET error_code = :code, error_field = :field, error_message = :message
 WHERE op_id = :op_id;

-- name: sync_hold_op
-- A request-level 400 that names this op (a `details` path ["ops", i, ...]): held aside with the
-- reason, the rest of the batch is sent again.
UPDATE sync_outbox SET state = 'held', error_code = :code, error_field = :field, error_message = :message
 WHERE op_id = :op_id;

-- name: sync_release_op
-- The app retries a held op (after the user fixed the row): it goes with the next batch.
UPDATE sync_outbox SET state = 'sent', error_code = NULL, error_field = NULL, error_message = NULL
 WHERE op_id = :op_id AND state = 'held';
