// Property-based: whatever a client or an attacker sends, the answer is the contract's 4xx with a
// clear code (or a 200 with per-op outcomes), never a 500; nothing is half-applied; and the server
// answers the next valid request normally.
import assert from "node:assert/strict";
import fc from "fast-check";
import * as jose from "jose";
import postgres from "postgres";
import { type Answer, call, env, insert, push, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

const CODES_4XX = new Set([
  "invalid_request",
  "invalid_cursor",
  "too_large",
  "unsupported_protocol",
  "missing_token",
  "invalid_token",
  "token_expired",
]);
const RUNS = Number(Deno.env.get("FC_RUNS") ?? 60);
const SEED = Number(Deno.env.get("FC_SEED") ?? 20261125);

function assertContractAnswer(res: Answer, what: string) {
  assert.notEqual(res.status, 500, `${what}: 500 ${res.text}`);
  if (res.status === 200) return;
  assert.ok(res.status >= 400 && res.status < 500, `${what}: status ${res.status}`);
  assert.ok(CODES_4XX.has(res.body?.error ?? ""), `${what}: unexpected error body ${res.text}`);
  assert.equal(typeof res.body.message, "string");
}

async function stillServes(token: string) {
  const id = uuid();
  const res = await push(token, [insert("customers", id, { name: "PT Still Here" })]);
  assert.equal(res.status, 200);
  assert.equal(res.body.results[0].status, "applied");
}

// Values an attacker would try in any slot.
const nasty = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom(
    "'; drop table customers; --",
    'customers"; select 1; --',
    "../../etc/passwd",
    "\u0000",
    "\ud800",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "00000000-0000-0000-0000-000000000000",
    "not-a-uuid",
    "",
    " ",
    "🚀".repeat(50),
  ),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
);

const validOp = () => ({ op_id: uuid(), table: "customers", op: "insert", id: uuid(), data: { name: "PT Fuzz" } });
const slots = [
  "protocol",
  "client_id",
  "ops",
  "op_id",
  "table",
  "op",
  "id",
  "base_version",
  "data",
  "base",
  "data.name",
  "data.extra",
  "extra",
] as const;

test("a valid push with one slot replaced by a hostile value gets a contract answer and no half-applied write", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...slots), nasty, async (slot, value) => {
      // Any slot may receive any value.
      const data: Record<string, unknown> = { name: "PT Fuzz" };
      const op: Record<string, unknown> = { ...validOp(), data };
      const body: Record<string, unknown> = { protocol: 2, client_id: uuid(), ops: [op] };
      if (slot === "protocol" || slot === "client_id" || slot === "ops" || slot === "extra") body[slot] = value;
      else if (slot === "data.name") data.name = value;
      else if (slot === "data.extra") data[typeof value === "string" && value ? value : "x"] = value;
      else op[slot] = value;
      const res = await call("/push", body, { token });
      assertContractAnswer(res, `${slot}=${JSON.stringify(value)}`);
      const [{ count }] = await sql`select count(*)::int from public.customers where id = ${
        typeof op.id === "string" ? op.id : null
      }::uuid`.catch(
        () => [{ count: 0 }],
      );
      if (res.status !== 200) assert.equal(count, 0, "a refused request writes nothing");
      else {
        // One result per op sent (none when the hostile value replaced the op list by an empty one).
        const r = res.body.results[0];
        assert.equal(res.body.results.length, Array.isArray(body.ops) ? body.ops.length : 0);
        // (already_exists: an earlier case inserted the same fixed id, the nil uuid say.)
        assert.equal(
          count,
          r?.status === "applied" || r?.code === "already_exists" ? 1 : 0,
          `outcome ${JSON.stringify(r)} matches the database`,
        );
      }
    }),
    { numRuns: RUNS, seed: SEED },
  );
  await stillServes(token);
});

test("arbitrary JSON bodies to push and pull never produce a 500", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  await fc.assert(
    fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom("/push", "/pull"), async (body, route) => {
      const res = await call(route, body, { token });
      assertContractAnswer(res, `${route} ${JSON.stringify(body).slice(0, 200)}`);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  await stillServes(token);
});

test("raw bytes that are not JSON, deep nesting and huge strings are 400 or 413, never 500", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.constantFrom(
          "{",
          "[]]",
          '{"protocol":2,',
          "\u0000",
          '{"a":NaN}',
          '{"a":Infinity}',
          "[".repeat(5000) + "]".repeat(5000),
          JSON.stringify({
            protocol: 2,
            client_id: uuid(),
            ops: [{ ...validOp(), data: { name: "x".repeat(300000) } }],
          }),
        ),
      ),
      async (raw) => {
        const res = await call("/push", undefined, { token, rawBody: raw, method: "POST" });
        assertContractAnswer(res, `raw ${raw.slice(0, 60)}`);
      },
    ),
    { numRuns: Math.min(RUNS, 40), seed: SEED },
  );
  await stillServes(token);
});

