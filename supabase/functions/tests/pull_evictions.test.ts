// Scope changes: a row that leaves the caller's scope (a customer reassigned, a child moved to
// another customer) is evicted with every row below it, the user it reaches receives it with its
// existing children, and evictions page within the limit like any other change.
import assert from "node:assert/strict";
import { insert, pull, pullAll, push, seedCustomer, sql, test, update, users, uuid } from "./_helpers.ts";
import {
  about,
  assertReplicaMatches,
  bm,
  type Change,
  customerWithFamily,
  idOf,
  replicate,
  rm1,
  rm2,
  rowAs,
} from "./_pull.ts";

test("evictions: a customer reassigned to another rm is evicted with every child row; the new rm receives it and its existing children", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Reassigned");
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  const bmCursor = (await pullAll(await bm(), null)).cursor;
  const replicaOne = replicate(new Map(), one.changes);
  const replicaTwo = replicate(new Map(), two.changes);
  assert.ok(fam.all.every(([t, id]) => replicaOne.has(`${t}/${id}`)));

  const res = await push(await bm(), [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(res.body.results[0].status, "applied", res.text);

  // rm1: an evict for the customer and for each of its child rows, and nothing of their new state.
  const lost = await pullAll(rmOne, one.cursor);
  for (const [table, id] of fam.all) {
    assert.deepEqual(about(lost.changes, id), [{ table, op: "evict", id }], `${table} ${id} is evicted for rm1`);
  }
  assert.ok(!lost.changes.some((c) => c.op === "upsert"), "no upsert reveals the reassigned rows to rm1");
  await assertReplicaMatches(users.rm1Jakarta, replicate(replicaOne, lost.changes));

  // rm2: the customer as an upsert, and the child rows that existed before (they did not change themselves).
  const gained = await pullAll(rmTwo, two.cursor);
  for (const [table, id] of fam.all) {
    const got = about(gained.changes, id).filter((c) => c.op === "upsert");
    const last = got.at(-1);
    assert.ok(last, `${table} ${id} reaches rm2`);
    assert.deepEqual(last.row, await rowAs(users.rm2Jakarta, table, id));
  }
  assert.ok(!gained.changes.some((c) => c.op === "evict"));
  const position = (id: string) => gained.changes.findIndex((c) => idOf(c) === id);
  for (const [, id] of fam.children) {
    assert.ok(position(fam.customer) < position(id), "the customer comes before its children");
  }
  const [, pipeline] = fam.children.find(([t]) => t === "pipelines")!;
  const [, referral] = fam.children.find(([t]) => t === "pipeline_referrals")!;
  assert.ok(position(pipeline) < position(referral), "the pipeline comes before its referral");
  await assertReplicaMatches(users.rm2Jakarta, replicate(replicaTwo, gained.changes));

  // The bm, who sees the whole branch, only gets the customer's new version and its pipeline's,
  // which follows the customer to its new rm.
  const bmDelta = await pullAll(await bm(), bmCursor);
  assert.deepEqual(bmDelta.changes.map((c) => [c.op, idOf(c)]), [["upsert", fam.customer], ["upsert", pipeline]]);
});

test("evictions: a key person moved to a customer rm1 cannot see is evicted for rm1 and reaches the other rm", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Loses A Contact");
  const [, kp] = fam.children[0];
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  const target = seedCustomer(9); // rm2.jakarta's
  const res = await push(await bm(), [update("key_persons", kp, 1, { customer_id: target })]);
  assert.equal(res.body.results[0].status, "applied", res.text);

  const lost = await pullAll(rmOne, one.cursor);
  assert.deepEqual(lost.changes, [{ table: "key_persons", op: "evict", id: kp }]);
  const gained = await pullAll(rmTwo, two.cursor);
  const got = about(gained.changes, kp);
  assert.equal(got.length, 1);
  assert.equal(got[0].op, "upsert");
  assert.equal(got[0].row.customer_id, target);
});

test("evictions: a customer reassigned and then one of its key persons moved elsewhere, both before rm1 pulls: everything is evicted", async () => {
  const rmOne = await rm1();
  const fam = await customerWithFamily(rmOne, "PT Reassigned Then Split");
  const [, kp] = fam.children[0];
  const one = await pullAll(rmOne, null);
  const replica = replicate(new Map(), one.changes);
  const manager = await bm();
  const moved = await push(manager, [
    update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id }),
    update("key_persons", kp, 1, { customer_id: seedCustomer(9) }),
  ]);
  assert.deepEqual(moved.body.results.map((r: { status: string }) => r.status), ["applied", "applied"], moved.text);
  const lost = await pullAll(rmOne, one.cursor);
  for (const [table, id] of fam.all) {
    assert.deepEqual(about(lost.changes, id), [{ table, op: "evict", id }], `${table} ${id} is evicted for rm1`);
  }
  await assertReplicaMatches(users.rm1Jakarta, replicate(replica, lost.changes));
});

