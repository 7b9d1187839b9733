// Approvals as a workflow, through the function and through direct table writes as the user: an rm submits and
// withdraws, the bm of the branch approves or rejects, nobody approves their own submission, the
// server records who and when, an approved pipeline's money and stage are the bm's, and a stale
// approval waits for a person. Each refusal is rejected / forbidden naming the field and the move.
import assert from "node:assert/strict";
import { insert, type OpResult, push, test, tokenFor, update, users, uuid } from "./_helpers.ts";
import { asUser } from "./_pull.ts";

/** A new customer of rm1.jakarta with one draft pipeline, pushed by rm1; the pipeline's id and version. */
async function draftPipeline(rm: string) {
  const customer = uuid(), pipeline = uuid();
  const res = await push(rm, [
    insert("customers", customer, { name: "PT Approval Workflow" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Fleet cover", potential_value: 100000000 }),
  ]);
  assert.deepEqual(res.body.results.map((r) => r.status), ["applied", "applied"], res.text);
  return { pipeline, version: res.body.results[1].row!.version };
}

const outcome = (r: OpResult) => [r.status, r.code ?? null, r.field ?? null, r.message ?? null];

test("an rm submits and withdraws through the push, and cannot decide: the refusal names the field and the move", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const { pipeline, version } = await draftPipeline(rm);

  const approve = await push(rm, [update("pipelines", pipeline, version, { approval_status: "approved" })]);
  assert.deepEqual(outcome(approve.body.results[0]), [
    "rejected",
    "forbidden",
    "approval_status",
    "permission denied: role rm may not move pipelines.approval_status from draft to approved",
  ]);

  const submit = await push(rm, [update("pipelines", pipeline, version, { approval_status: "submitted" })]);
  const submitted = submit.body.results[0];
  assert.equal(submitted.status, "applied", submit.text);
  assert.equal(submitted.row?.approval_status, "submitted");
  assert.equal(submitted.row?.submitted_by, users.rm1Jakarta.id, "the server records who submitted");

  const withdraw = await push(rm, [
    update("pipelines", pipeline, submitted.row!.version, { approval_status: "draft" }),
  ]);
  assert.equal(withdraw.body.results[0].status, "applied", withdraw.text);
  assert.equal(withdraw.body.results[0].row?.submitted_by, null, "a withdrawn pipeline is a draft again");
});

test("the bm of the branch approves a submission; the server records who and when; what a client says of it is refused", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const { pipeline, version } = await draftPipeline(rm);

  const early = await push(bm, [update("pipelines", pipeline, version, { approval_status: "approved" })]);
  assert.deepEqual(outcome(early.body.results[0]), [
    "rejected",
    "forbidden",
    "approval_status",
    "permission denied: role bm may not move pipelines.approval_status from draft to approved",
  ], "a bm approves only what was submitted");

  const submit = await push(rm, [update("pipelines", pipeline, version, { approval_status: "submitted" })]);
  const submitted = submit.body.results[0].row!;

  const forged = await push(bm, [
    update("pipelines", pipeline, submitted.version, { approval_status: "approved", approved_by: users.rm2Jakarta.id }),
  ]);
  assert.deepEqual(outcome(forged.body.results[0]), [
    "rejected",
    "forbidden",
    "approved_by",
    "permission denied: role bm may not write pipelines.approved_by",
  ]);

  const other = await push(await tokenFor(users.bmSurabaya), [
    update("pipelines", pipeline, submitted.version, { approval_status: "approved" }),
  ]);
  assert.equal(other.body.results[0].code, "not_found", "a bm of another branch does not reach it");

  const approve = await push(bm, [
    update("pipelines", pipeline, submitted.version, { approval_status: "approved", approved_value: 90000000 }),
  ]);
  const approved = approve.body.results[0];
  assert.equal(approved.status, "applied", approve.text);
  assert.equal(approved.row?.approved_by, users.bmJakarta.id);
  assert.equal(approved.row?.approved_at, approved.row?.updated_at, "decided when the row changed");
  assert.equal(approved.row?.submitted_by, users.rm1Jakarta.id);

  // Once approved, the money and the stage are the bm's.
  const stage = await push(rm, [update("pipelines", pipeline, approved.row!.version, { stage: "won" })]);
  assert.deepEqual(outcome(stage.body.results[0]), [
    "rejected",
    "forbidden",
    "stage",
    "permission denied: role rm may not change pipelines.stage of an approved pipeline",
  ]);
  const notes = await push(rm, [update("pipelines", pipeline, approved.row!.version, { notes: "signed" })]);
  assert.equal(notes.body.results[0].status, "applied", "the rest of the pipeline is still the rm's");
  const won = await push(bm, [update("pipelines", pipeline, notes.body.results[0].row!.version, { stage: "won" })]);
  assert.equal(won.body.results[0].status, "applied", won.text);
});

