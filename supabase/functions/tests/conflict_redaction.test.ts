// A conflict shows its row's data (client_data, base_data, server_row, resolution_data) only to a
// caller who may read the row under RLS now; to anyone else it is redacted: those fields are null
// and `redacted` is true, while its ids, table, fields and resolution stay. In the pull's
// `conflicts` table and in the review views alike.
import assert from "node:assert/strict";
import type postgres from "postgres";
import { conflictIn, insert, pullAll, push, sql, test, tokenFor, update, type User, users, uuid } from "./_helpers.ts";

const claimsOf = (user: User) =>
  JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });
async function asUser<T>(user: User, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    return await fn(tx);
  }) as T;
}

const DATA = ["client_data", "base_data", "server_row", "resolution_data"];

/**
 * rm1 edits a row of customer X; the bm reassigns X to rm2; rm2, from the version before rm1's
 * edit, sends an update: a conflict whose server side is rm1's edit. rm1 may no longer read the row.
 */
async function conflictAfterReassignment(table: "key_persons" | "pipelines", edit: Record<string, unknown>) {
  const rm1 = await tokenFor(users.rm1Jakarta);
  const rm2 = await tokenFor(users.rm2Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid(), row = uuid();
  const made = await push(bm, [
    insert("customers", customer, { name: "PT Redacted", assigned_rm_id: users.rm1Jakarta.id }),
    insert(
      table,
      row,
      table === "key_persons"
        ? { customer_id: customer, name: "Contact" }
        : { customer_id: customer, title: "Deal", potential_value: 100 },
    ),
  ]);
  assert.ok(made.body.results.every((r) => r.status === "applied"), made.text);
  const rm1Cursor = (await pullAll(rm1, null)).cursor;
  const mine = await push(rm1, [
    update(table, row, 1, table === "key_persons" ? { phone: "+62 811 1" } : { potential_value: 200 }),
  ]);
  assert.equal(mine.body.results[0].status, "applied", mine.text);
  const moved = await push(bm, [update("customers", customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(moved.body.results[0].status, "applied", moved.text);
  const rm2Cursor = (await pullAll(rm2, null)).cursor;
  const theirs = await push(rm2, [update(table, row, 1, edit)]);
  const conflict = theirs.body.results[0].conflict;
  assert.ok(conflict?.id, `rm2's stale edit is a conflict: ${theirs.text}`);
  const [stored] = await sql`select server_user_id::text, user_id::text from sync.conflicts where id = ${conflict.id}`;
  assert.deepEqual(
    stored,
    { server_user_id: users.rm1Jakarta.id, user_id: users.rm2Jakarta.id },
    "rm1's edit was the server side",
  );
  return { rm1, rm2, bm, row, conflictId: conflict.id, rm1Cursor, rm2Cursor };
}

test("rm1's pull of conflicts withholds the data of a row rm1 may no longer read: ids, table, fields and resolution only, redacted true", async () => {
  const { rm1, rm2, row, conflictId, rm1Cursor, rm2Cursor } = await conflictAfterReassignment("key_persons", {
    phone: "+62 899 2",
    notes: "rm2's private notes",
  });
  const delta = await pullAll(rm1, rm1Cursor);
  const got = delta.changes.filter((c) => c.op === "upsert" && c.table === "conflicts" && c.row.id === conflictId);
  assert.equal(got.length, 1, "rm1 is told of the conflict its edit was in");
  const c = conflictIn(got, conflictId);
  assert.ok(c);
  assert.deepEqual(Object.fromEntries([...DATA, "redacted"].map((f) => [f, c[f]])), {
    client_data: null,
    base_data: null,
    server_row: null,
    resolution_data: null,
    redacted: true,
  });
  assert.equal(c.row_id, row);
  assert.equal(c.table_name, "key_persons");
  assert.ok(Array.isArray(c.fields) && c.resolution, "the conflict's fields and resolution stay");
  assert.ok(!JSON.stringify(got).includes("rm2's private notes"), "nothing of rm2's edit reaches rm1");

  // rm2, who may read the row, gets the whole conflict.
  const whole = conflictIn((await pullAll(rm2, rm2Cursor)).changes, conflictId);
  assert.ok(whole, "rm2 is told of the conflict");
  assert.equal(whole.redacted, false);
  assert.equal(whole.client_data?.notes, "rm2's private notes");
  assert.equal(whole.server_row?.phone, "+62 811 1");
});

test("the pull of a conflict on a row the caller reads carries its data and redacted false", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid(), kp = uuid();
  await push(bm, [
    insert("customers", customer, { name: "PT Readable", assigned_rm_id: users.rm1Jakarta.id }),
    insert("key_persons", kp, { customer_id: customer, name: "Contact" }),
  ]);
  const { cursor } = await pullAll(rm, null);
  assert.equal((await push(bm, [update("key_persons", kp, 1, { phone: "+62 1" })])).body.results[0].status, "applied");
  const mine = await push(rm, [update("key_persons", kp, 1, { phone: "+62 2", notes: "visible to me" })]);
  const id = mine.body.results[0].conflict?.id;
  assert.ok(id, mine.text);
  const conflict = conflictIn((await pullAll(rm, cursor)).changes, id);
  assert.ok(conflict, "the conflict is pulled");
  assert.equal(conflict.redacted, false);
  assert.equal(conflict.client_data?.notes, "visible to me");
  assert.equal(conflict.server_row?.id, kp);
});

/**
 * rm1 edits a pipeline's money; the bm, from the version before, sends another value: a conflict that
 * waits for a person, whose server side is rm1's edit. Then the bm reassigns the customer to rm2 (the
 * pipeline follows it, as a version of the bm's), and rm1 may no longer read the row.
 */
async function pendingConflictThenReassignment() {
  const rm1 = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid(), row = uuid();
  const made = await push(bm, [
    insert("customers", customer, { name: "PT Redacted Review", assigned_rm_id: users.rm1Jakarta.id }),
    insert("pipelines", row, { customer_id: customer, title: "Deal", potential_value: 100 }),
  ]);
  assert.ok(made.body.results.every((r) => r.status === "applied"), made.text);
  const mine = await push(rm1, [update("pipelines", row, 1, { potential_value: 200 })]);
  assert.equal(mine.body.results[0].status, "applied", mine.text);
  const theirs = await push(bm, [update("pipelines", row, 1, { potential_value: 900 })]);
  const conflict = theirs.body.results[0].conflict;
  assert.ok(conflict?.id, `the bm's stale edit is a conflict: ${theirs.text}`);
  const [stored] = await sql`select server_user_id::text, user_id::text from sync.conflicts where id = ${conflict.id}`;
  assert.deepEqual(
    stored,
    { server_user_id: users.rm1Jakarta.id, user_id: users.bmJakarta.id },
    "rm1's edit was the server side",
  );
  const moved = await push(bm, [update("customers", customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(moved.body.results[0].status, "applied", moved.text);
  return { conflictId: conflict.id };
}

test("the review views redact for a reviewer who may not read the row: conflict_history and open_conflicts", async () => {
  const { conflictId } = await pendingConflictThenReassignment();
  try {
    const [pending] = await sql`select resolution from sync.conflicts where id = ${conflictId}`;
    assert.equal(pending.resolution, "manual_pending", "money waits for a person");

    const history = await asUser(
      users.rm1Jakarta,
      (tx) =>
        tx`select client_data, base_data, resolution_data, redacted from sync.conflict_history where conflict_id = ${conflictId}`,
    );
    assert.deepEqual(
      [...history],
      [{ client_data: null, base_data: null, resolution_data: null, redacted: true }],
      "rm1 sees that the conflict exists, not the values",
    );
    const open = await asUser(
      users.rm1Jakarta,
      (tx) =>
        tx`select field, server_value, client_value, base_value, redacted from sync.open_conflicts where conflict_id = ${conflictId}`,
    );
    assert.deepEqual([...open], [{
      field: "potential_value",
      server_value: null,
      client_value: null,
      base_value: null,
      redacted: true,
    }]);

    // The bm of the branch, who reads the row, sees the values.
    const [bmOpen] = await asUser(
      users.bmJakarta,
      (tx) =>
        tx`select server_value, client_value, redacted from sync.open_conflicts where conflict_id = ${conflictId}`,
    );
    assert.equal(bmOpen.redacted, false);
    assert.equal(Number(bmOpen.client_value), 900);
    assert.equal(Number(bmOpen.server_value), 200);
    const [bmHistory] = await asUser(
      users.bmJakarta,
      (tx) => tx`select client_data, redacted from sync.conflict_history where conflict_id = ${conflictId}`,
    );
    assert.equal(bmHistory.redacted, false);
    assert.equal(Number(bmHistory.client_data.potential_value), 900);
  } finally {
    await asUser(users.bmJakarta, (tx) => tx`select public.resolve_conflict(${conflictId}::uuid, 'server')`);
  }
});

test("no review view exposes a conflict's row data without the redaction: every column built from it is withheld", async () => {
  // A view that carries the conflict data columns must also carry `redacted`; conflict_counts carries none.
  const views = await sql`select c.relname as view, array_agg(a.attname::text order by a.attnum) as columns
                            from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0
                           where c.relnamespace = 'sync'::regnamespace and c.relkind = 'v'
                             and pg_get_viewdef(c.oid) like '%sync.conflicts%'
                           group by c.relname order by c.relname`;
  assert.deepEqual(views.map((v) => v.view), ["conflict_counts", "conflict_history", "open_conflicts"]);
  for (const v of views) {
    const data = v.columns.filter((c: string) => /data|server_row|_value$/.test(c));
    if (data.length) assert.ok(v.columns.includes("redacted"), `${v.view} (${data}) says whether it is redacted`);
  }
});

test("the review views check readability for every registered table, so no table's conflicts go unredacted or always redacted", async () => {
  const tables = (await sql`select table_name from sync.tables order by sync_order`).map((t) => t.table_name as string);
  for (const view of ["sync.open_conflicts", "sync.conflict_history"]) {
    const [{ def }] = await sql`select pg_get_viewdef(${view}::regclass) as def`;
    const missing = tables.filter((t) => !new RegExp(`WHEN '${t}'::text THEN \\(?EXISTS`).test(def));
    assert.deepEqual(
      missing,
      [],
      `${view} names every registered table (call sync.define_conflict_review_views() after registering one)`,
    );
  }
});
