// The outbox property, for any client's outbox: any sequence of local edits, coalesced and pushed,
// leaves the server with the same live rows and the same client-writable values as pushing the same
// edits one by one. A client's outbox takes part through a small interface (receive a pulled row,
// queue an edit, hand out the next batch, settle its answer); the guide's SQL (sql.js) and any other
// kit run under the same generator against the real function.
//
// Each run works on rows of its own: a customer and a key person that exist before the edits, and
// new ones the edits create. The same edits go, on a fresh copy of those rows, through a reference
// device that pushes each edit alone as soon as it is made, on the version the last answer gave.
// While the outbox syncs, its requests interleave with the edits: an edit can be made while a batch
// is unanswered, and an answer can be lost after the server committed it (the batch goes again).
import assert from "node:assert/strict";
import fc from "fast-check";
import { type OpResult, push, sql, tokenFor, type User, users } from "./_helpers.ts";

/** A local edit as the app makes it. */
export type Edit =
  | { op: "insert"; table: string; id: string; data: Record<string, unknown> }
  | { op: "update"; table: string; id: string; data: Record<string, unknown> }
  | { op: "delete"; table: string; id: string };

/** A protocol 2 op as it goes on the wire. */
export interface WireOp {
  op_id: string;
  table: string;
  op: "insert" | "update" | "delete";
  id: string;
  base_version?: number | null;
  data?: Record<string, unknown>;
  base?: Record<string, unknown>;
}

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
  /** Optional: the live row as the app reads it; when given, it must match the server at the end. */
  read?(table: string, id: string): Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
}

export const RUNS = Number(Deno.env.get("FC_RUNS") ?? 20);
export const SEED = Number(Deno.env.get("FC_SEED") ?? 20261202);

/** The columns the property compares: every column a client writes, none the server sets. */
const SERVER_COLUMNS = ["id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at"];
const CUSTOMER_COLUMNS = ["name", "phone", "city", "notes", "industry"];
const KEY_PERSON_COLUMNS = ["name", "position", "phone", "notes", "is_primary"];

type Slot = { table: "customers" | "key_persons"; n: number };
/** Slots 0 exist before the edits; the others are created by them. */
const SLOTS: Slot[] = [0, 1, 2].flatMap((n) => [{ table: "customers", n }, { table: "key_persons", n }] as Slot[]);

const values = fc.constantFrom<unknown>(null, "", "a", "Jl. Sudirman 1", "ünïcødé ✓", "0812-555", "x".repeat(40));
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
export const steps = fc.array(step, { minLength: 1, maxLength: 24 });
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

/** One logical row's place in the model of the device (what the app shows). */
interface ModelRow {
  state: "absent" | "live" | "deleted";
  parent?: number;
}

/**
 * Turns the dice into edits against the model of what the device shows, as the app would make
 * them: a create of an absent row, an edit or a delete of a live one (a customer's live key persons
 * are deleted before it, as the app's cascade does), and now and then an edit of a deleted row,
 * which the outbox must refuse.
 */
