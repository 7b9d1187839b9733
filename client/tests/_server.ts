// Clients of the kit against the real function that `npm test` starts, with a fetch the tests can
// watch and disturb (drop a request, lose an answer, act while a request is under way): the
// requests themselves are real, and so are the database and its answers.
import { SyncClient, type SyncClientOptions } from "../mod.ts";
import { MemoryStorage } from "../memory.ts";
import type { Storage } from "../store.ts";
import { env, sql, syncUrl, tokenFor, type User } from "../../supabase/functions/tests/_helpers.ts";

export { sql, tokenFor, type User };
export { test } from "./_kit.ts";

/** One request as the fake network saw it. */
export interface Sent {
  route: string;
  body: Record<string, unknown> | null;
  status?: number;
  answer?: Record<string, unknown> | null;
}

/**
 * The network between a client and the function. `offline` fails every request as a lost
 * connection; `before` runs while a request is under way (after it left, before it reaches the
 * server), so a test can edit meanwhile; `loseAnswer` lets the server commit and drops the answer.
 */
export class Net {
  offline = false;
  sent: Sent[] = [];
  before?: (route: string, body: Record<string, unknown> | null) => Promise<void> | void;
  loseAnswer?: (route: string) => boolean;
  /** Runs while the request is at the server (the answer is awaited after it). */
  during?: (route: string) => Promise<void> | void;

  fetch: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const route = url.replace(/^.*\/sync/, "");
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : null;
    if (this.offline) throw new TypeError("network down");
    const sent: Sent = { route, body };
    this.sent.push(sent);
    await this.before?.(route, body);
    const answering = fetch(input, init);
    answering.catch(() => {});
    await this.during?.(route);
    const res = await answering;
    const text = await res.text();
    sent.status = res.status;
    sent.answer = text ? JSON.parse(text) : null;
    if (this.loseAnswer?.(route)) throw new TypeError("the connection dropped before the answer");
    return new Response(text, { status: res.status, headers: res.headers });
  };

  /** The push requests' ops, in the order sent. */
  pushedOps(): Record<string, unknown>[] {
    return this.sent.filter((s) => s.route === "/push").flatMap((s) => s.body?.ops as Record<string, unknown>[]);
  }
}

/** The tokens a client uses: `current` as the app holds it, a fresh one on refresh (counted). */
export class Session {
  refreshes = 0;
  constructor(readonly user: User, public current: string | null = null) {}
  access = async () => this.current ??= await tokenFor(this.user);
  refresh = async () => {
    this.refreshes++;
    return this.current = await tokenFor(this.user);
  };
}

/** A client of `user` against the real function, syncing only when told to. */
export async function deviceOf(
  user: User,
  options: Partial<SyncClientOptions> & { net?: Net; session?: Session; storage?: Storage } = {},
) {
  const net = options.net ?? new Net();
  const session = options.session ?? new Session(user);
  const storage = options.storage ?? new MemoryStorage();
  const results: { op_id: string; status: string }[] = [];
  const client = await SyncClient.open({
    url: syncUrl,
    apikey: env.anonKey,
    storage,
    accessToken: session.access,
    refreshToken: session.refresh,
    fetch: net.fetch,
    autoSync: false,
    backoff: { baseMs: 10, maxMs: 50 },
    onResult: (op, result) => results.push({ op_id: op.op_id, status: result.status }),
    ...options,
  });
  return { client, net, session, storage, results };
}

/** The outcomes the server recorded for these op ids (sync.applied_ops), by op id. */
export async function recorded(user: User, opIds: string[]): Promise<Map<string, string>> {
  const uuids = opIds.filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  if (!uuids.length) return new Map();
  const rows = await sql`select op_id::text, outcome->>'status' as status from sync.applied_ops
                          where user_id = ${user.id} and op_id = any(${uuids}::uuid[])`;
  return new Map(rows.map((r) => [r.op_id as string, r.status as string]));
}

/** The row as the database holds it (any user's), or undefined. */
export async function serverRow(table: string, id: string): Promise<Record<string, unknown> | undefined> {
  const [row] = await sql`select * from ${sql("public." + table)} where id = ${id}`;
  return row ? { ...row, version: Number(row.version) } : undefined;
}
