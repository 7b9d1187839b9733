#!/usr/bin/env node
// @ts-check
// `npm run load -- [--devices 20] [--seconds 30] [--seed 7]`: a bounded load test on loopback. N
// devices push and pull at once for a fixed time against the function on its own database; it
// must end with zero errors and zero lost ops, and reports the function's memory at start and end.
import { readFileSync } from "node:fs";
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

const srv = server();
let code = 1;
/** @type {{ start?: ReturnType<typeof memory>, end?: ReturnType<typeof memory> }} */
const memoryOf = {};
try {
  code = await runOwnStack({
    serverUrl: srv.url,
    dbName: "supasync_load",
    script: "supabase/functions/tests/load.ts",
    args: process.argv.slice(2),
    around: {
      before: (api) => (memoryOf.start = memory(api.functionPid)),
      after: (api) => (memoryOf.end = memory(api.functionPid)),
    },
  });
  console.log(JSON.stringify({ function_memory: memoryOf }));
} finally {
  srv.stop();
}
process.exit(code);
