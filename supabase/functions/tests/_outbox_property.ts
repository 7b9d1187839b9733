// The outbox property, the one module every outbox of the project runs under (the client kit's,
// client/tests/outbox_property.test.ts, and the Flutter guide's SQL under sql.js,
// docs/clients/flutter-drift/tests/outbox_property.test.ts): any sequence of local edits, coalesced
// and pushed, leaves the server with the same live rows and the same client-writable values as
// pushing the same edits one by one. An outbox takes part through a small interface (receive a
// pulled row, queue an edit, hand out the next batch, settle its answer, read a row as the app does).
//
// Each run works on rows of its own: a customer and a key person that exist before the edits, and
// new ones the edits create. The same edits go, on a fresh copy of those rows, through a reference
// device that pushes each edit alone as soon as it is made, on the version the last answer gave.
// While the outbox syncs, its requests interleave with the edits: an edit can be made while a batch
// is unanswered, and an answer can be lost after the server committed it (the batch goes again).
// Every answer the outbox gets must be `applied` (a device's own edits never conflict with each
// other and are never refused), and at the end the rows the app reads must be the server's.
//
// A customer is deleted whether or not it still has key persons on the device (the server does not
// cascade a delete). While the customer's create was never sent, the delete cancels it, and with it
// every op that depends on it (its key persons' creates and edits): those rows never reach the
// server and leave the device. The reference deletes them one by one, so the live rows compare.
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Op, type OpResult, push, sql, tokenFor, type User, users } from "./_helpers.ts";

/** A local edit as the app makes it. */
export type Edit =
  | { op: "insert"; table: string; id: string; data: Record<string, unknown> }
  | { op: "update"; table: string; id: string; data: Record<string, unknown> }
  | { op: "delete"; table: string; id: string };

/** A protocol 2 op as it goes on the wire (the tests' one definition, in _helpers.ts). */
export type WireOp = Op;

/** What the property needs of an outbox. Each method may be synchronous or not. */
export interface OutboxUnderTest {
  /** A row as the server sent it (a pull's upsert): the local store holds it from now on. */
  receive(table: string, row: Record<string, unknown>): void | Promise<void>;
  /** Queues a local edit, coalesced; throws when the outbox refuses it (an edit of a deleted row). */
  edit(e: Edit): void | Promise<void>;
  /** The next batch to push (empty when nothing is left), its ops marked as sent. */
  pending(): WireOp[] | Promise<WireOp[]>;
  /** The server's results for the batch `pending()` gave last, in its order. */
  ack(results: OpResult[]): void | Promise<void>;
  /** The live row as the app reads it (its columns, `id` and `version`), or undefined. */
  read(table: string, id: string): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
}

export const RUNS = Number(Deno.env.get("FC_RUNS") ?? 25);
export const SEED = Number(Deno.env.get("FC_SEED") ?? 20261202);

/** The columns the server sets: every other column of a row is the client's, and compared. */
export const SERVER_COLUMNS = [
  "id",
  "version",
  "created_at",
  "updated_at",
  "created_by",
  "updated_by",
  "deleted_at",
  "change_xid",
];
/** The columns the edits write. */
const WRITTEN = {
  customers: ["name", "phone", "city", "notes", "industry"],
  key_persons: ["name", "position", "phone", "notes", "is_primary"],
};

type Table = keyof typeof WRITTEN;
type Slot = { table: Table; n: number };
/** Slots 0 exist before the edits; the others are created by them. */
const SLOTS: Slot[] = [0, 1, 2].flatMap((n) => [{ table: "customers", n }, { table: "key_persons", n }] as Slot[]);
const keyOf = (s: Slot) => `${s.table}/${s.n}`;

// Few distinct values, so that edits often write what a column already holds, and a few awkward ones.
const values = fc.constantFrom<unknown>(null, "", "a", "b", "Jl. Sudirman 1", "ünïcødé ✓", "x".repeat(40));
const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("edit" as const),
      slot: fc.nat(SLOTS.length - 1),
      roll: fc.nat(99),
      pick: fc.nat(999),
      v: fc.array(values, { minLength: 5, maxLength: 5 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("send" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("answer" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("lose" as const) }) },
);
/** The one edit generator: edits of the run's rows, with the device's sends, answers and lost answers between them. */
export const steps = fc.array(step, { minLength: 1, maxLength: 24 });
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

