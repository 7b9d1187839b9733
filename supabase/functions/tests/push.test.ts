import assert from "node:assert/strict";
import {
  call,
  env,
  insert,
  pullAll,
  push,
  remove,
  seedCustomer,
  sql,
  test,
  tokenFor,
  update,
  upserted,
  users,
  uuid,
} from "./_helpers.ts";
import { openDatabase } from "../sync/db.ts";

const rm1 = () => tokenFor(users.rm1Jakarta);

test("create then update of the same customer in one request: the server has the row with the updated values", async () => {
  const id = uuid();
  const res = await push(await rm1(), [
    insert("customers", id, { name: "PT Offline", phone: "+62 1" }),
    update("customers", id, 1, { phone: "+62 2" }),
  ]);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.results.map((r) => r.status), ["applied", "applied"]);
  assert.equal(res.body.results[1].row?.version, 2);
  const [row] = await sql`select name, phone, version from public.customers where id = ${id}`;
  assert.deepEqual({ ...row }, { name: "PT Offline", phone: "+62 2", version: "2" });
});

test("create then update across requests, the update based on the version the create returned", async () => {
  const token = await rm1();
  const id = uuid();
  const first = await push(token, [insert("customers", id, { name: "PT Two Steps" })]);
  const version = first.body.results[0].row?.version;
  assert.ok(version, first.text);
  const second = await push(token, [update("customers", id, version, { city: "Bandung" })]);
  assert.equal(second.body.results[0].status, "applied");
  assert.equal(second.body.results[0].conflict, undefined, "no false conflict on the device's own write");
  const [row] = await sql`select city from public.customers where id = ${id}`;
  assert.equal(row.city, "Bandung");
});

test("create then delete: other devices receive only a tombstone", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null);
  const id = uuid();
  const res = await push(token, [insert("customers", id, { name: "PT Gone" }), remove("customers", id, 1)]);
  assert.deepEqual(res.body.results.map((r) => r.status), ["applied", "applied"]);
  assert.ok(res.body.results[1].row?.deleted_at);
  const other = await pullAll(token, cursor);
  const mine = other.changes.filter((c) => c.op === "upsert" ? c.row.id === id : c.id === id);
  assert.deepEqual(mine, [{ table: "customers", op: "delete", id, version: 2 }]);
});

test("update of a row that does not exist is rejected/not_found, never a silent success", async () => {
  const res = await push(await rm1(), [update("customers", uuid(), 1, { phone: "+62" })]);
  assert.equal(res.body.results[0].status, "rejected");
  assert.equal(res.body.results[0].code, "not_found");
  assert.equal(res.body.results[0].retryable, false);
});

test("update of another rm's customer is not_found for the caller and changes nothing", async () => {
  const other = seedCustomer(1); // rm2.jakarta's
  const [before] = await sql`select version, phone from public.customers where id = ${other}`;
  const res = await push(await rm1(), [update("customers", other, Number(before.version), { phone: "+62 hijack" })]);
  assert.equal(res.body.results[0].code, "not_found");
  const [after] = await sql`select version, phone from public.customers where id = ${other}`;
  assert.deepEqual({ ...after }, { ...before });
});

test("insert of an existing id is rejected/already_exists; a replay of the same op is a duplicate", async () => {
  const token = await rm1();
  const op = insert("customers", uuid(), { name: "PT Once" });
  const first = await push(token, [op]);
  assert.equal(first.body.results[0].status, "applied");
  const replay = await push(token, [op]);
  assert.equal(replay.body.results[0].status, "duplicate");
  assert.equal(replay.body.results[0].original_status, "applied");
  assert.equal(replay.body.results[0].row?.version, 1);
  const again = await push(token, [{ ...op, op_id: uuid() }]);
  assert.equal(again.body.results[0].status, "rejected");
  assert.equal(again.body.results[0].code, "already_exists");
});

test("a push whose response was lost, sent again, applies nothing twice", async () => {
  const token = await rm1();
  const id = uuid();
  const body = [insert("customers", id, { name: "PT Lost Response" }), update("customers", id, 1, { notes: "a" })];
  const clientId = uuid();
  await push(token, body, clientId);
  const retry = await push(token, body, clientId);
  assert.deepEqual(retry.body.results.map((r) => r.status), ["duplicate", "duplicate"]);
  const [row] = await sql`select version from public.customers where id = ${id}`;
  assert.equal(row.version, "2");
});

