// Shared by the integration tests: they run against the real function over HTTP (started by
// `npm test` on a throwaway database built from the migrations and the seed).
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import * as jose from "jose";
import postgres from "postgres";

function need(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`${name} is not set; run the tests through npm test`);
  return v;
}

export const env = {
  apiUrl: need("API_URL"),
  dbUrl: need("DB_URL"),
  anonKey: need("ANON_KEY"),
  serviceRoleKey: need("SERVICE_ROLE_KEY"),
  jwtSecret: need("JWT_SECRET"),
  es256Jwk: JSON.parse(need("LOCAL_ES256_JWK")) as jose.JWK,
};
// PULLS_FROM_REPLICA=1 (npm test's second run of the pull tests): every request goes to the function
// instance that pulls from the streaming standby, and a pull is sent once the standby has replayed
// every commit made so far, so that the standby, not the primary, serves it.
export const pullsFromReplica = Deno.env.get("PULLS_FROM_REPLICA") === "1";
export const syncUrl = `${pullsFromReplica ? need("REPLICA_API_URL") : env.apiUrl}/functions/v1/sync`;

export interface User {
  id: string;
  email: string;
}
const seedUser = (n: string, email: string): User => ({ id: `00000000-0000-4000-8000-0000000000${n}`, email });
export const users = {
  admin: seedUser("01", "admin@crm.test"),
  bmJakarta: seedUser("11", "bm.jakarta@crm.test"),
  rm1Jakarta: seedUser("12", "rm1.jakarta@crm.test"),
  rm2Jakarta: seedUser("13", "rm2.jakarta@crm.test"),
  bmSurabaya: seedUser("21", "bm.surabaya@crm.test"),
  rm1Surabaya: seedUser("22", "rm1.surabaya@crm.test"),
  // Added by the test-only migration (supabase/tests/migrations): roles the CRM itself has not.
  regional: seedUser("31", "regional.java@crm.test"),
  auditor: seedUser("41", "auditor@crm.test"),
};
export const branches = {
  jakarta: "00000000-0000-4000-8000-0000000000b1",
  surabaya: "00000000-0000-4000-8000-0000000000b2",
};
export const seedCustomer = (n: number) => `00000000-0000-4000-8100-${String(n).padStart(12, "0")}`;
export const seedPipeline = (n: number) => `00000000-0000-4000-8300-${String(n).padStart(12, "0")}`;

/** An access token as Supabase Auth issues it, signed with the local stack's ES256 key (or HS256). */
export async function tokenFor(
  user: User,
  opts: {
    expiresIn?: number;
    claims?: Record<string, unknown>;
    alg?: "ES256" | "HS256";
    key?: CryptoKey | Uint8Array;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const alg = opts.alg ?? "ES256";
  const key = opts.key ??
    (alg === "ES256" ? await jose.importJWK(env.es256Jwk, "ES256") : new TextEncoder().encode(env.jwtSecret));
  return await new jose.SignJWT({
    aud: "authenticated",
    role: "authenticated",
    email: user.email,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    ...opts.claims,
  })
    .setProtectedHeader(alg === "ES256" ? { alg, kid: env.es256Jwk.kid, typ: "JWT" } : { alg, typ: "JWT" })
    .setSubject(user.id)
    .setIssuer(`${env.apiUrl}/auth/v1`)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expiresIn ?? 3600))
    .sign(key);
}

