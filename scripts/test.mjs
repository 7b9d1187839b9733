#!/usr/bin/env node
// @ts-check
// `npm test`: the habits (formatting, lint, type checks), then a throwaway database built from the
// migrations and the seed, every pgTAP file under supabase/tests through pg_prove, then the Deno
// tests against the real function over HTTP, then the bench's smoke run.
// Exits non-zero on any failure; the last line is "N passed, M failed".
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { findPgBin, log, ROOT, server, startStandby, withDatabase } from "./lib/cluster.mjs";
import { embeddedPgBin, pgMajor, pgShareDir } from "./lib/pgbin.mjs";
import {
  applyTestMigrations,
  clientEnv,
  createDatabase,
  dropDatabase,
  localKeys,
  migrate,
  startApi,
} from "./lib/stack.mjs";
import { runHabits } from "./lib/habits.mjs";
import { onFreePorts } from "./lib/ports.mjs";
import { startPooler, throughPooler } from "./lib/pooler.mjs";
import { checkUpgrades } from "./lib/upgrade.mjs";

const argv = process.argv.slice(2);
const args = new Set(argv.filter((a) => a.startsWith("--")));
// Named test files narrow a run: `npm test -- --deno supabase/functions/tests/pull_cursor.test.ts`,
// `npm test -- --sql supabase/tests/security.test.sql`; `--habits` runs the habit checks alone.
const named = argv.filter((a) => !a.startsWith("--"));
// `--shuffle` or `--shuffle=SEED`: the Deno tests in an order of Deno's choosing (it prints the
// seed), to show that none depends on another having run before it.
const shuffle = argv.find((a) => a === "--shuffle" || a.startsWith("--shuffle="));
const only = {
  sql: args.has("--sql"),
  deno: args.has("--deno"),
  bench: args.has("--bench"),
  habits: args.has("--habits"),
  upgrade: args.has("--upgrade"),
};
const some = only.sql || only.deno || only.bench || only.habits || only.upgrade;
const runSql = !some || only.sql;
const runDeno = !some || only.deno;
const runBench = !some || only.bench;
const runHabitChecks = !some || only.habits;
const runUpgrade = !some || only.upgrade;

/** @typedef {{ passed: number, failed: number }} Counts */

/** @param {string} cmd */
function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

// pgTAP and pg_prove come from Debian's packages; install them when we can, else say what is missing.
// Only the pgTAP files need them: the Deno tests and the bench smoke run without.
function ensureTools() {
  if (!runSql) return;
  const missing = [];
  let pgtapPresent = true;
  const bin = process.env.DATABASE_URL ? null : findPgBin();
  if (bin) {
    pgtapPresent = existsSync(path.join(pgShareDir(bin), "extension", "pgtap.control"));
    // Debian's pgTAP goes to the system server's directory, which the npm package's server never reads.
    if (!pgtapPresent && bin === embeddedPgBin()) {
      console.error(
        `npm test runs the pgTAP files only on a server that has pgTAP; the PostgreSQL from npm (${bin}) has none. ` +
          "Install the system's PostgreSQL and pgTAP (Debian: apt-get install postgresql-15 postgresql-15-pgtap), " +
          "or run the other parts alone: npm test -- --deno, npm test -- --bench.",
      );
      process.exit(1);
    }
  }
  const major = bin ? pgMajor(bin) : 15;
  if (!pgtapPresent) missing.push(`postgresql-${major}-pgtap`);
  if (!has("pg_prove")) missing.push("libtap-parser-sourcehandler-pgtap-perl");
  if (!missing.length) return;
  if (process.getuid?.() === 0 && has("apt-get")) {
    log(`installing ${missing.join(" ")} from Debian's packages`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    execFileSync("apt-get", ["install", "-y", "-qq", ...missing], { stdio: "inherit", env });
    return;
  }
  console.error(`npm test needs: ${missing.join(", ")} (Debian: sudo apt-get install ${missing.join(" ")})`);
  process.exit(1);
}

/**
 * @param {string} dbUrl
 * @returns {Counts}
 */
function runPgProve(dbUrl) {
  const files = readdirSync(path.join(ROOT, "supabase/tests"))
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => path.join("supabase/tests", f))
    // The helpers file always runs first: the others call what it creates.
    .filter((f) =>
      !named.some((n) => n.endsWith(".sql")) || path.basename(f).startsWith("00000") ||
      named.some((n) => path.resolve(ROOT, n) === path.resolve(ROOT, f))
    );
  const u = new URL(dbUrl);
  const res = spawnSync(
    "pg_prove",
    [
      "--host",
      u.hostname,
      "--port",
      u.port || "5432",
      "--username",
      decodeURIComponent(u.username),
      "--dbname",
      u.pathname.slice(1),
      "--ext",
      ".sql",
      ...files,
    ],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password), PGOPTIONS: "--client-min-messages=warning" },
    },
  );
  process.stdout.write(res.stdout);
  process.stderr.write(res.stderr);
  const tests = Number(res.stdout.match(/Tests=(\d+)/)?.[1] ?? 0);
  // pg_prove reports failures as "Failed N/M subtests" per file; count them.
  let failed = 0;
  for (const m of res.stdout.matchAll(/Failed (\d+)\/(\d+) subtests/g)) failed += Number(m[1]);
  if (res.status !== 0 && failed === 0) failed = 1;
  return { passed: tests - failed, failed };
}

