// A first (full) pull: it pages through exactly the live rows the user may see, parents before
// children and within the page limit; the limit is clamped to the server's maximum, and a tables
// filter narrows it to those tables. The user's open conflicts come too, after the rows.
import assert from "node:assert/strict";
import {
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
  users,
  uuid,
} from "./_helpers.ts";
import { about, type Change, keyOf, registry, rm1, visibleKeys } from "./_pull.ts";

test("a first pull pages through exactly what the user may see: every page within the limit, no duplicates, parents before children, no tombstones", async () => {
  const token = await rm1();
  // A row created and deleted before the device ever synced: a full pull has no reason to send it.
  const gone = uuid();
  const made = await push(token, [
    insert("customers", gone, { name: "PT Deleted Before First Pull" }),
    remove("customers", gone, 1),
  ]);
  assert.deepEqual(made.body.results.map((r: { status: string }) => r.status), ["applied", "applied"]);
  // And an open conflict of rm1's (whatever other tests left open besides): a first pull brings the
  // open ones too, after the rows.
  const pipeline = uuid();
  await push(token, [
    insert("pipelines", pipeline, { customer_id: seedCustomer(4), title: "Disputed", potential_value: 100 }),
  ]);
  await push(await tokenFor(users.bmJakarta), [update("pipelines", pipeline, 1, { potential_value: 90 })]);
  const disputed = await push(token, [{
    ...update("pipelines", pipeline, 1, { potential_value: 120 }),
    base: { potential_value: 100 },
  }]);
  assert.equal(disputed.body.results[0].conflict?.resolution, "manual_pending", disputed.text);
  const disputedId: string = disputed.body.results[0].conflict!.id;

  const limit = 97;
  const changes: Change[] = [];
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

  const rows = await visibleKeys(users.rm1Jakarta);
  const open = (await sql`select id::text from sync.conflicts
                           where resolution = 'manual_pending' and ${users.rm1Jakarta.id}::uuid in (user_id, server_user_id)`)
    .map((c) => `conflicts/${c.id}`).sort();
  assert.ok(open.includes(`conflicts/${disputedId}`));
  const expected = [...rows, ...open].sort();
  assert.deepEqual(
    changes.slice(changes.length - open.length).map(keyOf).sort(),
    open,
    "the open conflicts come after the rows",
  );
  assert.ok(sizes.length > 1, "more than one page");
  assert.ok(changes.every((c) => c.op === "upsert"), "a full pull carries upserts only");
  assert.equal(new Set(changes.map(keyOf)).size, changes.length, "no row twice in one full pull");
  assert.equal(changes.length, expected.length, "as many rows as the user may see, and their open conflicts");
  assert.deepEqual(changes.map(keyOf).sort(), expected, "exactly the rows the user may see, and their open conflicts");
  assert.equal(about(changes, gone).length, 0, "the tombstone is not sent");

  // Every child row comes after its parent row in the stream. A referral is the one child a user may
  // read without its pipeline (crm_referrals: it carries a summary of the pipeline for a reader who
  // may not read the pipeline itself, as the oracle's referrals, moves and deletes leave for rm1):
  // when its pipeline is not in the pull, the user may not read it either, since the set was held to
  // what RLS shows just above. The rest still must have their parent, and before them.
  const position = new Map(changes.map((c, i) => [keyOf(c), i]));
  let checked = 0;
  for (const { table_name, parent_table, parent_column } of await registry()) {
    if (!parent_table || !parent_column) continue;
    for (const c of changes.filter((c) => c.table === table_name)) {
      const parent = position.get(`${parent_table}/${c.row[parent_column]}`);
      if (parent === undefined && table_name === "pipeline_referrals") continue;
      assert.ok(parent !== undefined, `${keyOf(c)}: its ${parent_table} is in the pull (${JSON.stringify(c.row)})`);
      assert.ok(parent < position.get(keyOf(c))!, `${keyOf(c)} arrives after its ${parent_table}`);
      checked++;
    }
  }
  assert.ok(checked > 300, "key persons, pipelines, activities... were all checked");

  // Settled, as a branch manager would: the tests after this one start from the state it found.
  await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.bmJakarta.id, role: "authenticated" })
    }, true)`;
    await tx`select public.resolve_conflict(${disputedId}::uuid, 'server')`;
  });
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
  assert.ok(second.body.changes.every((c: Change) => !one.has(keyOf(c))), "the second page does not repeat the first");
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
  assert.ok(bad.body.details, bad.text);
  assert.deepEqual(bad.body.details.map((d: { path: unknown[] }) => d.path), [["tables", 1]]);
});
