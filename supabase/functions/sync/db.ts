// One transaction per request, as the caller: `authenticated` role and the verified claims, the way
// PostgREST does it, so RLS, field rules and triggers see the same user on every path.
import postgres from "npm:postgres@3.4.9";
import type { Config } from "./config.ts";

export type Sql = ReturnType<typeof postgres>;

export function connect(config: Config): Sql {
  return postgres(config.dbUrl, {
    // Transaction-mode poolers (Supavisor on port 6543) do not support prepared statements.
    prepare: false,
    max: config.dbPoolSize,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "sync-function" },
  });
}

type Call = "sync_push" | "sync_pull";

/** Runs public.<fn>(payload) as the user in one transaction; returns the JSON text of its answer. */
export async function callAsUser(sql: Sql, fn: Call, claims: Record<string, unknown>, payload: unknown): Promise<string> {
  // A pull reads one snapshot, so a page never mixes states; a push stays READ COMMITTED so that a
  // copy of a racing request sees the other's committed outcome after waiting for it.
  const mode = fn === "sync_pull" ? "isolation level repeatable read read only" : "isolation level read committed";
  const [row] = await sql.begin(mode, async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return fn === "sync_push"
      ? await tx`select public.sync_push(${tx.json(payload as postgres.JSONValue)})::text as answer`
      : await tx`select public.sync_pull(${tx.json(payload as postgres.JSONValue)})::text as answer`;
  });
  return row.answer as string;
}

export async function health(sql: Sql): Promise<string> {
  const [row] = await sql`select public.sync_health()::text as answer`;
  return row.answer as string;
}
