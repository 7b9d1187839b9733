import assert from "node:assert/strict";
import {
  branches,
  call,
  insert,
  pull,
  pullAll,
  push,
  remove,
  seedCustomer,
  sql,
  test,
  tokenFor,
  update,
  type User,
  users,
  uuid,
} from "./_helpers.ts";

const rm1 = () => tokenFor(users.rm1Jakarta);
const rm2 = () => tokenFor(users.rm2Jakarta);
const bm = () => tokenFor(users.bmJakarta);
const hvc1 = "00000000-0000-4000-8001-000000000001";

const claimsOf = (user: User) =>
  JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });

/** Runs `fn` in one transaction acting as `user`, the way the function does (role + verified claims). */
async function asUser<T>(user: User, fn: (tx: any) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx: any) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    return await fn(tx);
  }) as T;
}

interface Registered {
  table_name: string;
  parent_table: string | null;
  parent_column: string | null;
}
const registry = async () =>
  [...await sql`select table_name, parent_table, parent_column from sync.tables order by sync_order`] as unknown as Registered[];

/** `table/id` of every live row `user` may see now (what a full pull must deliver), sorted. */
async function visibleKeys(user: User, tables?: string[]): Promise<string[]> {
  const reg = await registry();
  return await asUser(user, async (tx) => {
    const keys: string[] = [];
    for (const { table_name } of reg) {
      if (tables && !tables.includes(table_name)) continue;
      const rows = await tx.unsafe(`select id::text as id from public."${table_name}" where deleted_at is null`);
      keys.push(...rows.map((r: { id: string }) => `${table_name}/${r.id}`));
    }
    return keys.sort();
  });
}

/** A row as `user` reads it from the table, in the pull's shape (every column but the internal change_xid). */
async function rowAs(user: User, table: string, id: string) {
  return await asUser(user, async (tx) => {
    const [r] = await tx.unsafe(`select to_jsonb(t) - 'change_xid' as row from public."${table}" t where t.id = $1`, [
      id,
    ]);
    return r?.row ?? null;
  });
}

const idOf = (c: any): string => (c.op === "upsert" ? c.row.id : c.id);
const keyOf = (c: any) => `${c.table}/${idOf(c)}`;
const about = (changes: any[], id: string) => changes.filter((c) => idOf(c) === id);

/**
 * A transaction of `user` on its own connection, kept open between statements until commit() or
 * close(): a slow device request, a job that has not committed yet.
 */
function openTransaction(user: User) {
  type Command =
    | { kind: "run"; fn: (tx: any) => Promise<unknown>; resolve: (v: any) => void; reject: (e: unknown) => void }
    | { kind: "commit" | "rollback" };
  const inbox: Command[] = [];
  let wake: (() => void) | null = null;
  const send = (c: Command) => (inbox.push(c), wake?.());
  const receive = async (): Promise<Command> => {
    while (!inbox.length) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  const rolledBack = new Error("rolled back on purpose");
  const done = sql.begin(async (tx: any) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    for (;;) {
      const c = await receive();
      if (c.kind !== "run") {
        if (c.kind === "commit") return;
        throw rolledBack;
      }
      try {
        c.resolve(await c.fn(tx));
      } catch (err) {
        c.reject(err);
        throw err;
      }
    }
  }).then(() => undefined, (err: unknown) => {
    if (err !== rolledBack) throw err;
  });
  // A failure surfaces through run() or commit(); this keeps it from also being an unhandled rejection.
  done.catch(() => {});
  const run = <T>(fn: (tx: any) => Promise<T>) =>
    new Promise<T>((resolve, reject) => send({ kind: "run", fn, resolve, reject }));
  return {
    run,
    /** The transaction's id (taking one if it has none yet, as its first write would). */
    xid: async () => BigInt((await run((tx) => tx`select pg_current_xact_id()::text as x`) as any)[0].x),
    commit: async () => (send({ kind: "commit" }), await done),
    /** Ends the transaction if it is still open (a no-op after commit). */
    close: async () => (send({ kind: "rollback" }), await done.catch(() => {})),
  };
}

const changeXid = async (table: string, id: string) =>
  BigInt((await sql.unsafe(`select change_xid::text as x from public."${table}" where id = $1`, [id]))[0].x);

// ---------------------------------------------------------------------------------------------
// First (full) pull
// ---------------------------------------------------------------------------------------------