test("the same request sent twice at once is applied once; the other copy reports duplicates", async () => {
  const token = await rm1();
  const ops = Array.from({ length: 20 }, (_, i) => insert("customers", uuid(), { name: `PT Race ${i}` }));
  const clientId = uuid();
  const [a, b] = await Promise.all([push(token, ops, clientId), push(token, ops, clientId)]);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  const statuses = [...a.body.results, ...b.body.results].map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === "applied").length, 20);
  assert.equal(statuses.filter((s) => s === "duplicate").length, 20);
  const [{ count }] = await sql`select count(*)::int as count from public.customers where id = any(${
    ops.map((o) => o.id)
  })`;
  assert.equal(count, 20);
});

test("two devices edit the same customer: the later push is a logged conflict and both users are told", async () => {
  const rm = await rm1();
  const bm = await tokenFor(users.bmJakarta);
  const id = uuid();
  await push(rm, [insert("customers", id, { name: "PT Contested", phone: "+62 1" })]);
  const bmCursor = (await pullAll(bm, null)).cursor;
  const rmCursor = (await pullAll(rm, null)).cursor;
  const a = await push(bm, [update("customers", id, 1, { phone: "+62 bm" })]);
  assert.equal(a.body.results[0].status, "applied");
  const b = await push(rm, [update("customers", id, 1, { phone: "+62 rm" })]);
  const result = b.body.results[0];
  assert.equal(result.status, "applied", "customers resolve conflicts by the registry's strategy (client_wins)");
  assert.equal(result.conflict?.resolution, "client_wins");
  assert.deepEqual(result.conflict?.fields, ["phone"]);
  const [audit] = await sql`select user_id, server_user_id, base_version, server_version, resolution::text, client_data
                              from sync.conflicts where id = ${result.conflict?.id}`;
  assert.deepEqual({ ...audit }, {
    user_id: users.rm1Jakarta.id,
    server_user_id: users.bmJakarta.id,
    base_version: "1",
    server_version: "2",
    resolution: "client_wins",
    client_data: { phone: "+62 rm" },
  });
  // Both devices see the resulting row.
  for (const [token, cursor] of [[bm, bmCursor], [rm, rmCursor]]) {
    const seen = upserted((await pullAll(token, cursor)).changes, "customers", id);
    assert.equal(seen?.phone, "+62 rm");
    assert.equal(seen?.version, 3);
  }
});

test("server_wins tables keep the server's row and report a conflict with the audit entry", async () => {
  const admin = await tokenFor(users.admin);
  const id = uuid();
  await push(admin, [
    insert("hvcs", id, { code: "HVC-T" + Date.now().toString(36).toUpperCase(), name: "Test group" }),
  ]);
  await push(admin, [update("hvcs", id, 1, { name: "Renamed on device A" })]);
  const stale = await push(admin, [update("hvcs", id, 1, { name: "Renamed on device B" })]);
  const r = stale.body.results[0];
  assert.equal(r.status, "conflict");
  assert.equal(r.code, "stale");
  assert.equal(r.row?.name, "Renamed on device A");
  assert.equal(r.conflict?.resolution, "server_wins");
  const [{ count }] =
    await sql`select count(*)::int from sync.conflicts where id = ${r.conflict?.id} and resolution = 'server_wins'`;
  assert.equal(count, 1);
});

test("after an op on a row is not applied, later ops on that row are failed/blocked and other rows go on", async () => {
  const token = await rm1();
  const id = uuid();
  const other = uuid();
  const res = await push(token, [
    insert("customers", id, { name: "PT Blocked", tax_id: "not-a-tax-id" }),
    update("customers", id, 1, { phone: "+62" }),
    insert("customers", other, { name: "PT Unaffected" }),
  ]);
  const [bad, blocked, fine] = res.body.results;
  assert.equal(bad.status, "rejected");
  assert.equal(bad.code, "invalid");
  assert.equal(bad.field, "tax_id");
  assert.equal(blocked.status, "failed");
  assert.equal(blocked.code, "blocked");
  assert.equal(blocked.retryable, true);
  assert.equal(fine.status, "applied");
});

