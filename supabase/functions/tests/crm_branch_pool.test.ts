// A branch pool, through the function: a bm's new customer without an rm reaches the bm and no rm;
// when the bm assigns it, the rm's next delta pull brings it with its child rows, although
// nothing the rm wrote changed (the scope-change log carries the move).
import assert from "node:assert/strict";
import { insert, pullAll, push, test, tokenFor, update, users, uuid } from "./_helpers.ts";
import { about, asUser } from "./_pull.ts";

test("a pool customer reaches the bm, not the rms, until the bm assigns it; then the rm's next delta pull brings it with its key person", async () => {
  const bm = await tokenFor(users.bmJakarta);
  const rm = await tokenFor(users.rm1Jakarta);
  const before = await pullAll(rm, null, { tables: ["customers", "key_persons"] });

  const customer = uuid(), person = uuid();
  const created = await push(bm, [
    insert("customers", customer, { name: "PT Walk-in Pool" }),
    insert("key_persons", person, { customer_id: customer, name: "Pak Walk-in" }),
  ]);
  assert.deepEqual(created.body.results.map((r) => r.status), ["applied", "applied"], created.text);
  assert.equal(created.body.results[0].row?.assigned_rm_id, null, "no rm: the branch's pool");
  assert.equal(created.body.results[0].row?.branch_id, "00000000-0000-4000-8000-0000000000b1");

  const bmView = await pullAll(bm, null, { tables: ["customers"] });
  assert.equal(about(bmView.changes, customer).length, 1, "the bm pulls the pool customer");
  const unseen = await pullAll(rm, before.cursor, { tables: ["customers", "key_persons"] });
  assert.equal(about(unseen.changes, customer).length, 0, "an rm does not");
  assert.equal(about(unseen.changes, person).length, 0, "nor its key person");

  const assign = await push(bm, [
    update("customers", customer, created.body.results[0].row!.version, { assigned_rm_id: users.rm1Jakarta.id }),
  ]);
  assert.equal(assign.body.results[0].status, "applied", assign.text);

  const delta = await pullAll(rm, unseen.cursor, { tables: ["customers", "key_persons"] });
  const got = delta.changes.filter((c) => c.op === "upsert").map((c) => c.op === "upsert" ? c.row.id : "");
  assert.ok(got.includes(customer), "the assigned customer arrives in the rm's next delta pull");
  assert.ok(got.includes(person), "with its key person, which did not change itself");
});

test("an assignment to someone who is not an rm of the branch is refused naming assigned_rm_id, on the push and as a direct write", async () => {
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid();
  const created = await push(bm, [insert("customers", customer, { name: "PT Pool Misassigned" })]);
  assert.equal(created.body.results[0].status, "applied", created.text);
  const message =
    `permission denied: customers.assigned_rm_id ${users.rm1Surabaya.id} is not a relationship manager of branch 00000000-0000-4000-8000-0000000000b1`;
  const pushed = await push(bm, [
    update("customers", customer, created.body.results[0].row!.version, { assigned_rm_id: users.rm1Surabaya.id }),
  ]);
  const r = pushed.body.results[0];
  assert.deepEqual([r.status, r.code, r.field, r.message], ["rejected", "forbidden", "assigned_rm_id", message]);
  await assert.rejects(
    asUser(
      users.bmJakarta,
      (tx) => tx`update public.customers set assigned_rm_id = ${users.rm1Surabaya.id} where id = ${customer}`,
    ),
    (e: { code?: string; message?: string }) => e.code === "42501" && e.message === message,
  );
  const [row] = await asUser(
    users.bmJakarta,
    (tx) => tx`insert into public.customers (name) values ('PT Direct Pool') returning assigned_rm_id`,
  );
  assert.equal(row.assigned_rm_id, null, "a bm's direct insert lands in the pool too, where it used to be refused");
});
