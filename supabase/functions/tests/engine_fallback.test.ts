// When the per-op engine takes ops the bulk engine could not decide, the database log says so and
// why (RAISE LOG, which a session that lowers client_min_messages also receives): a slow push is
// never a mystery. The results are the same either way; this is about being told.
import assert from "node:assert/strict";
import postgres from "postgres";
import { env, insert, seedCustomer, test, update, users, uuid } from "./_helpers.ts";

/** Pushes ops as the user through the public RPC, collecting the log messages the database sends. */
async function pushLogged(userId: string, ops: unknown[]): Promise<{ statuses: string[]; logs: string[] }> {
  const logs: string[] = [];
  const db = postgres(env.dbUrl, { max: 1, onnotice: (n) => logs.push(String(n.message)) });
  try {
    const statuses = await db.begin(async (tx) => {
      await tx`select set_config('client_min_messages', 'log', true), set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: userId, role: "authenticated" })
      }, true)`;
      const [{ answer }] = await tx`select public.sync_push(${
        tx.json({ protocol: 2, client_id: uuid(), ops } as never)
      }) as answer`;
      return (answer.results as { status: string }[]).map((r) => r.status);
    });
    return { statuses, logs: logs.filter((m) => m.startsWith("supasync push")) };
  } finally {
    await db.end();
  }
}

test("a batch the bulk engine decides whole writes no engine log line", async () => {
  const { statuses, logs } = await pushLogged(users.rm1Jakarta.id, [
    insert("customers", uuid(), { name: "PT Quiet Batch" }),
  ]);
  assert.deepEqual(statuses, ["applied"]);
  assert.deepEqual(logs, []);
});

test("a stale edit among current ones: the log names how many rows the per-op engine took and why", async () => {
  const { statuses, logs } = await pushLogged(users.rm1Jakarta.id, [
    insert("customers", uuid(), { name: "PT Mixed Batch" }),
    update("customers", seedCustomer(8), 0, { notes: "based on a version that never was current" }),
  ]);
  assert.deepEqual(statuses[0], "applied");
  assert.deepEqual(logs.length, 1, `one engine line: ${JSON.stringify(logs)}`);
  assert(
    logs[0].includes(
      `supasync push by ${users.rm1Jakarta.id}: the per-op engine applies the ops of 1 rows after the bulk engine: 1 of them have an op it cannot decide`,
    ),
    logs[0],
  );
});

test("a legacy (protocol 1) batch: the log says the per-op engine applies it whole, and why", async () => {
  const logs: string[] = [];
  const db = postgres(env.dbUrl, { max: 1, onnotice: (n) => logs.push(String(n.message)) });
  try {
    await db.begin(async (tx) => {
      await tx`select set_config('client_min_messages', 'log', true), set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${
        JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" })
      }, true)`;
      await tx`select public.sync_push(${
        tx.json({
          protocol: 1,
          client_id: uuid(),
          items: [{
            id: 1,
            entityType: "customer",
            entityId: uuid(),
            operation: "create",
            payload: { name: "PT Legacy" },
            createdAt: "2026-01-01T00:00:00Z",
          }],
        } as never)
      })`;
    });
  } finally {
    await db.end();
  }
  assert(
    logs.some((m) => m.includes("the per-op engine applies the batch: it holds legacy (protocol 1) items")),
    JSON.stringify(logs),
  );
});