test("evictions: reassigned away and back within one cycle, rm1 keeps the customer and all of its rows", async () => {
  const rmOne = await rm1();
  const fam = await customerWithFamily(rmOne, "PT Boomerang");
  const one = await pullAll(rmOne, null);
  const manager = await bm();
  await push(manager, [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  await push(manager, [update("customers", fam.customer, 2, { assigned_rm_id: users.rm1Jakarta.id })]);
  const delta = await pullAll(rmOne, one.cursor);
  const replica = replicate(replicate(new Map(), one.changes), delta.changes);
  for (const [table, id] of fam.all) {
    assert.ok(replica.has(`${table}/${id}`), `${table} ${id} is still on rm1's device`);
  }
  assert.equal(replica.get(`customers/${fam.customer}`)?.version, 3);
  await assertReplicaMatches(users.rm1Jakarta, replica);
});

test("evictions and gained rows are paged within the limit like any other change", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Big Family");
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  await push(await bm(), [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  for (
    const [user, token, cursor, op] of [[users.rm1Jakarta, rmOne, one.cursor, "evict"], [
      users.rm2Jakarta,
      rmTwo,
      two.cursor,
      "upsert",
    ]] as const
  ) {
    const limit = 3;
    const seen: Change[] = [];
    let c: string | null = cursor;
    for (;;) {
      const res = await pull(token, c, { limit });
      assert.ok(
        res.body.changes.length <= limit,
        `${user.email}: a page of ${res.body.changes.length} changes; limit ${limit}`,
      );
      seen.push(...res.body.changes);
      c = res.body.cursor;
      if (!res.body.has_more) break;
    }
    for (const [table, id] of fam.all) {
      assert.ok(
        seen.some((x) => x.table === table && idOf(x) === id && x.op === op),
        `${user.email}: ${op} ${table} ${id}`,
      );
    }
  }
});

test("every phase pages: the evictions of rows rm1 wrote into a customer reassigned away come within the limit, and the cycle ends", async () => {
  const rm = await rm1();
  const customer = seedCustomer(4); // rm1.jakarta's
  const { cursor: start } = await pullAll(rm, null);
  const written = [uuid(), uuid(), uuid()];
  const made = await push(
    rm,
    written.map((id, i) => insert("key_persons", id, { customer_id: customer, name: `Contact ${i}` })),
  );
  assert.deepEqual(
    made.body.results.map((r: { status: string }) => r.status),
    ["applied", "applied", "applied"],
    made.text,
  );
  const [{ version }] = await sql`select version from public.customers where id = ${customer}`;
  const moved = await push(await bm(), [
    update("customers", customer, Number(version), { assigned_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.equal(moved.body.results[0].status, "applied", moved.text);
  try {
    const limit = 2;
    const seen: Change[] = [];
    const cursors = new Set<string | null>([start]);
    let cursor: string | null = start;
    for (let page = 1;; page++) {
      const res = await pull(rm, cursor, { limit });
      assert.equal(res.status, 200, res.text);
      assert.ok(
        res.body.changes.length <= limit,
        `page ${page} holds ${res.body.changes.length} changes; limit ${limit}`,
      );
      assert.ok(!cursors.has(res.body.cursor), `page ${page} hands out a cursor of this cycle again`);
      cursors.add(res.body.cursor);
      seen.push(...res.body.changes);
      cursor = res.body.cursor;
      if (!res.body.has_more) break;
      assert.ok(page < 200, "the cycle comes to an end");
    }
    for (const id of [customer, ...written]) {
      assert.ok(seen.some((c) => c.op === "evict" && c.id === id), `${id} is evicted`);
    }
    const after = await pull(rm, cursor, { limit });
    assert.deepEqual(after.body.changes, [], "the next cycle starts after the evictions");
  } finally {
    const [{ version: now }] = await sql`select version from public.customers where id = ${customer}`;
    await push(await bm(), [update("customers", customer, Number(now), { assigned_rm_id: users.rm1Jakarta.id })]);
  }
});
