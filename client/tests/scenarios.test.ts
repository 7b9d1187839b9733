// The seed scenarios of the old queue's failures, each driven through the client kit against the
// real function: what the user sees on the device, what reaches the server, and that each op has
// exactly one outcome there.
import assert from "node:assert/strict";
import { env, users } from "../../supabase/functions/tests/_helpers.ts";
import type { OpIssue } from "../mod.ts";
import { deviceOf, recorded, serverRow, Session, sql, test, tokenFor } from "./_server.ts";

const RESTART = Deno.env.get("SIM_PG_RESTART");

async function restartOrKill() {
  if (RESTART) {
    const [cmd, ...args] = RESTART.split(" ");
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    if (!out.success) throw new Error(`restart failed: ${new TextDecoder().decode(out.stderr)}`);
    for (let i = 0; i < 50; i++) {
      try {
        await sql`select 1`;
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } else {
    await sql`select pg_terminate_backend(pid) from pg_stat_activity
               where (application_name like 'sync-function%' or application_name = 'lock-holder')
                 and datname = current_database()
                 and pid <> pg_backend_pid()`;
  }
}

test("create then update offline reaches the server as one create with both edits", async () => {
  const { client, net, results } = await deviceOf(users.rm1Jakarta);
  net.offline = true;
  const id = await client.insert("customers", { name: "PT Offline Dua Kali", phone: "+62 1" });
  await client.update("customers", id, { phone: "+62 2", city: "Depok" });
  assert.equal((await client.sync()).status, "offline");
  net.offline = false;
  assert.equal((await client.sync()).status, "idle");
  assert.deepEqual(net.pushedOps().map((o) => [o.op, o.data]), [
    ["insert", { name: "PT Offline Dua Kali", phone: "+62 2", city: "Depok" }],
  ]);
  const row = await serverRow("customers", id);
  assert.deepEqual([row?.name, row?.phone, row?.city, row?.version], ["PT Offline Dua Kali", "+62 2", "Depok", 1]);
  assert.deepEqual([...(await recorded(users.rm1Jakarta, results.map((r) => r.op_id))).values()], ["applied"]);
  assert.equal(client.state.pending, 0);
  assert.deepEqual((await client.get("customers", id))?.version, 1, "the device holds the server's row");
});

test("the first sync reports its progress, page by page, in rows received", async () => {
  const { client, net } = await deviceOf(users.rm1Jakarta, { pullLimit: 100 });
  const seen: number[] = [];
  client.subscribe((s) => {
    if (s.progress && seen.at(-1) !== s.progress.received) seen.push(s.progress.received);
  });
  await client.sync();
  const pages = net.sent.filter((s) => s.route === "/pull");
  const counts = pages.map((p) => (p.answer?.changes as unknown[]).length);
  assert.ok(pages.length > 2, `several pages: ${counts}`);
  const totals = counts.map((_, i) => counts.slice(0, i + 1).reduce((a, b) => a + b, 0));
  assert.deepEqual(seen, [...new Set(totals)]);
  assert.equal(client.state.progress, null, "and no progress once it is done");
});

test("create then delete offline sends nothing, and the row is nowhere", async () => {
  const { client, net } = await deviceOf(users.rm1Jakarta);
  net.offline = true;
  const id = await client.insert("customers", { name: "PT Tidak Jadi" });
  await client.insert("key_persons", { customer_id: id, name: "Pak Batal" });
  await client.delete("customers", id);
  net.offline = false;
  assert.equal((await client.sync()).status, "idle");
  assert.deepEqual(net.sent.filter((s) => s.route === "/push"), [], "no push at all");
  assert.equal(await serverRow("customers", id), undefined);
  assert.equal(await client.get("customers", id), undefined);
});

test("an edit made while a push is in flight is queued behind it, on the version the push's answer gives", async () => {
  const { client, net } = await deviceOf(users.rm1Jakarta);
  const id = await client.insert("customers", { name: "PT Sedang Dikirim", phone: "1" });
  let edited = false;
  net.before = async (route) => {
    if (route !== "/push" || edited) return;
    edited = true;
    await client.update("customers", id, { phone: "edited in flight" });
  };
  assert.equal((await client.sync()).status, "idle");
  const pushes = net.sent.filter((s) => s.route === "/push");
  assert.equal(pushes.length, 2, "the edit went in a second push of the same sync");
  const [first] = (pushes[0].answer as { results: { row: { version: number } }[] }).results;
  assert.deepEqual(pushes[1].body?.ops, [{
    op_id: (pushes[1].body?.ops as { op_id: string }[])[0].op_id,
    table: "customers",
    op: "update",
    id,
    base_version: first.row.version,
    data: { phone: "edited in flight" },
    base: { phone: "1" },
  }]);
  assert.equal((await serverRow("customers", id))?.phone, "edited in flight");
  const [{ count }] = await sql`select count(*)::int from sync.conflicts where row_id = ${id}`;
  assert.equal(count, 0, "an edit on the version it was made on is no conflict");
  assert.equal((await client.get("customers", id))?.phone, "edited in flight");
});

test("an edit made while a pull brings a newer version of the row is kept, shown on top, and pushed", async () => {
  const { client, net } = await deviceOf(users.rm1Jakarta);
  const id = await client.insert("customers", { name: "PT Ditarik", phone: "1", city: "Bekasi" });
  await client.sync();
  const bm = await deviceOf(users.bmJakarta);
  await bm.client.sync();
  await bm.client.update("customers", id, { city: "Bogor" });
  await bm.client.sync();
  net.before = async (route) => {
    if (route !== "/pull") return;
    net.before = undefined;
    await client.update("customers", id, { phone: "edited during the pull" });
  };
  await client.sync();
  const mine = await client.get("customers", id);
  assert.deepEqual(
    [mine?.phone, mine?.city],
    ["edited during the pull", "Bogor"],
    "the pulled row with the edit on top",
  );
  assert.equal(client.state.pending, 1);
  await client.sync();
  const row = await serverRow("customers", id);
  assert.deepEqual([row?.phone, row?.city, row?.version], ["edited during the pull", "Bogor", 3]);
});

test("a token that expired during two days offline is refreshed once, and the edits go through", async () => {
  const session = new Session(users.rm1Jakarta);
  const { client, net } = await deviceOf(users.rm1Jakarta, { session });
  await client.sync();
  session.current = await tokenFor(users.rm1Jakarta, { expiresIn: 1 });
  net.offline = true;
  const id = await client.insert("customers", { name: "PT Dua Hari" });
  assert.equal((await client.sync()).status, "offline");
  assert.equal(client.state.pending, 1, "the edit waits");
  await new Promise((r) => setTimeout(r, 1500)); // "two days" of a token that lives one second
  net.offline = false;
  assert.equal((await client.sync()).status, "idle");
  assert.equal(session.refreshes, 1, "one refresh");
  assert.deepEqual(
    net.sent.filter((s) => s.status === 401).map((s) => [s.route, s.answer?.error]),
    [["/push", "token_expired"]],
  );
  assert.equal((await serverRow("customers", id))?.name, "PT Dua Hari");
});

test("an invalid token stops syncing as signed out; pending edits survive and go once the user signs in", async () => {
  const session = new Session(users.rm1Jakarta, "not.a.token");
  const { client, net } = await deviceOf(users.rm1Jakarta, { session });
  const id = await client.insert("customers", { name: "PT Keluar Masuk" });
  assert.equal((await client.sync()).status, "signed_out");
  assert.deepEqual(client.state.error, { code: "invalid_token", message: client.state.error?.message });
  assert.equal(client.state.pending, 1);
  const before = net.sent.length;
  assert.equal((await client.sync()).status, "signed_out", "no sync while signed out");
  assert.equal(net.sent.length, before, "and no request");
  session.current = await tokenFor(users.rm1Jakarta);
  assert.equal((await client.signedIn()).status, "idle");
  assert.equal((await serverRow("customers", id))?.name, "PT Keluar Masuk");
  assert.equal(session.refreshes, 0);
});

test("the database restarting mid-push: the client backs off, sends again, and the op applies exactly once", async () => {
  const { client, net, results } = await deviceOf(users.rm1Jakarta);
  await client.sync();
  const id = await client.insert("customers", { name: "PT Restart" });
  // The push waits inside the database for the user's push lock, held by another session (a psql of
  // its own: the restart ends it), when the server restarts.
  const lock =
    `select pg_advisory_xact_lock(hashtextextended('sync.push/${users.rm1Jakarta.id}', 0)); select pg_sleep(60)`;
  const holder = new Deno.Command("psql", {
    args: [env.dbUrl, "-c", lock],
    stdout: "null",
    stderr: "null",
    env: { PGAPPNAME: "lock-holder" },
  }).spawn();
  for (let i = 0; i < 100; i++) {
    const [held] = await sql`select 1 from pg_locks l join pg_stat_activity a using (pid)
                              where a.application_name = 'lock-holder' and l.locktype = 'advisory' and l.granted`;
    if (held) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  let restarted = false;
  net.during = async (route) => {
    if (route !== "/push" || restarted) return;
    restarted = true;
    for (let i = 0; i < 100; i++) {
      const [waiting] = await sql`select 1 from pg_stat_activity where application_name like 'sync-function%'
                                    and wait_event_type = 'Lock' and datname = current_database()`;
      if (waiting) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await restartOrKill();
  };
  for (let i = 0; i < 20 && client.state.pending; i++) {
    const report = await client.sync();
    if (report.status === "offline") {
      assert.ok(client.state.retryAt, "a retry is scheduled");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  assert.equal(client.state.pending, 0);
  try {
    holder.kill();
  } catch {
    // It ended with the restart.
  }
  await holder.status;
  const pushes = net.sent.filter((s) => s.route === "/push");
  assert.ok(restarted, "the server restarted under the push");
  // Straight to the server, the push fails with it and the client sends it again. Behind a
  // transaction pooler (as npm test runs the function), the function's retry waits in the pooler
  // until the server is back, and the first push applies. Either way, one op, applied once.
  if (pushes[0].status !== 200) assert.ok(pushes.length >= 2, "a failed push is sent again");
  else {
    const [result] = (pushes[0].answer?.results ?? []) as { status?: string }[];
    assert.equal(result?.status, "applied", JSON.stringify(pushes[0].answer));
  }
  const opIds = [...new Set(net.pushedOps().map((o) => o.op_id as string))];
  assert.equal(opIds.length, 1, "the same op every time");
  assert.deepEqual([...(await recorded(users.rm1Jakarta, opIds)).values()], ["applied"]);
  assert.equal((await serverRow("customers", id))?.version, 1, "applied once");
  assert.ok(results.every((r) => r.status === "applied" || r.status === "duplicate"));
});

test("resync_required drops the cursor, pulls from null, keeps the outbox and shows the pending edits on top", async () => {
  // The app's update syncs one more table: the cursor of the old table set gets resync_required.
  // (A retention purge outdates cursors too, but it purges every row's history, which other tests read.)
  const before = await deviceOf(users.rm1Jakarta, { tables: ["customers", "key_persons"] });
  const id = await before.client.insert("customers", { name: "PT Resync", phone: "1" });
  await before.client.sync();
  before.client.close();
  const { client, net, storage } = await deviceOf(users.rm1Jakarta, {
    storage: before.storage,
    tables: ["customers", "key_persons", "pipelines"],
  });
  // A row the device holds that the server no longer shows it.
  const gone = crypto.randomUUID();
  await storage.transaction("readwrite", (tx) =>
    tx.put("rows", {
      key: `customers/${gone}`,
      table: "customers",
      id: gone,
      version: 1,
      deleted: false,
      row: { id: gone, version: 1, name: "PT Hilang" },
      gen: 0,
    }));
  let newId = "";
  net.before = async (route, body) => {
    if (route !== "/pull" || body?.cursor !== null) return;
    net.before = undefined;
    await client.update("customers", id, { phone: "edited during the resync" });
    newId = await client.insert("customers", { name: "PT Baru Saat Resync" });
  };
  await client.sync();
  const pulls = net.sent.filter((s) => s.route === "/pull");
  assert.ok(pulls.some((p) => p.answer?.resync_required === true), "the server asked for a resync");
  assert.ok(pulls.some((p) => p.body?.cursor === null), "and the client pulled from null");
  assert.equal(await client.get("customers", gone), undefined, "rows the full pull did not bring are gone");
  assert.equal((await client.get("customers", id))?.phone, "edited during the resync");
  assert.equal((await client.get("customers", newId))?.name, "PT Baru Saat Resync");
  assert.equal(client.state.pending, 2, "the outbox kept both edits");
  await client.sync();
  assert.equal((await serverRow("customers", id))?.phone, "edited during the resync");
  assert.equal((await serverRow("customers", newId))?.name, "PT Baru Saat Resync");
});

test("a rejected create drops its op, takes the ops that depend on it along, and names code and field", async () => {
  const { client, net } = await deviceOf(users.rm1Jakarta);
  await client.sync();
  const customer = await client.insert("customers", { name: "PT Salah", assigned_rm_id: users.rm2Jakarta.id });
  const kp = await client.insert("key_persons", { customer_id: customer, name: "Ibu Ikut" });
  await client.update("key_persons", kp, { position: "CFO" });
  const act = await client.insert("activities", { customer_id: customer, activity_type: "call", subject: "Ikut" });
  const fine = await client.insert("customers", { name: "PT Benar" });
  const [seed] = await client.list("customers");
  await client.update("customers", seed.id, { email: "not an email" });
  await client.sync();
  const byId = (a: unknown[], b: unknown[]) => String(a[1]).localeCompare(String(b[1]));
  assert.deepEqual(
    client.state.rejected.map((r) => [r.table, r.id, r.code, r.field ?? null]).sort(byId),
    [
      ["customers", customer, "forbidden", "assigned_rm_id"],
      ["key_persons", kp, "parent_rejected", null],
      ["activities", act, "parent_rejected", null],
      ["customers", seed.id, "invalid", "email"],
    ].sort(byId),
  );
  // The field rule's refusal names the column in its message too.
  assert.match(client.state.rejected.find((r) => r.id === customer)?.message ?? "", /customers\.assigned_rm_id/);
  assert.equal(await client.get("customers", customer), undefined);
  assert.equal(await client.get("key_persons", kp), undefined);
  assert.equal((await client.get("customers", seed.id))?.email, seed.email, "the server's row shows again");
  assert.equal(await serverRow("key_persons", kp), undefined);
  assert.equal((await serverRow("customers", fine))?.name, "PT Benar");
  assert.equal(client.state.pending, 0);
  assert.ok(!net.pushedOps().some((o) => o.id === kp && o.op === "update"), "the edit of the dependant was never sent");
});

test("an op the server refuses as a request is held aside, the rest go, and the app retries or discards it", async () => {
  const { client } = await deviceOf(users.rm1Jakarta);
  await client.sync();
  const a = await client.insert("customers", { name: "PT Satu" });
  const bad = await client.insert("customers", { name: "PT Dua", notes: "nul \u0000 inside" });
  const c = await client.insert("customers", { name: "PT Tiga" });
  await client.sync();
  assert.deepEqual(client.state.quarantined.map((q) => [q.id, q.code, q.field]), [[bad, "invalid_request", "notes"]]);
  assert.equal((await serverRow("customers", a))?.name, "PT Satu");
  assert.equal((await serverRow("customers", c))?.name, "PT Tiga");
  assert.equal(client.state.pending, 1);
  assert.equal((await client.get("customers", bad))?.name, "PT Dua", "still shown: the edit is not lost");
  await client.retry(client.state.quarantined[0].op_id);
  assert.deepEqual(client.state.quarantined, []);
  await client.sync();
  const again: OpIssue[] = client.state.quarantined;
  assert.equal(again.length, 1, "sent again, held aside again");
  await client.discard(again[0].op_id);
  assert.equal(client.state.pending, 0);
  assert.equal(await client.get("customers", bad), undefined);
  assert.equal(await serverRow("customers", bad), undefined);
});

test("a conflict on both devices: the second edit is kept out, both devices hold the conflict and the server's row", async () => {
  const rm = await deviceOf(users.rm1Jakarta);
  const customer = await rm.client.insert("customers", { name: "PT Konflik" });
  const pipeline = await rm.client.insert("pipelines", { customer_id: customer, title: "Deal", potential_value: 100 });
  await rm.client.sync();
  const bm = await deviceOf(users.bmJakarta);
  await bm.client.sync();
  await rm.client.update("pipelines", pipeline, { potential_value: 200 });
  await bm.client.update("pipelines", pipeline, { potential_value: 300 });
  await bm.client.sync();
  await rm.client.sync();
  await bm.client.sync();
  // Of this pipeline: a conflict of rm1's or the bm's left open by another test arrives too.
  const about = (device: typeof rm) => device.client.state.conflicts.filter((c) => c.row_id === pipeline);
  const [conflict] = about(rm);
  assert.ok(conflict, "the rm's device holds the conflict");
  assert.deepEqual([conflict.table, conflict.row_id, conflict.resolution], ["pipelines", pipeline, "manual_pending"]);
  assert.deepEqual(about(bm).map((c) => c.id), [conflict.id], "so does the bm's");
  assert.equal(Number((await rm.client.get("pipelines", pipeline))?.potential_value), 300, "the server's value shows");
  assert.equal(Number((await serverRow("pipelines", pipeline))?.potential_value), 300);
  assert.equal(rm.client.state.pending, 0);

  // The bm settles it, so that the other tests' first pulls as rm1 (which bring open conflicts) meet
  // the seed's state; both devices hear of the settlement.
  await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.bmJakarta.id, role: "authenticated" })
    }, true)`;
    await tx`select public.resolve_conflict(${conflict.id}::uuid, 'server')`;
  });
  await rm.client.sync();
  await bm.client.sync();
  for (const device of [rm, bm]) {
    assert.deepEqual(about(device).map((c) => c.resolution), ["manual_resolved"]);
  }
});

test("an edit queued behind an op whose answer was lost is based on the version that op made, so another user's later change still conflicts", async () => {
  const rm = await deviceOf(users.rm1Jakarta);
  const customer = await rm.client.insert("customers", { name: "PT Jawaban Hilang" });
  const pipeline = await rm.client.insert("pipelines", { customer_id: customer, title: "Deal", potential_value: 100 });
  await rm.client.sync();
  const bm = await deviceOf(users.bmJakarta);
  await rm.client.update("pipelines", pipeline, { potential_value: 200 });
  rm.net.loseAnswer = (route) => route === "/push";
  assert.equal((await rm.client.sync()).status, "offline", "the server applied it; the answer was lost");
  rm.net.loseAnswer = undefined;
  await rm.client.update("pipelines", pipeline, { potential_value: 250 });
  await bm.client.sync();
  await bm.client.update("pipelines", pipeline, { potential_value: 300 });
  await bm.client.sync();
  assert.equal((await serverRow("pipelines", pipeline))?.version, 3, "the bm wrote on the rm's version");

  assert.equal((await rm.client.sync()).status, "idle");
  const pushed = rm.net.pushedOps().at(-1)!;
  assert.deepEqual(
    [pushed.data, pushed.base_version],
    [{ potential_value: 250 }, 2],
    "based on the version it was made on",
  );
  assert.equal(
    Number((await serverRow("pipelines", pipeline))?.potential_value),
    300,
    "a manual column waits for a person",
  );
  const conflicts = await sql`select id::text, resolution::text from sync.conflicts where row_id = ${pipeline}`;
  assert.deepEqual(conflicts.map((c) => c.resolution), ["manual_pending"]);

  // Settled, so that the other tests' first pulls as rm1 (which bring open conflicts) meet the seed's state.
  await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.bmJakarta.id, role: "authenticated" })
    }, true)`;
    await tx`select public.resolve_conflict(${conflicts[0].id}::uuid, 'server')`;
  });
});