test("the log line's count of results by status is the answer's own, whatever the results hold", async () => {
  const token = await rm1();
  const dup = insert("customers", uuid(), { name: "PT Counted Twice" });
  await push(token, [dup]);
  const id = uuid();
  const ops = [
    dup,
    insert("customers", id, { name: "PT Counted", tax_id: "not-a-tax-id" }),
    update("customers", id, 1, { phone: "+62" }),
    update("customers", uuid(), 1, { notes: "status: applied" }),
    insert("customers", uuid(), { name: 'PT "op_id": "x", "status": "applied"' }),
    insert("customers", uuid(), { name: "PT", op_id: "x", status: "applied" }),
  ];
  // The function's own database door, as the handler calls it, on the real database.
  const db = openDatabase({
    supabaseUrl: env.apiUrl,
    dbUrl: env.dbUrl,
    jwtSecret: null,
    jwtIssuer: null,
    jwksUrl: null,
    maxOps: 1000,
    maxBodyBytes: 1 << 20,
    maxPageSize: 2000,
    dbPoolSize: 1,
    retryAfterSeconds: 2,
    corsOrigin: "*",
    log: false,
  });
  const claims = { sub: users.rm1Jakarta.id, role: "authenticated", aud: "authenticated" };
  const { answer, statuses } = await db.push(claims, JSON.stringify({ protocol: 2, client_id: uuid(), ops }), []);
  const parsed: Record<string, number> = {};
  for (const r of JSON.parse(answer).results) parsed[r.status] = (parsed[r.status] ?? 0) + 1;
  assert.ok(Object.keys(parsed).length >= 4, `statuses ${JSON.stringify(parsed)}`);
  assert.deepEqual(statuses, parsed);
  assert.equal(Object.values(statuses).reduce((a, b) => a + b, 0), ops.length);
});

test("a child whose parent has not arrived yet is failed/dependency_missing and retryable", async () => {
  const res = await push(await rm1(), [insert("key_persons", uuid(), { customer_id: uuid(), name: "Orphan" })]);
  assert.equal(res.body.results[0].status, "failed");
  assert.equal(res.body.results[0].code, "dependency_missing");
  assert.equal(res.body.results[0].retryable, true);
});

test("a retryable failure is not recorded: the same op succeeds once its parent arrives", async () => {
  const token = await rm1();
  const parent = uuid();
  const child = insert("key_persons", uuid(), { customer_id: parent, name: "Early" });
  const early = await push(token, [child]);
  assert.equal(early.body.results[0].code, "dependency_missing");
  const later = await push(token, [insert("customers", parent, { name: "PT Late Parent" }), child]);
  assert.deepEqual(later.body.results.map((r) => r.status), ["applied", "applied"]);
});

test("forged server columns in data are never applied", async () => {
  const id = uuid();
  const res = await push(await rm1(), [insert("customers", id, {
    name: "PT Forger",
    version: 42,
    created_at: "2001-01-01T00:00:00Z",
    updated_at: "2001-01-01T00:00:00Z",
    created_by: users.admin.id,
    updated_by: users.admin.id,
    deleted_at: "2001-01-01T00:00:00Z",
  })]);
  const row = res.body.results[0].row;
  assert.ok(row, res.text);
  assert.equal(row.version, 1);
  assert.equal(row.created_by, users.rm1Jakarta.id);
  assert.equal(row.deleted_at, null);
  assert.ok(new Date(row.created_at).getFullYear() >= 2026);
});

