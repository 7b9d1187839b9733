// @ts-check
// Phase 4, statements per request: a second function instance, whose connections start after
// pg_stat_statements.track = all is set for the bench database, counts what a push, a pull page and
// an empty delta run inside the database. Skipped where pg_stat_statements is not loaded.
import { log } from "../lib/cluster.mjs";
import { onFreePorts } from "../lib/ports.mjs";
import { startApi } from "../lib/stack.mjs";
import { check } from "./checks.mjs";
import { preload } from "./db.mjs";
import { call } from "./http.mjs";
import { pgssReset, pgssRows, statementsPerRequest } from "./pgss.mjs";
import { quoteIdent, rnd, sleep } from "./util.mjs";
import { Stream, verifyPush } from "./workload.mjs";

/**
 * @param {import("./setup.mjs").Bench} b
 * @param {{ cursor: string, rm1Parents: string[] }} from the empty delta's last cursor, the push's parents
 */
export async function runStatements(b, { cursor, rm1Parents }) {
  const { P, sql, dbUrl, keys, U, tokens, dbid, clientId, results, live } = b;
  const dbName = b.opts.dbName;
  log("statements: a second function instance with pg_stat_statements.track = all");
  await sql.unsafe(`alter database ${quoteIdent(dbName)} set pg_stat_statements.track = 'all'`);
  // And the time of each function, so the database time of a request can be placed function by function.
  await sql.unsafe(`alter database ${quoteIdent(dbName)} set track_functions = 'all'`);
  const api2 = await onFreePorts(
    2,
    ([apiPort, functionPort]) => startApi({ dbUrl, keys, apiPort, functionPort, quiet: true }),
  );
  live.apis.push(api2);
  try {
    await call(api2.apiUrl, "/pull", tokens.rm1s, { protocol: 2, cursor: null, limit: 1 });
    // The probe is bench-only: an instance started without SYNC_BENCH_PROBE answers it as any route it does not have.
    const probe = await call(api2.apiUrl, "/probe", tokens.rm1s, { protocol: 2, cursor: null }, { retry: false });
    const unknown = await call(api2.apiUrl, "/no-such-route", tokens.rm1s, { protocol: 2, cursor: null }, {
      retry: false,
    });
    check(
      "probe: off unless SYNC_BENCH_PROBE=on (answered as an unknown route)",
      probe.status === 404 && probe.json?.error === "not_found" && unknown.status === 404 &&
        probe.text.replace("/probe", "") === unknown.text.replace("/no-such-route", ""),
      `${probe.status} ${probe.text.slice(0, 200)}`,
    );
    const statsStream = new Stream({ name: "stats", seed: 7, user: U.rm1j, parents: rm1Parents });
    await preload(sql, statsStream, Math.min(300, P.batch));
    // One push first, not counted: this instance's connection compiles the engine's PL/pgSQL and
    // fills its plan caches on its first push, which a server that has run for a while has done.
    const warm = statsStream.batch(P.batch);
    await call(api2.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: warm.ops }, {
      retry: false,
    });
    warm.commit();
    // Only in the full run: waiting for the backends' reports takes some 45 s. Each reading is
    // taken before pg_stat_statements is reset, so its own queries are not counted as the requests'.
    const timeFunctions = b.opts.mode === "full";
    let fn0 = await functionTimes(sql, timeFunctions);
    await pgssReset(sql, dbid);
    let statsBad = 0;
    /** @type {string[]} */
    const statsSamples = [];
    for (let i = 0; i < P.statsPushes; i++) {
      const batch = statsStream.batch(P.batch);
      const r = await call(api2.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: batch.ops }, {
        retry: false,
      });
      statsBad += verifyPush(r, batch, statsSamples);
      batch.commit();
    }
    const stPush = statementsPerRequest(await pgssRows(sql, dbid), P.statsPushes, P.statsPushes * P.batch);
    let fn1 = await functionTimes(sql, timeFunctions);
    const fnPush = functionsPerRequest(fn0, fn1, P.statsPushes);
    check("statements phase: every op applied", statsBad === 0, statsSamples.join("; "));

    fn0 = fn1;
    await pgssReset(sql, dbid);
    let c = null;
    for (let i = 0; i < P.statsPages; i++) {
      const r = await call(api2.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor: c, limit: P.page }, {
        retry: false,
      });
      c = r.json?.cursor ?? null;
    }
    const stPull = statementsPerRequest(await pgssRows(sql, dbid), P.statsPages);
    fn1 = await functionTimes(sql, timeFunctions);
    const fnPull = functionsPerRequest(fn0, fn1, P.statsPages);

    fn0 = fn1;
    await pgssReset(sql, dbid);
    for (let i = 0; i < P.statsEmpty; i++) {
      const r = await call(api2.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor, limit: P.page }, { retry: false });
      cursor = r.json?.cursor ?? cursor;
    }
    const stEmpty = statementsPerRequest(await pgssRows(sql, dbid), P.statsEmpty);
    const fnEmpty = functionsPerRequest(fn0, await functionTimes(sql, timeFunctions), P.statsEmpty);
    results.figures.statements = {
      push: stPush,
      pull_page: stPull,
      empty_delta: stEmpty,
      // Each function's own time (self) and with what it called (total), per request.
      functions: { push: fnPush, pull_page: fnPull, empty_delta: fnEmpty },
      push_ops_per_request: P.batch,
      pull_page_size: P.page,
    };
  } finally {
    await sql.unsafe(`alter database ${quoteIdent(dbName)} reset pg_stat_statements.track`);
    await sql.unsafe(`alter database ${quoteIdent(dbName)} reset track_functions`);
    await api2.stop();
    live.apis.splice(live.apis.indexOf(api2), 1);
  }
}

/**
 * The cumulative time of every tracked function, once the backends have reported: an idle backend
 * reports within PostgreSQL's idle interval of 10 s (a second was seen not to be enough: one
 * push's figures arrived in the next window). Only when `wanted` (the full run).
 * @param {import("postgres").Sql} sql
 * @param {boolean} wanted
 * @returns {Promise<Map<string, { name: string, calls: number, total: number, self: number }>>}
 */
async function functionTimes(sql, wanted) {
  if (!wanted) return new Map();
  await sleep(11_000);
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql`
    select funcid::text as id, schemaname || '.' || funcname as name, calls::float8 as calls,
           total_time::float8 as total, self_time::float8 as self
      from pg_stat_user_functions`;
  return new Map(rows.map((r) => [r.id, { name: r.name, calls: r.calls, total: r.total, self: r.self }]));
}

/**
 * The functions with the most time of their own between two readings, per request.
 * @param {Awaited<ReturnType<typeof functionTimes>>} before
 * @param {Awaited<ReturnType<typeof functionTimes>>} after
 * @param {number} requests
 */
function functionsPerRequest(before, after, requests) {
  return [...after.entries()]
    .map(([id, a]) => {
      const b = before.get(id) ?? { calls: 0, total: 0, self: 0 };
      return {
        function: a.name,
        calls: rnd((a.calls - b.calls) / requests, 1),
        self_ms: rnd((a.self - b.self) / requests, 2),
        total_ms: rnd((a.total - b.total) / requests, 2),
      };
    })
    .filter((f) => (f.calls ?? 0) > 0)
    .sort((x, y) => (y.self_ms ?? 0) - (x.self_ms ?? 0))
    .slice(0, 15);
}