test("altered cursors are invalid_cursor, a cursor of another user too", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const first = await call("/pull", { protocol: 2, cursor: null, limit: 5 }, { token });
  const cursor = first.body.cursor;
  assert.ok(cursor, first.text);
  await fc.assert(
    fc.asyncProperty(
      fc.nat({ max: cursor.length - 1 }),
      fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      async (at, ch) => {
        fc.pre(cursor[at] !== ch);
        const altered = cursor.slice(0, at) + ch + cursor.slice(at + 1);
        const res = await call("/pull", { protocol: 2, cursor: altered }, { token });
        assert.equal(res.status, 400, `altered at ${at}: ${res.text}`);
        assert.equal(res.body.error, "invalid_cursor");
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
  const other = await call("/pull", { protocol: 2, cursor }, { token: await tokenFor(users.rm2Jakarta) });
  assert.equal(other.status, 400);
  assert.equal(other.body.error, "invalid_cursor");
});

test("hostile tokens are 401 with a clear code, and never act as anyone", async () => {
  const now = Math.floor(Date.now() / 1000);
  const otherKey = (await jose.generateKeyPair("ES256")).privateKey;
  const sign = (claims: Record<string, unknown>, key: CryptoKey | Uint8Array = otherKey, alg = "ES256") =>
    new jose.SignJWT({ aud: "authenticated", role: "authenticated", ...claims }).setProtectedHeader({
      alg,
      kid: env.es256Jwk.kid,
    })
      .setSubject(users.rm1Jakarta.id).setIssuedAt(now).setExpirationTime(now + 600).sign(key);
  const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${
    btoa(JSON.stringify({ sub: users.admin.id, role: "authenticated", aud: "authenticated", exp: now + 600 })).replace(
      /=+$/,
      "",
    )
  }.`;
  const cases: [string, string, string][] = [
    ["alg none", unsigned, "invalid_token"],
    ["another key", await sign({}), "invalid_token"],
    ["another audience", await tokenFor(users.rm1Jakarta, { claims: { aud: "somebody-else" } }), "invalid_token"],
    ["service_role claim", await tokenFor(users.rm1Jakarta, { claims: { role: "service_role" } }), "invalid_token"],
    ["expired", await tokenFor(users.rm1Jakarta, { expiresIn: -1 }), "token_expired"],
    ["the anon key", env.anonKey, "invalid_token"],
    ["the service key", env.serviceRoleKey, "invalid_token"],
  ];
  for (const [name, token, code] of cases) {
    const res = await call("/push", { protocol: 2, client_id: uuid(), ops: [validOp()] }, { token });
    assert.equal(res.status, 401, name);
    assert.equal(res.body.error, code, name);
  }
  // A real token that claims another user's id in app_metadata acts as its own subject only.
  const id = uuid();
  const res = await push(
    await tokenFor(users.rm1Jakarta, { claims: { app_metadata: { sub: users.admin.id, role: "admin" } } }),
    [insert("customers", id, { name: "PT Claims" })],
  );
  assert.equal(res.body.results[0].row?.created_by, users.rm1Jakarta.id);
});

test("the RPC door answers arbitrary payloads with its request-level SQLSTATEs, never another error", async () => {
  const REQUEST_LEVEL = new Set(["SYRQ1", "SYCR1", "SYPR1", "SYLM1"]);
  const asRm = async (fn: "sync_push" | "sync_pull", payload: postgres.JSONValue) =>
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" })
      }, true)`;
      return fn === "sync_push"
        ? await tx`select public.sync_push(${tx.json(payload)}) as r`
        : await tx`select public.sync_pull(${tx.json(payload)}) as r`;
    });
  const payload = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.record({
      protocol: fc.constantFrom(1, 2, 3),
      client_id: nasty,
      ops: fc.array(fc.dictionary(fc.constantFrom("op_id", "table", "op", "id", "base_version", "data", "x"), nasty), {
        maxLength: 3,
      }),
    }),
    fc.record({ protocol: fc.constantFrom(1, 2), cursor: nasty, tables: nasty, limit: nasty }),
  );
  await fc.assert(
    fc.asyncProperty(
      payload,
      fc.constantFrom("sync_push", "sync_pull") as fc.Arbitrary<"sync_push" | "sync_pull">,
      async (body, fn) => {
        try {
          await asRm(fn, body);
        } catch (err) {
          if (!(err instanceof postgres.PostgresError)) throw err;
          // \u0000 and lone surrogates are not even valid jsonb: PostgreSQL refuses the parameter itself.
          if (
            err.code === "22P05" || err.code === "22021" ||
            /unsupported Unicode|invalid byte sequence/.test(err.message) ||
            (err.code === "22P02" && /type json$/.test(err.message))
          ) return;
          assert.ok(
            REQUEST_LEVEL.has(err.code),
            `${fn} ${JSON.stringify(body).slice(0, 200)} raised ${err.code} ${err.message}`,
          );
        }
      },
    ),
    { numRuns: RUNS, seed: SEED },
  );
  await stillServes(await tokenFor(users.rm1Jakarta));
});