function editsOf(
  s: Extract<Step, { kind: "edit" }>,
  model: Map<string, ModelRow>,
): { edits: LogicalEdit[]; refused?: LogicalEdit } {
  const slot = SLOTS[s.slot];
  const key = `${slot.table}/${slot.n}`;
  const row = model.get(key)!;
  const cols = slot.table === "customers" ? CUSTOMER_COLUMNS : KEY_PERSON_COLUMNS;
  const data: Record<string, unknown> = {};
  cols.forEach((c, i) => {
    if ((s.pick >> i) & 1) {
      data[c] = c === "is_primary" ? s.v[i] === null : c === "name" ? `${s.v[i] ?? "n"}-${s.pick}` : s.v[i];
    }
  });
  if (row.state === "absent") {
    const name = `${slot.table === "customers" ? "PT" : "Ibu"} ${s.pick}`;
    if (slot.table === "customers") return { edits: [{ op: "insert", slot, data: { ...data, name } }] };
    const parents = [0, 1, 2].filter((n) => model.get(`customers/${n}`)!.state === "live");
    if (!parents.length) return { edits: [] };
    const parent = parents[s.pick % parents.length];
    return { edits: [{ op: "insert", slot, data: { ...data, name }, parent }] };
  }
  if (row.state === "deleted") {
    return s.roll < 30
      ? { edits: [], refused: { op: "update", slot, data: { notes: "after delete" } } }
      : { edits: [] };
  }
  if (s.roll < 15) {
    const edits: LogicalEdit[] = [];
    if (slot.table === "customers") {
      for (const n of [0, 1, 2]) {
        const kp = model.get(`key_persons/${n}`)!;
        if (kp.state === "live" && kp.parent === slot.n) {
          edits.push({ op: "delete", slot: { table: "key_persons", n } });
        }
      }
    }
    edits.push({ op: "delete", slot });
    return { edits };
  }
  if (!Object.keys(data).length) {
    data[cols[s.roll % cols.length]] = s.roll % 2
      ? `v${s.roll}`
      : (cols[s.roll % cols.length] === "is_primary" ? true : "w");
  }
  return { edits: [{ op: "update", slot, data }] };
}

type LogicalEdit =
  | { op: "insert"; slot: Slot; data: Record<string, unknown>; parent?: number }
  | { op: "update"; slot: Slot; data: Record<string, unknown> }
  | { op: "delete"; slot: Slot };

function applyToModel(e: LogicalEdit, model: Map<string, ModelRow>) {
  const key = `${e.slot.table}/${e.slot.n}`;
  if (e.op === "insert") model.set(key, { state: "live", parent: e.parent });
  if (e.op === "delete") model.get(key)!.state = "deleted";
}

