// Pulls from a read replica (issue 18), against the real streaming standby npm test starts: a second
// instance of the function with SYNC_READ_DB_URL pulls from it and pushes to the primary.
import assert from "node:assert/strict";
import postgres from "postgres";
import { isRecoveryConflict } from "../sync/db.ts";
import { REQUEST_ERRORS } from "../sync/error_codes.ts";
import {
  type Answer,
  env,
  type HealthBody,
  insert,
  type PullBody,
  type PushBody,
  replicaCaughtUp,
  replicaSql,
  sql,
  users,
  uuid,
} from "./_helpers.ts";
import { about, openTransaction, rm1 } from "./_pull.ts";

const replicaApi = Deno.env.get("REPLICA_API_URL");
const standbyCtl = Deno.env.get("STANDBY_CTL");

/** A test that needs the standby: npm test says why there is none when it does not start one. */
function replicaTest(name: string, fn: () => Promise<void>) {
  Deno.test({ name, fn, ignore: !replicaApi || !replicaSql, sanitizeOps: false, sanitizeResources: false });
}

/** A request to the function instance that pulls from the standby. */
async function viaReplica<T>(
  route: string,
  body?: unknown,
  token?: string,
): Promise<Answer<T> & { from: string | null }> {
  const res = await fetch(`${replicaApi}/functions/v1/sync${route}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      "content-type": "application/json",
      apikey: env.anonKey,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (text ? JSON.parse(text) : null) as T,
    text,
    headers: res.headers,
    from: res.headers.get("x-sync-read-from"),
  };
}

const pullFrom = (token: string, cursor: string | null, extra: Record<string, unknown> = {}) =>
  viaReplica<PullBody>("/pull", { protocol: 2, cursor, limit: 2000, ...extra }, token);

/** Pulls every page of a cycle through the replica instance; the servers that read the pages. */
async function pullCycle(token: string, cursor: string | null, extra: Record<string, unknown> = {}) {
  const changes: PullBody["changes"] = [];
  const from = new Set<string>();
  for (let c = cursor;;) {
    const page = await pullFrom(token, c, extra);
    assert.equal(page.status, 200, page.text);
    changes.push(...page.body.changes);
    from.add(page.from ?? "?");
    c = page.body.cursor;
    if (!page.body.has_more) return { changes, cursor: c!, from: [...from] };
  }
}

const pushVia = (token: string, ops: unknown[]) =>
  viaReplica<PushBody & { commit_lsn?: string }>("/push", { protocol: 2, client_id: uuid(), ops }, token);

/** Replay paused on the standby for the length of fn, resumed whatever happens. */
async function withReplayPaused<T>(fn: () => Promise<T>): Promise<T> {
  await replicaSql!`select pg_wal_replay_pause()`;
  try {
    // Paused means paused: what the primary commits from now on stays off the standby.
    for (let i = 0; i < 200; i++) {
      const [{ state }] = await replicaSql!`select pg_get_wal_replay_pause_state() as state`;
      if (state === "paused") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return await fn();
  } finally {
    await replicaSql!`select pg_wal_replay_resume()`;
  }
}

replicaTest(
  "a pull through an instance with SYNC_READ_DB_URL is read by the standby and delivers what the primary committed",
  async () => {
    const token = await rm1();
    const id = uuid();
    const pushed = await pushVia(token, [insert("customers", id, { name: "PT Replica Read" })]);
    assert.equal(pushed.body.results[0].status, "applied", pushed.text);
    await replicaCaughtUp();
    const cycle = await pullCycle(token, null);
    assert.deepEqual(cycle.from, ["replica"]);
    assert.equal(about(cycle.changes, id).length, 1, "the pushed row is in the standby's first pull");
  },
);

replicaTest(
  "standby snapshot rule: a transaction open on the primary holds back every later commit on the standby, and all of them arrive once it ends",
  async () => {
    const token = await rm1();
    const { cursor: c0 } = await pullCycle(token, null);
    const a = uuid();
    const b = uuid();
    const t1 = openTransaction(users.rm1Jakarta);
    try {
      await t1.run((tx) => tx`insert into public.customers (id, name) values (${a}, 'PT Standby Slow')`);
      const pushed = await pushVia(token, [insert("customers", b, { name: "PT Standby Fast" })]);
      assert.equal(pushed.body.results[0].status, "applied");
      await replicaCaughtUp();
      // The standby's snapshot lists no transaction in progress: xmin stops at T1's xid, and B,
      // committed after it, waits with it rather than risk passing T1 by.
      const held = await pullCycle(token, c0);
      assert.deepEqual(held.from, ["replica"]);
      assert.equal(about(held.changes, a).length, 0, "A is not committed");
      assert.equal(about(held.changes, b).length, 0, "B waits for T1: its xid is not below the standby's xmin");
      await t1.commit();
      await replicaCaughtUp();
      const after = await pullCycle(token, held.cursor);
      assert.deepEqual(after.from, ["replica"]);
      assert.deepEqual(about(after.changes, a).map((c) => c.op), ["upsert"], "A, committed last, is delivered");
      assert.deepEqual(about(after.changes, b).map((c) => c.op), ["upsert"], "B is delivered with it");
    } finally {
      await t1.close();
    }
  },
);

replicaTest(
  "read-your-writes: with replay paused, a pull carrying the push's commit_lsn is read by the primary and holds the push; without it the standby serves its older state",
  async () => {
    const token = await rm1();
    const { cursor: c0 } = await pullCycle(token, null);
    const id = uuid();
    await withReplayPaused(async () => {
      const pushed = await pushVia(token, [insert("customers", id, { name: "PT Paused Replay" })]);
      assert.equal(pushed.body.results[0].status, "applied");
      assert.match(
        pushed.body.commit_lsn ?? "",
        /^[0-9A-F]+\/[0-9A-F]+$/,
        "the push says where the WAL stood after it",
      );
      const stale = await pullCycle(token, c0);
      assert.deepEqual(stale.from, ["replica"], "nothing asks for more than the standby has");
      assert.equal(about(stale.changes, id).length, 0, "the standby has not replayed the push");
      const own = await pullCycle(token, c0, { min_lsn: pushed.body.commit_lsn });
      assert.deepEqual(own.from, ["primary"], "the standby has not replayed commit_lsn");
      assert.deepEqual(about(own.changes, id).map((c) => c.op), ["upsert"], "the device sees its own push");
      const health = await viaReplica<HealthBody & { replica?: Record<string, unknown> }>("/health");
      assert.equal(health.body.replica?.replay_paused, true, health.text);
      assert.ok(Number(health.body.replica?.lag_bytes) > 0, `health reports the lag: ${health.text}`);
      // A cursor the primary issued asks for its state: a standby behind it must not answer from an older one.
      const next = await pullCycle(token, own.cursor);
      assert.deepEqual(next.from, ["primary"], "the standby has not replayed the cursor's position");
    });
    await replicaCaughtUp();
    const caughtUp = await pullCycle(token, c0);
    assert.deepEqual(caughtUp.from, ["replica"]);
    assert.deepEqual(about(caughtUp.changes, id).map((c) => c.op), ["upsert"]);
    const health = await viaReplica<HealthBody & { replica?: Record<string, unknown> }>("/health");
    assert.equal(health.body.replica?.replay_paused, false, health.text);
  },
);

/** public.sync_pull on the given server, as the user, with the replay position the function would state. */
async function pullSql(db: postgres.Sql, cursor: string | null, replayedLsn = "") {
  return await db.begin("isolation level repeatable read read only", async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated", aud: "authenticated" })
    }, true), set_config('sync.replayed_lsn', ${replayedLsn}, true)`;
    const [{ page }] = await tx`select public.sync_pull(${
      JSON.stringify({ protocol: 2, cursor, limit: 2000 })
    }::text::jsonb)::text as page`;
    return JSON.parse(page) as PullBody;
  });
}

