// The outbox: queued edits, coalesced as they are queued, sent head of row first, settled by the
// server's answers. Every function here runs inside one storage transaction, so coalescing and
// marking an op as sent read and write the same state atomically (another tab included: a
// readwrite transaction on the same store waits for the other).
import type { OpResult, ServerRow, Values, WireOp } from "./protocol.ts";
import { SERVER_COLUMNS } from "./protocol.ts";
import { getMeta, OUTBOX_FORMAT, type OutboxRecord, rowKey, type RowRecord, setMeta, type Tx } from "./store.ts";

/** A local edit as the app makes it. */
export type Edit =
  | { op: "insert"; table: string; id: string; data: Values }
  | { op: "update"; table: string; id: string; data: Values }
  | { op: "delete"; table: string; id: string };

/** A row as the app sees it: the server's, with the pending edits applied on top. */
export interface LocalRow {
  id: string;
  /** The server version the row is at, 0 while only this device has it. */
  version: number;
  [column: string]: unknown;
}

/** An edit the kit refuses before queueing it; `code` is the registry's code the server would answer. */
export class LocalEditError extends Error {
  constructor(
    readonly code: "not_found" | "deleted" | "already_exists" | "invalid",
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "LocalEditError";
  }
}

const DELETED = "deleted" as const;
type View = LocalRow | null | typeof DELETED;

/** The row after `ops` (in seq order) on top of the server's record. */
export function applyOps(record: RowRecord | undefined, ops: OutboxRecord[]): View {
  let view: View = record ? (record.deleted ? DELETED : { ...(record.row as ServerRow) }) : null;
  for (const op of ops) {
    if (op.format !== OUTBOX_FORMAT) continue;
    if (op.op === "insert") {
      view = {
        ...(view && view !== DELETED ? view : {}),
        ...op.data,
        id: op.id,
        version: view && view !== DELETED ? view.version : 0,
      };
    } else if (op.op === "update") {
      if (view && view !== DELETED) view = { ...view, ...op.data };
    } else view = DELETED;
  }
  return view;
}

/** The live row as the app sees it, or undefined. */
export function visible(view: View): LocalRow | undefined {
  return view && view !== DELETED ? view : undefined;
}

export async function opsOfRow(tx: Tx, table: string, id: string): Promise<OutboxRecord[]> {
  return (await tx.getAll("outbox")).filter((o) => o.table === table && o.id === id);
}

/** The next op's seq: after every op in the outbox, whichever version of the kit stored it. */
async function nextSeq(tx: Tx, outbox: OutboxRecord[]): Promise<number> {
  const seq = Math.max((await getMeta<number>(tx, "next_seq")) ?? 1, ...outbox.map((o) => o.seq + 1));
  await setMeta(tx, "next_seq", seq + 1);
  return seq;
}

function checkData(data: Values) {
  for (const column of Object.keys(data)) {
    if (SERVER_COLUMNS.includes(column)) {
      throw new LocalEditError("invalid", `${column} is a server column: the server sets it`, column);
    }
  }
}

/**
 * Queues an edit, coalesced with the row's last op when that one was never sent: create then
 * update is one create with the merged data; create then delete is nothing (and the ops that
 * depend on the create go too); update then update is one update on the first `base_version` and
 * `base` values; update then delete is a delete on the first `base_version`, unless an op queued
 * after the update depends on the row (the delete then queues behind). An op once sent is
 * never changed (the server may have applied it): the edit is queued behind it, and takes its
 * `base_version` from the answer (see settle). Returns the op_ids the edit dropped.
 */
