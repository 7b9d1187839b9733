// The outbox's coalescing, as a property against the real function: any sequence of local edits,
// coalesced by the kit and pushed (at the sync points the sequence has, and at its end), leaves the
// server with the same live rows and the same client-writable values as the same edits pushed one
// by one, each as its own op on the version the previous answer gave. FC_SEED and FC_RUNS change
// the seed and the number of cases.
import assert from "node:assert/strict";
import fc from "fast-check";
import { push, users } from "../../supabase/functions/tests/_helpers.ts";
import { deviceOf, serverRow, test, tokenFor } from "./_server.ts";
import { type EditStep, editSteps, type EditTarget, replay, type Table, type Values } from "./_edits.ts";

const SEED = Number(Deno.env.get("FC_SEED") ?? 15);
const RUNS = Number(Deno.env.get("FC_RUNS") ?? 25);
const SERVER_COLUMNS = [
  "id",
  "version",
  "created_at",
  "updated_at",
  "created_by",
  "updated_by",
  "deleted_at",
  "change_xid",
];

/** One op per edit, pushed at once, each on the version the answer before it gave. */
function oneByOne(token: string): EditTarget {
  const versions = new Map<string, number>();
  const send = async (op: Record<string, unknown>) => {
    const res = await push(token, [{ op_id: crypto.randomUUID(), ...op } as never]);
    assert.equal(res.status, 200, res.text);
    const [r] = res.body.results;
    assert.equal(r.status, "applied", `one by one: ${JSON.stringify(r)}`);
    versions.set(`${op.table}/${op.id}`, r.row!.version);
  };
  return {
    insert: (table, id, data) => send({ table, op: "insert", id, data }),
    update: (table, id, data) => send({ table, op: "update", id, base_version: versions.get(`${table}/${id}`), data }),
    delete: (table, id) => send({ table, op: "delete", id, base_version: versions.get(`${table}/${id}`) }),
    sync: () => Promise.resolve(),
  };
}

/** What the server holds of a slot: nothing, or the row's client-writable values (ids as slots) and whether it lives. */
async function held(table: Table, id: string, slotOf: Map<string, string>) {
  const row = await serverRow(table, id);
  if (!row || row.deleted_at) return null;
  const values: Values = {};
  for (const [k, v] of Object.entries(row)) {
    if (SERVER_COLUMNS.includes(k)) continue;
    values[k] = typeof v === "string" && slotOf.has(v) ? slotOf.get(v) : v instanceof Date ? v.toISOString() : v;
  }
  return values;
}

test(`any sequence of local edits, coalesced and pushed, leaves the server as pushing them one by one (seed ${SEED}, ${RUNS} runs)`, async () => {
  const device = await deviceOf(users.rm1Jakarta, { tables: ["customers", "key_persons"] });
  const token = await tokenFor(users.rm1Jakarta);
  const kit: EditTarget = {
    insert: async (table, id, data) => void await device.client.insert(table, data, id),
    update: (table, id, data) => device.client.update(table, id, data),
    delete: (table, id) => device.client.delete(table, id),
    sync: async () => void await device.client.sync(),
  };
  await fc.assert(
    fc.asyncProperty(editSteps(), async (steps: EditStep[]) => {
      // Each case starts with empty lists, so a shrunk counterexample fails for its own reasons.
      for (const r of device.client.state.rejected) await device.client.dismiss(r.op_id);
      const ids = { a: new Map<string, string>(), b: new Map<string, string>() };
      const idOf = (run: "a" | "b") => (table: Table, slot: number) => {
        const key = `${table}/${slot}`;
        if (!ids[run].has(key)) ids[run].set(key, crypto.randomUUID());
        return ids[run].get(key)!;
      };
      const done = await replay(kit, steps, idOf("a"));
      for (let i = 0; i < 5 && device.client.state.pending; i++) await device.client.sync();
      assert.equal(device.client.state.pending, 0, "the kit pushed everything");
      assert.deepEqual(device.client.state.rejected, [], "nothing was rejected");
      // Of the rows this case wrote: a conflict of the user's left open by another test arrives too.
      const mine = new Set(ids.a.values());
      assert.deepEqual(
        device.client.state.conflicts.filter((c) => mine.has(c.row_id)),
        [],
        "no edit of one device conflicts with itself",
      );
      await replay(oneByOne(token), done, idOf("b"));
      const slotsA = new Map([...ids.a].map(([k, v]) => [v, k]));
      const slotsB = new Map([...ids.b].map(([k, v]) => [v, k]));
      for (const key of ids.a.keys()) {
        const [table] = key.split("/") as [Table];
        assert.deepEqual(
          await held(table, ids.a.get(key)!, slotsA),
          await held(table, idOf("b")(table, Number(key.split("/")[1])), slotsB),
          `${key} after ${JSON.stringify(done)}`,
        );
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