replicaTest(
  "on a standby, a pull whose cursor is past what the standby had replayed before its snapshot is refused with replica_behind (SYRP1)",
  async () => {
    await replicaCaughtUp();
    const first = await pullSql(sql, null);
    await replicaCaughtUp();
    await assert.rejects(pullSql(replicaSql!, first.cursor, "0/1"), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, REQUEST_ERRORS.replica_behind.sqlstate);
      assert.equal(err.message, "the replica has not yet replayed what this pull asks for");
      return true;
    });
    const [{ lsn }] = await replicaSql!`select pg_last_wal_replay_lsn()::text as lsn`;
    const served = await pullSql(replicaSql!, first.cursor, lsn);
    assert.equal(served.resync_required, false);
  },
);

/** The same position in the shape cursors had before they carried a lineage and a WAL position (release 0.1.0's), signed by this server. */
async function inShapeBeforeLineage(cursor: string): Promise<string> {
  const [{ old }] = await sql`
    with body as (
      select regexp_replace(convert_from(sync.b64url_decode(split_part(${cursor}, '.', 1)), 'UTF8'), ',[^,]*,[^,]*\\)$', ')') as text
    )
    select sync.b64url(convert_to(b.text, 'UTF8')) || '.'
           || sync.b64url(extensions.hmac(convert_to(b.text, 'UTF8'), s.cursor_secret, 'sha256')) as old
      from body b, sync.settings s`;
  return old;
}