test("nobody approves their own submission: an admin who submitted is refused, a bm then decides", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const admin = await tokenFor(users.admin);
  const { pipeline, version } = await draftPipeline(rm);
  const submit = await push(admin, [update("pipelines", pipeline, version, { approval_status: "submitted" })]);
  assert.equal(submit.body.results[0].row?.submitted_by, users.admin.id, submit.text);
  const own = await push(admin, [
    update("pipelines", pipeline, submit.body.results[0].row!.version, { approval_status: "approved" }),
  ]);
  assert.deepEqual(outcome(own.body.results[0]), [
    "rejected",
    "forbidden",
    "approval_status",
    "permission denied: pipelines.approval_status from submitted to approved: nobody approves their own submission",
  ]);
  const reject = await push(await tokenFor(users.bmJakarta), [
    update("pipelines", pipeline, submit.body.results[0].row!.version, { approval_status: "rejected" }),
  ]);
  assert.equal(reject.body.results[0].status, "applied", reject.text);
  assert.equal(reject.body.results[0].row?.approved_by, users.bmJakarta.id, "approved_by records who decided");
});

test("an approval based on a version the rm has since withdrawn waits for a person", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const { pipeline, version } = await draftPipeline(rm);
  const submit = await push(rm, [update("pipelines", pipeline, version, { approval_status: "submitted" })]);
  const seen = submit.body.results[0].row!.version; // what the bm's device holds
  const withdraw = await push(rm, [update("pipelines", pipeline, seen, { approval_status: "draft" })]);
  assert.equal(withdraw.body.results[0].status, "applied", withdraw.text);

  const stale = await push(bm, [update("pipelines", pipeline, seen, { approval_status: "approved" })]);
  const r = stale.body.results[0];
  assert.equal(r.status, "conflict", stale.text);
  assert.equal(r.code, "stale");
  assert.equal(r.conflict?.resolution, "manual_pending");
  assert.equal(r.row?.approval_status, "draft", "the withdrawn pipeline stays a draft until a person decides");
});

test("a direct table write as the user (what PostgREST runs) is held to the same workflow", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const { pipeline } = await draftPipeline(rm);
  await assert.rejects(
    asUser(
      users.rm1Jakarta,
      (tx) => tx`update public.pipelines set approval_status = 'approved' where id = ${pipeline}`,
    ),
    (e: { code?: string; message?: string; column_name?: string }) =>
      e.code === "42501" && e.column_name === "approval_status" &&
      e.message === "permission denied: role rm may not move pipelines.approval_status from draft to approved",
  );
  const [row] = await asUser(
    users.rm1Jakarta,
    (tx) =>
      tx`update public.pipelines set approval_status = 'submitted' where id = ${pipeline}
         returning approval_status, submitted_by`,
  );
  assert.deepEqual({ ...row }, { approval_status: "submitted", submitted_by: users.rm1Jakarta.id });
});
