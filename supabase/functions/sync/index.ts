// Supabase Edge Function `sync`: GET /sync/health, POST /sync/push, POST /sync/pull (docs/protocol.md).
import { loadConfig } from "./config.ts";
import { openDatabase } from "./db.ts";
import { makeHandler } from "./handler.ts";

const config = loadConfig();
const handler = makeHandler(config, openDatabase(config));

// A database connection killed under a query (failover, pg_terminate_backend, a pooler restart) can
// make postgres.js throw from a socket callback under Deno's Node compatibility, outside any request.
// The request it served has already failed (500, rolled back); the process must live on for the next.
globalThis.addEventListener("error", (event) => {
  event.preventDefault();
  console.error(
    JSON.stringify({
      ts: new Date().toISOString(),
      fn: "sync",
      level: "error",
      uncaught: String(event.error ?? event.message),
    }),
  );
});
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.error(
    JSON.stringify({ ts: new Date().toISOString(), fn: "sync", level: "error", unhandled: String(event.reason) }),
  );
});

// Locally (npm start, npm test) the stack picks the port; on Supabase the runtime does.
const port = Deno.env.get("SYNC_FUNCTION_PORT");
Deno.serve(port ? { port: Number(port), hostname: "127.0.0.1", onListen: () => {} } : {}, handler);
