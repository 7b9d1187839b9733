// Referrals move what a user reads without a row of theirs changing: the rm a referral is made to
// receives it (with its summary) in their next delta; accepting brings them the pipeline, its
// customer and the pipeline's activities, and declining or closing evicts those rows again. The
// referring rm sees each answer. Through the function and through the RPC (public.sync_push,
// public.sync_pull), which answer the same.
import assert from "node:assert/strict";
import { insert, type OpResult, pullAll, push, test, update, type User, users, uuid } from "./_helpers.ts";
import { about, assertReplicaMatches, asUser, type Change, idOf, replicate, rm1, rm2, rowAs } from "./_pull.ts";

/** rm1's customer with a key person, a pipeline with an activity on it, and a second pipeline. */
async function referredFamily(token: string, name: string) {
  const [customer, kp, pipeline, activity, other] = Array.from({ length: 5 }, () => uuid());
  const res = await push(token, [
    insert("customers", customer, { name, city: "Depok", customer_type: "individual" }),
    insert("key_persons", kp, { customer_id: customer, name: "Owner" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Home cover", stage: "qualified" }),
    insert("activities", activity, {
      customer_id: customer,
      pipeline_id: pipeline,
      activity_type: "call",
      subject: "First call",
    }),
    insert("pipelines", other, { customer_id: customer, title: "Car cover" }),
  ]);
  assert.ok(res.body.results.every((x: OpResult) => x.status === "applied"), res.text);
  return { customer, kp, pipeline, activity, other };
}

const opsOf = (changes: Change[]) =>
  changes.filter((c) => c.table !== "conflicts").map((c) => [c.op, c.table, idOf(c)]);

test("referrals: the referred rm receives the referral with its summary; accepting brings the pipeline, its customer and the pipeline's activities in the next delta, closing evicts them; the referring rm sees each answer", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await referredFamily(rmOne, "Ibu Referred");
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  const replicaOne = replicate(new Map(), one.changes);
  const replicaTwo = replicate(new Map(), two.changes);

  const referral = uuid();
  const made = await push(rmOne, [
    insert("pipeline_referrals", referral, { pipeline_id: fam.pipeline, referred_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.equal(made.body.results[0].status, "applied", made.text);

  // Made: rm2 receives the referral and nothing of the customer.
  const got = await pullAll(rmTwo, two.cursor);
  assert.deepEqual(opsOf(got.changes), [["upsert", "pipeline_referrals", referral]]);
  const [delivered] = about(got.changes, referral);
  assert.equal(delivered.op, "upsert");
  assert.deepEqual(
    Object.fromEntries(
      ["status", "customer_name", "customer_type", "customer_city", "pipeline_title", "pipeline_stage"].map((k) => [
        k,
        delivered.row[k],
      ]),
    ),
    {
      status: "open",
      customer_name: "Ibu Referred",
      customer_type: "individual",
      customer_city: "Depok",
      pipeline_title: "Home cover",
      pipeline_stage: "qualified",
    },
  );
  await assertReplicaMatches(users.rm2Jakarta, replicate(replicaTwo, got.changes));

  // Accepted: the pipeline, its customer and the activity on it, not the key person or the other pipeline.
  const accepted = await push(rmTwo, [update("pipeline_referrals", referral, null, { status: "accepted" })]);
  assert.equal(accepted.body.results[0].status, "applied", accepted.text);
  const gained = await pullAll(rmTwo, got.cursor);
  const upserted = new Set(gained.changes.filter((c) => c.op === "upsert").map((c) => `${c.table}/${idOf(c)}`));
  for (const key of [`pipelines/${fam.pipeline}`, `customers/${fam.customer}`, `activities/${fam.activity}`]) {
    assert.ok(upserted.has(key), `${key} reaches rm2 after the accept: ${JSON.stringify(opsOf(gained.changes))}`);
  }
  for (const id of [fam.kp, fam.other]) assert.deepEqual(about(gained.changes, id), [], `${id} stays rm1's`);
  assert.deepEqual(
    about(gained.changes, fam.pipeline).at(-1),
    { table: "pipelines", op: "upsert", row: await rowAs(users.rm2Jakarta, "pipelines", fam.pipeline) },
  );
  await assertReplicaMatches(users.rm2Jakarta, replicate(replicaTwo, gained.changes));

  // The referring rm sees the answer; their edits of the pipeline and the customer reach the referred rm.
  const seen = await pullAll(rmOne, one.cursor);
  const answer = about(seen.changes, referral).at(-1);
  assert.ok(answer?.op === "upsert" && answer.row.status === "accepted", JSON.stringify(seen.changes));
  await assertReplicaMatches(users.rm1Jakarta, replicate(replicaOne, seen.changes));
  // Edits that leave the referral as it was: only the rows granted to rm2 tell their device's next
  // delta that something concerns it.
  const edited = await push(rmOne, [
    update("pipelines", fam.pipeline, null, { notes: "call back on Monday" }),
    update("customers", fam.customer, null, { phone: "+62 21 555 0199" }),
  ]);
  assert.ok(edited.body.results.every((x: OpResult) => x.status === "applied"), edited.text);
  const edits = await pullAll(rmTwo, gained.cursor);
  const notes = about(edits.changes, fam.pipeline).at(-1);
  assert.ok(notes?.op === "upsert" && notes.row.notes === "call back on Monday", JSON.stringify(edits.changes));
  const phone = about(edits.changes, fam.customer).at(-1);
  assert.ok(phone?.op === "upsert" && phone.row.phone === "+62 21 555 0199", "an edit of the granted customer too");
  // A new stage: the referral's summary follows.
  const staged = await push(rmOne, [update("pipelines", fam.pipeline, null, { stage: "proposal" })]);
  assert.equal(staged.body.results[0].status, "applied", staged.text);
  const followed = await pullAll(rmTwo, edits.cursor);
  const summary = about(followed.changes, referral).at(-1);
  assert.ok(
    summary?.op === "upsert" && summary.row.pipeline_stage === "proposal",
    "and the referral's summary follows",
  );
  replicate(replicaTwo, edits.changes);

  // The referred rm logs an activity on the pipeline, through the function.
  const logged = uuid();
  const log = await push(rmTwo, [
    insert("activities", logged, {
      customer_id: fam.customer,
      pipeline_id: fam.pipeline,
      activity_type: "meeting",
      subject: "Met the owner",
    }),
  ]);
  assert.equal(log.body.results[0].status, "applied", log.text);
  const afterLog = await pullAll(rmTwo, followed.cursor);
  replicate(replicaTwo, followed.changes);
  replicate(replicaTwo, afterLog.changes);
  await assertReplicaMatches(users.rm2Jakarta, replicaTwo);
  assert.ok(replicaTwo.has(`activities/${logged}`));

  // Closed by the referring rm: every row the referral gave is evicted from rm2's device.
  const closed = await push(rmOne, [update("pipeline_referrals", referral, null, { status: "closed" })]);
  assert.equal(closed.body.results[0].status, "applied", closed.text);
  const lost = await pullAll(rmTwo, afterLog.cursor);
  for (
    const [table, id] of [
      ["pipelines", fam.pipeline],
      ["customers", fam.customer],
      ["activities", fam.activity],
      ["activities", logged],
    ]
  ) {
    assert.ok(
      lost.changes.some((c) => c.op === "evict" && c.table === table && c.id === id),
      `${table} ${id} is evicted: ${JSON.stringify(opsOf(lost.changes))}`,
    );
  }
  replicate(replicaTwo, lost.changes);
  await assertReplicaMatches(users.rm2Jakarta, replicaTwo);
  assert.equal(replicaTwo.get(`pipeline_referrals/${referral}`)?.status, "closed", "the closed referral stays");
});

/** The RPC, as the user: what a client calling public.sync_push / public.sync_pull gets back. */
const rpc = async (user: User, fn: "sync_push" | "sync_pull", payload: unknown) =>
  await asUser(user, async (tx) => {
    const [{ r }] = fn === "sync_push"
      ? await tx`select public.sync_push(${tx.json(payload as never)}) as r`
      : await tx`select public.sync_pull(${tx.json(payload as never)}) as r`;
    return r;
  });

test("referrals: a refused answer is rejected / forbidden naming status, through the function and the RPC alike; a decline through the RPC sends the referral and evicts nothing", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await referredFamily(rmOne, "PT Declined");
  const referral = uuid();
  const made = await push(rmOne, [
    insert("pipeline_referrals", referral, { pipeline_id: fam.pipeline, referred_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.equal(made.body.results[0].status, "applied", made.text);

  // The referring rm may not accept for the referred one; the function and the RPC say the same.
  const accept = update("pipeline_referrals", referral, null, { status: "accepted" });
  const viaFunction = await push(rmOne, [accept]);
  const viaRpc = await rpc(users.rm1Jakarta, "sync_push", {
    protocol: 2,
    client_id: uuid(),
    ops: [{ ...accept, op_id: uuid() }],
  });
  for (const result of [viaFunction.body.results[0], viaRpc.results[0]]) {
    assert.deepEqual(
      [result.status, result.code, result.field, result.message],
      [
        "rejected",
        "forbidden",
        "status",
        "permission denied: pipeline_referrals.status may not go from open to accepted by the referring side",
      ],
    );
  }

  // rm2 declines through the RPC and pulls through it: the referral, declined, and nothing else.
  const { cursor } = await pullAll(rmTwo, null);
  const declined = await rpc(users.rm2Jakarta, "sync_push", {
    protocol: 2,
    client_id: uuid(),
    ops: [{ ...update("pipeline_referrals", referral, null, { status: "declined" }), op_id: uuid() }],
  });
  assert.equal(declined.results[0].status, "applied", JSON.stringify(declined));
  const delta = await rpc(users.rm2Jakarta, "sync_pull", { protocol: 2, cursor, limit: 500 });
  const changes = (delta.changes as Change[]).filter((c) => c.table !== "conflicts");
  assert.deepEqual(opsOf(changes), [["upsert", "pipeline_referrals", referral]]);
  const [answer] = changes;
  assert.ok(answer.op === "upsert" && answer.row.status === "declined", JSON.stringify(answer));
  const asFunction = await pullAll(rmTwo, cursor);
  assert.deepEqual(opsOf(asFunction.changes), opsOf(changes), "the function's answer is the RPC's");
});
