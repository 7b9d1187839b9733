// One transaction per request, as the caller: the verified claims, the way PostgREST sets them, so
// RLS, field rules and triggers see the same user on every path. A pull runs as `authenticated`
// through public.sync_pull, the RPC door; a push as `sync_engine` (the role the public API runs as,
// which the migration role is a member of) through sync.apply_push, the entry behind
// public.sync_push, which also takes what only the function can state: where it found numbers the
// database cannot hold.
import postgres from "postgres";
import type { Config } from "./config.ts";
import { HttpError } from "./errors.ts";
import type { Path } from "./numbers.ts";

type Sql = ReturnType<typeof postgres>;

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

// Errors that mean the database had no connection to give: the server's or a role's connection limit
// (too_many_connections), or a pooler's (PgBouncer's and Supavisor's refusals: client limit reached,
// no server connection free within its wait). Every connection the pool holds is still good: only a
// new one was refused.
function isRefusedConnection(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? "";
  const message = err instanceof Error ? err.message : "";
  return code === "53300" ||
    /no more connections allowed|max_client_conn|max_db_connections|max_user_connections|query_wait_timeout|too many connections/i
      .test(message);
}

/** A push's answer, with its results counted by status for the log line. */
export interface PushAnswer {
  /** The JSON text of public.sync_push's answer, as clients receive it. */
  answer: string;
  statuses: Record<string, number>;
}

export interface Database {
  /**
   * Runs the push as the user in one transaction, the payload given as JSON text (the database
   * parses it, numbers exactly), with the paths of the numbers in it the database cannot hold.
   */
  push(claims: Record<string, unknown>, payloadJson: string, unstorable: Path[]): Promise<PushAnswer>;
  /** Runs public.sync_pull(payload) as the user in one snapshot; returns the JSON text of the page. */
  pull(claims: Record<string, unknown>, payloadJson: string): Promise<string>;
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
  // (a failover, a restart) would otherwise fail one request each, or hang in a broken state. A
  // refused connection leaves the pool as it is (its connections are good) and is tried again after
  // a pause. When the attempts are spent, the database had no connection to give: `unavailable`,
  // which the client retries later, rather than a failure of the server.
  async function run<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const current = sql;
      try {
        return await work(current);
      } catch (err) {
        const refused = isRefusedConnection(err);
        if (!refused && !isConnectionError(err)) throw err;
        if (attempt >= 3) {
          throw new HttpError(
            "unavailable",
            refused
              ? "the database has no connection to give now; retry after the Retry-After seconds"
              : "the database cannot be reached now; retry after the Retry-After seconds",
          );
        }
        if (!refused && sql === current) {
          sql = open();
          current.end({ timeout: 1 }).catch(() => {});
        }
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  }

  // One transaction as the caller. The set-up and the call are sent together (postgres.js
  // pipelines the queries of an array): one round trip fewer, and the call still runs after the
  // set-up, in the same transaction. The payload goes as text, then jsonb: a parameter the server
  // describes as jsonb, postgres.js would encode with JSON.stringify, sending the text as one JSON
  // string.
  async function asUser(
    mode: string,
    role: "authenticated" | "sync_engine",
    claims: Record<string, unknown>,
    call: (tx: postgres.TransactionSql) => postgres.PendingQuery<postgres.Row[]>,
  ): Promise<postgres.RowList<postgres.Row[]>> {
    const [, rows] = await run((db) =>
      db.begin(mode, (tx) => [
        tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`,
        call(tx),
      ])
    );
    return rows;
  }

  return {
    async push(claims, payloadJson, unstorable) {
      // READ COMMITTED, so that a copy of a racing push sees the other's committed outcome after
      // waiting for it. The statuses are counted from the answer's structure while the database
      // holds it: the function never parses the answer, and its text (jsonb's) says nothing
      // reliable about where a status is.
      const [row] = await asUser(
        "isolation level read committed",
        "sync_engine",
        claims,
        (tx) =>
          tx`select a::text as answer,
                    (select coalesce(jsonb_object_agg(c.status, c.n), '{}')::text
                       from (select r ->> 'status' as status, count(*) as n
                               from jsonb_array_elements(a -> 'results') r group by 1) c) as statuses
               from sync.apply_push(${payloadJson}::text::jsonb, ${JSON.stringify(unstorable)}::text::jsonb) a`,
      );
      return { answer: row.answer as string, statuses: JSON.parse(row.statuses as string) };
    },
    async pull(claims, payloadJson) {
      // One snapshot, so a page never mixes states.
      const [row] = await asUser(
        "isolation level repeatable read read only",
        "authenticated",
        claims,
        (tx) => tx`select public.sync_pull(${payloadJson}::text::jsonb)::text as answer`,
      );
      return row.answer as string;
    },
    async health() {
      const [row] = await run((db) => db`select public.sync_health()::text as answer`);
      return row.answer as string;
    },
  };
}
