// The connection budget: when the database has no connection to give (the pooler's client limit
// reached, no pooled server connection free in time, a role's connection limit), the function
// answers 503 `unavailable` with Retry-After, never a 500, and serves again once one is free.
// Against real limits: a PgBouncer of `npm test` with one server connection and two clients
// (TIGHT_POOLER_URL), and a login role with a connection limit of its own. A read replica out of
// reach, or no longer a standby, leaves pulls to the primary rather than failing them.
import assert from "node:assert/strict";
import postgres from "postgres";
import { isRefusedConnection } from "../sync/db.ts";
import { REQUEST_ERRORS } from "../sync/error_codes.ts";
import { env, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const tightPoolerUrl = Deno.env.get("TIGHT_POOLER_URL");

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Runs an instance of the function on `dbUrl`, with a pool of one connection, while `fn` runs. It is
 * ready when it answers a route that needs no database, so it holds no connection when `fn` starts.
 */
async function withFunction(dbUrl: string, fn: (url: string) => Promise<void>, extraEnv: Record<string, string> = {}) {
  const port = freePort();
  const inherited = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("SUPABASE_") && !k.startsWith("SYNC_")),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "supabase/functions/sync/index.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: {
      ...inherited,
      SUPABASE_DB_URL: dbUrl,
      SYNC_JWKS_URL: `${env.apiUrl}/auth/v1/.well-known/jwks.json`,
      SYNC_JWT_ISSUER: `${env.apiUrl}/auth/v1`,
      SYNC_DB_POOL_SIZE: "1",
      SYNC_RETRY_AFTER_SECONDS: "7",
      SYNC_FUNCTION_PORT: String(port),
      SYNC_LOG: "off",
      ...extraEnv,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/sync`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`${url}/nowhere`);
        await res.body?.cancel();
        if (res.status === 404) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`the function did not start on ${url}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await fn(url);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

async function pullAt(url: string) {
  const res = await fetch(`${url}/pull`, {
    method: "POST",
    headers: { authorization: `Bearer ${await tokenFor(users.rm1Jakarta)}`, "content-type": "application/json" },
    body: JSON.stringify({ protocol: 2, cursor: null, tables: ["branches"], limit: 1 }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get("retry-after"),
    readFrom: res.headers.get("x-sync-read-from"),
    body: await res.json(),
  };
}

function assertUnavailable(res: Awaited<ReturnType<typeof pullAt>>, message: RegExp) {
  assert.equal(res.status, 503, JSON.stringify(res.body));
  assert.equal(REQUEST_ERRORS.unavailable.status, 503);
  assert.equal(res.body.error, "unavailable");
  assert.match(res.body.message, message);
  assert.equal(res.retryAfter, "7", "Retry-After is the configured SYNC_RETRY_AFTER_SECONDS");
}

test("when the pooler refuses another client (max_client_conn), a pull is 503 unavailable with Retry-After, then served once a client leaves", async () => {
  assert.ok(tightPoolerUrl, "npm test names the tight pooler in TIGHT_POOLER_URL");
  await withFunction(tightPoolerUrl, async (url) => {
    // Its two client connections taken, by clients that hold no transaction (no server connection).
    const holders = [0, 1].map(() => postgres(tightPoolerUrl, { max: 1, prepare: false, onnotice: () => {} }));
    try {
      for (const h of holders) await h`select 1`;
      assertUnavailable(await pullAt(url), /no connection to give/);
      await holders.pop()!.end();
      const served = await pullAt(url);
      assert.equal(served.status, 200, JSON.stringify(served.body));
      assert.equal(served.retryAfter, null);
    } finally {
      for (const h of holders) await h.end();
    }
  });
});

test("when the pooler's one server connection stays taken past its wait (query_wait_timeout), a pull is 503 unavailable with Retry-After, then served once it is free", async () => {
  assert.ok(tightPoolerUrl);
  await withFunction(tightPoolerUrl, async (url) => {
    const holder = postgres(tightPoolerUrl, { max: 1, prepare: false, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    try {
      // A transaction kept open holds the pool's one server connection.
      let holding!: () => void;
      const held = new Promise<void>((r) => (holding = r));
      const transaction = holder.begin(async (tx) => {
        await tx`select 1`;
        holding();
        await released;
      });
      await held;
      assertUnavailable(await pullAt(url), /no connection to give/);
      release();
      await transaction;
      const served = await pullAt(url);
      assert.equal(served.status, 200, JSON.stringify(served.body));
    } finally {
      release();
      await holder.end();
    }
  });
});

test("when the function's database role is at its connection limit (53300), a pull is 503 unavailable with Retry-After, then served once a connection is free", async () => {
  const role = `sync_budget_${uuid().slice(0, 8)}`;
  const password = uuid();
  // A login role like the function's own: it acts as the API roles, with one connection to spend.
  await sql.unsafe(
    `create role ${role} login password '${password}' connection limit 1 in role authenticated, sync_engine`,
  );
  try {
    const roleUrl = new URL(env.dbUrl);
    roleUrl.username = role;
    roleUrl.password = password;
    await withFunction(roleUrl.toString(), async (url) => {
      const holder = postgres(roleUrl.toString(), { max: 1, onnotice: () => {} });
      try {
        await holder`select 1`;
        assertUnavailable(await pullAt(url), /no connection to give/);
        await holder.end();
        const served = await pullAt(url);
        assert.equal(served.status, 200, JSON.stringify(served.body));
      } finally {
        await holder.end();
      }
    });
  } finally {
    await sql.unsafe(`drop role ${role}`);
  }
});

test("Supavisor's refusals (SQLSTATE XX000, its own words) count as no connection to give, as PgBouncer's do", () => {
  const refusal = (message: string, code = "XX000") => Object.assign(new Error(message), { code });
  for (
    const message of [
      "(EMAXCONN) max client connections reached, limit: 200",
      "Unable to check out process from the pool due to timeout",
      "Too many clients already",
      "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size",
      "no more connections allowed (max_client_conn)",
      "query_wait_timeout",
    ]
  ) assert.equal(isRefusedConnection(refusal(message)), true, message);
  assert.equal(isRefusedConnection(refusal('too many connections for role "x"', "53300")), true);
  assert.equal(isRefusedConnection(refusal("division by zero", "22012")), false, "any other error is the request's");
  assert.equal(isRefusedConnection(refusal("internal error")), false, "an XX000 of another kind is not a refusal");
});

test("a read replica out of reach leaves pulls to the primary: served, not 503; health says so", async () => {
  const dead = `postgresql://postgres:postgres@127.0.0.1:${freePort()}/postgres?sslmode=disable`;
  await withFunction(env.dbUrl, async (url) => {
    const res = await pullAt(url);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.readFrom, "primary");
    const health = await fetch(`${url}/health`);
    const body = await health.json();
    assert.equal(health.status, 200, JSON.stringify(body));
    assert.deepEqual(body.replica, { replay_lsn: null, lag_bytes: null, replay_paused: null, reachable: false });
  }, { SYNC_READ_DB_URL: dead });
});

test("a read server that is no longer a standby (detached, promoted) leaves pulls to the primary the pushes go to", async () => {
  await withFunction(env.dbUrl, async (url) => {
    const res = await pullAt(url);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.readFrom, "primary");
  }, { SYNC_READ_DB_URL: env.dbUrl });
});

test("a replica that accepts connections and never answers costs one pull its short connect timeout, then is left alone while the primary serves", async () => {
  // A server that takes the connection and says nothing, as a hung replica or a dropped route does.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    await withFunction(env.dbUrl, async (url) => {
      const first = await pullAt(url);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.readFrom, "primary");
      const tried = held.length;
      assert.ok(tried >= 1, "the first pull tried the replica");
      const second = await pullAt(url);
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.equal(second.readFrom, "primary");
      assert.equal(held.length, tried, "the next pull did not try the replica again");
    }, { SYNC_READ_DB_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable` });
  } finally {
    listener.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
});