replicaTest(
  "a cursor issued before cursors named a WAL position (release 0.1.0's) is served by the primary without a resync, and the cursor it gets back by the standby",
  async () => {
    const token = await rm1();
    const { cursor: c0 } = await pullCycle(token, null);
    const old = await inShapeBeforeLineage(c0);
    assert.notEqual(old, c0);
    const id = uuid();
    const pushed = await pushVia(token, [insert("customers", id, { name: "PT Old Cursor" })]);
    assert.equal(pushed.body.results[0].status, "applied", pushed.text);
    await replicaCaughtUp();
    const resumed = await pullCycle(token, old);
    assert.deepEqual(resumed.from, ["primary"], "the standby cannot tell whether it holds what the cursor saw");
    assert.deepEqual(
      about(resumed.changes, id).map((c) => c.op),
      ["upsert"],
      "the delta since the cursor, no full pull",
    );
    await replicaCaughtUp();
    const next = await pullCycle(token, resumed.cursor);
    assert.deepEqual(next.from, ["replica"], "the cursor the primary handed back names its WAL position");
    assert.equal(about(next.changes, id).length, 0);
  },
);

replicaTest(
  "a standby that does not know the timeline a cursor names (not yet replayed a failover) refuses with replica_behind, and leaves the resync to the primary",
  async () => {
    await replicaCaughtUp();
    const first = await pullSql(sql, null);
    const [{ other }] = await sql`
      with p as (
        select (convert_from(sync.b64url_decode(split_part(${first.cursor}, '.', 1)), 'UTF8'))::sync.pull_position as p
      )
      select sync.sign_cursor(row((p).user_id, (p).schema_epoch, (p).tables_key, (p).scope_key, (p).since_snapshot,
               null, null, null, null, null, null, null, null, null,
               split_part((p).lineage, '/', 1) || '/' || (split_part((p).lineage, '/', 2)::int + 1), (p).wal_lsn)::sync.pull_position) as other
        from p`;
    await replicaCaughtUp();
    const [{ lsn }] = await replicaSql!`select pg_last_wal_replay_lsn()::text as lsn`;
    await assert.rejects(pullSql(replicaSql!, other, lsn), (err: { code?: string }) => {
      assert.equal(err.code, REQUEST_ERRORS.replica_behind.sqlstate);
      return true;
    });
    assert.equal((await pullSql(sql, other)).resync_required, true, "the primary, on another timeline, resyncs it");
  },
);