test("a first pull pages through exactly what the user may see: every page within the limit, no duplicates, parents before children, no tombstones", async () => {
  const token = await rm1();
  // A row created and deleted before the device ever synced: a full pull has no reason to send it.
  const gone = uuid();
  const made = await push(token, [
    insert("customers", gone, { name: "PT Deleted Before First Pull" }),
    remove("customers", gone, 1),
  ]);
  assert.deepEqual(made.body.results.map((r: any) => r.status), ["applied", "applied"]);

  const limit = 97;
  const changes: any[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  for (;;) {
    const res = await pull(token, cursor, { limit });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.resync_required, false);
    assert.ok(
      res.body.changes.length <= limit,
      `page ${sizes.length} has ${res.body.changes.length} changes; limit ${limit}`,
    );
    assert.equal(typeof res.body.cursor, "string");
    sizes.push(res.body.changes.length);
    changes.push(...res.body.changes);
    cursor = res.body.cursor;
    if (!res.body.has_more) break;
    assert.ok(sizes.length < 200, "the pull comes to an end");
  }

  const expected = await visibleKeys(users.rm1Jakarta);
  assert.ok(sizes.length > 1, "more than one page");
  assert.ok(changes.every((c) => c.op === "upsert"), "a full pull carries upserts only");
  assert.equal(new Set(changes.map(keyOf)).size, changes.length, "no row twice in one full pull");
  assert.equal(changes.length, expected.length, "as many rows as the user may see");
  assert.deepEqual(changes.map(keyOf).sort(), expected, "exactly the rows the user may see");
  assert.equal(about(changes, gone).length, 0, "the tombstone is not sent");

  // Every child row comes after its parent row in the stream.
  const position = new Map(changes.map((c, i) => [keyOf(c), i]));
  let checked = 0;
  for (const { table_name, parent_table, parent_column } of await registry()) {
    if (!parent_table || !parent_column) continue;
    for (const c of changes.filter((c) => c.table === table_name)) {
      const parent = position.get(`${parent_table}/${c.row[parent_column]}`);
      assert.ok(parent !== undefined, `${keyOf(c)}: its ${parent_table} is in the pull`);
      assert.ok(parent < position.get(keyOf(c))!, `${keyOf(c)} arrives after its ${parent_table}`);
      checked++;
    }
  }
  assert.ok(checked > 300, "key persons, pipelines, activities... were all checked");
});

test("has_more and limit: a page holds at most `limit` changes and the next page continues where it stopped", async () => {
  const token = await rm1();
  const first = await pull(token, null, { limit: 10 });
  assert.equal(first.status, 200);
  assert.equal(first.body.changes.length, 10);
  assert.equal(first.body.has_more, true);
  const second = await pull(token, first.body.cursor, { limit: 10 });
  assert.equal(second.body.changes.length, 10);
  const one = new Set(first.body.changes.map(keyOf));
  assert.ok(second.body.changes.every((c: any) => !one.has(keyOf(c))), "the second page does not repeat the first");
  // Without a limit the server's default applies (500).
  const dflt = await pull(token, null);
  assert.equal(dflt.body.changes.length, 500);
  assert.equal(dflt.body.has_more, true);
});

test("a limit above the server's maximum is clamped to it", async () => {
  const admin = await tokenFor(users.admin);
  // The admin sees everything; make sure that is more than one maximal page (2000).
  const visible = (await visibleKeys(users.admin)).length;
  const extra = Array.from({ length: Math.max(0, 2050 - visible) }, () => uuid());
  if (extra.length) {
    await sql`insert into public.key_persons (id, customer_id, name)
              select id, ${seedCustomer(3)}, 'Clamp filler' from unnest(${extra}::uuid[]) id`;
  }
  const [{ max_pull_limit, default_pull_limit }] =
    await sql`select max_pull_limit, default_pull_limit from sync.settings`;
  try {
    const res = await pull(admin, null, { limit: 1_000_000 });
    assert.equal(res.status, 200);
    assert.equal(res.body.changes.length, 2000);
    assert.equal(res.body.has_more, true);

    // The database's own maximum (a DBA's setting) wins over a larger request as well.
    await sql`update sync.settings set default_pull_limit = 5, max_pull_limit = 7`;
    const small = await pull(admin, null, { limit: 100 });
    assert.equal(small.body.changes.length, 7);
    assert.equal(small.body.has_more, true);
    const next = await pull(admin, small.body.cursor, { limit: 100 });
    assert.equal(next.body.changes.length, 7, "the clamp holds on every page");
  } finally {
    await sql`update sync.settings set max_pull_limit = ${max_pull_limit}, default_pull_limit = ${default_pull_limit}`;
    if (extra.length) await sql`delete from public.key_persons where id = any(${extra}::uuid[])`;
  }
});

test("a tables filter returns only those tables, all of their rows, and an unknown table is invalid_request", async () => {
  const token = await rm1();
  const tables = ["customers", "pipelines"];
  const { changes } = await pullAll(token, null, { tables, limit: 150 });
  assert.ok(changes.every((c) => tables.includes(c.table)), `only ${tables}`);
  assert.deepEqual(changes.map(keyOf).sort(), await visibleKeys(users.rm1Jakarta, tables));

  const bad = await pull(token, null, { tables: ["customers", "salaries"] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, "invalid_request");
  assert.deepEqual(bad.body.details.map((d: any) => d.path), [["tables", 1]]);
});

// ---------------------------------------------------------------------------------------------
// Deltas
// ---------------------------------------------------------------------------------------------

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
  assert.equal(latest.row.notes, "edited between pages", "the last word about the row is its latest version");
  assert.equal(about(next.changes, kp).length, 1, "the child added meanwhile comes in the next cycle");
});

// ---------------------------------------------------------------------------------------------
// Completeness under concurrency: commit order differs from transaction order
// ---------------------------------------------------------------------------------------------

