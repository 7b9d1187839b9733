// Scope changes that race open transactions: a row written under a customer while its reassignment
// is still open is evicted from, or reaches, the device of the rm the customer ends up with.
import assert from "node:assert/strict";
import { insert, pullAll, push, test, tokenFor, update, users, uuid } from "./_helpers.ts";
import { about, assertReplicaMatches, bm, openTransaction, replicate, rm1 } from "./_pull.ts";

test("a row the caller writes into a customer while a bm reassigns it away is evicted from the caller's device", async () => {
  const rm = await rm1();
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid();
  await push(rm, [insert("customers", customer, { name: "PT Reassigned Mid-Write" })]);
  const { cursor } = await pullAll(rm, null);
  const keyPerson = uuid();
  // The rm's transaction adds a key person and stays open while the bm reassigns the customer.
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Late Contact')`
    );
    const moved = await push(bm, [update("customers", customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
    assert.equal(moved.body.results[0].status, "applied");
    await t1.commit();
  } finally {
    await t1.close();
  }
  const { changes } = await pullAll(rm, cursor);
  assert.deepEqual(about(changes, customer).map((c) => c.op), ["evict"], "the customer is evicted");
  // Evicted as the rm's own write and, when the reassignment listed the children before the key
  // person committed, as a row below the customer it did not list: twice is harmless.
  const evicts = about(changes, keyPerson).map((c) => c.op);
  assert.ok(
    evicts.length >= 1 && evicts.every((op) => op === "evict"),
    `the key person the rm wrote as the customer left them is evicted too, though no scope change names it: ${evicts}`,
  );
});

test("a key person another user adds to a customer while the bm's reassignment of it is still open, pulled before the reassignment commits, is evicted after it", async () => {
  const rm = await rm1();
  const manager = await bm();
  const customer = uuid();
  await push(manager, [insert("customers", customer, { name: "PT Race", assigned_rm_id: users.rm1Jakarta.id })]);
  const { changes: first, cursor } = await pullAll(rm, null);
  const replica = replicate(new Map(), first);
  const keyPerson = uuid();
  const adding = openTransaction(users.bmJakarta);
  const moving = openTransaction(users.bmJakarta);
  try {
    await adding.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Racing Contact')`
    );
    await moving.run((tx) =>
      tx`update public.customers set assigned_rm_id = ${users.rm2Jakarta.id} where id = ${customer}`
    );
    await adding.commit();
    const between = await pullAll(rm, cursor);
    replicate(replica, between.changes);
    await moving.commit();
    const after = await pullAll(rm, between.cursor);
    replicate(replica, after.changes);
  } finally {
    await adding.close();
    await moving.close();
  }
  await assertReplicaMatches(users.rm1Jakarta, replica);
});

test("a key person added to a customer while the bm's reassignment of it to rm1 is still open reaches rm1, though rm1's cursor passed its commit while rm1 could not see it", async () => {
  const rm = await rm1();
  const manager = await bm();
  const customer = uuid();
  await push(manager, [insert("customers", customer, { name: "PT Race Won", assigned_rm_id: users.rm2Jakarta.id })]);
  const { changes: first, cursor } = await pullAll(rm, null);
  const replica = replicate(new Map(), first);
  const keyPerson = uuid();
  const adding = openTransaction(users.rm2Jakarta);
  const moving = openTransaction(users.bmJakarta);
  try {
    await adding.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Late Arrival')`
    );
    await moving.run((tx) =>
      tx`update public.customers set assigned_rm_id = ${users.rm1Jakarta.id} where id = ${customer}`
    );
    await adding.commit();
    const between = await pullAll(rm, cursor);
    assert.equal(about(between.changes, keyPerson).length, 0, "rm1 cannot see it yet");
    replicate(replica, between.changes);
    await moving.commit();
    const after = await pullAll(rm, between.cursor);
    assert.deepEqual(about(after.changes, keyPerson).map((c) => c.op), ["upsert"]);
    replicate(replica, after.changes);
  } finally {
    await adding.close();
    await moving.close();
  }
  await assertReplicaMatches(users.rm1Jakarta, replica);
});