/** One copy of the run's rows: their ids, and the edits made concrete on them. */
class Copy {
  readonly ids = new Map<string, string>();
  constructor() {
    for (const s of SLOTS) this.ids.set(`${s.table}/${s.n}`, crypto.randomUUID());
  }
  id(slot: Slot) {
    return this.ids.get(`${slot.table}/${slot.n}`)!;
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

/** The rows of a copy as the server holds them: live or not, and the client-writable values. */
async function serverState(copy: Copy) {
  const back = new Map([...copy.ids].map(([k, v]) => [v, k]));
  const out: Record<string, unknown> = {};
  const rows = await sql`
    select 'customers' as t, id::text, deleted_at is null as live, to_jsonb(c) as row from public.customers c where id = any(${[
    ...copy.ids.values(),
  ]}::uuid[])
    union all
    select 'key_persons', id::text, deleted_at is null, to_jsonb(k) from public.key_persons k where id = any(${[
    ...copy.ids.values(),
  ]}::uuid[])`;
  for (const r of rows) {
    const cols = r.t === "customers" ? CUSTOMER_COLUMNS : [...KEY_PERSON_COLUMNS, "customer_id"];
    const values = Object.fromEntries(cols.map((c) => [c, c === "customer_id" ? back.get(r.row[c]) : r.row[c]]));
    out[back.get(r.id)!] = r.live ? values : "deleted";
  }
  return { out, rows };
}

/** Pushes ops and returns the results, failing on anything but a 200. */
async function pushOps(
  token: string,
  ops: WireOp[],
  clientId: ReturnType<typeof crypto.randomUUID>,
): Promise<OpResult[]> {
  const res = await push(token, ops, clientId);
  if (res.status !== 200) throw new Error(`push answered ${res.status}: ${res.text}`);
  return res.body.results;
}

/**
 * Runs the property over `make()` outboxes: the generator, the reference device and the comparison.
 * Returns fast-check's verdict (fc.check), so a caller can also show that a wrong outbox fails it.
 */
export async function checkOutboxProperty(
  make: () => OutboxUnderTest | Promise<OutboxUnderTest>,
  opts: { runs?: number; seed?: number; user?: User } = {},
) {
  const user = opts.user ?? users.rm1Jakarta;
  const token = await tokenFor(user);
  return await fc.check(
    fc.asyncProperty(steps, async (run) => {
      const outbox = await make();
      const a = new Copy(), b = new Copy();
      const clientA = crypto.randomUUID(), clientB = crypto.randomUUID();
      // The rows that exist before the edits, on both copies; the outbox's device has pulled them.
      const versions = new Map<string, number>();
      for (const copy of [a, b]) {
        const setup = await pushOps(token, [
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
        ], crypto.randomUUID());
        assert.deepEqual(setup.map((r) => r.status), ["applied", "applied"]);
        for (const [i, r] of setup.entries()) {
          if (copy === a) await outbox.receive(SLOTS[i].table, r.row!);
          else versions.set(r.row!.id, r.row!.version);
        }
      }
      const model = new Map<string, ModelRow>(SLOTS.map((s) => [`${s.table}/${s.n}`, { state: "absent" }]));
      model.set("customers/0", { state: "live" });
      model.set("key_persons/0", { state: "live", parent: 0 });

      let unanswered: { results: OpResult[] } | null = null;
      const deliver = async () => {
        if (unanswered) await outbox.ack(unanswered.results);
        unanswered = null;
      };
      for (const s of run) {
        if (s.kind === "edit") {
          const { edits, refused } = editsOf(s, model);
          if (refused) {
            await assert.rejects(
              Promise.resolve().then(() => outbox.edit(a.concrete(refused))),
              `an edit of a deleted row is refused locally: ${JSON.stringify(refused)}`,
            );
          }
          for (const e of edits) {
            await outbox.edit(a.concrete(e));
            // The reference: this edit alone, pushed now, on the version the last answer gave.
            const op = b.concrete(e);
            const id = op.id;
            const wire: WireOp = { op_id: crypto.randomUUID(), table: op.table, op: op.op, id };
            if (op.op !== "insert") wire.base_version = versions.get(id);
            if (op.op !== "delete") wire.data = op.data;
            const [r] = await pushOps(token, [wire], clientB);
            assert.equal(r.status, "applied", `the reference's ${op.op} applies: ${JSON.stringify(r)}`);
            versions.set(id, r.row!.version);
            applyToModel(e, model);
          }
        } else if (s.kind === "send" && !unanswered) {
          const ops = await outbox.pending();
          if (ops.length) unanswered = { results: await pushOps(token, ops, clientA) };
        } else if (s.kind === "answer") {
          await deliver();
        } else if (s.kind === "lose") {
          unanswered = null;
        }
      }
      // The device comes online for good: it syncs until nothing is left.
      await deliver();
      for (let round = 0;; round++) {
        assert.ok(round < 20, "the outbox empties within 20 pushes");
        const ops = await outbox.pending();
        if (!ops.length) break;
        const results = await pushOps(token, ops, clientA);
        for (const r of results) {
          const status = r.status === "duplicate" ? r.original_status : r.status;
          assert.equal(status, "applied", `every op applies: ${JSON.stringify(r)}`);
        }
        await outbox.ack(results);
      }
      const [coalesced, reference] = [await serverState(a), await serverState(b)];
      assert.deepEqual(coalesced.out, reference.out, "the server holds the same rows and values either way");
      if (outbox.read) {
        for (const r of coalesced.rows) {
          const local = await outbox.read(r.t, r.id);
          if (!r.live) {
            assert.equal(local, undefined, `a deleted row is not shown: ${r.t} ${r.id}`);
            continue;
          }
          assert.ok(local, `the device shows ${r.t} ${r.id}`);
          const cols = r.t === "customers" ? CUSTOMER_COLUMNS : [...KEY_PERSON_COLUMNS, "customer_id"];
          for (const c of [...cols, "version"]) {
            assert.deepEqual(local[c] ?? null, r.row[c], `the device shows ${r.t}.${c} as the server has it`);
          }
        }
      }
    }),
    { numRuns: opts.runs ?? RUNS, seed: opts.seed ?? SEED, endOnFailure: true },
  );
}

export { SERVER_COLUMNS };
