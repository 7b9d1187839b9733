// The function behind a transaction pooler (PgBouncer in transaction mode, as `npm test` runs it;
// Supavisor on 6543 on hosted Supabase): every request is one transaction, so nothing may rely on a
// session outliving it.
import assert from "node:assert/strict";
import postgres from "postgres";
import { loadConfig } from "../sync/config.ts";
import { call, insert, pull, push, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

const poolerUrl = Deno.env.get("POOLER_URL");

test("the function's database sessions are the pooler's: its backends serve a client named with the pooler's host", async () => {
  assert.ok(poolerUrl, "npm test names the pooler in POOLER_URL");
  const res = await call("/health");
  assert.equal(res.status, 200, res.text);
  // PgBouncer (application_name_add_host) appends the client's address to the name it passes on;
  // a function connected straight to the server has backends named "sync-function" alone.
  const rows = await sql`
    select application_name from pg_stat_activity
     where datname = current_database() and application_name like 'sync-function%'`;
  assert.ok(
    rows.some((r) => /^sync-function - 127\.0\.0\.1:\d+$/.test(r.application_name)),
    JSON.stringify(rows),
  );
});

test("the pooler is in transaction mode: session state one client leaves behind, the next client on that server connection sees", async () => {
  // What the function's `prepare: false` is for, shown on the pooler itself: two clients, one server connection.
  const a = postgres(poolerUrl!, { max: 1, prepare: false, onnotice: () => {} });
  const b = postgres(poolerUrl!, { max: 1, prepare: false, onnotice: () => {} });
  try {
    const [{ pid: pidA }] = await a`select pg_backend_pid() as pid`;
    await a.unsafe(`select set_config('sync.pooler_probe', 'left behind', false)`);
    const seen = await b`select pg_backend_pid() as pid, current_setting('sync.pooler_probe', true) as probe`;
    assert.equal(seen[0].pid, pidA, "the pool's one idle server connection serves the other client");
    assert.equal(seen[0].probe, "left behind", "session state leaks across clients");
  } finally {
    await a.end();
    await b.end();
  }
});

test("through the pooler, many pushes and pulls at once all succeed", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const other = await tokenFor(users.rm2Jakarta);
  const answers = await Promise.all(
    Array.from(
      { length: 24 },
      (_, i) =>
        i % 2
          ? push(i % 4 === 1 ? token : other, [insert("customers", uuid(), { name: `PT Pooled ${i}` })])
          : pull(i % 4 === 0 ? token : other, null, { tables: ["branches"], limit: 5 }),
    ),
  );
  for (const res of answers) assert.equal(res.status, 200, res.text);
  for (const res of answers.filter((_, i) => i % 2)) {
    assert.equal((res.body as { results: { status: string }[] }).results[0].status, "applied", res.text);
  }
});

Deno.test("SYNC_DB_URL, the pooler's address, wins over SUPABASE_DB_URL, which hosted Supabase sets itself; empty is unset", () => {
  const saved = { SYNC_DB_URL: Deno.env.get("SYNC_DB_URL"), SUPABASE_DB_URL: Deno.env.get("SUPABASE_DB_URL") };
  try {
    Deno.env.set("SUPABASE_DB_URL", "postgres://direct:5432/postgres");
    Deno.env.set("SYNC_DB_URL", "postgres://pooler:6543/postgres");
    assert.equal(loadConfig().dbUrl, "postgres://pooler:6543/postgres");
    Deno.env.set("SYNC_DB_URL", "");
    assert.equal(loadConfig().dbUrl, "postgres://direct:5432/postgres");
    Deno.env.delete("SYNC_DB_URL");
    assert.equal(loadConfig().dbUrl, "postgres://direct:5432/postgres");
    Deno.env.delete("SUPABASE_DB_URL");
    assert.throws(() => loadConfig(), /neither SYNC_DB_URL nor SUPABASE_DB_URL is set/);
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
});

test("the gateway hands consecutive requests to the function's two instances in turn", async () => {
  const served: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await call("/health");
    assert.equal(res.status, 200, res.text);
    served.push(res.headers.get("x-sync-instance") ?? "none");
  }
  assert.deepEqual(new Set(served), new Set(["0", "1"]), served.join(", "));
  for (let i = 1; i < served.length; i++) assert.notEqual(served[i], served[i - 1], served.join(", "));
});
