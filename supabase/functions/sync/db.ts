// One transaction per request, as the caller: the verified claims, the way PostgREST sets them, so
// RLS, field rules and triggers see the same user on every path. A pull runs as `authenticated`
// through public.sync_pull, the RPC door; a push as `sync_engine` (the role the public API runs as,
// which the migration role is a member of) through sync.apply_push, the entry behind
// public.sync_push, which also takes what only the function can state: where it found numbers the
// database cannot hold.
import postgres from "postgres";
import type { Config } from "./config.ts";
import { REQUEST_ERRORS } from "./error_codes.ts";
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
export function isRefusedConnection(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? "";
  const message = err instanceof Error ? err.message : "";
  // Supavisor refuses with SQLSTATE XX000 and its own words: EMAXCONN "max client connections
  // reached", "Unable to check out process from the pool due to timeout", "Too many clients already"
  // (session mode), MaxClientsInSessionMode.
  return code === "53300" ||
    /no more connections allowed|max_client_conn|max_db_connections|max_user_connections|query_wait_timeout|too many connections|too many clients|max client connections|EMAXCONN|check out process from the pool|MaxClientsInSessionMode/i
      .test(message);
}

/** A pull's page (JSON text, as clients receive it) and the server that read it. */
export interface PullAnswer {
  answer: string;
  servedBy: "primary" | "replica";
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
  /**
   * Runs public.sync_pull(payload) as the user in one snapshot, on the read replica when there is one
   * and it has replayed minLsn and the cursor's position, else on the primary; returns the JSON text
   * of the page and which server read it.
   */
  pull(claims: Record<string, unknown>, payloadJson: string, minLsn?: string): Promise<PullAnswer>;
  health(): Promise<string>;
  /** `select 1` as a pull runs sync_pull: same server choice, transaction and set-up (the bench's probe). */
  probe(claims: Record<string, unknown>, minLsn?: string): Promise<string>;
}

// A hot standby cancels a query whose snapshot or locks stand in the way of the WAL it replays, with
// a serialization failure or a deadlock SQLSTATE and this message: the pull read nothing, and the
// same request can succeed a moment later.
export function isRecoveryConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === "40001" || e?.code === "40P01") && /conflict with recovery/.test(e.message ?? "");
}

