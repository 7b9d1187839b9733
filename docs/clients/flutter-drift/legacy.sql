-- The legacy queue (the old app's sync_queue, protocol 1 items) is drained first, as protocol 1,
-- before any protocol 2 op goes (sync_take_batch sends nothing while it holds an item). Its items
-- stay as the old app stored them: the server derives each item's op_id from the client id, the
-- item's id and createdAt, so an item the old app sent before the upgrade answers `duplicate`.

-- name: sync_legacy_batch
-- The oldest items, in queue order, as protocol 1 items. createdAt must be the text the old app
-- sent: the stored text here; an app that stored a timestamp formats it with the old app's code.
SELECT id,
       json_object('id', id, 'entityType', entity_type, 'entityId', entity_id, 'operation', operation,
                   'payload', json(payload), 'createdAt', created_at) AS item
  FROM sync_queue
 ORDER BY id
 LIMIT :max_ops;

-- name: sync_legacy_done
-- Any result but `failed` settles an item (a rejected one is recorded for the UI first, with
-- sync_legacy_rejected).
DELETE FROM sync_queue WHERE id = :id;

-- name: sync_legacy_rejected
INSERT INTO sync_rejected (op_id, tbl, id, op, code, field, message, data)
SELECT :op_id, entity_type, entity_id, operation, :code, :field, :message, payload
  FROM sync_queue WHERE id = :id;

-- name: sync_legacy_failed
UPDATE sync_queue SET retry_count = retry_count + 1, last_error = :code WHERE id = :id;
