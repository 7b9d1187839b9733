import assert from "node:assert/strict";
import {
  conflictIn,
  env,
  insert,
  pullAll,
  push,
  seedCustomer,
  sql,
  test,
  tokenFor,
  update,
  upserted,
  users,
  uuid,
} from "./_helpers.ts";

async function conflictsCli(...args: string[]) {
  const out = await new Deno.Command("node", {
    args: ["scripts/conflicts.mjs", ...args],
    env: { DB_URL: env.dbUrl },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

/** A line of `npm run conflicts -- --open --json` (the view sync.open_conflicts). */
interface OpenConflict {
  conflict_id: string;
  row_id: string;
  field: string;
  server_value: unknown;
  client_value: unknown;
  base_value: unknown;
}

test("two devices edit the same pipeline offline: notes merge, the value waits for review, both are told, the DBA resolves, both pull it", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const pipeline = uuid();
  await push(rm, [
    insert("pipelines", pipeline, {
      customer_id: seedCustomer(4),
      title: "Fleet renewal",
      potential_value: 500000000,
      notes: "first call",
    }),
  ]);

  // Both devices hold version 1 and their cursors.
  let rmCursor = (await pullAll(rm, null)).cursor;
  let bmCursor = (await pullAll(bm, null)).cursor;

  // Offline: the bm revises the value; the rm revises the value too and writes notes.
  const bmPush = await push(bm, [update("pipelines", pipeline, 1, { potential_value: 450000000 })]);
  assert.equal(bmPush.body.results[0].status, "applied");
  const rmPush = await push(rm, [{
    ...update("pipelines", pipeline, 1, { potential_value: 650000000, notes: "visited; fleet grows to 40 trucks" }),
    base: { potential_value: 500000000, notes: "first call" },
  }]);
  const result = rmPush.body.results[0];
  assert.equal(result.status, "conflict", "the value is not applied as sent");
  assert.ok(result.conflict, rmPush.text);
  const conflictId = result.conflict.id;
  assert.equal(result.conflict.resolution, "manual_pending");
  assert.deepEqual(result.conflict.fields, ["potential_value"]);
  assert.equal(result.row?.notes, "visited; fleet grows to 40 trucks", "the notes are merged");
  assert.equal(Number(result.row?.potential_value), 450000000, "the server's value stands until review");

  // Both devices are told, with both values.
  for (const [who, token, cursor] of [["rm", rm, rmCursor], ["bm", bm, bmCursor]] as const) {
    const { changes } = await pullAll(token, cursor);
    const told = conflictIn(changes, conflictId);
    assert.ok(told, `${who}'s device receives the conflict`);
    assert.equal(told.resolution, "manual_pending");
    assert.equal(Number(told.client_data?.potential_value), 650000000);
    assert.equal(Number(told.server_row?.potential_value), 450000000);
    assert.equal(upserted(changes, "pipelines", pipeline)?.notes, "visited; fleet grows to 40 trucks");
  }
  rmCursor = (await pullAll(rm, rmCursor)).cursor;
  bmCursor = (await pullAll(bm, bmCursor)).cursor;

  // The DBA finds it with `npm run conflicts -- --open` and resolves it.
  const listed = await conflictsCli("--open", "--table", "pipelines", "--json");
  assert.equal(listed.code, 0, listed.stderr);
  const open = JSON.parse(listed.stdout).filter((r: OpenConflict) => r.row_id === pipeline);
  assert.deepEqual(
    open.map((r: OpenConflict) => [r.field, Number(r.server_value), Number(r.client_value), Number(r.base_value)]),
    [["potential_value", 450000000, 650000000, 500000000]],
  );
  const human = await conflictsCli("--open", "--table", "pipelines");
  assert.match(human.stdout, /potential_value/);
  assert.match(human.stdout, /resolve_conflict/);

  const resolved = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.admin.id, role: "authenticated" })
    }, true)`;
    const [r] = await tx`select public.resolve_conflict(${
      open[0].conflict_id
    }, 'custom', '{"potential_value": 600000000}') as r`;
    return r.r;
  });
  assert.equal(Number(resolved.row.potential_value), 600000000);

  // Both devices pull the resolved row and the settled conflict.
  for (const [token, cursor] of [[rm, rmCursor], [bm, bmCursor]]) {
    const { changes } = await pullAll(token, cursor);
    const row = upserted(changes, "pipelines", pipeline);
    assert.equal(Number(row?.potential_value), 600000000);
    assert.equal(row?.notes, "visited; fleet grows to 40 trucks");
    assert.equal(conflictIn(changes, conflictId)?.resolution, "manual_resolved");
  }
  const after = await conflictsCli("--open", "--table", "pipelines", "--json");
  assert.equal(
    JSON.parse(after.stdout).filter((r: OpenConflict) => r.row_id === pipeline).length,
    0,
    "nothing is left open",
  );
});

test("npm run conflicts refuses a malformed --since and lists history by default", async () => {
  const bad = await conflictsCli("--since", "soon");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since takes a duration/);
  const history = await conflictsCli("--since", "1d", "--json");
  assert.equal(history.code, 0, history.stderr);
  assert.ok(Array.isArray(JSON.parse(history.stdout)));
});