export async function queueEdit(tx: Tx, edit: Edit, newOpId: () => string): Promise<string[]> {
  if (edit.op !== "delete") checkData(edit.data);
  const record = await tx.get("rows", rowKey(edit.table, edit.id));
  const all = await tx.getAll("outbox");
  const ops = all.filter((o) => o.table === edit.table && o.id === edit.id);
  const view = applyOps(record, ops);
  if (edit.op === "insert" && view !== null) {
    throw new LocalEditError("already_exists", `${edit.table} ${edit.id} exists already`);
  }
  if (edit.op !== "insert" && view === null) {
    throw new LocalEditError("not_found", `${edit.table} ${edit.id} is not on this device`);
  }
  if (edit.op !== "insert" && view === DELETED) {
    throw new LocalEditError("deleted", `${edit.table} ${edit.id} is deleted: deleted rows are never edited`);
  }
  const last = ops.at(-1);
  const open = last && !last.sent && !last.quarantined && last.protocol === 2 && last.format === OUTBOX_FORMAT
    ? last
    : undefined;
  const current = visible(view);
  if (open?.op === "insert" && edit.op === "update") {
    open.data = { ...open.data, ...edit.data };
    await tx.put("outbox", open);
    return [];
  }
  if (open?.op === "insert" && edit.op === "delete") {
    await tx.delete("outbox", open.seq);
    const dropped = await dropDependants(tx, edit.id, new Set([open.seq]));
    return [open.op_id, ...dropped.map((o) => o.op_id)];
  }
  if (open?.op === "update" && edit.op === "update") {
    const base = { ...open.base };
    for (const column of Object.keys(edit.data)) if (!(column in base)) base[column] = current?.[column] ?? null;
    open.data = { ...open.data, ...edit.data };
    open.base = base;
    await tx.put("outbox", open);
    return [];
  }
  // Not when an op queued since depends on the row (a child created under it): the delete would go
  // before that op, which the server then refuses for naming a deleted row.
  if (
    open?.op === "update" && edit.op === "delete" &&
    !all.some((o) => o.seq > open.seq && o.id !== edit.id && dependsOn(o, edit.id))
  ) {
    open.op = "delete";
    delete open.data;
    delete open.base;
    await tx.put("outbox", open);
    return [];
  }
  const op: OutboxRecord = {
    seq: await nextSeq(tx, all),
    format: OUTBOX_FORMAT,
    op_id: newOpId(),
    table: edit.table,
    op: edit.op,
    id: edit.id,
    protocol: 2,
    sent: false,
  };
  if (edit.op === "insert") op.data = { ...edit.data };
  else {
    // Behind an op on the row that is still unanswered, this is the version that op started from;
    // its answer moves it to the version it made.
    op.base_version = record && !record.deleted ? record.version : (current?.version || null);
    if (op.base_version === 0) op.base_version = null;
    if (edit.op === "update") {
      op.data = { ...edit.data };
      op.base = Object.fromEntries(Object.keys(edit.data).map((c) => [c, current?.[c] ?? null]));
    }
  }
  await tx.put("outbox", op);
  return [];
}

/** Whether an op adds to or points at the row `id`: its data holds the id as a value. */
export function dependsOn(op: OutboxRecord, id: string): boolean {
  const values = op.protocol === 1 ? Object.values(op.legacy?.item.payload ?? {}) : Object.values(op.data ?? {});
  return op.id === id || values.some((v) => typeof v === "string" && v.toLowerCase() === id.toLowerCase());
}

/** Removes every op on the row `id` or depending on it, transitively, except those in `skip`. */
export async function dropDependants(tx: Tx, id: string, skip = new Set<number>()): Promise<OutboxRecord[]> {
  const all = (await tx.getAll("outbox")).filter((o) => !skip.has(o.seq));
  const gone: OutboxRecord[] = [];
  const ids = [id];
  while (ids.length) {
    const parent = ids.pop()!;
    for (const op of all) {
      if (gone.includes(op) || !dependsOn(op, parent)) continue;
      gone.push(op);
      await tx.delete("outbox", op.seq);
      if (op.op === "insert" && op.id !== parent) ids.push(op.id);
    }
  }
  return gone;
}

/**
 * Takes the next batch and marks its ops as sent, in the caller's transaction. Only the head op of
 * each row goes (the ops behind it wait for its answer, which gives them their base version), never
 * an op held aside, and the legacy queue's items before any other op, in a protocol 1 batch of
 * their own.
 */
export async function takeBatch(tx: Tx, limits: { ops: number; bytes: number }): Promise<OutboxRecord[]> {
  const all = await tx.getAll("outbox");
  const heads = new Map<string, OutboxRecord>();
  for (const op of all) {
    const key = rowKey(op.table, op.id);
    if (!heads.has(key)) heads.set(key, op);
  }
  const sendable = [...heads.values()].filter((o) => !o.quarantined && o.format === OUTBOX_FORMAT);
  const legacy = sendable.filter((o) => o.protocol === 1);
  const pool = legacy.length ? legacy.filter((o) => o.legacy!.client_id === legacy[0].legacy!.client_id) : sendable;
  const batch: OutboxRecord[] = [];
  // The server counts bytes of UTF-8, the body's envelope included (a legacy client id may be long).
  const envelope = legacy.length
    ? { protocol: 1, client_id: pool[0].legacy!.client_id, items: [] }
    : { protocol: 2, client_id: crypto.randomUUID(), ops: [] };
  let bytes = utf8Length(JSON.stringify(envelope));
  for (const op of pool) {
    const size = utf8Length(JSON.stringify(wireOf(op))) + (batch.length ? 1 : 0);
    if (batch.length && (batch.length >= limits.ops || bytes + size > limits.bytes)) break;
    batch.push(op);
    bytes += size;
  }
  for (const op of batch) {
    if (!op.sent) {
      op.sent = true;
      await tx.put("outbox", op);
    }
  }
  return batch;
}

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).length;