/** supabase-js as an app uses it, signed in as `user`. */
export function clientFor(token: string): SupabaseClient {
  return createClient(env.apiUrl, env.anonKey, {
    accessToken: () => Promise.resolve(token),
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

/**
 * The answers of docs/protocol.md as the tests read them. A route's body type lists what its
 * success carries and, optional, what an error answer carries: a test asserts the status first.
 */
export interface ErrorFields {
  error?: string;
  message?: string;
  details?: { path: (string | number)[]; message: string }[];
  supported?: number[];
}

/** A row as the server sends it: the server columns every syncable table has, then the table's own. */
export interface Row {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
  created_by: string | null;
  updated_by: string | null;
  deleted_at: string | null;
  [column: string]: unknown;
}

/** A conflict as the pull delivers it, a row of the table `conflicts` (docs/protocol.md, Pull). */
export interface ConflictRow {
  id: string;
  table_name: string;
  row_id: string;
  resolution: string;
  fields: string[];
  client_data: Record<string, unknown> | null;
  base_data: Record<string, unknown> | null;
  server_row: Record<string, unknown> | null;
  resolution_data: Record<string, unknown> | null;
  redacted: boolean;
  [column: string]: unknown;
}

/** The row of `table` with this id that a pull's changes upsert, if they do (the last, if several). */
export function upserted(changes: Change[], table: string, id: string): Row | undefined {
  const found = changes.findLast((c) => c.op === "upsert" && c.table === table && c.row.id === id);
  return found?.op === "upsert" ? found.row : undefined;
}

/** The conflict with this id that a pull's changes deliver, if they do (the last, if several). */
export function conflictIn(changes: Change[], id: string): ConflictRow | undefined {
  return upserted(changes, "conflicts", id) as ConflictRow | undefined;
}

export type OpStatus = "applied" | "duplicate" | "conflict" | "rejected" | "failed";

/** One op's outcome in a push answer. */
export interface OpResult {
  op_id: string;
  status: OpStatus;
  original_status?: OpStatus;
  code?: string;
  field?: string;
  message?: string;
  retryable?: boolean;
  row?: Row;
  conflict?: { id: string; resolution: string; [key: string]: unknown };
}

export interface PushBody extends ErrorFields {
  server_time: string;
  results: OpResult[];
}

/** One change of a pull page: a row (a conflict is a row of the table `conflicts`), a tombstone, an eviction. */
export type Change =
  | { table: string; op: "upsert"; row: Row }
  | { table: string; op: "delete"; id: string; version: number }
  | { table: string; op: "evict"; id: string };

export interface PullBody extends ErrorFields {
  changes: Change[];
  cursor: string | null;
  has_more: boolean;
  resync_required: boolean;
  server_time: string;
}

export interface HealthBody extends ErrorFields {
  status: string;
  server_time: string;
  protocols: number[];
  oldest_write_xact_seconds: number;
}

/** What each route answers; any other route answers an error. */
interface Routes {
  "/health": HealthBody;
  "/push": PushBody;
  "/pull": PullBody;
}
type BodyOf<R extends string> = R extends keyof Routes ? Routes[R] : ErrorFields;

export interface Answer<T = ErrorFields> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** A raw HTTP call to the function. The body is the answer's JSON (null when it is not JSON), typed by route. */
export async function call<R extends string, T = BodyOf<R>>(
  route: R,
  body?: unknown,
  opts: { token?: string | null; method?: string; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { "content-type": "application/json", apikey: env.anonKey, ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (pullsFromReplica && route === "/pull") await replicaCaughtUp();
  const res = await fetch(`${syncUrl}${route}`, {
    method: opts.method ?? (body === undefined && opts.rawBody === undefined ? "GET" : "POST"),
    headers,
    body: opts.rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  // Every page of such a run is the standby's: a pull the primary answered would prove nothing of it.
  if (
    pullsFromReplica && route === "/pull" && res.status === 200 && res.headers.get("x-sync-read-from") !== "replica"
  ) {
    throw new Error(`a pull of the replica run was read by the ${res.headers.get("x-sync-read-from")}`);
  }
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  return { status: res.status, body: parsed as T, text, headers: res.headers };
}

export const sql = postgres(env.dbUrl, { max: 4, onnotice: () => {} });
/** The test database on the streaming standby, when npm test started one (else null). */
export const replicaSql = Deno.env.get("REPLICA_DB_URL")
  ? postgres(Deno.env.get("REPLICA_DB_URL")!, { max: 2, onnotice: () => {} })
  : null;

/** Waits until the standby has replayed every commit the primary has made so far. */
export async function replicaCaughtUp(timeoutMs = 30_000): Promise<void> {
  if (!replicaSql) throw new Error("no standby; npm test starts one (REPLICA_DB_URL)");
  const [{ lsn }] = await sql`select pg_current_wal_flush_lsn()::text as lsn`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [{ done }] = await replicaSql`select pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as done`;
    if (done) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  const [at] =
    await replicaSql`select pg_last_wal_receive_lsn()::text as received, pg_last_wal_replay_lsn()::text as replayed,
                                        pg_get_wal_replay_pause_state() as pause`;
  throw new Error(`the standby did not replay ${lsn} within ${timeoutMs} ms: ${JSON.stringify(at)}`);
}
/**
 * Waits until the standby has seen every transaction end that was open on the primary's cluster now
 * (in any database: autovacuum's analyze, another test's transaction). Until then its snapshot's xmin
 * stays below that transaction, and by the standby snapshot rule every later commit waits for a
 * later cycle: a check that a device is complete after its cycle must wait for this first.
 */
export async function standbySettled(timeoutMs = 30_000): Promise<void> {
  if (!replicaSql) throw new Error("no standby; npm test starts one (REPLICA_DB_URL)");
  const [{ next }] = await sql`select pg_snapshot_xmax(pg_current_snapshot())::text as next`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [{ done }] = await replicaSql`select pg_snapshot_xmin(pg_current_snapshot()) >= ${next}::xid8 as done`;
    if (done) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  const open = await sql`select datname, backend_type, backend_xid::text as xid, left(query, 80) as query
                           from pg_stat_activity where backend_xid is not null`;
  throw new Error(
    `the standby still sees a transaction older than ${next} open after ${timeoutMs} ms: ${JSON.stringify([...open])}`,
  );
}
/** A transaction on `sql`, as sql.begin() hands it to its callback. */
export type Tx = postgres.TransactionSql;

export const uuid = () => crypto.randomUUID();

/** Deno's sanitizers would flag the shared database pool; every test here shares it on purpose. */
export function test(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

export interface Op {
  op_id: string;
  table: string;
  op: "insert" | "update" | "delete";
  id: string;
  base_version?: number | null;
  data?: Record<string, unknown>;
  base?: Record<string, unknown>;
}

export const insert = (table: string, id: string, data: Record<string, unknown>): Op => ({
  op_id: uuid(),
  table,
  op: "insert",
  id,
  data,
});
export const update = (table: string, id: string, base_version: number | null, data: Record<string, unknown>): Op => ({
  op_id: uuid(),
  table,
  op: "update",
  id,
  base_version,
  data,
});
export const remove = (table: string, id: string, base_version: number): Op => ({
  op_id: uuid(),
  table,
  op: "delete",
  id,
  base_version,
});

export async function push(token: string, ops: Op[], clientId = uuid()) {
  return await call("/push", { protocol: 2, client_id: clientId, ops }, { token });
}

export async function pull(token: string, cursor: string | null, extra: Record<string, unknown> = {}) {
  // The tests that pull through this hold no transaction open across a pull, so on a standby they
  // expect what a device gets once nothing older is open (the pull oracle waits at its own points).
  if (pullsFromReplica) await standbySettled();
  return await call("/pull", { protocol: 2, cursor, ...extra }, { token });
}

/** Pulls until has_more is false; returns every change and the final cursor. */
export async function pullAll(token: string, cursor: string | null, extra: Record<string, unknown> = {}) {
  const changes: Change[] = [];
  let pages = 0;
  for (;;) {
    const res = await pull(token, cursor, extra);
    if (res.status !== 200) throw new Error(`pull failed: ${res.status} ${res.text}`);
    changes.push(...res.body.changes);
    cursor = res.body.cursor;
    pages++;
    if (!res.body.has_more) return { changes, cursor: cursor as string, pages };
  }
}
