#!/usr/bin/env node
// @ts-check
// `npm run load -- [--devices 20] [--seconds 30] [--seed 7]`: a bounded load test on loopback. N
// devices push and pull at once for a fixed time against the function on its own database, run
// twice: with one function instance, then with two behind the gateway (round-robin), both through
// PgBouncer in transaction mode, as on hosted Supabase. Each run must end with zero errors and zero
// lost ops; it reports each run's throughput, and the functions' memory at start and end.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { server } from "./lib/cluster.mjs";
import { runOwnStack } from "./lib/stack.mjs";

/**
 * The npm `deno` bin is a shim: the function's memory is that of the real binary, its child.
 * @param {number | undefined} shimPid
 */
function memory(shimPid) {
  const pids = [
    shimPid,
    ...readFileSync(`/proc/${shimPid}/task/${shimPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean),
  ];
  const real = pids.at(-1);
  const status = readFileSync(`/proc/${real}/status`, "utf8");
  /** @param {string} k */
  const kb = (k) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
  return { pid: Number(real), rss_mb: Math.round(kb("VmRSS") / 1024), peak_rss_mb: Math.round(kb("VmHWM") / 1024) };
}

/** @param {import("./lib/stack.mjs").Api} api */
const memoryOfAll = (api) => api.functionPids.map(memory);

const srv = server();
const dir = mkdtempSync(path.join(os.tmpdir(), "supasync-load-"));
let code = 0;
/** @type {Record<string, unknown>[]} */
const runs = [];
try {
  for (const instances of [1, 2]) {
    const reportFile = path.join(dir, `instances-${instances}.json`);
    /** @type {{ start?: ReturnType<typeof memory>[], end?: ReturnType<typeof memory>[] }} */
    const memoryOf = {};
    console.log(`load with ${instances} function instance(s) behind the gateway, through PgBouncer`);
    const status = await runOwnStack({
      serverUrl: srv.url,
      dbName: "supasync_load",
      script: "supabase/functions/tests/load.ts",
      args: process.argv.slice(2),
      env: { LOAD_REPORT_FILE: reportFile },
      instances,
      pooler: true,
      around: {
        before: (api) => (memoryOf.start = memoryOfAll(api)),
        after: (api) => (memoryOf.end = memoryOfAll(api)),
      },
    });
    code ||= status;
    /** @type {Record<string, unknown>} */
    let report = {};
    try {
      report = JSON.parse(readFileSync(reportFile, "utf8"));
    } catch { /* the run failed before it reported */ }
    runs.push({
      instances,
      ok: status === 0,
      requests_per_s: report.requests_per_s,
      ops_per_s: report.ops_per_s,
      p50_ms: report.p50_ms,
      p95_ms: report.p95_ms,
      errors: report.errors,
      lost: report.lost,
      function_memory: memoryOf,
    });
  }
  console.log(JSON.stringify({ load: runs }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
  srv.stop();
}
process.exit(code);
