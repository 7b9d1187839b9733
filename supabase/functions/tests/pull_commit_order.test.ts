// Completeness when commit order differs from transaction order: a transaction still open when a
// cursor is issued, or while later ones commit, is delivered by the pull after it commits; a
// rolled-back one leaves nothing to deliver and holds nothing back.
import assert from "node:assert/strict";
import { insert, pull, pullAll, push, sql, test, users, uuid } from "./_helpers.ts";
import { about, idOf, openTransaction, rm1, rowAs } from "./_pull.ts";

const changeXid = async (table: string, id: string) =>
  BigInt((await sql.unsafe(`select change_xid::text as x from public."${table}" where id = $1`, [id]))[0].x);

test("out-of-order commit: a transaction still open when a later one commits is delivered by the pull after it commits", async () => {
  const token = await rm1();
  const { cursor: c0 } = await pullAll(token, null);
  const a = uuid();
  const b = uuid();
  // T1 writes A and stays open.
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Slow Commit')`);
    // B is written and committed over HTTP while T1 is open.
    const pushed = await push(token, [insert("customers", b, { name: "PT Fast Commit" })]);
    assert.equal(pushed.body.results[0].status, "applied");

    const first = await pullAll(token, c0);
    assert.deepEqual(about(first.changes, b).map((c) => c.op), ["upsert"], "B is delivered");
    assert.equal(about(first.changes, a).length, 0, "A is not committed yet");

    await t1.commit();
    const second = await pullAll(token, first.cursor);
    assert.deepEqual(about(second.changes, a), [{
      table: "customers",
      op: "upsert",
      row: await rowAs(users.rm1Jakarta, "customers", a),
    }], "A is delivered once T1 has committed, although B (committed first) was already behind the cursor");
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: T1 took its transaction id before B's transaction began, writes after B committed, commits last", async () => {
  const token = await rm1();
  const a = uuid();
  await push(token, [insert("customers", a, { name: "PT Early Xid" })]);
  const { cursor: c0 } = await pullAll(token, null);
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    const t1Xid = await t1.xid();
    const b = uuid();
    await push(token, [insert("customers", b, { name: "PT Later Xid, Earlier Commit" })]);
    assert.ok(t1Xid < await changeXid("customers", b), "T1's transaction id is older than B's");
    await t1.run((tx) => tx`update public.customers set notes = 'written by T1' where id = ${a}`);

    const first = await pullAll(token, c0);
    assert.equal(about(first.changes, b).length, 1, "B is delivered");
    assert.equal(
      about(first.changes, a).length,
      0,
      "T1's edit of A is not visible yet (and A itself was not changed since c0)",
    );
    // Another cycle while T1 is still open: nothing new, and nothing waits for T1.
    const idle = await pullAll(token, first.cursor);
    assert.deepEqual(idle.changes, []);

    await t1.commit();
    const second = await pullAll(token, idle.cursor);
    const got = about(second.changes, a);
    assert.equal(got.length, 1, "T1's edit arrives after it commits");
    const [edit] = got;
    assert.ok(edit.op === "upsert", "T1's edit arrives as the row");
    assert.equal(edit.row.notes, "written by T1");
    assert.equal(edit.row.version, 2);
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: a transaction already open when the cursor was issued is delivered after it commits", async () => {
  const token = await rm1();
  const a = uuid();
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Open Across Cursors')`);
    const full = await pullAll(token, null);
    assert.equal(about(full.changes, a).length, 0);
    const b = uuid();
    await push(token, [insert("customers", b, { name: "PT Committed Meanwhile" })]);
    const first = await pullAll(token, full.cursor);
    assert.equal(about(first.changes, b).length, 1);
    assert.equal(about(first.changes, a).length, 0);
    await t1.commit();
    const second = await pullAll(token, first.cursor);
    assert.equal(about(second.changes, a).length, 1, "A arrives");
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: a transaction that commits while a pull is paging arrives in the next cycle", async () => {
  const token = await rm1();
  const { cursor: c0 } = await pullAll(token, null);
  const a = uuid();
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Commits Between Pages')`);
    const later = Array.from({ length: 30 }, () => uuid());
    await push(token, later.map((id, i) => insert("customers", id, { name: `PT Paging ${i}` })));
    const page1 = await pull(token, c0, { limit: 10 });
    assert.equal(page1.body.has_more, true);
    await t1.commit();
    const rest = await pullAll(token, page1.body.cursor, { limit: 10 });
    const cycle1 = [...page1.body.changes, ...rest.changes];
    assert.deepEqual(cycle1.map(idOf).sort(), [...later].sort(), "the cycle delivers the 30 rows of its snapshot");
    const cycle2 = await pullAll(token, rest.cursor, { limit: 10 });
    assert.deepEqual(cycle2.changes.map(idOf), [a], "A, committed mid-cycle, comes in the next one");
  } finally {
    await t1.close();
  }
});

test("a rolled-back transaction leaves nothing to deliver and holds nothing back", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null);
  const t1 = openTransaction(users.rm1Jakarta);
  await t1.run((tx) => tx`insert into public.customers (id, name) values (${uuid()}, 'PT Never Committed')`);
  const b = uuid();
  await push(token, [insert("customers", b, { name: "PT Next To A Rollback" })]);
  await t1.close();
  const delta = await pullAll(token, cursor);
  assert.deepEqual(delta.changes.map(idOf), [b]);
  assert.deepEqual((await pull(token, delta.cursor)).body.changes, []);
});
