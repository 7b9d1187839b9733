// Shared by the pull tests (pull_*.test.ts): acting as a user in the database the way the function
// does, what a user may see now, transactions held open across pulls, and a device's replica.
import assert from "node:assert/strict";
import { insert, push, sql, tokenFor, type Tx, type User, users, uuid } from "./_helpers.ts";

/** A row as a pull answer carries it: every column the caller may read. */
export interface Row {
  id: string;
  version: number;
  [column: string]: unknown;
}

/** A change as a pull answer carries it. */
export type Change =
  | { table: string; op: "upsert"; row: Row }
  | { table: string; op: "delete"; id: string; version: number }
  | { table: string; op: "evict"; id: string };

/** Fresh tokens of the Jakarta staff the pull tests act as. */
export const rm1 = () => tokenFor(users.rm1Jakarta);
export const rm2 = () => tokenFor(users.rm2Jakarta);
export const bm = () => tokenFor(users.bmJakarta);
const hvc1 = "00000000-0000-4000-8001-000000000001";

const claimsOf = (user: User) =>
  JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });

/** Runs `fn` in one transaction acting as `user`, the way the function does (role + verified claims). */
export async function asUser<T>(user: User, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    return await fn(tx);
  }) as T;
}

interface Registered {
  table_name: string;
  parent_table: string | null;
  parent_column: string | null;
}
export const registry = async () =>
  [...await sql`select table_name, parent_table, parent_column from sync.tables order by sync_order`] as unknown as Registered[];

/** `table/id` of every live row `user` may see now (what a full pull must deliver), sorted. */
export async function visibleKeys(user: User, tables?: string[]): Promise<string[]> {
  const reg = await registry();
  return await asUser(user, async (tx) => {
    const keys: string[] = [];
    for (const { table_name } of reg) {
      if (tables && !tables.includes(table_name)) continue;
      const rows = await tx.unsafe(`select id::text as id from public."${table_name}" where deleted_at is null`);
      keys.push(...rows.map((r) => `${table_name}/${r.id}`));
    }
    return keys.sort();
  });
}

/** A row as `user` reads it from the table, in the pull's shape (every column but the internal change_xid). */
export async function rowAs(user: User, table: string, id: string) {
  return await asUser(user, async (tx) => {
    const [r] = await tx.unsafe(`select to_jsonb(t) - 'change_xid' as row from public."${table}" t where t.id = $1`, [
      id,
    ]);
    return r?.row ?? null;
  });
}

/** The id a change is about, and `table/id`; `about` keeps the changes about one id. */
export const idOf = (c: Change): string => (c.op === "upsert" ? c.row.id : c.id);
export const keyOf = (c: Change) => `${c.table}/${idOf(c)}`;
export const about = <C extends Change>(changes: C[], id: string): C[] => changes.filter((c) => idOf(c) === id);

/**
 * A transaction of `user` on its own connection, kept open between statements until commit() or
 * close(): a slow device request, a job that has not committed yet.
 */
export function openTransaction(user: User) {
  type Command =
    | { kind: "run"; fn: (tx: Tx) => Promise<unknown>; resolve(v: unknown): void; reject(e: unknown): void }
    | { kind: "commit" | "rollback" };
  const inbox: Command[] = [];
  let wake: (() => void) | null = null;
  const send = (c: Command) => (inbox.push(c), wake?.());
  const receive = async (): Promise<Command> => {
    while (!inbox.length) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  const rolledBack = new Error("rolled back on purpose");
  const done = sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    for (;;) {
      const c = await receive();
      if (c.kind !== "run") {
        if (c.kind === "commit") return;
        throw rolledBack;
      }
      try {
        c.resolve(await c.fn(tx));
      } catch (err) {
        c.reject(err);
        throw err;
      }
    }
  }).then(() => undefined, (err: unknown) => {
    if (err !== rolledBack) throw err;
  });
  // A failure surfaces through run() or commit(); this keeps it from also being an unhandled rejection.
  done.catch(() => {});
  const run = <T>(fn: (tx: Tx) => Promise<T>) =>
    new Promise<T>((resolve, reject) => send({ kind: "run", fn, resolve, reject }));
  return {
    run,
    /** The transaction's id (taking one if it has none yet, as its first write would). */
    xid: async () => BigInt((await run((tx) => tx`select pg_current_xact_id()::text as x`))[0].x),
    commit: async () => (send({ kind: "commit" }), await done),
    /** Ends the transaction if it is still open (a no-op after commit). */
    close: async () => (send({ kind: "rollback" }), await done.catch(() => {})),
  };
}

/** rm1's customer with two key persons, a pipeline with a referral, an activity and an HVC link. */
export async function customerWithFamily(token: string, name: string) {
  const customer = uuid();
  const [k1, k2, p, a, l, r] = Array.from({ length: 6 }, () => uuid());
  const res = await push(token, [
    insert("customers", customer, { name }),
    insert("key_persons", k1, { customer_id: customer, name: "Director" }),
    insert("key_persons", k2, { customer_id: customer, name: "Finance Manager" }),
    insert("pipelines", p, { customer_id: customer, title: "Cargo cover" }),
    insert("activities", a, { customer_id: customer, pipeline_id: p, activity_type: "visit", subject: "Site visit" }),
    insert("customer_hvc_links", l, { customer_id: customer, hvc_id: hvc1 }),
    insert("pipeline_referrals", r, { pipeline_id: p, referred_rm_id: users.rm2Jakarta.id }),
  ]);
  assert.ok(res.body.results.every((x: { status: string }) => x.status === "applied"), res.text);
  const children: [string, string][] = [
    ["key_persons", k1],
    ["key_persons", k2],
    ["pipelines", p],
    ["activities", a],
    ["customer_hvc_links", l],
    ["pipeline_referrals", r],
  ];
  return { customer, children, all: [["customers", customer] as [string, string], ...children] };
}

/** A device's local copy: the state a client reaches by applying the changes in order. */
export function replicate(store: Map<string, Row>, changes: Change[]) {
  for (const c of changes) {
    // The user's conflicts travel as one more table; they are the audit, not rows the replica
    // holds (their delivery is conflicts.test.ts's and the oracle's), and whether the user has an
    // open one depends on what ran before.
    if (c.table === "conflicts") continue;
    if (c.op === "upsert") {
      const held = store.get(keyOf(c));
      // Applying by version makes a repeated or older delivery harmless.
      if (!held || held.version <= c.row.version) store.set(keyOf(c), c.row);
    } else store.delete(keyOf(c));
  }
  return store;
}

/** Fails unless the replica holds exactly the rows `user` may see now. */
export async function assertReplicaMatches(user: User, store: Map<string, Row>) {
  assert.deepEqual(
    [...store.keys()].sort(),
    await visibleKeys(user),
    `${user.email}'s device holds exactly what they may see`,
  );
}
