// Supabase Edge Function `sync`: GET /sync/health, POST /sync/push, POST /sync/pull (docs/protocol.md).
import { loadConfig } from "./config.ts";
import { connect } from "./db.ts";
import { makeHandler } from "./handler.ts";

const config = loadConfig();
const handler = makeHandler(config, connect(config));

// Locally (npm start, npm test) the stack picks the port; on Supabase the runtime does.
const port = Deno.env.get("SYNC_FUNCTION_PORT");
Deno.serve(port ? { port: Number(port), hostname: "127.0.0.1", onListen: () => {} } : {}, handler);