test("out-of-order commit: a transaction still open when a later one commits is delivered by the pull after it commits", async () => {
  const token = await rm1();
  const { cursor: c0 } = await pullAll(token, null);
  const a = uuid();
  const b = uuid();
  // T1 writes A and stays open.
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Slow Commit')`);
    // B is written and committed over HTTP while T1 is open.
    const pushed = await push(token, [insert("customers", b, { name: "PT Fast Commit" })]);
    assert.equal(pushed.body.results[0].status, "applied");

    const first = await pullAll(token, c0);
    assert.deepEqual(about(first.changes, b).map((c) => c.op), ["upsert"], "B is delivered");
    assert.equal(about(first.changes, a).length, 0, "A is not committed yet");

    await t1.commit();
    const second = await pullAll(token, first.cursor);
    assert.deepEqual(about(second.changes, a), [{
      table: "customers",
      op: "upsert",
      row: await rowAs(users.rm1Jakarta, "customers", a),
    }], "A is delivered once T1 has committed, although B (committed first) was already behind the cursor");
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: T1 took its transaction id before B's transaction began, writes after B committed, commits last", async () => {
  const token = await rm1();
  const a = uuid();
  await push(token, [insert("customers", a, { name: "PT Early Xid" })]);
  const { cursor: c0 } = await pullAll(token, null);
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    const t1Xid = await t1.xid();
    const b = uuid();
    await push(token, [insert("customers", b, { name: "PT Later Xid, Earlier Commit" })]);
    assert.ok(t1Xid < await changeXid("customers", b), "T1's transaction id is older than B's");
    await t1.run((tx) => tx`update public.customers set notes = 'written by T1' where id = ${a}`);

    const first = await pullAll(token, c0);
    assert.equal(about(first.changes, b).length, 1, "B is delivered");
    assert.equal(
      about(first.changes, a).length,
      0,
      "T1's edit of A is not visible yet (and A itself was not changed since c0)",
    );
    // Another cycle while T1 is still open: nothing new, and nothing waits for T1.
    const idle = await pullAll(token, first.cursor);
    assert.deepEqual(idle.changes, []);

    await t1.commit();
    const second = await pullAll(token, idle.cursor);
    const got = about(second.changes, a);
    assert.equal(got.length, 1, "T1's edit arrives after it commits");
    assert.equal(got[0].row.notes, "written by T1");
    assert.equal(got[0].row.version, 2);
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: a transaction already open when the cursor was issued is delivered after it commits", async () => {
  const token = await rm1();
  const a = uuid();
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Open Across Cursors')`);
    const full = await pullAll(token, null);
    assert.equal(about(full.changes, a).length, 0);
    const b = uuid();
    await push(token, [insert("customers", b, { name: "PT Committed Meanwhile" })]);
    const first = await pullAll(token, full.cursor);
    assert.equal(about(first.changes, b).length, 1);
    assert.equal(about(first.changes, a).length, 0);
    await t1.commit();
    const second = await pullAll(token, first.cursor);
    assert.equal(about(second.changes, a).length, 1, "A arrives");
  } finally {
    await t1.close();
  }
});

test("out-of-order commit: a transaction that commits while a pull is paging arrives in the next cycle", async () => {
  const token = await rm1();
  const { cursor: c0 } = await pullAll(token, null);
  const a = uuid();
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Commits Between Pages')`);
    const later = Array.from({ length: 30 }, () => uuid());
    await push(token, later.map((id, i) => insert("customers", id, { name: `PT Paging ${i}` })));
    const page1 = await pull(token, c0, { limit: 10 });
    assert.equal(page1.body.has_more, true);
    await t1.commit();
    const rest = await pullAll(token, page1.body.cursor, { limit: 10 });
    const cycle1 = [...page1.body.changes, ...rest.changes];
    assert.deepEqual(cycle1.map(idOf).sort(), [...later].sort(), "the cycle delivers the 30 rows of its snapshot");
    const cycle2 = await pullAll(token, rest.cursor, { limit: 10 });
    assert.deepEqual(cycle2.changes.map(idOf), [a], "A, committed mid-cycle, comes in the next one");
  } finally {
    await t1.close();
  }
});

test("a rolled-back transaction leaves nothing to deliver and holds nothing back", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null);
  const t1 = openTransaction(users.rm1Jakarta);
  await t1.run((tx) => tx`insert into public.customers (id, name) values (${uuid()}, 'PT Never Committed')`);
  const b = uuid();
  await push(token, [insert("customers", b, { name: "PT Next To A Rollback" })]);
  await t1.close();
  const delta = await pullAll(token, cursor);
  assert.deepEqual(delta.changes.map(idOf), [b]);
  assert.deepEqual((await pull(token, delta.cursor)).body.changes, []);
});

// ---------------------------------------------------------------------------------------------
// Scope: what reaches whom
// ---------------------------------------------------------------------------------------------

