// A table registered after a device's cursor was issued (a migration of a later release, as the CRM's
// cadences were) reaches the device through its next pull, from the start, without a full pull: its
// cursor goes on for the other tables, and nothing it already holds comes again.
import assert from "node:assert/strict";
import { type Change, pull, pullAll, push, seedCustomer, sql, test, update, users } from "./_helpers.ts";
import { assertReplicaMatches, keyOf, replicate, rm1, visibleKeys } from "./_pull.ts";
import type { Row } from "./_pull.ts";

const ADDED = ["cadences", "cadence_participants"];

/**
 * Runs `fn` with the cadence tables' registration moved into a transaction that is open until
 * `fn` calls `commit`: to a pull before that, the tables are not registered yet, as before the
 * migration that registered them; after it, they are, as once it has run. Restores the recorded
 * registration whatever happens.
 */
async function withLateRegistration(fn: (commit: () => Promise<void>) => Promise<void>) {
  const saved = await sql`select table_name, registered_xid::text as xid from sync.tables where table_name in ${
    sql(ADDED)
  }`;
  const migration = await sql.reserve();
  let open = true;
  try {
    await migration`begin`;
    const [{ xid }] = await migration`select pg_current_xact_id()::text as xid`;
    await sql`update sync.tables set registered_xid = ${xid}::xid8 where table_name in ${sql(ADDED)}`;
    await fn(async () => {
      await migration`commit`;
      open = false;
    });
  } finally {
    if (open) await migration`rollback`;
    migration.release();
    for (const r of saved) {
      await sql`update sync.tables set registered_xid = ${r.xid}::xid8 where table_name = ${r.table_name}`;
    }
  }
}

test("a device that pulled before the cadence tables were registered gets them from the start on its next pull, and nothing else again", async () => {
  const token = await rm1();
  await withLateRegistration(async (commit) => {
    const first = await pullAll(token, null);
    assert.equal(
      first.changes.filter((c) => ADDED.includes(c.table)).length,
      0,
      "before the registration, no cadence rows",
    );
    const device = replicate(new Map<string, Row>(), first.changes);

    // The device is in the middle of a cycle (a page of a delta of two edits) when the migration commits.
    const edited = [seedCustomer(4), seedCustomer(8)];
    for (const id of edited) {
      const [{ version }] = await sql`select version from public.customers where id = ${id}`;
      const pushed = await push(token, [update("customers", id, Number(version), { notes: `late ${Date.now()}` })]);
      assert.equal(pushed.body.results[0].status, "applied", pushed.text);
    }
    const page1 = await pull(token, first.cursor, { limit: 1 });
    assert.equal(page1.body.has_more, true, page1.text);
    assert.equal(page1.body.resync_required, false);
    await commit();
    const rest = await pullAll(token, page1.body.cursor, { limit: 1 });
    const cycle: Change[] = [...page1.body.changes, ...rest.changes];
    assert.deepEqual(
      cycle.filter((c) => c.table !== "conflicts").map(keyOf).sort(),
      edited.map((id) => `customers/${id}`).sort(),
      "the cycle under way ends as it began: the two edits, once each",
    );
    replicate(device, cycle);

    const next = await pullAll(token, rest.cursor, { limit: 7 });
    const keys = next.changes.map(keyOf);
    assert.deepEqual(
      keys.filter((k) => !ADDED.includes(k.split("/")[0])),
      [],
      "the next pull brings no row of the other tables again",
    );
    assert.equal(new Set(keys).size, keys.length, "each row of the new tables comes once");
    assert.deepEqual(
      keys.sort(),
      await visibleKeys(users.rm1Jakarta, ADDED),
      "and every row of them rm1 may see, from the start",
    );
    assert.ok(keys.length > 0, "fixture: rm1 sees cadences and enrolments");
    replicate(device, next.changes);
    await assertReplicaMatches(users.rm1Jakarta, device);

    const after = await pullAll(token, next.cursor);
    assert.deepEqual(after.changes.filter((c) => c.table !== "conflicts"), [], "its cursor now covers the new tables");
  });
});