// The Deno tests that run a second time with every pull read by the streaming standby: the pull's
// completeness under concurrency and the pull oracle. The tests of commit order on the primary
// assert what the primary delivers while a transaction is open, which a standby holds back
// (replica.test.ts holds the standby's rule).
const REPLICA_PULL_TESTS = [
  "supabase/functions/tests/pull_oracle.test.ts",
  "supabase/functions/tests/pull_delta.test.ts",
  "supabase/functions/tests/pull_first.test.ts",
];

/**
 * @param {string} dbUrl
 * @param {string | null} replicaUrl the test database on the streaming standby, when there is one
 * @returns {Promise<Counts>}
 */
async function runDenoTests(dbUrl, replicaUrl) {
  const keys = await localKeys();
  // The function reaches the database through PgBouncer in transaction mode, as a deployment on
  // hosted Supabase's pooler (6543) does; the tests' own SQL goes straight to the server.
  const pooler = await onFreePorts(1, ([port]) => startPooler({ serverUrl: dbUrl, port }));
  // And one with no connection to spare, for the connection budget's tests: one server connection,
  // two clients, a short wait (supabase/functions/tests/connection_budget.test.ts).
  const tight = await onFreePorts(
    1,
    ([port]) => startPooler({ serverUrl: dbUrl, port, poolSize: 1, maxClientConn: 2, queryWaitTimeout: 1 }),
  );
  // The standby, behind its own PgBouncer in transaction mode, as a read replica's pooler would be.
  const standbyPooler = replicaUrl
    ? await onFreePorts(1, ([port]) => startPooler({ serverUrl: replicaUrl, port })).catch(async (err) => {
      await pooler.stop();
      await tight.stop();
      throw err;
    })
    : null;
  const stopPoolers = async () => {
    await pooler.stop();
    await tight.stop();
    await standbyPooler?.stop();
  };
  // Ports the system picks (scripts/lib/ports.mjs): fixed ones can be in the range it hands out for
  // outgoing connections, and taken by one of them. Two instances of the function behind the
  // gateway, which alternates between them, as hosted Supabase runs several: consecutive requests of
  // one device (a push, then its pull) meet different processes.
  /**
   * Two instances of the function behind a gateway of their own, on the primary through its pooler.
   * @param {Record<string, string>} env
   */
  const twoInstances = (env = {}) =>
    onFreePorts(3, ([apiPort, ...functionPorts]) =>
      startApi({
        dbUrl,
        keys,
        apiPort,
        functionPorts,
        quiet: true,
        env: { SYNC_LOG: "off", SYNC_DB_URL: throughPooler(dbUrl, pooler), ...env },
      }));
  const api = await twoInstances().catch(async (err) => {
    await stopPoolers();
    throw err;
  });
  // Instances of the function that pull from the standby (SYNC_READ_DB_URL): the replica tests call
  // them; every other test keeps the primary's read-after-write. Both URLs go through PgBouncer, as
  // the other instances' do: a pull's replay check and its snapshot are separate transactions, which
  // a transaction pooler may hand to different server connections of the same standby. Two of them,
  // so a push and the pull that carries its commit_lsn meet different processes.
  const replicaApi = replicaUrl && standbyPooler
    ? await twoInstances({ SYNC_READ_DB_URL: throughPooler(replicaUrl, standbyPooler) }).catch(async (err) => {
      await api.stop();
      await stopPoolers();
      throw err;
    })
    : null;
  try {
    // Asynchronously: the API gateway the tests call lives in this process's event loop.
    /**
     * @param {string[]} files
     * @param {Record<string, string>} extraEnv
     * @returns {Promise<Counts>}
     */
    const denoTest = async (files, extraEnv) => {
      /** @type {{ status: number | null, stdout: string }} */
      const res = await new Promise((resolve) => {
        const child = spawn(
          path.join(ROOT, "node_modules/.bin/deno"),
          [
            "test",
            "--allow-all",
            // Type errors are the deno check habit's verdict (scripts/lib/habits.mjs), counted once;
            // here one file's would keep every Deno test from running.
            "--no-check",
            ...(shuffle ? [shuffle] : []),
            ...files,
          ],
          {
            cwd: ROOT,
            stdio: ["ignore", "pipe", "inherit"],
            env: {
              ...process.env,
              ...clientEnv({ api, dbUrl, keys }),
              POOLER_URL: throughPooler(dbUrl, pooler),
              TIGHT_POOLER_URL: throughPooler(dbUrl, tight),
              ...(replicaApi && replicaUrl
                ? {
                  REPLICA_API_URL: replicaApi.apiUrl,
                  REPLICA_DB_URL: replicaUrl,
                  STANDBY_CTL: `node ${path.join(ROOT, "scripts/standby.mjs")}`,
                }
                : {}),
              // The simulation restarts the server during its run where the server is ours to restart.
              ...(process.env.DATABASE_URL
                ? {}
                : { SIM_PG_RESTART: `node ${path.join(ROOT, "scripts/pg-restart.mjs")}` }),
              NO_COLOR: "1",
              ...extraEnv,
            },
          },
        );
        let stdout = "";
        child.stdout.on("data", (d) => {
          stdout += d;
          process.stdout.write(d);
        });
        child.on("close", (status) => resolve({ status, stdout }));
      });
      const m = res.stdout.match(/(\d+) passed.*?\| (\d+) failed/);
      const passed = Number(m?.[1] ?? 0);
      let failed = Number(m?.[2] ?? 0);
      if (res.status !== 0 && failed === 0) failed = 1;
      return { passed, failed };
    };
    let counts = await denoTest(
      named.some((n) => n.endsWith(".ts"))
        ? named.filter((n) => n.endsWith(".ts"))
        : ["supabase/functions/tests/", "client/tests/", "docs/clients/flutter-drift/tests/"],
      {},
    );
    // The pull's completeness tests and the pull oracle again, every pull read by the standby
    // (supabase/functions/tests/_helpers.ts, PULLS_FROM_REPLICA): in a full run, or when named.
    const againstReplica = REPLICA_PULL_TESTS.filter((f) =>
      !named.some((n) => n.endsWith(".ts")) || named.some((n) => path.resolve(ROOT, n) === path.resolve(ROOT, f))
    );
    if (replicaApi && againstReplica.length) {
      console.log("\n# the pull tests again, pulls read by the streaming standby");
      counts = add(
        counts,
        await denoTest(againstReplica, {
          PULLS_FROM_REPLICA: "1",
          // The oracle's rows are named by its seed: the next seed, in the same database.
          ORACLE_SEED: String(Number(process.env.ORACLE_SEED ?? 1301) + 1),
        }),
      );
    }
    return counts;
  } finally {
    await api.stop();
    await replicaApi?.stop();
    await stopPoolers();
  }
}