test("rows reach the caller as the caller may see them: another rm's customers and their rows never appear", async () => {
  const token = await rm1();
  const { changes, cursor } = await pullAll(token, null);
  const customers = changes.filter((c) => c.table === "customers").map((c) => c.row);
  assert.ok(customers.length >= 75);
  assert.ok(customers.every((r) => r.assigned_rm_id === users.rm1Jakarta.id), "only rm1's customers");
  const mine = new Set(customers.map((r) => r.id));
  for (const n of [1, 2, 3]) assert.ok(!mine.has(seedCustomer(n)), `seed customer ${n} is another rm's`);
  for (
    const c of changes.filter((c) => ["key_persons", "pipelines", "activities", "customer_hvc_links"].includes(c.table))
  ) {
    assert.ok(mine.has(c.row.customer_id), `${keyOf(c)} belongs to one of rm1's customers`);
  }
  const profiles = changes.filter((c) => c.table === "profiles").map((c) => c.row);
  assert.deepEqual(
    profiles.map((p) => p.id).sort(),
    [users.bmJakarta.id, users.rm1Jakarta.id, users.rm2Jakarta.id].sort(),
    "staff of rm1's own branch only",
  );

  // The row carries every column the caller may read, and not the internal change_xid.
  const columns = (await sql`select column_name from information_schema.columns
                              where table_schema = 'public' and table_name = 'customers' and column_name <> 'change_xid'`)
    .map((r) => r.column_name).sort();
  assert.deepEqual(Object.keys(customers[0]).sort(), columns);

  // A delta: rm2 edits their own customer; rm1 is not told.
  const other = seedCustomer(5);
  const [{ version }] = await sql`select version from public.customers where id = ${other}`;
  const edit = await push(await rm2(), [update("customers", other, Number(version), { notes: "rm2's business" })]);
  assert.equal(edit.body.results[0].status, "applied");
  const delta = await pullAll(token, cursor);
  assert.equal(about(delta.changes, other).length, 0);
});

