// Deltas: from a cursor, a pull carries what changed since (upserts at their new version, deletes as
// tombstones), nothing when nothing changed, and a change made while a cycle pages arrives in the next.
import assert from "node:assert/strict";
import { insert, pull, pullAll, push, remove, test, update, users, uuid } from "./_helpers.ts";
import { about, bm, idOf, rm1, rowAs } from "./_pull.ts";

test("an unchanged dataset gives an empty delta: changes [], has_more false, a response under 1 KB", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null);
  const res = await pull(token, cursor);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.changes, []);
  assert.equal(res.body.has_more, false);
  assert.equal(res.body.resync_required, false);
  assert.equal(typeof res.body.cursor, "string");
  assert.ok(res.text.length < 1024, `${res.text.length} bytes`);
  // And again from the cursor the empty delta returned.
  const again = await pull(token, res.body.cursor);
  assert.deepEqual(again.body.changes, []);
});

test("a delta after another user's push carries the upsert with the new version; a delete arrives as {op: delete, id, version}", async () => {
  const rm = await rm1();
  const id = uuid();
  const gone = uuid();
  await push(rm, [
    insert("customers", id, { name: "PT Edited By Manager" }),
    insert("customers", gone, { name: "PT To Be Deleted" }),
  ]);
  const { cursor } = await pullAll(rm, null);

  const edit = await push(await bm(), [update("customers", id, 1, { phone: "+62 21 bm" })]);
  assert.equal(edit.body.results[0].status, "applied");
  const del = await push(await bm(), [remove("customers", gone, 1)]);
  assert.equal(del.body.results[0].status, "applied");

  const delta = await pullAll(rm, cursor);
  assert.deepEqual(about(delta.changes, id), [{
    table: "customers",
    op: "upsert",
    row: await rowAs(users.rm1Jakarta, "customers", id),
  }]);
  const [edited] = about(delta.changes, id);
  assert.ok(edited.op === "upsert");
  assert.equal(edited.row.version, 2);
  assert.equal(edited.row.phone, "+62 21 bm");
  assert.equal(edited.row.updated_by, users.bmJakarta.id);
  assert.equal(edited.row.change_xid, undefined, "internal columns stay internal");
  assert.deepEqual(about(delta.changes, gone), [{ table: "customers", op: "delete", id: gone, version: 2 }]);
  assert.equal(delta.changes.length, 2, "nothing else changed");
});

test("a change made while a pull pages through its snapshot arrives in the next cycle", async () => {
  const token = await rm1();
  const id = uuid();
  await push(token, [insert("customers", id, { name: "PT Changed Mid-Pull" })]);
  const first = await pull(token, null, { limit: 50 });
  assert.equal(first.body.has_more, true);
  // Between two pages: an edit of a row the pull has maybe already sent, and a new child row.
  await push(await bm(), [update("customers", id, 1, { notes: "edited between pages" })]);
  const kp = uuid();
  await push(token, [insert("key_persons", kp, { customer_id: id, name: "Added Mid-Pull" })]);
  const rest = await pullAll(token, first.body.cursor, { limit: 50 });
  const next = await pullAll(token, rest.cursor, { limit: 50 });
  const latest = [...first.body.changes, ...rest.changes, ...next.changes].filter((c) => idOf(c) === id).at(-1);
  assert.ok(latest?.op === "upsert", "the row comes in one of the two cycles");
  assert.equal(latest.row.notes, "edited between pages", "the last word about the row is its latest version");
  assert.equal(about(next.changes, kp).length, 1, "the child added meanwhile comes in the next cycle");
});