replicaTest(
  "failover: after a standby is promoted, a cursor the old primary issued, or the standby before its promotion, gets resync_required there",
  async () => {
    assert.ok(standbyCtl, "npm test names the standby control script");
    const port = freePort();
    const name = `pgdata-promote-${port}`;
    const ctl = async (...args: string[]) => {
      const [cmd, ...rest] = standbyCtl.split(" ");
      const out = await new Deno.Command(cmd, { args: [...rest, ...args], stdout: "piped", stderr: "piped" }).output();
      if (!out.success) throw new Error(`${standbyCtl} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
      return new TextDecoder().decode(out.stdout).trim();
    };
    const serverUrl = await ctl("start", String(port), name);
    const url = new URL(serverUrl);
    url.pathname = new URL(env.dbUrl).pathname;
    const promoted = postgres(url.toString(), { max: 1, onnotice: () => {} });
    try {
      const fromPrimary = await pullSql(sql, null);
      const [{ lsn }] = await sql`select pg_current_wal_flush_lsn()::text as lsn`;
      for (let i = 0; i < 1000; i++) {
        const [{ done }] = await promoted`select pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as done`;
        if (done) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const [{ replayed }] = await promoted`select pg_last_wal_replay_lsn()::text as replayed`;
      const fromStandby = await pullSql(promoted, null, replayed);
      assert.equal(fromStandby.resync_required, false);
      assert.equal(
        (await pullSql(promoted, fromPrimary.cursor, replayed)).resync_required,
        false,
        "same lineage before",
      );

      await ctl("promote", name);
      const [{ recovery }] = await promoted`select pg_is_in_recovery() as recovery`;
      assert.equal(recovery, false);
      for (const [who, cursor] of [["the old primary", fromPrimary.cursor], ["the standby", fromStandby.cursor]]) {
        const page = await pullSql(promoted, cursor);
        assert.equal(page.resync_required, true, `a cursor of ${who}: ${JSON.stringify(page)}`);
        assert.equal(page.cursor, null);
      }
      // Its own cursors it serves, and the old primary refuses them: another timeline.
      const own = await pullSql(promoted, null);
      assert.equal((await pullSql(promoted, own.cursor)).resync_required, false);
      assert.equal((await pullSql(sql, own.cursor)).resync_required, true);
    } finally {
      await promoted.end();
      await ctl("stop", name);
    }
  },
);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

replicaTest(
  "a pull the standby cancels to replay a conflicting change is a retryable busy (503), not a 500",
  async () => {
    const table = `replica_conflict_${uuid().replaceAll("-", "")}`;
    await sql.unsafe(`create table public.${table} (id int primary key)`);
    try {
      await sql.unsafe(`insert into public.${table} select generate_series(1, 100)`);
      await replicaCaughtUp();
      // A standby query that holds its snapshot over rows the primary then deletes and vacuums away:
      // replay waits max_standby_streaming_delay for it, then cancels it.
      const [{ delay }] = await replicaSql!`select current_setting('max_standby_streaming_delay') as delay`;
      const reading = replicaSql!.unsafe(`select count(*) from public.${table}, pg_sleep(10)`)
        .then(() => null, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      await sql.unsafe(`delete from public.${table}`);
      await sql.unsafe(`vacuum public.${table}`);
      const err = await reading;
      assert.ok(err, `the standby query was not cancelled (max_standby_streaming_delay ${delay})`);
      assert.equal(isRecoveryConflict(err), true, String(err));
      assert.equal(REQUEST_ERRORS.busy.status, 503);
      assert.equal(REQUEST_ERRORS.busy.retryable, true);
    } finally {
      await sql.unsafe(`drop table public.${table}`);
    }
  },
);
