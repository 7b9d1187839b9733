-- Applying a pull page. The page is fetched first; then its changes and the cursor after it are
-- written in one transaction, so a crash leaves either the page and its cursor or neither, never a
-- cursor ahead of its rows. The outbox is not touched: the local view lays it over the new rows.
-- An `upsert` is applied with sync_put_server_row (push.sql): by version, never back in time.

-- name: sync_pull_delete
-- A tombstone: kept (edits of the row are then refused locally) unless the device holds a newer
-- version of the row.
INSERT INTO sync_rows (tbl, id, version, deleted, data, seen)
VALUES (:tbl, :id, :version, 1, NULL,
        coalesce((SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'cycle'), 0))
    ON CONFLICT (tbl, id) DO UPDATE
   SET version = excluded.version, deleted = 1, data = NULL, seen = excluded.seen
 WHERE excluded.version >= sync_rows.version;

-- name: sync_pull_evict
-- The row left the caller's scope (reassigned, say): it goes from the device, and so does the row
-- data of the conflicts held about it. Not a delete: nothing is queued, the server row lives on.
DELETE FROM sync_rows WHERE tbl = :tbl AND id = :id;

-- name: sync_pull_evict_conflicts
UPDATE sync_conflicts SET entry = NULL WHERE tbl = :tbl AND row_id = :id;

-- name: sync_pull_conflict
-- A conflict audit entry (the table `conflicts` of the pull), for the UI.
INSERT INTO sync_conflicts (id, tbl, row_id, resolution, fields, entry)
VALUES (json_extract(:row, '$.id'), json_extract(:row, '$.table_name'), json_extract(:row, '$.row_id'),
        json_extract(:row, '$.resolution'), json_extract(:row, '$.fields'), json(:row))
    ON CONFLICT (id) DO UPDATE
   SET resolution = excluded.resolution, fields = excluded.fields, entry = excluded.entry;

-- name: sync_save_cursor
-- The last statement of the page's transaction.
INSERT INTO sync_state (key, value) VALUES ('cursor', :cursor)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: sync_cursor
SELECT value AS cursor FROM sync_state WHERE key = 'cursor';

-- name: sync_start_full_pull
-- Before the first page of a pull from a null cursor (a first sync, or after resync_required): a
-- new cycle number, which every row the cycle delivers is stamped with. The outbox stays.
UPDATE sync_state SET value = CAST(value AS INTEGER) + 1 WHERE key = 'cycle';

-- name: sync_resync
-- resync_required: the cursor goes, the rows and the outbox stay until the full pull replaces the
-- rows; pending edits show on top of them throughout, and are sent as they are.
DELETE FROM sync_state WHERE key = 'cursor';

-- name: sync_end_full_pull
-- After the last page (has_more false) of a pull from a null cursor, in that page's transaction:
-- the rows the cycle did not deliver are no longer the caller's. Tombstones stay, so that an edit
-- of a deleted row is still refused.
DELETE FROM sync_rows
 WHERE deleted = 0 AND seen < (SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'cycle');
