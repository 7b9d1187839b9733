#!/usr/bin/env node
// `npm run soak -- --minutes N --seed S [--steps K]`: the multi-device simulation with faults, run
// long on its own database and function; prints the seed of any failing round for replay.
import { spawn } from "node:child_process";
import path from "node:path";
import { ROOT, server } from "./lib/cluster.mjs";
import { clientEnv, createDatabase, dropDatabase, localKeys, migrate, startApi } from "./lib/stack.mjs";

const srv = server();
let code = 1;
try {
  const dbUrl = await createDatabase(srv.url, "supasync_soak", { reset: true });
  await migrate(dbUrl, { seed: true });
  const keys = await localKeys();
  const api = await startApi({ dbUrl, keys, apiPort: 56100, functionPort: 56101, quiet: true, env: { SYNC_LOG: "off" } });
  try {
    code = await new Promise((resolve) => {
      const child = spawn(path.join(ROOT, "node_modules/.bin/deno"),
        ["run", "--allow-all", "supabase/functions/tests/soak.ts", ...process.argv.slice(2)],
        {
          cwd: ROOT,
          stdio: "inherit",
          env: {
            ...process.env,
            ...clientEnv({ api, dbUrl, keys }),
            ...(process.env.DATABASE_URL ? {} : { SIM_PG_RESTART: `node ${path.join(ROOT, "scripts/pg-restart.mjs")}` }),
          },
        });
      child.on("close", resolve);
    });
  } finally {
    await api.stop();
  }
  await dropDatabase(srv.url, "supasync_soak");
} finally {
  srv.stop();
}
process.exit(code);
