// One transaction per request, as the caller: `authenticated` role and the verified claims, the way
// PostgREST does it, so RLS, field rules and triggers see the same user on every path.
import postgres from "npm:postgres@3.4.9";
import type { Config } from "./config.ts";

type Sql = ReturnType<typeof postgres>;
type Call = "sync_push" | "sync_pull";

// Errors that mean the connection, not the request, failed: a backend killed or restarted, a pooler
// or network reset, a connect that never completed.
const CONNECTION_ERRORS = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNREFUSED",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? "";
  const message = err instanceof Error ? err.message : "";
  return CONNECTION_ERRORS.has(code) || code.startsWith("08") || ["57P01", "57P02", "57P03"].includes(code) ||
    /ECONNRESET|EPIPE|ECONNREFUSED|CONNECT_TIMEOUT/.test(message);
}

export interface Database {
  /**
   * Runs public.<fn>(payload) as the user in one transaction, the payload given as JSON text (the
   * database parses it, numbers exactly); returns the JSON text of its answer.
   */
  callAsUser(fn: Call, claims: Record<string, unknown>, payloadJson: string): Promise<string>;
  health(): Promise<string>;
}

export function openDatabase(config: Config): Database {
  const open = (): Sql =>
    postgres(config.dbUrl, {
      // Transaction-mode poolers (Supavisor on port 6543) do not support prepared statements.
      prepare: false,
      max: config.dbPoolSize,
      idle_timeout: 30,
      connect_timeout: 10,
      onnotice: () => {},
      connection: { application_name: "sync-function" },
    });
  let sql = open();

  // When a connection fails under a request, the request runs again on a fresh pool: a pull only
  // reads, and a push is idempotent, so even one whose commit was lost with its connection comes
  // back as duplicates. The pool is replaced rather than trusted: connections killed together
  // (a failover, a restart) would otherwise fail one request each, or hang in a broken state.
  async function run<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const current = sql;
      try {
        return await work(current);
      } catch (err) {
        if (attempt >= 3 || !isConnectionError(err)) throw err;
        if (sql === current) {
          sql = open();
          current.end({ timeout: 1 }).catch(() => {});
        }
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  return {
    async callAsUser(fn, claims, payloadJson) {
      // A pull reads one snapshot, so a page never mixes states; a push stays READ COMMITTED so that
      // a copy of a racing request sees the other's committed outcome after waiting for it.
      const mode = fn === "sync_pull" ? "isolation level repeatable read read only" : "isolation level read committed";
      const [, [row]] = await run((db) =>
        // The two statements are sent together (postgres.js pipelines the queries of an array):
        // one round trip fewer, and the call still runs after the set-up, in the same transaction.
        db.begin(mode, (tx) => [
          tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
            JSON.stringify(claims)
          }, true)`,
          // text, then jsonb: a parameter the server describes as jsonb, postgres.js would encode
          // with JSON.stringify, sending the text as one JSON string.
          fn === "sync_push"
            ? tx`select public.sync_push(${payloadJson}::text::jsonb)::text as answer`
            : tx`select public.sync_pull(${payloadJson}::text::jsonb)::text as answer`,
        ])
      );
      return row.answer as string;
    },
    async health() {
      const [row] = await run((db) => db`select public.sync_health()::text as answer`);
      return row.answer as string;
    },
  };
}
