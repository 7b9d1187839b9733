import assert from "node:assert/strict";
import { call, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

// An op_id names one op. The same op sent again (keys in another order, a number spelled another
// way: the same JSON value) is a duplicate; other content under that op_id is rejected/op_id_reused,
// not retryable, and is neither applied nor answered as if it had been.

const rm1 = () => tokenFor(users.rm1Jakarta);

interface Result {
  op_id: string;
  status: string;
  original_status?: string;
  code?: string;
}

/** A push whose body is this exact text, so key order and number spelling reach the server as written. */
async function pushText(token: string, text: string) {
  return await call("/push", undefined, { token, method: "POST", rawBody: text });
}

test("the same op sent again with its keys in another order and 150000000.00 for 150000000 is a duplicate", async () => {
  const token = await rm1();
  const [clientId, customerOp, customer, pipelineOp, pipeline] = [uuid(), uuid(), uuid(), uuid(), uuid()];
  const first = await pushText(
    token,
    `{"protocol":2,"client_id":"${clientId}","ops":[` +
      `{"op_id":"${customerOp}","table":"customers","op":"insert","id":"${customer}","data":{"name":"PT Same","phone":"+62 1"}},` +
      `{"op_id":"${pipelineOp}","table":"pipelines","op":"insert","id":"${pipeline}",` +
      `"data":{"customer_id":"${customer}","title":"Cover","potential_value":150000000}}]}`,
  );
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.body.results.map((r: Result) => r.status), ["applied", "applied"]);

  const again = await pushText(
    token,
    `{"ops":[{"data":{"phone":"+62 1","name":"PT Same"},"id":"${customer}","op":"insert","table":"customers","op_id":"${customerOp}"},` +
      `{"id":"${pipeline}","op_id":"${pipelineOp}","op":"insert","table":"pipelines",` +
      `"data":{"potential_value":150000000.00,"title":"Cover","customer_id":"${customer}"}}],` +
      `"client_id":"${clientId}","protocol":2}`,
  );
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(
    again.body.results.map((r: Result) => [r.status, r.original_status]),
    [["duplicate", "applied"], ["duplicate", "applied"]],
  );
});

test("an op_id sent again with other content is rejected op_id_reused, not retryable, and nothing is applied", async () => {
  const token = await rm1();
  const [opId, customer] = [uuid(), uuid()];
  const body = (name: string) => ({
    protocol: 2,
    client_id: uuid(),
    ops: [{ op_id: opId, table: "customers", op: "insert", id: customer, data: { name } }],
  });
  const first = await call("/push", body("PT First"), { token });
  assert.equal(first.body.results[0].status, "applied", first.text);

  const reused = await call("/push", body("PT Second"), { token });
  assert.equal(reused.status, 200, reused.text);
  assert.deepEqual(reused.body.results[0], {
    op_id: opId,
    status: "rejected",
    code: "op_id_reused",
    retryable: false,
    message: `op_id ${opId} was already used for a different op; this op was not applied (a new op needs a new op_id)`,
  });

  const edit = {
    protocol: 2,
    client_id: uuid(),
    ops: [{
      op_id: opId,
      table: "customers",
      op: "update",
      id: customer,
      base_version: 1,
      data: { name: "PT Edited" },
    }],
  };
  const reusedForEdit = await call("/push", edit, { token });
  assert.equal(reusedForEdit.body.results[0].code, "op_id_reused", reusedForEdit.text);

  const [row] = await sql`select name, version from public.customers where id = ${customer}`;
  assert.deepEqual({ ...row, version: Number(row.version) }, { name: "PT First", version: 1 });
  const [{ outcome }] =
    await sql`select outcome from sync.applied_ops where user_id = ${users.rm1Jakarta.id} and op_id = ${opId}`;
  assert.equal(outcome.status, "applied", "the op_id keeps its original outcome");

  const replay = await call("/push", body("PT First"), { token });
  assert.deepEqual([replay.body.results[0].status, replay.body.results[0].original_status], ["duplicate", "applied"]);
});