export function openDatabase(config: Config): Database {
  const open = (url = config.dbUrl, connectTimeout = 10): Sql =>
    postgres(url, {
      // Transaction-mode poolers (Supavisor on port 6543) do not support prepared statements.
      prepare: false,
      max: config.dbPoolSize,
      idle_timeout: 30,
      connect_timeout: connectTimeout,
      onnotice: () => {},
      connection: { application_name: "sync-function" },
    });
  let sql = open();
  // Pulls run on the read replica when there is one; pushes, and pulls the replica cannot serve yet, on the primary.
  let readSql = config.readDbUrl ? open(config.readDbUrl, 3) : null;
  // Until when pulls leave the replica alone after it failed them: a replica that drops packets
  // would otherwise cost every pull its connect timeout before the primary served it.
  let replicaDownUntil = 0;
  const REPLICA_PAUSE_MS = 10_000;

  // When a connection fails under a request, the request runs again on a fresh pool: a pull only
  // reads, and a push is idempotent, so even one whose commit was lost with its connection comes
  // back as duplicates. The pool is replaced rather than trusted: connections killed together
  // (a failover, a restart) would otherwise fail one request each, or hang in a broken state. A
  // refused connection leaves the pool as it is (its connections are good) and is tried again after
  // a pause. When the attempts are spent, the database had no connection to give: `unavailable`,
  // which the client retries later, rather than a failure of the server.
  async function run<T>(work: (sql: Sql) => Promise<T>, replica = false): Promise<T> {
    // The replica gets one attempt: a pull it cannot serve goes to the primary at once (see pull).
    const attempts = replica && readSql ? 1 : 3;
    for (let attempt = 1;; attempt++) {
      const current = replica && readSql ? readSql : sql;
      try {
        return await work(current);
      } catch (err) {
        const refused = isRefusedConnection(err);
        if (!refused && !isConnectionError(err)) throw err;
        // A refused connection keeps the pool (of the replica's or the primary's) it was refused by;
        // a failed one is replaced, for the next request too when this one has no attempt left.
        if (!refused && replica && readSql === current) {
          readSql = open(config.readDbUrl ?? config.dbUrl, 3);
          current.end({ timeout: 1 }).catch(() => {});
        } else if (!refused && sql === current) {
          sql = open();
          current.end({ timeout: 1 }).catch(() => {});
        }
        if (attempt >= attempts) {
          throw new HttpError(
            "unavailable",
            refused
              ? "the database has no connection to give now; retry after the Retry-After seconds"
              : "the database cannot be reached now; retry after the Retry-After seconds",
          );
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
    replica?: { replayedLsn: string; replayedOn: string },
  ): Promise<postgres.RowList<postgres.Row[]>> {
    const [, rows] = await run(
      (db) =>
        db.begin(mode, (tx) => [
          tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${
            JSON.stringify(claims)
          }, true),
                    set_config('sync.replayed_lsn', ${replica?.replayedLsn ?? ""}, true),
                    set_config('sync.replayed_on', ${replica?.replayedOn ?? ""}, true)`,
          call(tx),
        ]),
      replica !== undefined,
    );
    return rows;
  }

  // Where a pull runs: the replica, with the position it had replayed before the pull's snapshot
  // (the pull's SQL compares its cursor's position with it, which only a position read before the
  // snapshot makes safe), or the primary when there is no replica or it has not reached minLsn.
  // The server's start time goes with the position: the pull checks it, so a position read before a
  // restart of the replica (or on another server behind the same address) is not trusted.
  async function replicaPosition(
    minLsn: string | undefined,
  ): Promise<{ replayedLsn: string; replayedOn: string } | undefined> {
    if (!readSql || Date.now() < replicaDownUntil) return undefined;
    let row;
    try {
      [row] = await run(
        (db) =>
          db`select pg_last_wal_replay_lsn()::text as replayed, pg_postmaster_start_time()::text as started,
                    pg_last_wal_replay_lsn() >= coalesce(${minLsn ?? null}::pg_lsn, '0/0') as caught_up`,
        true,
      );
    } catch (err) {
      // A replica out of reach leaves pulls to the primary rather than failing them.
      if (err instanceof HttpError && err.code === "unavailable") {
        replicaDownUntil = Date.now() + REPLICA_PAUSE_MS;
        return undefined;
      }
      throw err;
    }
    // Not a standby (null): detached or promoted, it no longer follows the primary the pushes go to.
    if (row.replayed === null) return undefined;
    return row.caught_up ? { replayedLsn: row.replayed as string, replayedOn: row.started as string } : undefined;
  }

  async function pullOn(
    claims: Record<string, unknown>,
    payloadJson: string,
    replica: { replayedLsn: string; replayedOn: string } | undefined,
  ): Promise<string> {
    // One snapshot, so a page never mixes states.
    const [row] = await asUser(
      "isolation level repeatable read read only",
      "authenticated",
      claims,
      (tx) => tx`select public.sync_pull(${payloadJson}::text::jsonb)::text as answer`,
      replica,
    );
    return row.answer as string;
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
      // Where the WAL stood once the commit returned: past the commit's own record, so a replica
      // that has replayed this far shows the push (read-your-writes). The flush position: a
      // synchronous commit is flushed before it returns, and a standby receives only flushed WAL, so
      // it can always reach this position (a written but unflushed one it may wait for).
      // The push has committed: a failure to read the position must not answer as if it had not. Its
      // answer then goes without commit_lsn, and the next pull may be read by a replica not yet showing
      // the push (it arrives with a later one).
      const lsn = await run((db) => db`select pg_current_wal_flush_lsn()::text as lsn`).then(
        ([r]) => r.lsn as string,
        () => null,
      );
      const answer = lsn === null
        ? row.answer as string
        : (row.answer as string).replace(/}$/, `, "commit_lsn": ${JSON.stringify(lsn)}}`);
      return { answer, statuses: JSON.parse(row.statuses as string) };
    },
    async pull(claims, payloadJson, minLsn) {
      const replica = await replicaPosition(minLsn);
      const primary = async (): Promise<PullAnswer> => {
        // busy here: a commit the cycle's window (a standby's snapshot) counts as visible is still
        // ending on the primary. It ends within moments; past a few tries the client retries.
        for (let attempt = 1;; attempt++) {
          try {
            return { answer: await pullOn(claims, payloadJson, undefined), servedBy: "primary" };
          } catch (err) {
            if ((err as { code?: string })?.code !== REQUEST_ERRORS.busy.sqlstate || attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 20 * attempt));
          }
        }
      };
      if (!replica) return await primary();
      try {
        return { answer: await pullOn(claims, payloadJson, replica), servedBy: "replica" };
      } catch (err) {
        // The replica has not replayed what the cursor was issued at: the primary has it.
        if ((err as { code?: string })?.code === REQUEST_ERRORS.replica_behind.sqlstate) return await primary();
        // The replica failed between its position and the pull (it may come back replaying from an
        // older point, so the position read is not retried there): the primary serves the pull.
        if (err instanceof HttpError && err.code === "unavailable") {
          replicaDownUntil = Date.now() + REPLICA_PAUSE_MS;
          return await primary();
        }
        if (isRecoveryConflict(err)) {
          throw new HttpError(
            "busy",
            "the read replica cancelled the pull to replay a conflicting change; retry",
            undefined,
            {
              retry_after: 1,
            },
          );
        }
        throw err;
      }
    },
    async probe(claims, minLsn) {
      const replica = await replicaPosition(minLsn);
      await asUser("isolation level repeatable read read only", "authenticated", claims, (tx) => tx`select 1`, replica);
      return '{"ok":true}';
    },
    async health() {
      const [row] = await run((db) =>
        db`select public.sync_health()::text as answer, pg_current_wal_lsn()::text as lsn`
      );
      if (!readSql) return row.answer as string;
      // How far the replica that serves pulls is behind: what the primary has written and it has not
      // replayed. A replica out of reach is reported, not an outage: pulls then go to the primary.
      const replica = await run(
        (db) =>
          db`select pg_last_wal_replay_lsn()::text as replay_lsn,
                    pg_wal_lsn_diff(${row.lsn as string}::pg_lsn, pg_last_wal_replay_lsn())::float8 as lag_bytes,
                    case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() <> 'not paused' else false end as paused`,
        true,
      ).then(([r]) => r, (err) => {
        if (err instanceof HttpError && err.code === "unavailable") return null;
        throw err;
      });
      return (row.answer as string).replace(
        /}$/,
        `, "replica": ${
          JSON.stringify(
            replica
              ? {
                replay_lsn: replica.replay_lsn,
                lag_bytes: replica.lag_bytes === null ? null : Math.max(0, Number(replica.lag_bytes)),
                replay_paused: replica.paused,
                reachable: true,
              }
              : { replay_lsn: null, lag_bytes: null, replay_paused: null, reachable: false },
          )
        }}`,
      );
    },
  };
}