/** One logical row's place in the model of the device (what the app shows). */
interface ModelRow {
  state: "absent" | "live" | "deleted";
  /** A key person's customer slot. */
  parent?: number;
  /** Whether its create has gone out in a batch (a row that existed before the edits has). */
  sent: boolean;
}

type LogicalEdit =
  | { op: "insert"; slot: Slot; data: Record<string, unknown>; parent?: number }
  | { op: "update"; slot: Slot; data: Record<string, unknown> }
  | { op: "delete"; slot: Slot };

/**
 * Turns the dice into an edit against the model of what the device shows, as the app makes it: a
 * create of an absent row (a key person under a live customer), an edit or a delete of a live one
 * (a customer's key persons left as they are), and now and then an edit of a deleted row, which the
 * outbox must refuse. `cancelled` are the deletes the reference makes first, for the rows a
 * cancelled create takes with it.
 */
function editOf(
  s: Extract<Step, { kind: "edit" }>,
  model: Map<string, ModelRow>,
): { edit?: LogicalEdit; cancelled: LogicalEdit[]; refused?: LogicalEdit } {
  const slot = SLOTS[s.slot];
  const row = model.get(keyOf(slot))!;
  const cols = WRITTEN[slot.table];
  const data: Record<string, unknown> = {};
  cols.forEach((c, i) => {
    if ((s.pick >> i) & 1) {
      data[c] = c === "is_primary" ? s.v[i] === null : c === "name" ? `${s.v[i] ?? "n"}-${s.pick % 7}` : s.v[i];
    }
  });
  if (row.state === "absent") {
    const name = `${slot.table === "customers" ? "PT" : "Ibu"} ${s.pick}`;
    if (slot.table === "customers") return { edit: { op: "insert", slot, data: { ...data, name } }, cancelled: [] };
    const parents = [0, 1, 2].filter((n) => model.get(`customers/${n}`)!.state === "live");
    if (!parents.length) return { cancelled: [] };
    const parent = parents[s.pick % parents.length];
    return { edit: { op: "insert", slot, data: { ...data, name }, parent }, cancelled: [] };
  }
  if (row.state === "deleted") {
    const refused: LogicalEdit = s.roll % 2
      ? { op: "update", slot, data: { notes: "after delete" } }
      : { op: "delete", slot };
    return s.roll < 30 ? { refused, cancelled: [] } : { cancelled: [] };
  }
  const children = slot.table === "customers"
    ? [0, 1, 2].filter((n) => {
      const kp = model.get(`key_persons/${n}`)!;
      return kp.state === "live" && kp.parent === slot.n;
    })
    : [];
  // A customer with key persons on the device is deleted more often, the case where a create the
  // delete cancels takes rows with it.
  if (s.roll < (children.length ? 40 : 15)) {
    const cancelled: LogicalEdit[] = row.sent
      ? []
      : children.map((n) => ({ op: "delete", slot: { table: "key_persons", n } } as LogicalEdit));
    return { edit: { op: "delete", slot }, cancelled };
  }
  if (!Object.keys(data).length) {
    const c = cols[s.roll % cols.length];
    data[c] = c === "is_primary" ? s.roll % 2 === 0 : `v${s.roll % 5}`;
  }
  return { edit: { op: "update", slot, data }, cancelled: [] };
}

function applyToModel(e: LogicalEdit, model: Map<string, ModelRow>) {
  const key = keyOf(e.slot);
  if (e.op === "insert") model.set(key, { state: "live", parent: e.parent, sent: false });
  if (e.op === "delete") model.get(key)!.state = "deleted";
}

/** One copy of the run's rows: their ids, and the edits made concrete on them. */
class Copy {
  readonly ids = new Map<string, string>();
  constructor() {
    for (const s of SLOTS) this.ids.set(keyOf(s), crypto.randomUUID());
  }
  id(slot: Slot) {
    return this.ids.get(keyOf(slot))!;
  }
  concrete(e: LogicalEdit): Edit {
    const id = this.id(e.slot);
    if (e.op === "delete") return { op: "delete", table: e.slot.table, id };
    const data = e.op === "insert" && e.slot.table === "key_persons"
      ? { ...e.data, customer_id: this.ids.get(`customers/${e.parent}`) }
      : e.data;
    return { op: e.op, table: e.slot.table, id, data };
  }
}

