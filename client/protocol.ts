// The wire contract (docs/protocol.md) as the client kit reads and writes it.

/** A row as the server sends it: the server columns every syncable table has, then the table's own. */
export interface ServerRow {
  id: string;
  version: number;
  deleted_at?: string | null;
  [column: string]: unknown;
}

/** Column values by column name. */
export type Values = Record<string, unknown>;

/** One op of a protocol 2 push. */
export interface WireOp {
  op_id: string;
  table: string;
  op: "insert" | "update" | "delete";
  id: string;
  base_version?: number | null;
  data?: Values;
  base?: Values;
}

/** One item of the legacy app's `sync_queue`, as protocol 1 sends it. */
export interface LegacyItem {
  id: number | string;
  entityType: string;
  entityId: string;
  operation: "create" | "update" | "delete";
  payload?: Values | null;
  createdAt: string;
  [key: string]: unknown;
}

export interface ConflictSummary {
  id: string;
  resolution: string;
  fields?: string[];
  [key: string]: unknown;
}

/** One op's outcome in a push answer. */
export interface OpResult {
  op_id: string;
  status: "applied" | "duplicate" | "conflict" | "rejected" | "failed";
  original_status?: "applied" | "conflict" | "rejected";
  code?: string;
  field?: string;
  message?: string;
  retryable?: boolean;
  row?: ServerRow;
  conflict?: ConflictSummary;
}

export interface PushAnswer {
  server_time: string;
  results: OpResult[];
  /** The primary's WAL position once the push committed; sent back as the next pull's `min_lsn`. */
  commit_lsn?: string;
}

/** One change of a pull page. A conflict is a row of the table `conflicts`. */
export type Change =
  | { table: string; op: "upsert"; row: ServerRow }
  | { table: string; op: "delete"; id: string; version: number }
  | { table: string; op: "evict"; id: string };

export interface PullAnswer {
  server_time: string;
  changes: Change[];
  cursor: string | null;
  has_more: boolean;
  resync_required: boolean;
}

export interface HealthAnswer {
  status: string;
  server_time: string;
  protocols: number[];
}

/** A request-level error's body. */
export interface ErrorBody {
  error: string;
  message?: string;
  details?: { path: (string | number)[]; message: string }[];
  supported?: number[];
}

/** The server columns: never sent in `data`, never part of an edit. */
export const SERVER_COLUMNS = ["id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at"];
