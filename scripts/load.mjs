#!/usr/bin/env node
// `npm run load -- [--devices 20] [--seconds 30] [--seed 7]`: a bounded load test on loopback. N
// devices push and pull at once for a fixed time against the function on its own database; it
// must end with zero errors and zero lost ops, and reports the function's memory at start and end.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, server } from "./lib/cluster.mjs";
import { clientEnv, createDatabase, dropDatabase, localKeys, migrate, startApi } from "./lib/stack.mjs";

// The npm `deno` bin is a shim: the function's memory is that of the real binary, its child.
function memory(shimPid) {
  const pids = [shimPid, ...readFileSync(`/proc/${shimPid}/task/${shimPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean)];
  const real = pids.at(-1);
  const status = readFileSync(`/proc/${real}/status`, "utf8");
  const kb = (k) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
  return { pid: Number(real), rss_mb: Math.round(kb("VmRSS") / 1024), peak_rss_mb: Math.round(kb("VmHWM") / 1024) };
}

const srv = server();
let code = 1;
try {
  const dbUrl = await createDatabase(srv.url, "supasync_load", { reset: true });
  await migrate(dbUrl, { seed: true });
  const keys = await localKeys();
  const api = await startApi({ dbUrl, keys, apiPort: 56200, functionPort: 56201, quiet: true, env: { SYNC_LOG: "off" } });
  try {
    const before = memory(api.functionPid);
    code = await new Promise((resolve) => {
      const child = spawn(path.join(ROOT, "node_modules/.bin/deno"),
        ["run", "--allow-all", "supabase/functions/tests/load.ts", ...process.argv.slice(2)],
        { cwd: ROOT, stdio: "inherit", env: { ...process.env, ...clientEnv({ api, dbUrl, keys }) } });
      child.on("close", resolve);
    });
    const after = memory(api.functionPid);
    console.log(JSON.stringify({ function_memory: { start: before, end: after } }));
  } finally {
    await api.stop();
  }
  await dropDatabase(srv.url, "supasync_load");
} finally {
  srv.stop();
}
process.exit(code);
