// Cursors: signed, bound to their user, their tables set and the user's scope; an altered or foreign
// cursor is 400 invalid_cursor, one issued for another tables set, before a scope change or by an
// earlier release in a form this one no longer reads asks for a resync.
import assert from "node:assert/strict";
import { branches, pull, pullAll, sql, test, tokenFor, type User, users, uuid } from "./_helpers.ts";
import { asUser, keyOf, rm1, rm2, visibleKeys } from "./_pull.ts";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

test("a cursor altered by one character, anywhere, is 400 invalid_cursor", async () => {
  const token = await rm1();
  const cursors: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const res = await pull(token, cursor, { limit: 60 });
    assert.ok(res.body.cursor, `every page carries a cursor: ${res.text.slice(0, 200)}`);
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
    assert.ok(before.changes.every((c) => c.op === "upsert" && c.row.branch_id === branches.jakarta));

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
    assert.ok(after.changes.every((c) => c.op === "upsert" && c.row.branch_id === branches.surabaya));

    await sql`update public.profiles set role = 'rm' where id = ${manager.id}`;
    const demoted = await pull(token, after.cursor, { tables: ["customers"] });
    assert.equal(demoted.body.resync_required, true, "a role change too");
  } finally {
    await sql`update public.profiles set deleted_at = now() where id = ${manager.id}`;
  }
});

test("a cursor this server signed before the position type asks for a resync, never a 500", async () => {
  const token = await rm1();
  // What the server signed before sync.pull_position: the state as JSON under one-letter keys, after
  // a cycle ("lo" alone) and within one, valid in every way but its form.
  const forged = await sql`
    with state as (
      select jsonb_build_object('u', p.id, 'e', s.schema_epoch, 'k', md5('customers'), 's', p.role || '/' || p.branch_id,
                                'lo', pg_current_snapshot()::text) as after_cycle, s.cursor_secret
        from public.profiles p, sync.settings s
       where p.id = ${users.rm1Jakarta.id}
    ), body as (
      select convert_to(b::text, 'UTF8') as body, cursor_secret
        from state, unnest(array[after_cycle, after_cycle || jsonb_build_object(
          'hi', pg_current_snapshot()::text, 'ph', 'rows', 't', 'customers', 'x', '0', 'i', ${uuid()}::text)]) b
    )
    select sync.b64url(body) || '.' || sync.b64url(extensions.hmac(body, cursor_secret, 'sha256')) as cursor from body`;
  assert.equal(forged.length, 2);
  for (const { cursor } of forged) {
    const res = await pull(token, cursor, { tables: ["customers"] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      {
        changes: res.body.changes,
        cursor: res.body.cursor,
        has_more: res.body.has_more,
        resync_required: res.body.resync_required,
      },
      { changes: [], cursor: null, has_more: false, resync_required: true },
      "the device keeps its pending ops and pulls from null",
    );
    const flipped = cursor.slice(0, -1) + (cursor.endsWith("A") ? "B" : "A");
    const altered = await pull(token, flipped, { tables: ["customers"] });
    assert.equal(altered.status, 400, "altered, it is no cursor of this server's");
    assert.equal(altered.body.error, "invalid_cursor");
  }
  const fresh = await pullAll(token, null, { tables: ["customers"], limit: 1000 });
  assert.deepEqual(fresh.changes.map(keyOf).sort(), await visibleKeys(users.rm1Jakarta, ["customers"]));
});

test("a cursor whose snapshots list a thousand open writing transactions is served at both doors", async () => {
  const token = await rm1();
  const first = await pullAll(token, null, { tables: ["customers"], limit: 1000 });
  // Transactions enough below the cursor's snapshot to list a thousand of them as open in it (each
  // of these statements is a transaction of its own that takes a transaction id).
  for (let i = 0; i < 1100; i++) await sql`select pg_current_xact_id()`;
  const [{ cursor }] = await sql`
    with p as (
      select (convert_from(sync.b64url_decode(split_part(${first.cursor}, '.', 1)), 'UTF8'))::sync.pull_position as p
    ), widened as (
      select (p).*, pg_snapshot_xmin((p).since_snapshot) as xmin, pg_snapshot_xmax((p).since_snapshot) as xmax from p
    )
    select sync.sign_cursor(row(user_id, schema_epoch, tables_key, scope_key,
             ((xmin::text::bigint - 1000) || ':' || xmax || ':' ||
              (select string_agg(x::text, ',') from generate_series(xmin::text::bigint - 1000, xmin::text::bigint - 1) x))::pg_snapshot,
             until_snapshot, phase, table_name, after_xid, after_id, entry_xid, entry_id, below_order, below_id,
             lineage, wal_lsn)::sync.pull_position) as cursor
      from widened`;
  assert.ok(cursor.length > 4096 && cursor.length < 65536, `a cursor of ${cursor.length} characters`);
  const res = await pull(token, cursor, { tables: ["customers"] });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.resync_required, false);
  const [{ answer }] = await asUser(
    users.rm1Jakarta,
    (tx) =>
      tx`select public.sync_pull(${
        JSON.stringify({ protocol: 2, cursor, tables: ["customers"] })
      }::text::jsonb)::text as answer`,
  );
  assert.equal(JSON.parse(answer).resync_required, false, "through the RPC door too");
});
