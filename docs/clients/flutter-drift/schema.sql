-- The local store of a supasync client on SQLite (Drift): the server's rows as last received, the
-- outbox of queued edits, and the sync state. Plain SQLite (3.38 or newer, for the JSON functions
-- and operators): in a Drift app this file is a `.drift` file included by the database class.

-- The server's rows as the server last sent them (a pull or a push answer), one per synced row of
-- any table, as JSON. Only the sync code writes here; the app reads the local view (outbox.sql),
-- which lays the pending edits over these rows.
CREATE TABLE sync_rows (
  tbl TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  -- A tombstone: the server deleted the row. Kept so that an edit of it is refused locally.
  deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
  -- The row's JSON exactly as sent (numbers keep every digit); NULL for a tombstone.
  data TEXT,
  -- The pull cycle that last delivered the row: after a full pull (from a null cursor) the rows it
  -- did not deliver are no longer the caller's and go.
  seen INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tbl, id)
) WITHOUT ROWID;

-- The outbox: one row per op to send, in the order the edits were made (seq). The coalescing
-- triggers (outbox.sql) are the only writers besides the push's answer handling.
CREATE TABLE sync_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The shape of this stored op. An app release that changes it upgrades older ops on open
  -- (see the guide); an op of a format this code does not know is never sent.
  format INTEGER NOT NULL DEFAULT 1,
  op_id TEXT NOT NULL UNIQUE,
  tbl TEXT NOT NULL,
  id TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  -- The server version the op is based on; NULL for an insert, and for an edit queued behind an
  -- unanswered insert until that insert's answer gives it (sync_ack_applied).
  base_version INTEGER,
  -- queued: may still absorb later edits. sent: went out at least once, so its content is fixed
  -- (the server may have applied it). held: quarantined by a request-level 400, not sent until the
  -- app retries or discards it.
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'held')),
  -- The push request that carries it (sync_state.next_batch at the time).
  batch INTEGER,
  tries INTEGER NOT NULL DEFAULT 0,
  -- The last retryable failure or the quarantine's reason, for the UI.
  error_code TEXT,
  error_field TEXT,
  error_message TEXT
);
CREATE INDEX sync_outbox_row ON sync_outbox (tbl, id, seq);
CREATE INDEX sync_outbox_batch ON sync_outbox (batch);

-- An op's columns: for an insert every value sent, for an update the changed ones with the values
-- the edit started from (`base`, which lets the server merge field by field). Values are JSON text.
CREATE TABLE sync_outbox_values (
  seq INTEGER NOT NULL REFERENCES sync_outbox (seq) ON DELETE CASCADE,
  col TEXT NOT NULL,
  value TEXT NOT NULL,
  base TEXT,
  PRIMARY KEY (seq, col)
) WITHOUT ROWID;
CREATE INDEX sync_outbox_values_col ON sync_outbox_values (col, seq);

-- The one door for local edits: the app inserts an edit here, the triggers of outbox.sql refuse it
-- or queue it (coalesced), and remove it. Nothing stays in this table.
CREATE TABLE sync_edits (
  op_id TEXT NOT NULL,
  tbl TEXT NOT NULL,
  id TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  -- A JSON object of the columns set (insert) or changed (update); NULL for a delete.
  data TEXT,
  -- Filled by the first statement of the queueing trigger: the row's op this edit merges into.
  open_seq INTEGER,
  open_op TEXT
);

-- The sync state, one value per key: `cursor` (the last pull page's, written with that page's rows),
-- `client_id` (this installation, a uuid drawn once), `next_batch`, `cycle` (the current pull cycle).
CREATE TABLE sync_state (
  key TEXT PRIMARY KEY,
  value TEXT
) WITHOUT ROWID;

-- Conflicts the user's edits were involved in (push answers, then the pulled audit entries), for
-- the UI to show; `entry` is the pulled entry's JSON, cleared when its row is evicted.
CREATE TABLE sync_conflicts (
  id TEXT PRIMARY KEY,
  tbl TEXT NOT NULL,
  row_id TEXT NOT NULL,
  resolution TEXT NOT NULL,
  fields TEXT,
  entry TEXT
) WITHOUT ROWID;

-- Ops refused for good (by the server, or locally for depending on a refused create): dropped from
-- the outbox, kept here so the UI can say what was not saved and why.
CREATE TABLE sync_rejected (
  op_id TEXT PRIMARY KEY,
  tbl TEXT NOT NULL,
  id TEXT NOT NULL,
  op TEXT NOT NULL,
  code TEXT NOT NULL,
  field TEXT,
  message TEXT,
  data TEXT
);

-- The legacy app's queue (protocol 1 items), as that app created it. An upgraded device still holds
-- its items; a new install has the table empty. It is drained before any protocol 2 op is sent
-- (legacy.sql, push.sql), and a later release drops it.
CREATE TABLE IF NOT EXISTS sync_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  operation TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL,
  retry_count INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);

INSERT INTO sync_state (key, value) VALUES ('next_batch', '1'), ('cycle', '0');
