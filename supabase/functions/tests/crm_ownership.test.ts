// Ownership follows the customer, through the function: a pipeline takes its customer's rm and
// branch whatever it names (so one created offline before a reassignment still applies), follows
// the customer when the bm reassigns it (the new rm's delta pull brings the pipelines with their
// new owner, the old rm's evicts them), and an activity about a pipeline is that pipeline's
// customer's.
import assert from "node:assert/strict";
import { insert, pullAll, push, test, tokenFor, update, users, uuid } from "./_helpers.ts";
import { about, asUser } from "./_pull.ts";

test("a pipeline created offline for the old rm applies after the reassignment and takes the new rm; both devices learn it in their next pull", async () => {
  const bm = await tokenFor(users.bmJakarta);
  const rmOne = await tokenFor(users.rm1Jakarta);
  const rmTwo = await tokenFor(users.rm2Jakarta);
  const customer = uuid(), pipeline = uuid(), offline = uuid();
  const created = await push(bm, [
    insert("customers", customer, { name: "PT Follows Its Customer", assigned_rm_id: users.rm1Jakarta.id }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Marine cargo" }),
  ]);
  assert.deepEqual(created.body.results.map((r) => r.status), ["applied", "applied"], created.text);
  assert.equal(
    created.body.results[1].row?.assigned_rm_id,
    users.rm1Jakarta.id,
    "a bm's pipeline is the customer's rm's",
  );
  const tables = { tables: ["customers", "pipelines"] };
  const one = await pullAll(rmOne, null, tables);
  const two = await pullAll(rmTwo, null, tables);

  const reassign = await push(bm, [
    update("customers", customer, created.body.results[0].row!.version, { assigned_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.equal(reassign.body.results[0].status, "applied", reassign.text);
  // Queued on the bm's device before the reassignment reached it: it names the old rm.
  const late = await push(bm, [
    insert("pipelines", offline, {
      customer_id: customer,
      title: "Queued offline",
      assigned_rm_id: users.rm1Jakarta.id,
    }),
  ]);
  assert.equal(late.body.results[0].status, "applied", late.text);
  assert.equal(late.body.results[0].row?.assigned_rm_id, users.rm2Jakarta.id, "derived, not validated");

  const gained = await pullAll(rmTwo, two.cursor, tables);
  const rows = gained.changes.filter((c) => c.op === "upsert" && c.table === "pipelines");
  for (const id of [pipeline, offline]) {
    const row = rows.findLast((c) => c.op === "upsert" && c.row.id === id);
    assert.ok(row?.op === "upsert", `the new rm pulls pipeline ${id}`);
    assert.equal(row.row.assigned_rm_id, users.rm2Jakarta.id, "with its new owner");
  }
  const lost = await pullAll(rmOne, one.cursor, tables);
  assert.ok(about(lost.changes, pipeline).some((c) => c.op === "evict"), "the old rm's device evicts the pipeline");
  assert.ok(!about(lost.changes, offline).some((c) => c.op === "upsert"), "and never receives the new one");

  const [row] = await versionOf(pipeline);
  assert.equal(row.version, 2, "the pipeline followed as one new version");
});

test("an activity about a pipeline belongs to the pipeline's customer, whichever customer it names", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const [a, b, pipeline, activity] = [uuid(), uuid(), uuid(), uuid()];
  const res = await push(rm, [
    insert("customers", a, { name: "PT Activity A" }),
    insert("customers", b, { name: "PT Activity B" }),
    insert("pipelines", pipeline, { customer_id: a, title: "About A" }),
    insert("activities", activity, { customer_id: b, pipeline_id: pipeline, activity_type: "call", subject: "Which?" }),
  ]);
  assert.deepEqual(res.body.results.map((r) => r.status), ["applied", "applied", "applied", "applied"], res.text);
  assert.equal(res.body.results[3].row?.customer_id, a, "the activity is the pipeline's customer's");

  const moved = await push(rm, [update("pipelines", pipeline, res.body.results[2].row!.version, { customer_id: b })]);
  assert.equal(moved.body.results[0].status, "applied", moved.text);
  const [after] = await asUser(
    users.rm1Jakarta,
    (tx) => tx`select customer_id from public.activities where id = ${activity}`,
  );
  assert.equal(after.customer_id, b, "a pipeline moved to another customer takes its activities along");
});

function versionOf(pipeline: string) {
  return asUser(
    users.bmJakarta,
    (tx) => tx`select version::int as version from public.pipelines where id = ${pipeline}`,
  );
}