/** What goes on the wire for an op: a protocol 2 op, or the legacy item as the old app stored it. */
export function wireOf(op: OutboxRecord): WireOp | Record<string, unknown> {
  if (op.protocol === 1) return op.legacy!.item;
  const wire: WireOp = { op_id: op.op_id, table: op.table, op: op.op, id: op.id };
  if (op.base_version !== undefined && op.base_version !== null) wire.base_version = op.base_version;
  if (op.data) wire.data = op.data;
  if (op.base && Object.keys(op.base).length) wire.base = op.base;
  return wire;
}

/** Writes a row the server sent, unless the device holds a newer version of it. */
export async function putServerRow(tx: Tx, table: string, row: ServerRow, gen: number): Promise<void> {
  const held = await tx.get("rows", rowKey(table, row.id));
  if (held && held.version > row.version) return;
  await tx.put("rows", serverRowRecord(table, row, gen));
}

/** The record of a row as the server sent it (a tombstone when it is deleted), confirmed by pull cycle `gen`. */
export function serverRowRecord(table: string, row: ServerRow, gen: number): RowRecord {
  const deleted = !!row.deleted_at;
  return {
    key: rowKey(table, row.id),
    table,
    id: row.id,
    version: row.version,
    deleted,
    row: deleted ? null : row,
    gen,
  };
}

/** How one result settled its op. */
export type Settlement =
  | { kind: "done"; status: "applied" | "conflict" | "rejected"; dropped: OutboxRecord[] }
  | { kind: "retry" }
  | { kind: "gone" };

/**
 * Settles `op` by the server's result, by status: applied takes `row` (and rebases the ops queued
 * behind it on the row's new version); a duplicate counts as its original status; a conflict takes
 * the server's row and keeps the conflict; a rejection drops the op (the server's row shows again)
 * and, for a create, the ops that depend on it; a failure keeps the op for a later try.
 */
export async function settle(tx: Tx, op: OutboxRecord, result: OpResult, at: string): Promise<Settlement> {
  const held = await tx.get("outbox", op.seq);
  if (!held) return { kind: "gone" };
  const status = result.status === "duplicate" ? (result.original_status ?? "applied") : result.status;
  const gen = (await getMeta<number>(tx, "gen")) ?? 0;
  if (status === "failed") {
    held.failed = { code: result.code ?? "server_error", message: result.message ?? "", field: result.field };
    held.tries = (held.tries ?? 0) + 1;
    await tx.put("outbox", held);
    return { kind: "retry" };
  }
  await tx.delete("outbox", op.seq);
  if (result.row) await putServerRow(tx, op.table, result.row, gen);
  if (result.conflict) {
    const previous = await tx.get("conflicts", result.conflict.id);
    await tx.put("conflicts", {
      ...previous,
      id: result.conflict.id,
      table: op.table,
      row_id: op.id,
      resolution: String(result.conflict.resolution),
      fields: result.conflict.fields ?? previous?.fields ?? [],
      op_id: op.op_id,
    });
  }
  const dropped: OutboxRecord[] = [];
  // The ops behind go on the version this op made. An applied answer's row is that version; a
  // duplicate's row is the row as it is now, which may hold another user's later change: basing
  // the ops behind on it would apply them over that change unseen (no conflict, a manual column
  // overwritten). There the version the op made is its base_version + 1 (an insert makes 1), and
  // when that is unknown (an update without base_version, a legacy item) they stay where they are.
  const made = result.status === "duplicate" ? madeVersion(op) : result.row?.version;
  if (status === "applied" && result.row && made !== undefined) {
    for (const behind of await opsOfRow(tx, op.table, op.id)) {
      if (behind.sent || behind.protocol !== 2 || behind.op === "insert") continue;
      if ((behind.base_version ?? 0) < made) {
        behind.base_version = made;
        await tx.put("outbox", behind);
      }
    }
  }
  if (status === "rejected") {
    await tx.put("rejected", {
      op_id: op.op_id,
      table: op.table,
      id: op.id,
      op: op.op,
      code: result.code ?? "rejected",
      message: result.message ?? "",
      field: result.field,
      at,
    });
    if (op.op === "insert") dropped.push(...await rejectDependants(tx, op, at));
  }
  return { kind: "done", status, dropped };
}

/** The version an op made when it applied on its base_version (each write adds one); undefined when unknown. */
function madeVersion(op: OutboxRecord): number | undefined {
  if (op.protocol !== 2) return undefined;
  if (op.op === "insert") return 1;
  return typeof op.base_version === "number" ? op.base_version + 1 : undefined;
}

/** The ops that depend on a create that will never exist, settled locally as `parent_rejected`. */
export async function rejectDependants(tx: Tx, parent: OutboxRecord, at: string): Promise<OutboxRecord[]> {
  const dropped = await dropDependants(tx, parent.id);
  for (const op of dropped) {
    await tx.put("rejected", {
      op_id: op.op_id,
      table: op.table,
      id: op.id,
      op: op.op,
      code: "parent_rejected",
      message: `depends on ${parent.table} ${parent.id}, whose create was not applied`,
      at,
    });
  }
  return dropped;
}
