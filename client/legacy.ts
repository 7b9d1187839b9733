// Queue formats: the outbox records of older versions of the kit are upgraded when a store opens,
// and the legacy app's `sync_queue` items (protocol 1) are imported so that an upgraded app sends
// them, as protocol 1 and under the old app's client id, before anything else: the server derives
// their op ids from (client id, item id, createdAt), so an item the old app had sent already is a
// duplicate, never applied twice.
import type { LegacyItem, Values } from "./protocol.ts";
import { SERVER_COLUMNS } from "./protocol.ts";
import { getMeta, OUTBOX_FORMAT, type OutboxRecord, setMeta, type Tx } from "./store.ts";

/** The app's bookkeeping keys the server ignores in a legacy payload (docs/protocol.md, Protocol 1). */
const BOOKKEEPING = ["isPendingSync", "lastSyncAt", "syncedAt", "syncStatus", "retryCount"];

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A legacy payload as the row's columns (for the local view): snake_case, without server columns or bookkeeping. */
export function legacyData(payload: Values | null | undefined): Values {
  const out: Values = {};
  for (const [key, value] of Object.entries(payload ?? {})) {
    const column = snake(key);
    if (BOOKKEEPING.includes(key) || SERVER_COLUMNS.includes(column)) continue;
    out[column] = value;
  }
  return out;
}

const OPS = { create: "insert", update: "update", delete: "delete" } as const;

/**
 * Imports the legacy queue's items (in the order the old app queued them) into the outbox, ahead
 * of nothing the kit queued itself: they go first because takeBatch sends protocol 1 ops before
 * any other. An item imported before (same client id, id and createdAt), even one settled since, is
 * skipped, so the import may run at every start until the old queue is gone. Returns how many were added.
 */
export async function importLegacy(
  tx: Tx,
  clientId: string,
  items: LegacyItem[],
  tableOf: (entityType: string) => string,
): Promise<number> {
  const all = await tx.getAll("outbox");
  const identity = (c: string, i: LegacyItem) => JSON.stringify([c, i.id, i.createdAt]);
  // Remembered for good, not only while queued: the old app's queue outlives the items' answers,
  // and an item imported again after it was settled would be sent again and, until then, lay its
  // old values (a deleted row's create) over the row.
  const imported = (await getMeta<string[]>(tx, "legacy_imported")) ?? [];
  const known = new Set([
    ...imported,
    ...all.filter((o) => o.legacy).map((o) => identity(o.legacy!.client_id, o.legacy!.item)),
  ]);
  // Imported ops take seqs below every op of the kit, so each row's legacy items are its head ops.
  let seq = Math.min(0, ...all.map((o) => o.seq)) - items.length - 1;
  let added = 0;
  for (const item of items) {
    seq++;
    if (known.has(identity(clientId, item))) continue;
    const op: OutboxRecord = {
      seq,
      format: OUTBOX_FORMAT,
      op_id: `legacy:${identity(clientId, item)}`,
      table: tableOf(item.entityType),
      op: OPS[item.operation],
      id: item.entityId,
      protocol: 1,
      legacy: { client_id: clientId, item },
      // The old app may have sent it: fixed, like any op once sent.
      sent: true,
    };
    if (item.operation !== "delete") op.data = legacyData(item.payload);
    await tx.put("outbox", op);
    known.add(identity(clientId, item));
    added++;
  }
  if (added) await setMeta(tx, "legacy_imported", [...known]);
  return added;
}

/**
 * Upgrades the outbox records of older formats in place. Format 0 (the kit before the format was
 * recorded) had no `format`, `protocol` or `sent`: those ops go on as protocol 2 ops that may have
 * been sent (never coalesced into). A record of a format newer than this kit's is left as it is,
 * unsent, and reported, never dropped. Returns the number upgraded.
 */
export async function upgradeOutbox(tx: Tx): Promise<number> {
  const stored = (await getMeta<number>(tx, "outbox_format")) ?? 0;
  let upgraded = 0;
  for (const op of await tx.getAll("outbox")) {
    const format = (op as { format?: number }).format ?? 0;
    if (format === 0) {
      await tx.put("outbox", { ...op, format: OUTBOX_FORMAT, protocol: 2, sent: true });
      upgraded++;
    }
  }
  if (stored < OUTBOX_FORMAT) await setMeta(tx, "outbox_format", OUTBOX_FORMAT);
  return upgraded;
}