/** rm1's customer with two key persons, a pipeline with a referral, an activity and an HVC link. */
async function customerWithFamily(token: string, name: string) {
  const customer = uuid();
  const [k1, k2, p, a, l, r] = Array.from({ length: 6 }, () => uuid());
  const res = await push(token, [
    insert("customers", customer, { name }),
    insert("key_persons", k1, { customer_id: customer, name: "Director" }),
    insert("key_persons", k2, { customer_id: customer, name: "Finance Manager" }),
    insert("pipelines", p, { customer_id: customer, title: "Cargo cover" }),
    insert("activities", a, { customer_id: customer, pipeline_id: p, activity_type: "visit", subject: "Site visit" }),
    insert("customer_hvc_links", l, { customer_id: customer, hvc_id: hvc1 }),
    insert("pipeline_referrals", r, { pipeline_id: p, referred_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.ok(res.body.results.every((x: any) => x.status === "applied"), res.text);
  const children: [string, string][] = [
    ["key_persons", k1],
    ["key_persons", k2],
    ["pipelines", p],
    ["activities", a],
    ["customer_hvc_links", l],
    ["pipeline_referrals", r],
  ];
  return { customer, children, all: [["customers", customer] as [string, string], ...children] };
}

/** A device's local copy: the state a client reaches by applying the changes in order. */
function replicate(store: Map<string, any>, changes: any[]) {
  for (const c of changes) {
    if (c.op === "upsert") {
      const held = store.get(keyOf(c));
      // Applying by version makes a repeated or older delivery harmless.
      if (!held || held.version <= c.row.version) store.set(keyOf(c), c.row);
    } else store.delete(keyOf(c));
  }
  return store;
}

async function assertReplicaMatches(user: User, store: Map<string, any>) {
  assert.deepEqual(
    [...store.keys()].sort(),
    await visibleKeys(user),
    `${user.email}'s device holds exactly what they may see`,
  );
}

test("evictions: a customer reassigned to another rm is evicted with every child row; the new rm receives it and its existing children", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Reassigned");
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  const bmCursor = (await pullAll(await bm(), null)).cursor;
  const replicaOne = replicate(new Map(), one.changes);
  const replicaTwo = replicate(new Map(), two.changes);
  assert.ok(fam.all.every(([t, id]) => replicaOne.has(`${t}/${id}`)));

  const res = await push(await bm(), [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(res.body.results[0].status, "applied", res.text);

  // rm1: an evict for the customer and for each of its child rows, and nothing of their new state.
  const lost = await pullAll(rmOne, one.cursor);
  for (const [table, id] of fam.all) {
    assert.deepEqual(about(lost.changes, id), [{ table, op: "evict", id }], `${table} ${id} is evicted for rm1`);
  }
  assert.ok(!lost.changes.some((c) => c.op === "upsert"), "no upsert reveals the reassigned rows to rm1");
  await assertReplicaMatches(users.rm1Jakarta, replicate(replicaOne, lost.changes));

  // rm2: the customer as an upsert, and the child rows that existed before (they did not change themselves).
  const gained = await pullAll(rmTwo, two.cursor);
  for (const [table, id] of fam.all) {
    const got = about(gained.changes, id).filter((c) => c.op === "upsert");
    assert.ok(got.length >= 1, `${table} ${id} reaches rm2`);
    assert.deepEqual(got.at(-1).row, await rowAs(users.rm2Jakarta, table, id));
  }
  assert.ok(!gained.changes.some((c) => c.op === "evict"));
  const position = (id: string) => gained.changes.findIndex((c) => idOf(c) === id);
  for (const [, id] of fam.children) {
    assert.ok(position(fam.customer) < position(id), "the customer comes before its children");
  }
  const [, pipeline] = fam.children.find(([t]) => t === "pipelines")!;
  const [, referral] = fam.children.find(([t]) => t === "pipeline_referrals")!;
  assert.ok(position(pipeline) < position(referral), "the pipeline comes before its referral");
  await assertReplicaMatches(users.rm2Jakarta, replicate(replicaTwo, gained.changes));

  // The bm, who sees the whole branch, only gets the customer's new version.
  const bmDelta = await pullAll(await bm(), bmCursor);
  assert.deepEqual(bmDelta.changes.map((c) => [c.op, idOf(c)]), [["upsert", fam.customer]]);
});

test("evictions: a key person moved to a customer rm1 cannot see is evicted for rm1 and reaches the other rm", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Loses A Contact");
  const [, kp] = fam.children[0];
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  const target = seedCustomer(9); // rm2.jakarta's
  const res = await push(await bm(), [update("key_persons", kp, 1, { customer_id: target })]);
  assert.equal(res.body.results[0].status, "applied", res.text);

  const lost = await pullAll(rmOne, one.cursor);
  assert.deepEqual(lost.changes, [{ table: "key_persons", op: "evict", id: kp }]);
  const gained = await pullAll(rmTwo, two.cursor);
  const got = about(gained.changes, kp);
  assert.equal(got.length, 1);
  assert.equal(got[0].op, "upsert");
  assert.equal(got[0].row.customer_id, target);
});

test("evictions: a customer reassigned and then one of its key persons moved elsewhere, both before rm1 pulls: everything is evicted", async () => {
  const rmOne = await rm1();
  const fam = await customerWithFamily(rmOne, "PT Reassigned Then Split");
  const [, kp] = fam.children[0];
  const one = await pullAll(rmOne, null);
  const replica = replicate(new Map(), one.changes);
  const manager = await bm();
  const moved = await push(manager, [
    update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id }),
    update("key_persons", kp, 1, { customer_id: seedCustomer(9) }),
  ]);
  assert.deepEqual(moved.body.results.map((r: any) => r.status), ["applied", "applied"], moved.text);
  const lost = await pullAll(rmOne, one.cursor);
  for (const [table, id] of fam.all) {
    assert.deepEqual(about(lost.changes, id), [{ table, op: "evict", id }], `${table} ${id} is evicted for rm1`);
  }
  await assertReplicaMatches(users.rm1Jakarta, replicate(replica, lost.changes));
});

test("evictions: reassigned away and back within one cycle, rm1 keeps the customer and all of its rows", async () => {
  const rmOne = await rm1();
  const fam = await customerWithFamily(rmOne, "PT Boomerang");
  const one = await pullAll(rmOne, null);
  const manager = await bm();
  await push(manager, [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  await push(manager, [update("customers", fam.customer, 2, { assigned_rm_id: users.rm1Jakarta.id })]);
  const delta = await pullAll(rmOne, one.cursor);
  const replica = replicate(replicate(new Map(), one.changes), delta.changes);
  for (const [table, id] of fam.all) {
    assert.ok(replica.has(`${table}/${id}`), `${table} ${id} is still on rm1's device`);
  }
  assert.equal(replica.get(`customers/${fam.customer}`).version, 3);
  await assertReplicaMatches(users.rm1Jakarta, replica);
});

test("evictions and gained rows are paged within the limit like any other change", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const fam = await customerWithFamily(rmOne, "PT Big Family");
  const one = await pullAll(rmOne, null);
  const two = await pullAll(rmTwo, null);
  await push(await bm(), [update("customers", fam.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  for (
    const [user, token, cursor, op] of [[users.rm1Jakarta, rmOne, one.cursor, "evict"], [
      users.rm2Jakarta,
      rmTwo,
      two.cursor,
      "upsert",
    ]] as const
  ) {
    const limit = 3;
    const seen: any[] = [];
    let c: string = cursor;
    for (;;) {
      const res = await pull(token, c, { limit });
      assert.ok(
        res.body.changes.length <= limit,
        `${user.email}: a page of ${res.body.changes.length} changes; limit ${limit}`,
      );
      seen.push(...res.body.changes);
      c = res.body.cursor;
      if (!res.body.has_more) break;
    }
    for (const [table, id] of fam.all) {
      assert.ok(
        seen.some((x) => x.table === table && idOf(x) === id && x.op === op),
        `${user.email}: ${op} ${table} ${id}`,
      );
    }
  }
});

test("a device that follows every delta holds exactly what its user may see, after reassignments, moves, edits and deletes", async () => {
  const rmOne = await rm1();
  const rmTwo = await rm2();
  const manager = await bm();
  const devices = [
    { user: users.rm1Jakarta, token: rmOne, replica: new Map<string, any>(), cursor: null as string | null },
    { user: users.rm2Jakarta, token: rmTwo, replica: new Map<string, any>(), cursor: null as string | null },
    { user: users.bmJakarta, token: manager, replica: new Map<string, any>(), cursor: null as string | null },
  ];
  const sync = async () => {
    for (const d of devices) {
      const res = await pullAll(d.token, d.cursor, { limit: 40 });
      replicate(d.replica, res.changes);
      d.cursor = res.cursor;
      await assertReplicaMatches(d.user, d.replica);
    }
  };
  await sync();
  const f1 = await customerWithFamily(rmOne, "PT Replica One");
  const f2 = await customerWithFamily(rmOne, "PT Replica Two");
  await sync();
  await push(manager, [update("customers", f1.customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  await push(manager, [update("key_persons", f2.children[0][1], 1, { customer_id: f1.customer })]);
  await sync();
  await push(rmTwo, [update("key_persons", f2.children[0][1], 2, { customer_id: seedCustomer(9) })]);
  await push(manager, [update("customers", f1.customer, 2, { assigned_rm_id: users.rm1Jakarta.id, notes: "back" })]);
  await push(rmOne, [
    remove("key_persons", f1.children[1][1], 1),
    update("pipelines", f2.children[2][1], 1, { stage: "won" }),
  ]);
  await sync();
  await sync();
});

// ---------------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------------

async function withRetention(value: string, fn: () => Promise<void>) {
  const [{ tombstone_retention }] = await sql`select tombstone_retention::text from sync.settings`;
  try {
    await sql`update sync.settings set tombstone_retention = ${value}::interval`;
    await fn();
  } finally {
    await sql`update sync.settings set tombstone_retention = ${tombstone_retention}::interval`;
  }
}

test("retention: once a tombstone newer than a cursor is purged, that cursor gets resync_required and a fresh full pull works", async () => {
  const token = await rm1();
  const { cursor: old } = await pullAll(token, null);
  await withRetention("0 seconds", async () => {
    const id = uuid();
    const res = await push(token, [insert("customers", id, { name: "PT Short Lived" }), remove("customers", id, 1)]);
    assert.deepEqual(res.body.results.map((r: any) => r.status), ["applied", "applied"]);
    const [{ report }] = await sql`select sync.purge_expired() as report`;
    assert.ok(Number(report.customers) >= 1, JSON.stringify(report));
    const [{ count }] = await sql`select count(*)::int from public.customers where id = ${id}`;
    assert.equal(count, 0, "the tombstone is gone");

    const stale = await pull(token, old);
    assert.equal(stale.status, 200);
    assert.deepEqual(
      {
        changes: stale.body.changes,
        cursor: stale.body.cursor,
        has_more: stale.body.has_more,
        resync_required: stale.body.resync_required,
      },
      { changes: [], cursor: null, has_more: false, resync_required: true },
    );
    assert.ok(stale.body.server_time);

    const fresh = await pullAll(token, null);
    const next = await pull(token, fresh.cursor);
    assert.equal(next.body.resync_required, false, "a cursor issued after the purge is fine");
  });
});

test("retention: the purge keeps tombstones that live rows still point at, and purges the others", async () => {
  const token = await rm1();
  const customer = uuid();
  const pipeline = uuid();
  const loose = uuid();
  const res = await push(token, [
    insert("customers", customer, { name: "PT Keeps Its History" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Lost deal" }),
    insert("activities", uuid(), {
      customer_id: customer,
      pipeline_id: pipeline,
      activity_type: "call",
      subject: "About the lost deal",
    }),
    remove("pipelines", pipeline, 1),
    insert("customers", loose, { name: "PT Nothing Points Here" }),
    remove("customers", loose, 1),
  ]);
  assert.ok(res.body.results.every((r: any) => r.status === "applied"), res.text);
  await withRetention("0 seconds", async () => {
    const [{ report }] = await sql`select sync.purge_expired() as report`;
    assert.ok(report.purged_through_xid);
  });
  const [{ n: pipelines }] =
    await sql`select count(*)::int as n from public.pipelines where id = ${pipeline} and deleted_at is not null`;
  assert.equal(pipelines, 1, "the deleted pipeline an activity still names is kept (as a tombstone)");
  const [{ n: customers }] = await sql`select count(*)::int as n from public.customers where id = ${loose}`;
  assert.equal(customers, 0, "an unreferenced tombstone is purged");
});

// ---------------------------------------------------------------------------------------------
// Cursors
// ---------------------------------------------------------------------------------------------

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

test("a cursor altered by one character, anywhere, is 400 invalid_cursor", async () => {
  const token = await rm1();
  const cursors: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const res = await pull(token, cursor, { limit: 60 });
    cursors.push(res.body.cursor);
    cursor = res.body.cursor;
    if (!res.body.has_more) break;
  }
  // Base64 leaves spare bits in the last character of most lengths: flipping one there is the subtle case.
  const spare = cursors.filter((c) => (c.split(".")[0].length * 6) % 8 !== 0);
  assert.ok(spare.length > 0, "some cursor has spare bits");
  for (const c of [...spare.slice(0, 2), cursors.at(-1)!]) {
    const altered = [...c].flatMap((ch, i) =>
      ch === "." ? [] : [c.slice(0, i) + B64URL[B64URL.indexOf(ch) ^ 1] + c.slice(i + 1)]
    );
    for (let i = 0; i < altered.length; i += 25) {
      const answers = await Promise.all(altered.slice(i, i + 25).map((x) => pull(token, x, { limit: 60 })));
      answers.forEach((a, j) => {
        assert.equal(a.status, 400, `altered at ${i + j} of ${c.length}: ${a.text.slice(0, 200)}`);
        assert.equal(a.body.error, "invalid_cursor");
      });
    }
  }
  for (const junk of ["", "not-a-cursor", "a.b", "a.b.c", cursors[0].split(".")[0], `${cursors[0]}x`]) {
    const res = await pull(token, junk);
    assert.equal(res.status, 400, junk);
    assert.equal(res.body.error, "invalid_cursor", junk);
  }
  assert.equal((await pull(token, cursors.at(-1)!)).status, 200, "the unaltered cursor is fine");
});

test("a cursor issued to another user is 400 invalid_cursor", async () => {
  const { cursor } = await pullAll(await rm2(), null);
  const res = await pull(await rm1(), cursor);
  assert.equal(res.status, 400);
  assert.equal(res.body.error, "invalid_cursor");
});

test("a cursor issued for another tables set asks for a resync; the same set in another order does not", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null, { tables: ["customers", "pipelines"] });
  const same = await pull(token, cursor, { tables: ["pipelines", "customers"] });
  assert.equal(same.status, 200);
  assert.equal(same.body.resync_required, false);
  for (const tables of [undefined, ["customers"], ["customers", "pipelines", "activities"]]) {
    const res = await pull(token, cursor, tables ? { tables } : {});
    assert.equal(res.status, 200);
    assert.deepEqual(
      {
        changes: res.body.changes,
        cursor: res.body.cursor,
        has_more: res.body.has_more,
        resync_required: res.body.resync_required,
      },
      { changes: [], cursor: null, has_more: false, resync_required: true },
      `tables ${JSON.stringify(tables)}`,
    );
  }
});

test("a cursor issued before the user's branch or role changed asks for a resync, and the full pull then fits the new scope", async () => {
  // A branch manager of our own, moved between branches by an admin.
  const manager: User = { id: uuid(), email: `bm.moving.${Date.now()}@crm.test` };
  await sql`insert into auth.users (id, email) values (${manager.id}, ${manager.email})`;
  await sql`insert into public.profiles (id, role, branch_id, full_name, email)
            values (${manager.id}, 'bm', ${branches.jakarta}, 'Moving Manager', ${manager.email})`;
  try {
    const token = await tokenFor(manager);
    const before = await pullAll(token, null, { tables: ["customers"], limit: 1000 });
    assert.ok(before.changes.every((c) => c.row.branch_id === branches.jakarta));

    await sql`update public.profiles set branch_id = ${branches.surabaya} where id = ${manager.id}`;
    const res = await pull(token, before.cursor, { tables: ["customers"], limit: 1000 });
    assert.equal(res.status, 200);
    assert.deepEqual(
      { changes: res.body.changes, cursor: res.body.cursor, resync_required: res.body.resync_required },
      { changes: [], cursor: null, resync_required: true },
      "the Jakarta rows on the device are not the manager's any more, and Surabaya's unchanged rows would never come in a delta",
    );
    const after = await pullAll(token, null, { tables: ["customers"], limit: 1000 });
    assert.deepEqual(after.changes.map(keyOf).sort(), await visibleKeys(manager, ["customers"]));
    assert.ok(after.changes.every((c) => c.row.branch_id === branches.surabaya));

    await sql`update public.profiles set role = 'rm' where id = ${manager.id}`;
    const demoted = await pull(token, after.cursor, { tables: ["customers"] });
    assert.equal(demoted.body.resync_required, true, "a role change too");
  } finally {
    await sql`update public.profiles set deleted_at = now() where id = ${manager.id}`;
  }
});

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
    assert.ok(res.body.details.some((d: any) => d.path[0] === path), res.text);
  }
  const anon = await call("/pull", { protocol: 2, cursor: null });
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error, "missing_token");
});

test("a row the caller writes into a customer while a bm reassigns it away is evicted from the caller's device", async () => {
  const rm = await rm1();
  const bm = await tokenFor(users.bmJakarta);
  const customer = uuid();
  await push(rm, [insert("customers", customer, { name: "PT Reassigned Mid-Write" })]);
  const { cursor } = await pullAll(rm, null);
  const keyPerson = uuid();
  // The rm's transaction adds a key person and stays open while the bm reassigns the customer.
  const t1 = openTransaction(users.rm1Jakarta);
  try {
    await t1.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Late Contact')`
    );
    const moved = await push(bm, [update("customers", customer, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
    assert.equal(moved.body.results[0].status, "applied");
    await t1.commit();
  } finally {
    await t1.close();
  }
  const { changes } = await pullAll(rm, cursor);
  assert.deepEqual(about(changes, customer).map((c) => c.op), ["evict"], "the customer is evicted");
  // Evicted as the rm's own write and, when the reassignment listed the children before the key
  // person committed, as a row below the customer it did not list: twice is harmless.
  const evicts = about(changes, keyPerson).map((c) => c.op);
  assert.ok(
    evicts.length >= 1 && evicts.every((op) => op === "evict"),
    `the key person the rm wrote as the customer left them is evicted too, though no scope change names it: ${evicts}`,
  );
});

test("every phase pages: the evictions of rows rm1 wrote into a customer reassigned away come within the limit, and the cycle ends", async () => {
  const rm = await rm1();
  const customer = seedCustomer(4); // rm1.jakarta's
  const { cursor: start } = await pullAll(rm, null);
  const written = [uuid(), uuid(), uuid()];
  const made = await push(
    rm,
    written.map((id, i) => insert("key_persons", id, { customer_id: customer, name: `Contact ${i}` })),
  );
  assert.deepEqual(made.body.results.map((r: any) => r.status), ["applied", "applied", "applied"], made.text);
  const [{ version }] = await sql`select version from public.customers where id = ${customer}`;
  const moved = await push(await bm(), [
    update("customers", customer, Number(version), { assigned_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.equal(moved.body.results[0].status, "applied", moved.text);
  try {
    const limit = 2;
    const seen: any[] = [];
    const cursors = new Set<string>([start]);
    let cursor = start;
    for (let page = 1;; page++) {
      const res = await pull(rm, cursor, { limit });
      assert.equal(res.status, 200, res.text);
      assert.ok(
        res.body.changes.length <= limit,
        `page ${page} holds ${res.body.changes.length} changes; limit ${limit}`,
      );
      assert.ok(!cursors.has(res.body.cursor), `page ${page} hands out a cursor of this cycle again`);
      cursors.add(res.body.cursor);
      seen.push(...res.body.changes);
      cursor = res.body.cursor;
      if (!res.body.has_more) break;
      assert.ok(page < 200, "the cycle comes to an end");
    }
    for (const id of [customer, ...written]) {
      assert.ok(seen.some((c) => c.op === "evict" && c.id === id), `${id} is evicted`);
    }
    const after = await pull(rm, cursor, { limit });
    assert.deepEqual(after.body.changes, [], "the next cycle starts after the evictions");
  } finally {
    const [{ version: now }] = await sql`select version from public.customers where id = ${customer}`;
    await push(await bm(), [update("customers", customer, Number(now), { assigned_rm_id: users.rm1Jakarta.id })]);
  }
});

test("a key person another user adds to a customer while the bm's reassignment of it is still open, pulled before the reassignment commits, is evicted after it", async () => {
  const rm = await rm1();
  const manager = await bm();
  const customer = uuid();
  await push(manager, [insert("customers", customer, { name: "PT Race", assigned_rm_id: users.rm1Jakarta.id })]);
  const { changes: first, cursor } = await pullAll(rm, null);
  const replica = replicate(new Map(), first);
  const keyPerson = uuid();
  const adding = openTransaction(users.bmJakarta);
  const moving = openTransaction(users.bmJakarta);
  try {
    await adding.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Racing Contact')`
    );
    await moving.run((tx) =>
      tx`update public.customers set assigned_rm_id = ${users.rm2Jakarta.id} where id = ${customer}`
    );
    await adding.commit();
    const between = await pullAll(rm, cursor);
    replicate(replica, between.changes);
    await moving.commit();
    const after = await pullAll(rm, between.cursor);
    replicate(replica, after.changes);
  } finally {
    await adding.close();
    await moving.close();
  }
  await assertReplicaMatches(users.rm1Jakarta, replica);
});

test("a key person added to a customer while the bm's reassignment of it to rm1 is still open reaches rm1, though rm1's cursor passed its commit while rm1 could not see it", async () => {
  const rm = await rm1();
  const manager = await bm();
  const customer = uuid();
  await push(manager, [insert("customers", customer, { name: "PT Race Won", assigned_rm_id: users.rm2Jakarta.id })]);
  const { changes: first, cursor } = await pullAll(rm, null);
  const replica = replicate(new Map(), first);
  const keyPerson = uuid();
  const adding = openTransaction(users.rm2Jakarta);
  const moving = openTransaction(users.bmJakarta);
  try {
    await adding.run((tx) =>
      tx`insert into public.key_persons (id, customer_id, name) values (${keyPerson}, ${customer}, 'Late Arrival')`
    );
    await moving.run((tx) =>
      tx`update public.customers set assigned_rm_id = ${users.rm1Jakarta.id} where id = ${customer}`
    );
    await adding.commit();
    const between = await pullAll(rm, cursor);
    assert.equal(about(between.changes, keyPerson).length, 0, "rm1 cannot see it yet");
    replicate(replica, between.changes);
    await moving.commit();
    const after = await pullAll(rm, between.cursor);
    assert.deepEqual(about(after.changes, keyPerson).map((c) => c.op), ["upsert"]);
    replicate(replica, after.changes);
  } finally {
    await adding.close();
    await moving.close();
  }
  await assertReplicaMatches(users.rm1Jakarta, replica);
});
