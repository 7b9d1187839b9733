// The pull request and its answer: a malformed request is 400 invalid_request naming the field, one
// without a token is 401, and server_time is the database clock.
import assert from "node:assert/strict";
import { call, pull, sql, test } from "./_helpers.ts";
import { rm1 } from "./_pull.ts";

test("server_time is the database clock", async () => {
  const [{ before }] = await sql`select clock_timestamp() as before`;
  const res = await pull(await rm1(), null, { limit: 1 });
  const [{ after }] = await sql`select clock_timestamp() as after`;
  const t = new Date(res.body.server_time).getTime();
  assert.match(res.body.server_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  assert.ok(
    before.getTime() - 1 <= t && t <= after.getTime() + 1,
    `${res.body.server_time} between ${before.toISOString()} and ${after.toISOString()}`,
  );
});

test("a malformed pull is 400 invalid_request naming the field; a pull without a token is 401", async () => {
  const token = await rm1();
  for (
    const [body, path] of [
      [{ protocol: 2, cursor: null, limit: 0 }, "limit"],
      [{ protocol: 2, cursor: 5 }, "cursor"],
      [{ protocol: 2, tables: "customers" }, "tables"],
      [{ protocol: 2, cursor: null, tables: [] }, "tables"],
    ] as const
  ) {
    const res = await call("/pull", body, { token });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.error, "invalid_request");
    assert.ok(res.body.details, res.text);
    assert.ok(res.body.details.some((d: { path: unknown[] }) => d.path[0] === path), res.text);
  }
  const anon = await call("/pull", { protocol: 2, cursor: null });
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error, "missing_token");
});
