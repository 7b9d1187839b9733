// @ts-check
// Setup: a fresh bench database (migrations and seed), pg_stat_statements where the server loads it,
// the seed users and their tokens, and the function on free loopback ports.
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { log } from "../lib/cluster.mjs";
import { onFreePorts } from "../lib/ports.mjs";
import { createDatabase, localKeys, migrate, signAccessToken, startApi } from "../lib/stack.mjs";
import { deadlocks, gitInfo, noiseSnapshot } from "./db.mjs";
import { call, http } from "./http.mjs";

/** @typedef {import("postgres").Sql} Sql */
/** @typedef {import("./workload.mjs").BenchUser} BenchUser */
/** @typedef {Awaited<ReturnType<typeof startApi>>} Api */
/** @typedef {Awaited<ReturnType<typeof localKeys>>} Keys */
/** @typedef {"rm1j" | "rm2j" | "bmj" | "rm1s" | "rm2s" | "bms"} SeedKey */

/**
 * What the run holds that shutdown must release, filled as it is acquired.
 * @typedef {object} Resources
 * @property {{ url: string, stop(): void }} srv the server (the private cluster or DATABASE_URL's)
 * @property {Api[]} apis the function instances still running
 * @property {Sql | null} sql
 * @property {string | null} dbUrl
 */

/**
 * What the phases share.
 * @typedef {object} Bench
 * @property {import("./options.mjs").Options} opts
 * @property {import("./options.mjs").Preset} P
 * @property {Record<string, any>} results the figures, written as JSON at the end
 * @property {Resources} live
 * @property {Sql} sql
 * @property {string} dbUrl
 * @property {number} dbid
 * @property {boolean} pgss whether pg_stat_statements is loaded
 * @property {number} deadlocksAtStart
 * @property {Keys} keys
 * @property {Api} api
 * @property {Record<SeedKey, BenchUser>} U
 * @property {Record<SeedKey, string>} tokens
 * @property {(user: BenchUser) => Promise<string[]>} customersOf up to 200 live customers the user may see
 * @property {string} clientId the client_id of the bench's own pushes
 */

/**
 * @param {import("./options.mjs").Options} opts
 * @param {Record<string, any>} results
 * @param {Resources} live
 * @returns {Promise<Bench>}
 */
export async function setup(opts, results, live) {
  const { mode, dbName } = opts;
  log(`bench (${mode}): database ${dbName}`);
  const dbUrl = await createDatabase(live.srv.url, dbName, { reset: true });
  live.dbUrl = dbUrl;
  await migrate(dbUrl, { seed: true });
  const sql = postgres(dbUrl, { max: 4, onnotice: () => {}, idle_timeout: 30, connect_timeout: 10 });
  live.sql = sql;
  results.git = gitInfo();
  results.postgres = (await sql`select version() as v`)[0].v;
  results.noise.start = await noiseSnapshot(sql);
  const [{ dbid }] = await sql`select oid::int as dbid from pg_database where datname = current_database()`;
  http.cancel = () =>
    sql`
    select pg_cancel_backend(pid) from pg_stat_activity
     where datname = current_database() and application_name = 'sync-function' and state = 'active'`;

  // pg_stat_statements: preloaded by the private cluster (scripts/lib/cluster.mjs) since it was added there.
  const [{ preload: preloadLibs }] = await sql`select current_setting('shared_preload_libraries') as preload`;
  const pgss = preloadLibs.split(",").map((/** @type {string} */ s) => s.trim()).includes("pg_stat_statements");
  if (pgss) {
    await sql`create extension if not exists pg_stat_statements with schema extensions`;
  } else {
    const where = process.env.DATABASE_URL
      ? "the server named by DATABASE_URL does not preload it"
      : "the private cluster in .local/pgdata was created before scripts/lib/cluster.mjs added shared_preload_libraries = 'pg_stat_statements'; add that line to .local/pgdata/postgresql.auto.conf and restart the cluster (or remove .local/pgdata to recreate it)";
    log(`pg_stat_statements is not loaded: ${where}. Statement counts are skipped.`);
  }
  results.pg_stat_statements = pgss;
  const deadlocksAtStart = await deadlocks(sql);

  /** @type {Record<string, BenchUser>} */
  const users = Object.fromEntries(
    (await sql`
      select u.email, u.id::text as id, p.role, p.branch_id::text as branch_id, b.name as "branchName"
        from auth.users u join public.profiles p on p.id = u.id left join public.branches b on b.id = p.branch_id
       where u.email like '%@crm.test'`).map((u) => [u.email, u]),
  );
  /** @type {Record<SeedKey, BenchUser>} */
  const U = {
    rm1j: users["rm1.jakarta@crm.test"],
    rm2j: users["rm2.jakarta@crm.test"],
    bmj: users["bm.jakarta@crm.test"],
    rm1s: users["rm1.surabaya@crm.test"],
    rm2s: users["rm2.surabaya@crm.test"],
    bms: users["bm.surabaya@crm.test"],
  };
  for (const [k, v] of Object.entries(U)) if (!v) throw new Error(`seed user ${k} is missing`);
  /** @param {BenchUser} user */
  const customersOf = async (user) =>
    (await sql`
      select id::text from public.customers
       where deleted_at is null and (${
      user.role === "bm"
    } and branch_id = ${user.branch_id}::uuid or assigned_rm_id = ${user.id}::uuid)
       order by id limit 200`).map((r) => /** @type {string} */ (r.id));

  const keys = await localKeys();
  const api = await onFreePorts(
    2,
    // The probe route, the empty delta pull's baseline, exists only in this instance.
    ([apiPort, functionPort]) =>
      startApi({ dbUrl, keys, apiPort, functionPort, quiet: true, env: { SYNC_BENCH_PROBE: "on" } }),
  );
  live.apis.push(api);
  const tokens = /** @type {Record<SeedKey, string>} */ ({});
  for (const [k, u] of /** @type {[SeedKey, BenchUser][]} */ (Object.entries(U))) {
    tokens[k] = await signAccessToken(keys, api.apiUrl, u, { expiresIn: 4 * 3600 });
  }
  // A first request warms the function's JWKS cache and connection pool.
  await call(api.apiUrl, "/pull", tokens.rm1s, { protocol: 2, cursor: null, limit: 1 });
  return {
    opts,
    P: opts.P,
    results,
    live,
    sql,
    dbUrl,
    dbid,
    pgss,
    deadlocksAtStart,
    keys,
    api,
    U,
    tokens,
    customersOf,
    clientId: randomUUID(),
  };
}