/**
 * The live rows of a copy as the server holds them, by slot: every client column, the copy's ids
 * named by slot. `rows` are the server's rows themselves, by id.
 */
async function serverState(copy: Copy) {
  const slotOf = new Map([...copy.ids].map(([k, v]) => [v, k]));
  const ids = [...copy.ids.values()];
  const live: Record<string, Record<string, unknown>> = {};
  const rows = new Map<string, Record<string, unknown>>();
  const found = await sql`
    select 'customers' as t, id::text, deleted_at is null as live, to_jsonb(c) as row
      from public.customers c where id = any(${ids}::uuid[])
    union all
    select 'key_persons', id::text, deleted_at is null, to_jsonb(k)
      from public.key_persons k where id = any(${ids}::uuid[])`;
  for (const r of found) {
    if (!r.live) continue;
    rows.set(r.id, r.row);
    live[slotOf.get(r.id)!] = Object.fromEntries(
      Object.entries(r.row as Record<string, unknown>)
        .filter(([c]) => !SERVER_COLUMNS.includes(c))
        .map(([c, v]) => [c, typeof v === "string" && slotOf.has(v) ? slotOf.get(v) : v]),
    );
  }
  return { live, rows };
}

/** Pushes ops and returns the results, failing on anything but a 200 with every op applied. */
async function pushOps(
  token: string,
  ops: WireOp[],
  clientId: ReturnType<typeof crypto.randomUUID>,
  who: string,
): Promise<OpResult[]> {
  const res = await push(token, ops, clientId);
  if (res.status !== 200) throw new Error(`push answered ${res.status}: ${res.text}`);
  for (const [i, r] of res.body.results.entries()) {
    const status = r.status === "duplicate" ? r.original_status : r.status;
    assert.equal(status, "applied", `${who}: every op applies: ${JSON.stringify(ops[i])} → ${JSON.stringify(r)}`);
  }
  return res.body.results;
}

/**
 * Deletes the live rows of a copy, key persons first. The server keeps a key person of a deleted
 * customer alive, a state the other tests sharing the database do not expect to find.
 */
async function cleanUp(token: string, copy: Copy) {
  const { rows } = await serverState(copy);
  const ops: WireOp[] = [...rows.entries()]
    .sort(([, x], [, y]) => Number("customer_id" in y) - Number("customer_id" in x))
    .map(([id, row]) => ({
      op_id: crypto.randomUUID(),
      table: "customer_id" in row ? "key_persons" : "customers",
      op: "delete",
      id,
      base_version: row.version as number,
    }));
  if (ops.length) await pushOps(token, ops, crypto.randomUUID(), "the clean-up");
}

/** Fails with the property's counterexample and the error it met. */
export function assertHolds<T>(verdict: fc.RunDetails<T>) {
  if (!verdict.failed) return;
  throw new Error(`${fc.defaultReportMessage(verdict)}\n${String(verdict.errorInstance)}`);
}

/**
 * Runs the property over `make()` outboxes: the generator, the reference device and the comparison.
 * Returns fast-check's verdict (fc.check), so a caller can also show that a wrong outbox fails it
 * (`mutant`: stop at the first failure, unshrunk).
 */