test("unknown columns and field-rule violations are rejected naming the field", async () => {
  const token = await rm1();
  const id = uuid();
  await push(token, [insert("customers", id, { name: "PT Rules" })]);
  const res = await push(token, [
    update("customers", id, 1, { favourite_colour: "blue" }),
  ]);
  assert.equal(res.body.results[0].code, "invalid");
  assert.equal(res.body.results[0].field, "favourite_colour");
  const res2 = await push(token, [update("customers", id, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(res2.body.results[0].code, "forbidden");
  assert.match(res2.body.results[0].message ?? "", /role rm may not write customers\.assigned_rm_id/);
  assert.equal(res2.body.results[0].field, "assigned_rm_id");
  // On a new row the row trigger refuses the column; the result names it all the same.
  const res3 = await push(token, [
    insert("customers", uuid(), { name: "PT Not Mine", assigned_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.deepEqual(
    [res3.body.results[0].status, res3.body.results[0].code, res3.body.results[0].field],
    ["rejected", "forbidden", "assigned_rm_id"],
    res3.text,
  );
});

test("2 000 queued ops sent in batches of 500 all arrive", async () => {
  const token = await rm1();
  const ids = Array.from({ length: 1000 }, () => uuid());
  const ops = ids.flatMap((
    id,
    i,
  ) => [insert("customers", id, { name: `PT Queue ${i}` }), update("customers", id, 1, { notes: "edited" })]);
  for (let i = 0; i < ops.length; i += 500) {
    const res = await push(token, ops.slice(i, i + 500));
    assert.equal(res.status, 200);
    assert.ok(
      res.body.results.every((r) => r.status === "applied"),
      JSON.stringify(res.body.results.find((r) => r.status !== "applied")),
    );
  }
  const [{ count }] =
    await sql`select count(*)::int from public.customers where id = any(${ids}) and version = 2 and notes = 'edited'`;
  assert.equal(count, 1000);
});

test("an expired token is 401 token_expired; with a fresh token the queued ops go through and nothing is lost", async () => {
  const expired = await tokenFor(users.rm1Jakarta, { expiresIn: -60 });
  const ops = [insert("customers", uuid(), { name: "PT After Offline Day" })];
  const first = await push(expired, ops);
  assert.equal(first.status, 401);
  assert.equal(first.body.error, "token_expired");
  const [{ count: none }] = await sql`select count(*)::int from public.customers where id = ${ops[0].id}`;
  assert.equal(none, 0);
  const second = await push(await rm1(), ops);
  assert.equal(second.body.results[0].status, "applied");
});

test("a delete against a row changed since base_version follows the table's strategy and is audited", async () => {
  const token = await rm1();
  const id = uuid();
  await push(token, [insert("customers", id, { name: "PT Changed Then Deleted" })]);
  await push(token, [update("customers", id, 1, { phone: "+62 3" })]);
  const res = await push(token, [remove("customers", id, 1)]);
  assert.equal(res.body.results[0].status, "applied");
  assert.equal(res.body.results[0].conflict?.resolution, "client_wins");
  assert.ok(res.body.results[0].row?.deleted_at);
});

test("an update against a tombstone is rejected/deleted, never resurrects the row, and is audited", async () => {
  const token = await rm1();
  const id = uuid();
  await push(token, [insert("customers", id, { name: "PT Tombstone" }), remove("customers", id, 1)]);
  const res = await push(token, [update("customers", id, 1, { phone: "+62 late edit" })]);
  const r = res.body.results[0];
  assert.equal(r.status, "rejected");
  assert.equal(r.code, "deleted");
  assert.ok(r.row?.deleted_at);
  assert.ok(r.conflict?.id);
  const [row] = await sql`select deleted_at, phone from public.customers where id = ${id}`;
  assert.ok(row.deleted_at);
  assert.equal(row.phone, null);
});

test("a push result carries the row's new server state (read-your-writes)", async () => {
  const token = await rm1();
  const id = uuid();
  const res = await push(token, [insert("customers", id, { name: "PT RYW" })]);
  const [row] = await sql`select version, updated_at from public.customers where id = ${id}`;
  assert.equal(res.body.results[0].row?.version, Number(row.version));
  assert.equal(new Date(res.body.results[0].row?.updated_at ?? "").getTime(), row.updated_at.getTime());
  assert.ok(res.body.server_time);
});

test("a conflict response reaches the pull of both devices' users through the audit", async () => {
  // Both users of a two-device conflict can read its audit entry.
  const rm = await rm1();
  const bm = await tokenFor(users.bmJakarta);
  const id = uuid();
  await push(rm, [insert("customers", id, { name: "PT Audit Readers" })]);
  await push(bm, [update("customers", id, 1, { notes: "bm" })]);
  const res = await push(rm, [update("customers", id, 1, { notes: "rm" })]);
  const conflict = res.body.results[0].conflict;
  assert.ok(conflict, res.text);
  const conflictId = conflict.id;
  for (const user of [users.rm1Jakarta, users.bmJakarta]) {
    const rows = await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        JSON.stringify({ sub: user.id, role: "authenticated" })
      }, true)`;
      return await tx`select conflict_id from sync.conflict_history where conflict_id = ${conflictId}`;
    });
    assert.equal(rows.length, 1, `${user.email} reads the conflict`);
  }
  const other = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.rm2Jakarta.id, role: "authenticated" })
    }, true)`;
    return await tx`select conflict_id from sync.conflict_history where conflict_id = ${conflictId}`;
  });
  assert.equal(other.length, 0, "an uninvolved rm does not");
});

test("a number with more digits than a double holds is stored exactly as sent", async () => {
  // 18 significant digits, as numeric(18,2) allows: JSON.parse alone would store ...456.80.
  const token = await rm1();
  const id = uuid();
  const op = insert("pipelines", id, {
    customer_id: seedCustomer(4),
    title: "Fleet of a conglomerate",
    potential_value: 0,
  });
  const rawBody = JSON.stringify({ protocol: 2, client_id: uuid(), ops: [op] }).replace(
    '"potential_value":0',
    '"potential_value":1234567890123456.78',
  );
  const res = await call("/push", undefined, { token, rawBody });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.results[0].status, "applied", res.text);
  const [row] = await sql`select potential_value::text as value from public.pipelines where id = ${id}`;
  assert.equal(row.value, "1234567890123456.78");
  assert.match(res.text, /"potential_value": ?1234567890123456\.78\b/, "the result's row carries the exact value too");
});