/**
 * @param {Counts} a
 * @param {Counts} b
 */
const add = (a, b) => ({ passed: a.passed + b.passed, failed: a.failed + b.failed });

/**
 * Each release in supabase/releases.json, built, seeded and upgraded to HEAD (scripts/lib/upgrade.mjs).
 * @param {string} serverUrl
 * @returns {Promise<Counts>}
 */
async function runUpgradeChecks(serverUrl) {
  const checks = await checkUpgrades(serverUrl);
  for (const c of checks) {
    console.log(`${c.ok ? "ok" : "not ok"} - ${c.name}`);
    if (!c.ok && c.detail) console.log(c.detail.split("\n").map((l) => `    ${l}`).join("\n"));
  }
  return { passed: checks.filter((c) => c.ok).length, failed: checks.filter((c) => !c.ok).length };
}

// The bench's smoke mode (issue 5): a few hundred ops, a tiny pull, 5 devices x 2 rounds, no scale
// phase, in a database of its own that it drops. One test: the bench runs and its correctness checks
// pass (every push applied, pull counts equal to SQL counts, no errors, no deadlocks); never its speed.
async function runBenchSmoke() {
  const dbName = `supasync_bench_smoke_${Date.now().toString(36)}_${process.pid}`;
  const res = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts/bench.mjs"), "--smoke", "--db", dbName], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    // The bench bounds itself; this is the backstop (SIGTERM lets it stop its function and drop its database).
    const timer = setTimeout(() => child.kill("SIGTERM"), 5 * 60 * 1000);
    let stdout = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      process.stdout.write(d);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout });
    });
  });
  const ok = res.status === 0 && /bench smoke: \d+ checks passed, 0 failed/.test(res.stdout);
  console.log(`${ok ? "ok" : "not ok"} - bench smoke run (npm run bench -- --smoke)`);
  return ok ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 };
}