export async function checkOutboxProperty(
  make: () => OutboxUnderTest | Promise<OutboxUnderTest>,
  opts: { runs?: number; seed?: number; user?: User; mutant?: boolean } = {},
) {
  const user = opts.user ?? users.rm1Jakarta;
  const token = await tokenFor(user);
  return await fc.check(
    fc.asyncProperty(steps, async (run) => {
      const a = new Copy(), b = new Copy();
      try {
        await run1(a, b, run);
      } finally {
        await cleanUp(token, a);
        await cleanUp(token, b);
      }
    }),
    { numRuns: opts.runs ?? RUNS, seed: opts.seed ?? SEED, endOnFailure: opts.mutant ?? false },
  );

  async function run1(a: Copy, b: Copy, run: Step[]) {
    const outbox = await make();
    const clientA = crypto.randomUUID(), clientB = crypto.randomUUID();
    // The rows that exist before the edits, on both copies; the outbox's device has pulled them.
    const versions = new Map<string, number>();
    for (const copy of [a, b]) {
      const setup = await pushOps(
        token,
        [
          {
            op_id: crypto.randomUUID(),
            table: "customers",
            op: "insert",
            id: copy.id(SLOTS[0]),
            data: { name: "PT Awal", city: "Jakarta" },
          },
          {
            op_id: crypto.randomUUID(),
            table: "key_persons",
            op: "insert",
            id: copy.id(SLOTS[1]),
            data: { name: "Ibu Awal", customer_id: copy.id(SLOTS[0]), position: "Owner" },
          },
        ],
        crypto.randomUUID(),
        "setup",
      );
      for (const [i, r] of setup.entries()) {
        if (copy === a) await outbox.receive(SLOTS[i].table, r.row!);
        else versions.set(r.row!.id, r.row!.version);
      }
    }
    const model = new Map<string, ModelRow>(SLOTS.map((s) => [keyOf(s), { state: "absent", sent: false }]));
    model.set("customers/0", { state: "live", sent: true });
    model.set("key_persons/0", { state: "live", parent: 0, sent: true });

    /** The reference: this edit alone, pushed now, on the version the last answer gave. */
    const reference = async (e: LogicalEdit) => {
      const op = b.concrete(e);
      const wire: WireOp = { op_id: crypto.randomUUID(), table: op.table, op: op.op, id: op.id };
      if (op.op !== "insert") wire.base_version = versions.get(op.id);
      if (op.op !== "delete") wire.data = op.data;
      const [r] = await pushOps(token, [wire], clientB, "the reference");
      versions.set(op.id, r.row!.version);
      applyToModel(e, model);
    };

    let unanswered: { results: OpResult[] } | null = null;
    for (const s of run) {
      if (s.kind === "edit") {
        const { edit, cancelled, refused } = editOf(s, model);
        if (refused) {
          await assert.rejects(
            Promise.resolve().then(() => outbox.edit(a.concrete(refused))),
            `an edit of a deleted row is refused locally: ${JSON.stringify(refused)}`,
          );
        }
        if (!edit) continue;
        await outbox.edit(a.concrete(edit));
        for (const e of cancelled) await reference(e);
        await reference(edit);
      } else if (s.kind === "send" && !unanswered) {
        const ops = await outbox.pending();
        // Every create queued so far goes now: it heads its row.
        for (const row of model.values()) if (row.state === "live") row.sent = true;
        if (ops.length) unanswered = { results: await pushOps(token, ops, clientA, "the outbox") };
      } else if (s.kind === "answer") {
        if (unanswered) await outbox.ack(unanswered.results);
        unanswered = null;
      } else if (s.kind === "lose") {
        unanswered = null;
      }
    }
    // The device comes online for good: it syncs until nothing is left.
    if (unanswered) await outbox.ack((unanswered as { results: OpResult[] }).results);
    for (let round = 0;; round++) {
      assert.ok(round < 20, "the outbox empties within 20 pushes");
      const ops = await outbox.pending();
      if (!ops.length) break;
      await outbox.ack(await pushOps(token, ops, clientA, "the outbox"));
    }
    const [coalesced, expected] = [await serverState(a), await serverState(b)];
    assert.deepEqual(coalesced.live, expected.live, "the server holds the same live rows and values either way");
    // What the app reads is the server's row, and nothing of a row the server does not hold live.
    for (const s of SLOTS) {
      const id = a.id(s);
      const local = await outbox.read(s.table, id);
      const server = coalesced.rows.get(id);
      if (!server) {
        assert.equal(local, undefined, `the device shows no ${keyOf(s)}: the server holds none live`);
        continue;
      }
      assert.ok(local, `the device shows ${keyOf(s)}`);
      const cols = s.table === "customers" ? WRITTEN.customers : [...WRITTEN.key_persons, "customer_id"];
      for (const c of [...cols, "id", "version"]) {
        assert.deepEqual(local[c] ?? null, server[c], `the device shows ${keyOf(s)}.${c} as the server has it`);
      }
    }
  }
}
