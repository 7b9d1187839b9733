// Property-based: the bulk push engine is an optimisation, not a second set of rules. For random
// batches over a few rows (creates and their edits, stale and current versions, deletes, children
// of new and deleted parents, a column the role may not write), whenever the bulk engine takes a
// batch its results are the per-op engine's on the same database state, op by op.
import assert from "node:assert/strict";
import fc from "fast-check";
import type postgres from "postgres";
import { type OpResult, seedCustomer, sql, test, users, uuid } from "./_helpers.ts";

const RUNS = Number(Deno.env.get("FC_RUNS") ?? 60);
const SEED = Number(Deno.env.get("FC_SEED") ?? 20261125);

class Undo extends Error {}

// rm1.jakarta's seed customers 4 and 8 with their key persons, and two customers and two key
// persons that do not exist yet.
const customers = [
  seedCustomer(4),
  seedCustomer(8),
  "c1000000-0000-4000-8000-000000000001",
  "c1000000-0000-4000-8000-000000000002",
];
const keyPersons = [
  "00000000-0000-4000-8200-000000000041",
  "00000000-0000-4000-8200-000000000081",
  "c2000000-0000-4000-8000-000000000001",
  "c2000000-0000-4000-8000-000000000002",
];

// A step: which row, and dice for what happens to it. The ops are built from the steps with a
// model of the rows (exists? deleted? version?), so that most batches are what a device sends,
// with some stale versions, foreign columns and children of deleted parents among them.
const step = fc.record({
  table: fc.constantFrom("customers", "key_persons"),
  row: fc.nat(3),
  roll: fc.nat(99),
  stale: fc.nat(99),
  parent: fc.nat(3),
  foreign: fc.nat(99),
});

type Row = { exists: boolean; deleted: boolean; version: number };

function buildOps(
  steps: { table: string; row: number; roll: number; stale: number; parent: number; foreign: number }[],
  start: Map<string, Row>,
) {
  const model = new Map([...start].map(([k, v]) => [k, { ...v }]));
  return steps.map((st, i) => {
    const id = (st.table === "customers" ? customers : keyPersons)[st.row];
    const m = model.get(id)!;
    const base = st.stale < 10 ? Math.max(1, m.version - 1 + (st.stale % 3)) : m.version;
    let op: Record<string, postgres.JSONValue>;
    if (!m.exists || st.roll < 5) {
      const parent = customers[st.parent];
      op = st.table === "customers"
        ? {
          op: "insert",
          data: { name: `PT Property ${i}`, ...(st.foreign < 5 ? { assigned_rm_id: users.rm2Jakarta.id } : {}) },
        }
        : { op: "insert", data: { customer_id: parent, name: `Contact ${i}`, position: "Owner" } };
      if (!m.exists && (st.table === "customers" || (model.get(parent)!.exists && !model.get(parent)!.deleted))) {
        Object.assign(m, { exists: true, deleted: false, version: 1 });
      }
    } else if (st.roll < 20) {
      op = { op: "delete", base_version: base };
      if (base === m.version && !m.deleted) Object.assign(m, { deleted: true, version: m.version + 1 });
    } else {
      const data = st.table === "customers"
        ? {
          notes: `edit ${i}`,
          ...(st.roll % 2 ? { phone: `+62 21 ${i}` } : {}),
          ...(st.foreign < 5 ? { assigned_rm_id: users.rm2Jakarta.id } : {}),
        }
        : { position: st.roll % 2 ? "Director" : "Owner" };
      op = { op: "update", base_version: st.roll > 90 ? null : base, data };
      if (base === m.version && !m.deleted && st.foreign >= 5) m.version++;
    }
    return { op_id: uuid(), table: st.table, id, ...op };
  });
}

const batch = fc.array(step, { minLength: 1, maxLength: 10 });

// The clock's values differ between the two runs; deleted_at only says whether it is set. Each run
// writes its own conflict audit entries, so a conflict's id is only checked to be there.
const comparable = (results: OpResult[]) =>
  results.map((r) => {
    const out = r.conflict ? { ...r, conflict: { ...r.conflict, id: typeof r.conflict.id === "string" } } : r;
    if (!out.row) return out;
    const { created_at: _c, updated_at: _u, deleted_at, ...row } = out.row;
    return { ...out, row: { ...row, deleted: deleted_at !== null } };
  });

test("whenever the bulk engine takes a batch, its results are the per-op engine's", async () => {
  const start = new Map<string, Row>(
    [...customers, ...keyPersons].map((id) => [id, { exists: false, deleted: false, version: 0 }]),
  );
  for (
    const r
      of await sql`select id::text, version::int, deleted_at is not null as deleted from public.customers where id = any(${customers}::uuid[])
                            union all select id::text, version::int, deleted_at is not null from public.key_persons where id = any(${keyPersons}::uuid[])`
  ) {
    start.set(r.id, { exists: true, deleted: r.deleted, version: r.version });
  }
  let taken = 0;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(batch, async (steps) => {
      runs++;
      const ops = buildOps(steps, start);
      const earlier = {}; // no op of the batch was processed before
      let bulk: string | null = null;
      let perOp = "";
      await sql.begin(async (tx) => {
        await tx`select set_config('role', 'sync_engine', true), set_config('request.jwt.claims', ${
          JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" })
        }, true)`;
        try {
          await tx.savepoint(async (sp) => {
            const [r] = await sp`select to_jsonb(sync.apply_ops_in_bulk(${sp.json(ops)}, ${
              sp.json(earlier)
            }))::text as r`;
            bulk = r.r;
            throw new Undo();
          });
        } catch (err) {
          // A raise means the batch goes to the per-op engine, like a decline.
          if (!(err instanceof Undo)) bulk = null;
        }
        const [r] = await tx`select to_jsonb(sync.run_ops(${tx.json(ops)}, ${
          tx.json(earlier)
        }, null, true))::text as r`;
        perOp = r.r;
        throw new Undo();
      }).catch((err) => {
        if (!(err instanceof Undo)) throw err;
      });
      if (bulk === null) return;
      taken++;
      assert.deepEqual(comparable(JSON.parse(bulk)), comparable(JSON.parse(perOp)), JSON.stringify(ops));
    }),
    { numRuns: RUNS, seed: SEED },
  );
  console.log(JSON.stringify({ seed: SEED, runs, taken_by_bulk_engine: taken }));
  // A property the bulk engine never meets proves nothing.
  assert.ok(taken >= runs / 5, `the bulk engine took ${taken} of ${runs} batches`);
});