async function main() {
  /** @type {Counts} */
  let total = { passed: 0, failed: 0 };
  // The habits need no database: they come first.
  if (runHabitChecks) {
    try {
      total = runHabits();
    } catch (err) {
      console.error(err);
      total.failed += 1;
    }
  }
  if (runSql || runDeno || runBench || runUpgrade) total = await runSuites(total);
  console.log(`\n${total.passed} passed, ${total.failed} failed`);
  process.exit(total.failed ? 1 : 0);
}

/**
 * The suites that need a database: pgTAP, the Deno tests, the bench's smoke run, the upgrade check.
 * @param {Counts} total
 * @returns {Promise<Counts>}
 */
async function runSuites(total) {
  ensureTools();
  const srv = server();
  /** @type {import("./lib/cluster.mjs").Standby | null} */
  let standby = null;
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      standby?.stop();
      srv.stop();
      process.exit(130);
    });
  }
  const dbName = `supasync_test_${Date.now().toString(36)}_${process.pid}`;
  let dbUrl;
  // The Deno tests' pulls from a read replica run against a real streaming standby of the private
  // cluster (issue 18); SUPASYNC_STANDBY=off, or a server this run may not back up, leaves them out.
  if (runDeno && process.env.SUPASYNC_STANDBY !== "off") {
    const started = startStandby();
    standby = started.standby;
    if (!standby) log(`the read replica tests are skipped: no streaming standby (${started.reason})`);
  }
  try {
    // In databases of its own: before the others, so that a schema a release cannot reach shows first.
    if (runUpgrade) total = add(total, await runUpgradeChecks(srv.url));
    if (!(runSql || runDeno || runBench)) return total;
    dbUrl = await createDatabase(srv.url, dbName);
    await migrate(dbUrl, { seed: true });
    await applyTestMigrations(dbUrl);
    if (runSql) {
      const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
      await db`create extension if not exists pgtap with schema extensions`;
      // As on hosted Supabase, the tests call pgTAP while acting as the API roles.
      await db`grant execute on all functions in schema extensions to anon, authenticated, service_role`;
      await db.end();
      const r = runPgProve(dbUrl);
      total = { passed: total.passed + r.passed, failed: total.failed + r.failed };
    }
    if (runDeno && existsSync(path.join(ROOT, "supabase/functions/tests"))) {
      const r = await runDenoTests(dbUrl, standby ? withDatabase(standby.url, dbName) : null);
      total = { passed: total.passed + r.passed, failed: total.failed + r.failed };
    }
    // Whatever the suites above said: the smoke run is independent of them and says its own thing.
    if (runBench) {
      const r = await runBenchSmoke();
      total = { passed: total.passed + r.passed, failed: total.failed + r.failed };
    }
  } catch (err) {
    console.error(err);
    total.failed += 1;
  } finally {
    if (dbUrl && !process.env.KEEP_TEST_DB) await dropDatabase(srv.url, dbName).catch(() => {});
    standby?.stop();
    srv.stop();
  }
  return total;
}

await main();
