// What reaches whom: a pull carries the rows its caller may see, as the caller may see them, and a
// device that follows every delta holds exactly what its user may see.
import assert from "node:assert/strict";
import { pullAll, push, remove, seedCustomer, sql, test, update, users } from "./_helpers.ts";
import { about, assertReplicaMatches, bm, customerWithFamily, keyOf, replicate, rm1, rm2, type Row } from "./_pull.ts";

test("rows reach the caller as the caller may see them: another rm's customers and their rows never appear", async () => {
  const token = await rm1();
  const { changes, cursor } = await pullAll(token, null);
  const upserts = changes.filter((c) => c.op === "upsert");
  assert.equal(upserts.length, changes.length, "a first pull carries rows only");
  const customers = upserts.filter((c) => c.table === "customers").map((c) => c.row);
  assert.ok(customers.length >= 75);
  // Beside their own, the customers granted to them (an accepted referral: pull_referrals.test.ts).
  const granted = new Set(
    (await sql`select row_id::text as id from sync.row_grants where user_id = ${users.rm1Jakarta.id} and table_name = 'customers'`)
      .map((g) => g.id as string),
  );
  assert.ok(
    customers.every((r) => r.assigned_rm_id === users.rm1Jakarta.id || granted.has(r.id)),
    "only rm1's customers, and those granted to rm1",
  );
  const mine = new Set<unknown>(customers.map((r) => r.id));
  for (const n of [1, 2, 3]) assert.ok(!mine.has(seedCustomer(n)), `seed customer ${n} is another rm's`);
  for (
    const c of upserts.filter((c) => ["key_persons", "pipelines", "activities", "customer_hvc_links"].includes(c.table))
  ) {
    assert.ok(mine.has(c.row.customer_id), `${keyOf(c)} belongs to one of rm1's customers`);
  }
  const profiles = upserts.filter((c) => c.table === "profiles").map((c) => c.row);
  assert.deepEqual(
    profiles.map((p) => p.id).sort(),
    [users.bmJakarta.id, users.rm1Jakarta.id, users.rm2Jakarta.id].sort(),
    "staff of rm1's own branch only",
  );

  // The row carries every column the caller may read, and not the internal change_xid.
  const columns = (await sql`select column_name from information_schema.columns
                              where table_schema = 'public' and table_name = 'customers' and column_name <> 'change_xid'`)
    .map((r) => r.column_name).sort();
  assert.deepEqual(Object.keys(customers[0]).sort(), columns);

  // A delta: rm2 edits their own customer; rm1 is not told.
  const other = seedCustomer(5);
  const [{ version }] = await sql`select version from public.customers where id = ${other}`;
  const edit = await push(await rm2(), [update("customers", other, Number(version), { notes: "rm2's business" })]);
  assert.equal(edit.body.results[0].status, "applied");
  const delta = await pullAll(token, cursor);
  assert.equal(about(delta.changes, other).length, 0);
});

test("a device that follows every delta holds exactly what its user may see, after reassignments, moves, edits and deletes", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const manager = await bm();
  const devices = [
    { user: users.rm1Jakarta, token: rmOne, replica: new Map<string, Row>(), cursor: null as string | null },
    { user: users.rm2Jakarta, token: rmTwo, replica: new Map<string, Row>(), cursor: null as string | null },
    { user: users.bmJakarta, token: manager, replica: new Map<string, Row>(), cursor: null as string | null },
  ];
  const sync = async () => {
    for (const d of devices) {
      const res = await pullAll(d.token, d.cursor, { limit: 40 });
      replicate(d.replica, res.changes);
      d.cursor = res.cursor;
      await assertReplicaMatches(d.user, d.replica);
    }
  };
  await sync();
  const f1 = await customerWithFamily(rmOne, "PT Replica One");
  const f2 = await customerWithFamily(rmOne, "PT Replica Two");
  await sync();
  await push(manager, [update("customers", f1.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  await push(manager, [update("key_persons", f2.children[0][1], 1, { customer_id: f1.customer })]);
  await sync();
  await push(rmTwo, [update("key_persons", f2.children[0][1], 2, { customer_id: seedCustomer(9) })]);
  await push(manager, [update("customers", f1.customer, 2, { assigned_rm_id: users.rm1Jakarta.id, notes: "back" })]);
  await push(rmOne, [
    remove("key_persons", f1.children[1][1], 1),
    update("pipelines", f2.children[2][1], 1, { stage: "won" }),
  ]);
  await sync();
  await sync();
});
