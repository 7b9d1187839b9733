// The local store behind a small interface: five object stores, each record under its own key, and
// transactions in which every write commits or none does. Two adapters implement it: memory.ts
// (tests, scripts) and indexeddb.ts (browsers). Everything the kit keeps goes through it, so a
// crash between two transactions leaves the state of the first, never half of the second.
import type { LegacyItem, ServerRow, Values, WireOp } from "./protocol.ts";

/** The version of the outbox records' shape this kit writes; older ones are upgraded on open. */
export const OUTBOX_FORMAT = 1;

/** A row as the server last sent it (a push's answer or a pull), or its tombstone. */
export interface RowRecord {
  /** `table/id`. */
  key: string;
  table: string;
  id: string;
  version: number;
  /** The server deleted the row: edits of it are refused locally. */
  deleted: boolean;
  /** The row as sent; null for a tombstone. */
  row: ServerRow | null;
  /** The full pull cycle that last confirmed the row (see the meta `gen`). */
  gen: number;
}

/** Why an op is held aside, not sent, until the app retries or discards it. */
export interface OpProblem {
  code: string;
  message: string;
  field?: string;
}

/** A queued edit. Only the head op of each row (the lowest `seq`) is ever sent. */
export interface OutboxRecord extends WireOp {
  seq: number;
  format: number;
  /** 2, or 1 for an item imported from the legacy queue (`legacy` holds it as the old app stored it). */
  protocol: 1 | 2;
  legacy?: { client_id: string; item: LegacyItem };
  /** Sent at least once: its content is fixed, since the server may have applied it. */
  sent: boolean;
  /** Held aside: not sent, and the ops behind it on the same row wait. */
  quarantined?: OpProblem;
  /** The last retryable failure, for the UI. */
  failed?: OpProblem;
  tries?: number;
}

export interface MetaRecord {
  key: string;
  value: unknown;
}

/** A conflict the user's edits were involved in: from a push answer, completed by the pull. */
export interface ConflictRecord {
  id: string;
  table: string;
  row_id: string;
  resolution: string;
  fields: string[];
  /** The pulled audit entry (docs/protocol.md, Pull), when one has arrived. */
  entry?: Values;
  op_id?: string;
}

/** An op the server (or the kit, for its dependants) refused for good: dropped from the outbox, kept here for the UI. */
/** An op refused or held aside, as the UI lists it: which op, and the code, message and field. */
export type OpIssue = Pick<WireOp, "op_id" | "table" | "id" | "op"> & OpProblem;

export interface RejectedRecord extends OpIssue {
  at: string;
}

export interface Records {
  rows: RowRecord;
  outbox: OutboxRecord;
  meta: MetaRecord;
  conflicts: ConflictRecord;
  rejected: RejectedRecord;
}

export type StoreName = keyof Records;
export type Key = string | number;

/** A slice of a store in key order: the records after the key `after` (all, without it), at most `limit`. */
export interface Slice {
  after?: Key;
  limit?: number;
}

/** Each store's key path. */
export const KEY_PATHS: { [S in StoreName]: keyof Records[S] & string } = {
  rows: "key",
  outbox: "seq",
  meta: "key",
  conflicts: "id",
  rejected: "op_id",
};
export const STORE_NAMES = Object.keys(KEY_PATHS) as StoreName[];

/**
 * One transaction. Its callback may await only these methods: an IndexedDB transaction commits as
 * soon as its code awaits anything else (a fetch, a timer), so whatever comes from the network is
 * fetched before the transaction opens. Records come out as copies: changing one changes nothing
 * until it is put back.
 */
export interface Tx {
  get<S extends StoreName>(store: S, key: Key): Promise<Records[S] | undefined>;
  /**
   * The store's records in key order; with `prefix`, those whose string key starts with it; with
   * `after`, those whose key sorts after it; at most `limit` of them (a large store read in slices).
   */
  getAll<S extends StoreName>(store: S, prefix?: string, slice?: Slice): Promise<Records[S][]>;
  put<S extends StoreName>(store: S, value: Records[S]): Promise<void>;
  delete(store: StoreName, key: Key): Promise<void>;
  clear(store: StoreName): Promise<void>;
}

export interface Storage {
  /** Names the store: the lock and the channel between tabs are per name. */
  readonly name: string;
  /** Runs `fn` in one transaction; a readwrite one commits when `fn` resolves and rolls back when it throws. */
  transaction<T>(mode: "readonly" | "readwrite", fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Asks the platform to keep the data under storage pressure; false where it cannot. */
  persist(): Promise<boolean>;
  /** Called when another tab upgrades the store's schema (IndexedDB `versionchange`). */
  onVersionChange?: () => void;
  close(): void;
}

export async function getMeta<T>(tx: Tx, key: string): Promise<T | undefined> {
  return (await tx.get("meta", key))?.value as T | undefined;
}

export async function setMeta(tx: Tx, key: string, value: unknown): Promise<void> {
  await tx.put("meta", { key, value });
}

export const rowKey = (table: string, id: string) => `${table}/${id}`;
