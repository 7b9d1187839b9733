// A push whose response was lost is sent again and answered `duplicate`: the op's first outcome,
// with the row as it is now for the caller, not as it was then. A device that applied the first
// answer's row after pulling newer changes would go back in time, or bring back a row it had been
// told to evict, and its cursor would never bring the newer state again.
import assert from "node:assert/strict";
import { insert, push, seedCustomer, test, tokenFor, update, users, uuid } from "./_helpers.ts";

test("a duplicate carries the row's current version, changed by another user since the op", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const id = uuid();
  const op = insert("customers", id, { name: "PT Retried Create" });
  const first = await push(rm, [op]);
  assert.equal(first.body.results[0].row?.version, 1);
  await push(bm, [update("customers", id, 1, { city: "Bogor" })]);

  const again = await push(rm, [op]);
  const r = again.body.results[0];
  assert.equal(r.status, "duplicate");
  assert.equal(r.original_status, "applied");
  assert.equal(r.row?.version, 2, "the row as it is now");
  assert.equal(r.row?.city, "Bogor");
});

test("a duplicate carries no row once the caller may no longer see it", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid();
  await push(rm, [insert("customers", customer, { name: "PT Soon Reassigned" })]);
  const contact = insert("key_persons", uuid(), { customer_id: customer, name: "Contact Before The Move" });
  assert.equal((await push(rm, [contact])).body.results[0].status, "applied");
  await push(bm, [update("customers", customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);

  const again = await push(rm, [contact]);
  const r = again.body.results[0];
  assert.equal(r.status, "duplicate");
  assert.equal("row" in r, false, "no row: the pull evicts it from the device");
});

test("a duplicate of an edit of a seed row carries its current state too", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const op = update("customers", seedCustomer(12), null, { notes: `retried ${uuid()}` });
  const first = await push(rm, [op]);
  const again = await push(rm, [op]);
  const firstRow = first.body.results[0].row;
  assert.ok(firstRow, first.text);
  assert.equal(again.body.results[0].status, "duplicate");
  assert.equal(again.body.results[0].row?.version, firstRow.version);
});
