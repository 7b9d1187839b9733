#!/usr/bin/env node
// @ts-check
// `npm run soak -- --minutes N --seed S [--steps K] [--only sim|oracle]`: the multi-device simulation
// with faults and the pull oracle, run long on its own database and function; prints the seed of any
// failing round for replay.
import path from "node:path";
import { ROOT, server } from "./lib/cluster.mjs";
import { runOwnStack } from "./lib/stack.mjs";

const srv = server();
let code = 1;
try {
  code = await runOwnStack({
    serverUrl: srv.url,
    dbName: "supasync_soak",
    script: "supabase/functions/tests/soak.ts",
    args: process.argv.slice(2),
    // The simulation restarts the server only where it is ours to restart.
    env: process.env.DATABASE_URL ? {} : { SIM_PG_RESTART: `node ${path.join(ROOT, "scripts/pg-restart.mjs")}` },
  });
} finally {
  srv.stop();
}
process.exit(code);
