// Request-level behaviour of the sync function over real HTTP (docs/protocol.md, "Routes"
// and "Request-level errors"): routes, CORS, authentication, body and schema checks, limits. After
// every refused request nothing of it is written and the next valid request is served normally.
import assert from "node:assert/strict";
import { FunctionsHttpError } from "@supabase/supabase-js";
import * as jose from "jose";
import {
  type Answer,
  call,
  clientFor,
  env,
  insert,
  type Op,
  pull,
  push,
  remove,
  sql,
  syncUrl,
  test,
  tokenFor,
  update,
  users,
  uuid,
} from "./_helpers.ts";

const rm1 = () => tokenFor(users.rm1Jakarta);
const MAX_OPS = 1000;
const MAX_BODY_BYTES = 5 * 1024 * 1024;
const CORS_HEADERS = ["authorization", "apikey", "content-type", "x-client-info"];

/** A valid op that must not be written when the request carrying it is refused. */
const probe = () => insert("customers", uuid(), { name: "PT Must Not Exist" });

/** A refused request: its status, error code and JSON body, with the CORS header browsers need. */
function assertError(res: Answer, status: number, error: string, message?: RegExp) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.body?.error, error, res.text);
  assert.ok(typeof res.body.message === "string", res.text);
  if (message) assert.match(res.body.message, message);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("access-control-allow-origin"), "*", "error responses carry CORS headers too");
}

/** Nothing of these ops reached the database: no row, no idempotency record. */
async function assertNothingWritten(ops: Op[]) {
  const ids = ops.map((o) => o.id);
  const opIds = ops.map((o) => o.op_id);
  const [{ rows }] = await sql`select count(*)::int as rows from public.customers where id = any(${ids}::uuid[])`;
  const [{ claims }] =
    await sql`select count(*)::int as claims from sync.applied_ops where op_id = any(${opIds}::uuid[])`;
  assert.deepEqual({ rows, claims }, { rows: 0, claims: 0 }, "nothing of a refused request is written");
}

/** The server goes on answering a valid request normally. */
async function assertStillServes() {
  const op = insert("customers", uuid(), { name: "PT Next Request" });
  const res = await push(await rm1(), [op]);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.results[0].status, "applied");
  const [{ count }] = await sql`select count(*)::int from public.customers where id = ${op.id}`;
  assert.equal(count, 1);
}

/** A refused push: the answer, nothing written, and the server still serving. */
async function assertRefused(res: Answer, ops: Op[], status: number, error: string, message?: RegExp) {
  assertError(res, status, error, message);
  await assertNothingWritten(ops);
  await assertStillServes();
}

const paths = (res: Answer) => (res.body.details ?? []).map((d: { path: unknown[] }) => d.path);

async function dbNow(): Promise<Date> {
  const [{ now }] = await sql`select clock_timestamp() as now`;
  return now;
}

// ---------------------------------------------------------------------------------------------
// Health, CORS and routes

test("GET /sync/health answers 200 without any token: status ok, the database clock, protocols [1, 2]", async () => {
  const res = await fetch(`${syncUrl}/health`); // no Authorization, no apikey
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(body.status, "ok");
  assert.deepEqual(body.protocols, [1, 2]);
  assert.match(
    body.server_time,
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
    "server_time is ISO-8601",
  );
  const skew = Math.abs(new Date(body.server_time).getTime() - (await dbNow()).getTime());
  assert.ok(skew < 5000, `server_time is the database clock (off by ${skew} ms)`);
});

test("OPTIONS answers the CORS preflight with 204 and allows authorization, apikey, content-type and x-client-info", async () => {
  for (const route of ["/push", "/pull", "/health"]) {
    const res = await fetch(`${syncUrl}${route}`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, apikey, content-type, x-client-info",
      },
    });
    assert.equal(res.status, 204, route);
    assert.equal(await res.text(), "");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const allowed = (res.headers.get("access-control-allow-headers") ?? "").split(",").map((h) =>
      h.trim().toLowerCase()
    );
    for (const h of CORS_HEADERS) assert.ok(allowed.includes(h), `${route} allows the ${h} header`);
    const methods = (res.headers.get("access-control-allow-methods") ?? "").split(",").map((m) => m.trim());
    assert.ok(methods.includes("POST") && methods.includes("GET"), `${route} allows GET and POST`);
  }
});

test("normal responses carry the CORS header: health, push and pull", async () => {
  const token = await rm1();
  for (
    const res of [
      await call("/health"),
      await push(token, [insert("customers", uuid(), { name: "PT Cors" })]),
      await pull(token, null, { tables: ["branches"] }),
    ]
  ) {
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  }
});

test("an unknown route is 404 not_found; so is the bench's probe unless SYNC_BENCH_PROBE=on (npm test leaves it off)", async () => {
  assertError(await call("/nope"), 404, "not_found", /no route \/nope/);
  assertError(
    await call("/probe", { protocol: 2, cursor: null }, { token: await rm1() }),
    404,
    "not_found",
    /no route \/probe/,
  );
  assertError(await call("/nope", {}, { token: await rm1() }), 404, "not_found");
  assertError(await call(""), 404, "not_found");
  assertError(await call("/push/extra", {}, { token: await rm1() }), 404, "not_found");
  await assertStillServes();
});

test("a wrong verb is 405 method_not_allowed with an Allow header", async () => {
  const token = await rm1();
  const getPush = await call("/push", undefined, { token, method: "GET" });
  assertError(getPush, 405, "method_not_allowed", /\/push takes POST/);
  assert.equal(getPush.headers.get("allow"), "POST, OPTIONS");
  const getPull = await call("/pull", undefined, { token, method: "GET" });
  assertError(getPull, 405, "method_not_allowed");
  assert.equal(getPull.headers.get("allow"), "POST, OPTIONS");
  const postHealth = await call("/health", {}, { method: "POST" });
  assertError(postHealth, 405, "method_not_allowed", /\/health takes GET/);
  assert.equal(postHealth.headers.get("allow"), "GET, OPTIONS");
  const ops = [probe()];
  assertError(
    await call("/push", { protocol: 2, client_id: uuid(), ops }, { token, method: "PUT" }),
    405,
    "method_not_allowed",
  );
  await assertNothingWritten(ops);
  await assertStillServes();
});

// ---------------------------------------------------------------------------------------------
// Authentication

test("no Authorization header is 401 missing_token, on push and pull, even with an apikey", async () => {
  const ops = [probe()];
  const res = await call("/push", { protocol: 2, client_id: uuid(), ops }, { headers: { apikey: env.serviceRoleKey } });
  await assertRefused(res, ops, 401, "missing_token");
  assertError(await call("/pull", { protocol: 2, cursor: null }), 401, "missing_token");
  const basic = await call("/push", { protocol: 2, client_id: uuid(), ops }, {
    headers: { authorization: "Basic cm0xOnB3" },
  });
  await assertRefused(basic, ops, 401, "missing_token");
});

test("a garbage bearer is 401 invalid_token", async () => {
  const ops = [probe()];
  for (const token of ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"]) {
    await assertRefused(await push(token, ops), ops, 401, "invalid_token");
  }
});

test("the anon and service-role API keys as bearer are 401 invalid_token: an API key is not a user", async () => {
  const ops = [probe()];
  await assertRefused(await push(env.anonKey, ops), ops, 401, "invalid_token");
  await assertRefused(await push(env.serviceRoleKey, ops), ops, 401, "invalid_token");
  assertError(await pull(env.serviceRoleKey, null), 401, "invalid_token");
});

test("the apikey header is not an identity: the bearer decides who the caller is", async () => {
  const op = insert("customers", uuid(), { name: "PT Apikey" });
  const res = await call("/push", { protocol: 2, client_id: uuid(), ops: [op] }, {
    token: await rm1(),
    headers: { apikey: env.serviceRoleKey },
  });
  assert.equal(res.status, 200);
  assert.equal(res.body.results[0].row?.created_by, users.rm1Jakarta.id);
});

test("a token signed with another ES256 key is 401 invalid_token, whatever its kid", async () => {
  const { privateKey } = await jose.generateKeyPair("ES256");
  const ops = [probe()];
  // Same kid as the real key: the signature check fails.
  await assertRefused(
    await push(await tokenFor(users.rm1Jakarta, { key: privateKey }), ops),
    ops,
    401,
    "invalid_token",
  );
  // A kid the JWKS does not have.
  const now = Math.floor(Date.now() / 1000);
  const unknownKid = await new jose.SignJWT({ aud: "authenticated", role: "authenticated" })
    .setProtectedHeader({ alg: "ES256", kid: "not-a-project-key", typ: "JWT" })
    .setSubject(users.rm1Jakarta.id)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
  await assertRefused(await push(unknownKid, ops), ops, 401, "invalid_token");
  // Expired and forged: the signature is checked first, so no "refresh and retry" for a forgery.
  const forgedExpired = await tokenFor(users.rm1Jakarta, { key: privateKey, expiresIn: -60 });
  await assertRefused(await push(forgedExpired, ops), ops, 401, "invalid_token");
});

test("an unsigned token (alg none) is 401 invalid_token", async () => {
  const b64 = (o: unknown) => jose.base64url.encode(JSON.stringify(o));
  const now = Math.floor(Date.now() / 1000);
  const claims = { aud: "authenticated", role: "authenticated", sub: users.rm1Jakarta.id, iat: now, exp: now + 3600 };
  const ops = [probe()];
  for (const header of [{ alg: "none", typ: "JWT" }, { alg: "none" }]) {
    await assertRefused(await push(`${b64(header)}.${b64(claims)}.`, ops), ops, 401, "invalid_token");
  }
  // A real signature moved under a header claiming "none" does not help either.
  const real = (await rm1()).split(".");
  await assertRefused(
    await push(`${b64({ alg: "none", typ: "JWT" })}.${real[1]}.${real[2]}`, ops),
    ops,
    401,
    "invalid_token",
  );
});

test("a token for another audience is 401 invalid_token", async () => {
  const ops = [probe()];
  const res = await push(await tokenFor(users.rm1Jakarta, { claims: { aud: "some-other-api" } }), ops);
  await assertRefused(res, ops, 401, "invalid_token", /aud/);
});

test("an expired token is 401 token_expired, distinct so the client refreshes and retries", async () => {
  const ops = [probe()];
  const res = await push(await tokenFor(users.rm1Jakarta, { expiresIn: -1 }), ops);
  await assertRefused(res, ops, 401, "token_expired", /refresh/);
  assertError(await pull(await tokenFor(users.rm1Jakarta, { expiresIn: -3600 }), null), 401, "token_expired");
});

test("a token without an expiry is 401 invalid_token: it could never be refreshed away", async () => {
  const key = await jose.importJWK(env.es256Jwk, "ES256");
  const noExp = await new jose.SignJWT({ aud: "authenticated", role: "authenticated" })
    .setProtectedHeader({ alg: "ES256", kid: env.es256Jwk.kid, typ: "JWT" })
    .setSubject(users.rm1Jakarta.id)
    .setIssuedAt()
    .sign(key);
  const ops = [probe()];
  await assertRefused(await push(noExp, ops), ops, 401, "invalid_token", /exp/);
});

test("a legacy HS256 token signed with the project's JWT secret works for a seed user", async () => {
  const token = await tokenFor(users.rm1Jakarta, { alg: "HS256" });
  const op = insert("customers", uuid(), { name: "PT Legacy Token" });
  const res = await push(token, [op]);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.results[0].status, "applied");
  assert.equal(res.body.results[0].row?.created_by, users.rm1Jakarta.id);
  assert.equal((await pull(token, null, { tables: ["branches"] })).status, 200);
  // The same token signed with any other secret is a forgery.
  const ops = [probe()];
  const forged = await tokenFor(users.rm1Jakarta, { alg: "HS256", key: new TextEncoder().encode("x".repeat(48)) });
  await assertRefused(await push(forged, ops), ops, 401, "invalid_token");
});

test("a user-shaped token whose role claim is service_role is 401, even signed with the real keys", async () => {
  const ops = [probe()];
  for (const alg of ["ES256", "HS256"] as const) {
    const token = await tokenFor(users.admin, { alg, claims: { role: "service_role" } });
    await assertRefused(await push(token, ops), ops, 401, "invalid_token", /role authenticated/);
  }
});

test("claims naming another user (app_metadata, user_id) do not change who the caller is", async () => {
  const token = await tokenFor(users.rm1Jakarta, {
    claims: {
      app_metadata: {
        provider: "email",
        providers: ["email"],
        sub: users.admin.id,
        user_id: users.admin.id,
        role: "admin",
      },
      user_metadata: { sub: users.admin.id },
      user_id: users.admin.id,
    },
  });
  const op = insert("customers", uuid(), { name: "PT Who Am I" });
  const res = await push(token, [op]);
  assert.equal(res.status, 200, res.text);
  const [row] = await sql`select created_by, updated_by, assigned_rm_id from public.customers where id = ${op.id}`;
  assert.deepEqual({ ...row }, {
    created_by: users.rm1Jakarta.id,
    updated_by: users.rm1Jakarta.id,
    assigned_rm_id: users.rm1Jakarta.id,
  });
  // Nor does an admin role in the claims: writing brokers stays an admin's right.
  const [broker] = await sql`select id, version from public.brokers where deleted_at is null order by id limit 1`;
  const denied = await push(token, [
    update("brokers", broker.id, Number(broker.version), { phone: "+62 not an admin" }),
  ]);
  assert.equal(denied.body.results[0].status, "rejected");
  assert.equal(denied.body.results[0].code, "forbidden");
});

// ---------------------------------------------------------------------------------------------
// Body and schema

test("a body that is not JSON is 400 invalid_request", async () => {
  const token = await rm1();
  const ops = [probe()];
  const good = JSON.stringify({ protocol: 2, client_id: uuid(), ops });
  for (const raw of [good.slice(0, -1), "", "protocol=2", `${good}}`, good.replace("{", "{'a':1,")]) {
    await assertRefused(
      await call("/push", undefined, { token, rawBody: raw }),
      ops,
      400,
      "invalid_request",
      /not valid JSON/,
    );
  }
  assertError(
    await call("/pull", undefined, { token, rawBody: "{cursor:null}" }),
    400,
    "invalid_request",
    /not valid JSON/,
  );
});

test("a body that is not UTF-8 is 400 invalid_request", async () => {
  const ops = [probe()];
  const bytes = new TextEncoder().encode(JSON.stringify({ protocol: 2, client_id: uuid(), ops }));
  const bad = new Uint8Array([...bytes.slice(0, -2), 0xff, 0xfe, ...bytes.slice(-2)]);
  const res = await fetch(`${syncUrl}/push`, {
    method: "POST",
    headers: { authorization: `Bearer ${await rm1()}`, "content-type": "application/json" },
    body: bad,
  });
  const text = await res.text();
  await assertRefused(
    { status: res.status, body: JSON.parse(text), text, headers: res.headers },
    ops,
    400,
    "invalid_request",
  );
});

test("NaN and Infinity cannot be sent in JSON: a body carrying them is 400", async () => {
  const token = await rm1();
  const ops = [probe()];
  const op = `{"op_id":"${uuid()}","table":"customers","op":"update","id":"${uuid()}","data":{"phone":"+62"}`;
  for (const value of ["NaN", "Infinity", "-Infinity"]) {
    const raw = `{"protocol":2,"client_id":"${uuid()}","ops":[${
      JSON.stringify(ops[0])
    },${op},"base_version": ${value}}]}`;
    await assertRefused(
      await call("/push", undefined, { token, rawBody: raw }),
      ops,
      400,
      "invalid_request",
      /not valid JSON/,
    );
  }
  // A number past the double range parses to Infinity: the schema refuses it as a base_version.
  const huge = `{"protocol":2,"client_id":"${uuid()}","ops":[${JSON.stringify(ops[0])},${op},"base_version": 1e400}]}`;
  const res = await call("/push", undefined, { token, rawBody: huge });
  await assertRefused(res, ops, 400, "invalid_request");
  assert.deepEqual(paths(res), [["ops", 1, "base_version"]]);
});

test("a body that is not an object, or has no protocol, is 400 invalid_request", async () => {
  const token = await rm1();
  for (const body of [[], null, "push", 2]) {
    const res = await call("/push", undefined, { token, rawBody: JSON.stringify(body) });
    assertError(res, 400, "invalid_request");
    assert.deepEqual(paths(res), [[]]);
  }
  const ops = [probe()];
  const res = await call("/push", { client_id: uuid(), ops }, { token });
  await assertRefused(res, ops, 400, "invalid_request");
  assert.deepEqual(paths(res), [["protocol"]]);
  const asString = await call("/push", { protocol: "2", client_id: uuid(), ops }, { token });
  await assertRefused(asString, ops, 400, "invalid_request");
  assert.deepEqual(paths(asString), [["protocol"]]);
});

test("schema failures are 400 invalid_request with details listing every failing path", async () => {
  const token = await rm1();
  const ok = probe();
  const cases: [string, unknown, unknown[][]][] = [
    ["missing client_id and ops", { protocol: 2 }, [["client_id"], ["ops"]]],
    ["ops not an array", { protocol: 2, client_id: uuid(), ops: { 0: ok } }, [["ops"]]],
    ["ops a long string", { protocol: 2, client_id: uuid(), ops: "x".repeat(MAX_OPS + 1) }, [["ops"]]],
    ["an op missing table, op and id", { protocol: 2, client_id: uuid(), ops: [ok, { op_id: uuid() }] }, [
      ["ops", 1, "table"],
      ["ops", 1, "op"],
      ["ops", 1, "id"],
    ]],
    ["an op without op_id", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, { ...insert("customers", uuid(), { name: "x" }), op_id: undefined }],
    }, [["ops", 1, "op_id"]]],
    ["insert without data", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, { op_id: uuid(), table: "customers", op: "insert", id: uuid() }],
    }, [["ops", 1, "data"]]],
    ["delete without base_version", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, { ...remove("customers", uuid(), 1), base_version: undefined }],
    }, [["ops", 1, "base_version"]]],
    ["an unknown op kind", { protocol: 2, client_id: uuid(), ops: [ok, { ...ok, op_id: uuid(), op: "upsert" }] }, [[
      "ops",
      1,
      "op",
    ]]],
    ["bad base_versions", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, update("customers", uuid(), -1, { a: 1 }), update("customers", uuid(), 1.5, { a: 1 }), {
        ...update("customers", uuid(), 1, { a: 1 }),
        base_version: "3",
      }],
    }, [["ops", 1, "base_version"], ["ops", 2, "base_version"], ["ops", 3, "base_version"]]],
    ["data that is not an object", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, { ...insert("customers", uuid(), {}), data: ["PT"] }],
    }, [["ops", 1, "data"]]],
    ["a table name longer than PostgreSQL's", {
      protocol: 2,
      client_id: uuid(),
      ops: [ok, insert("t".repeat(64), uuid(), { name: "x" })],
    }, [["ops", 1, "table"]]],
  ];
  for (const [label, body, expected] of cases) {
    const res = await call("/push", body, { token });
    assertError(res, 400, "invalid_request", /the push request is not valid/);
    assert.deepEqual(paths(res), expected, label);
    for (const d of res.body.details ?? []) assert.equal(typeof d.message, "string", label);
  }
  await assertNothingWritten([ok]);
  await assertStillServes();
});

test("optional fields sent as null are accepted, not a 500: base_version, base, and a delete's data", async () => {
  const token = await rm1();
  const id = uuid();
  const res = await push(token, [
    { ...insert("customers", id, { name: "PT Nulls" }), base_version: null, base: null } as unknown as Op,
    { ...update("customers", id, 1, { phone: "+62 1" }), base: null } as unknown as Op,
    { ...remove("customers", id, 2), data: null } as unknown as Op,
  ]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.results.map((r: { status: string }) => r.status), ["applied", "applied", "applied"]);
  const [row] =
    await sql`select phone, deleted_at is not null as deleted, version from public.customers where id = ${id}`;
  assert.deepEqual({ ...row }, { phone: "+62 1", deleted: true, version: "3" });
});

test("invalid uuids are 400 naming client_id, op_id and id", async () => {
  const ops = [probe(), { ...insert("customers", "00000000-0000-4000-8000-00000000001", { name: "x" }), op_id: "123" }];
  const res = await call("/push", { protocol: 2, client_id: "not-a-uuid", ops }, { token: await rm1() });
  await assertRefused(res, ops.slice(0, 1), 400, "invalid_request");
  assert.deepEqual(res.body.details, [
    { path: ["client_id"], message: "expected a uuid" },
    { path: ["ops", 1, "op_id"], message: "expected a uuid" },
    { path: ["ops", 1, "id"], message: "expected a uuid" },
  ]);
});

test("extra fields on a v2 op are 400: a misspelt base_version never becomes a silent overwrite", async () => {
  const token = await rm1();
  const ops = [probe()];
  const typo = { ...update("customers", uuid(), 1, { phone: "+62" }), base_version: undefined, base_verison: 1 };
  const res = await call("/push", { protocol: 2, client_id: uuid(), ops: [...ops, typo] }, { token });
  await assertRefused(res, ops, 400, "invalid_request");
  assert.deepEqual(paths(res), [["ops", 1]]);
  assert.match(res.body.details?.[0].message ?? "", /base_verison/);
  const top = await call("/push", { protocol: 2, client_id: uuid(), ops, cursor: null }, { token });
  await assertRefused(top, ops, 400, "invalid_request");
  assert.deepEqual(paths(top), [[]]);
  assert.match(top.body.details?.[0].message ?? "", /cursor/);
});

test("the same op_id twice in one request is 400 with its path, in any letter case", async () => {
  const token = await rm1();
  const first = probe();
  const second = { ...insert("customers", uuid(), { name: "PT Second" }), op_id: first.op_id.toUpperCase() };
  const res = await call("/push", { protocol: 2, client_id: uuid(), ops: [first, second] }, { token });
  await assertRefused(res, [first, second], 400, "invalid_request");
  assert.deepEqual(res.body.details, [{ path: ["ops", 1, "op_id"], message: "duplicate op_id (also ops[0])" }]);
});

test("text the database cannot store (NUL, unpaired surrogates) and absurd nesting are 400 naming the path, not a 500", async () => {
  const token = await rm1();
  const ops = [probe()];
  const client = uuid();
  const cases: [string, string, unknown[]][] = [
    [
      "NUL in a value",
      JSON.stringify({
        protocol: 2,
        client_id: client,
        ops: [...ops, insert("customers", uuid(), { name: "PT \u0000" })],
      }),
      ["ops", 1, "data", "name"],
    ],
    [
      "NUL in a key",
      JSON.stringify({
        protocol: 2,
        client_id: client,
        ops: [...ops, insert("customers", uuid(), { ["na\u0000me"]: "x" })],
      }),
      ["ops", 1, "data", "na\u0000me"],
    ],
    [
      "an unpaired surrogate",
      `{"protocol":2,"client_id":"${client}","ops":[${
        JSON.stringify(ops[0])
      },{"op_id":"${uuid()}","table":"customers","op":"insert","id":"${uuid()}","data":{"name":"\\ud800"}}]}`,
      ["ops", 1, "data", "name"],
    ],
    [
      "nesting 10 000 deep",
      `{"protocol":2,"client_id":"${client}","ops":[${
        JSON.stringify(ops[0])
      },{"op_id":"${uuid()}","table":"customers","op":"insert","id":"${uuid()}","data":{"notes":${"[".repeat(10000)}${
        "]".repeat(10000)
      }}}]}`,
      ["ops", 1, "data", "notes", ...Array(60).fill(0)],
    ],
  ];
  for (const [label, raw, path] of cases) {
    const res = await call("/push", undefined, { token, rawBody: raw });
    await assertRefused(res, ops, 400, "invalid_request");
    assert.deepEqual(paths(res), [path], label);
  }
  const cursor = await call("/pull", { protocol: 2, cursor: "abc\u0000" }, { token });
  assertError(cursor, 400, "invalid_request");
  assert.deepEqual(paths(cursor), [["cursor"]]);
});

test("a 200 KB name is within the byte limit: status 200, that op rejected/invalid naming name, the others applied", async () => {
  const token = await rm1();
  const big = insert("customers", uuid(), { name: "N".repeat(200 * 1024) });
  const fine = insert("customers", uuid(), { name: "PT Beside The Big One" });
  const res = await push(token, [big, fine]);
  assert.equal(res.status, 200, res.text.slice(0, 300));
  const [r, f] = res.body.results;
  assert.deepEqual({ status: r.status, code: r.code, field: r.field, retryable: r.retryable }, {
    status: "rejected",
    code: "invalid",
    field: "name",
    retryable: false,
  });
  assert.match(r.message ?? "", /^customers\.name: /);
  assert.equal(f.status, "applied");
  const [{ count }] = await sql`select count(*)::int from public.customers where id = ${big.id}`;
  assert.equal(count, 0);
});

test("protocol 3 is 426 unsupported_protocol listing supported [1, 2], on push and pull", async () => {
  const token = await rm1();
  const ops = [probe()];
  const res = await call("/push", { protocol: 3, client_id: uuid(), ops }, { token });
  await assertRefused(res, ops, 426, "unsupported_protocol", /protocol 3/);
  assert.deepEqual(res.body.supported, [1, 2]);
  const p = await call("/pull", { protocol: 3, cursor: null }, { token });
  assertError(p, 426, "unsupported_protocol");
  assert.deepEqual(p.body.supported, [1, 2]);
});

test(`more ops than the batch limit (${MAX_OPS}) is 413 too_large naming the limit; ${MAX_OPS} ops pass the limit`, async () => {
  const token = await rm1();
  const ops = Array.from(
    { length: MAX_OPS + 1 },
    (_, i) => insert("customers", uuid(), { name: `PT Over The Limit ${i}` }),
  );
  const res = await push(token, ops);
  await assertRefused(res, ops, 413, "too_large", new RegExp(`at most ${MAX_OPS} ops; this one has ${MAX_OPS + 1}`));
  // Exactly the limit is not too large: this batch fails only on the schema of its last op.
  const atLimit = [...ops.slice(0, MAX_OPS - 1), { ...ops[MAX_OPS - 1], op: "upsert" as "insert" }];
  const res2 = await push(token, atLimit);
  assertError(res2, 400, "invalid_request");
  assert.deepEqual(paths(res2), [["ops", MAX_OPS - 1, "op"]]);
  await assertNothingWritten(ops);
});

test(`a body over the byte limit (${MAX_BODY_BYTES} bytes) is 413 too_large naming the limit; a body of exactly the limit is served`, async () => {
  const token = await rm1();
  const bodyOf = (bytes: number, ops: Op[], padId: string) => {
    const pad = { ...insert("customers", padId, { name: "PT Padding", notes: "" }) };
    const base = JSON.stringify({ protocol: 2, client_id: uuid(), ops: [...ops, pad] });
    return base.replace(`"notes":""`, `"notes":"${"x".repeat(bytes - base.length)}"`);
  };
  const ops = [probe()];
  const over = bodyOf(MAX_BODY_BYTES + 1, ops, uuid());
  assert.equal(new TextEncoder().encode(over).length, MAX_BODY_BYTES + 1);
  await assertRefused(
    await call("/push", undefined, { token, rawBody: over }),
    ops,
    413,
    "too_large",
    new RegExp(String(MAX_BODY_BYTES)),
  );
  const far = bodyOf(3 * MAX_BODY_BYTES, ops, uuid());
  await assertRefused(await call("/push", undefined, { token, rawBody: far }), ops, 413, "too_large");

  const exact = bodyOf(MAX_BODY_BYTES, ops, uuid());
  const res = await call("/push", undefined, { token, rawBody: exact });
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.equal(res.body.results[0].status, "applied");
  assert.equal(res.body.results[1].field, "notes", "the padding op is refused by the column's own length check");
});

test("an invalid cursor is 400 invalid_cursor; another user's cursor too", async () => {
  const token = await rm1();
  assertError(await pull(token, "not-a-cursor"), 400, "invalid_cursor", /not issued by this server or was altered/);
  const issued = (await pull(token, null, { tables: ["branches"] })).body.cursor as string;
  const altered = issued.slice(0, -1) + (issued.endsWith("A") ? "B" : "A");
  assertError(await pull(token, altered, { tables: ["branches"] }), 400, "invalid_cursor", /altered/);
  const other = await pull(await tokenFor(users.rm2Jakarta), issued, { tables: ["branches"] });
  assertError(other, 400, "invalid_cursor", /issued to another user/);
  assert.equal((await pull(token, issued, { tables: ["branches"] })).status, 200, "the owner's cursor still works");
});

test("pull schema failures are 400 invalid_request with paths", async () => {
  const token = await rm1();
  const res = await call("/pull", { protocol: 2, cursor: 5, limit: 0, tables: ["customers", ""], since: "yesterday" }, {
    token,
  });
  assertError(res, 400, "invalid_request", /the pull request is not valid/);
  assert.deepEqual(paths(res).sort(), [[], ["cursor"], ["limit"], ["tables", 1]].sort());
});

// ---------------------------------------------------------------------------------------------
// supabase-js as the app uses it

test("supabase-js functions.invoke('sync/push') and ('sync/pull') work and answer as raw HTTP does", async () => {
  const token = await rm1();
  const supabase = clientFor(token);
  const body = { protocol: 2, client_id: uuid(), ops: [insert("customers", uuid(), { name: "PT Via supabase-js" })] };

  const first = await supabase.functions.invoke("sync/push", { body });
  assert.equal(first.error, null);
  assert.equal(first.data.results[0].status, "applied");
  assert.equal(first.data.results[0].row.created_by, users.rm1Jakarta.id);

  // Replays through either client give the same answer.
  const viaJs = await supabase.functions.invoke("sync/push", { body });
  const viaHttp = await call("/push", body, { token });
  assert.equal(viaHttp.status, 200);
  assert.deepEqual(viaJs.data.results, viaHttp.body.results);
  assert.equal(viaJs.data.results[0].status, "duplicate");
  assert.deepEqual(viaJs.data.results[0].row, first.data.results[0].row);

  const pulledJs = await supabase.functions.invoke("sync/pull", {
    body: { protocol: 2, cursor: null, tables: ["branches", "hvcs"] },
  });
  const pulledHttp = await pull(token, null, { tables: ["branches", "hvcs"] });
  assert.equal(pulledJs.error, null);
  assert.deepEqual(pulledJs.data.changes, pulledHttp.body.changes);
  assert.equal(pulledJs.data.has_more, pulledHttp.body.has_more);
  const next = await supabase.functions.invoke("sync/pull", {
    body: { protocol: 2, cursor: pulledJs.data.cursor, tables: ["branches", "hvcs"] },
  });
  assert.equal(next.error, null, "a cursor from supabase-js works on the next pull");

  const health = await supabase.functions.invoke("sync/health", { method: "GET" });
  assert.equal(health.data.status, "ok");
});

test("supabase-js with an expired token gets a FunctionsHttpError whose response is 401 token_expired", async () => {
  const expired = clientFor(await tokenFor(users.rm1Jakarta, { expiresIn: -60 }));
  const ops = [probe()];
  const { data, error } = await expired.functions.invoke("sync/push", {
    body: { protocol: 2, client_id: uuid(), ops },
  });
  assert.equal(data, null);
  assert.ok(error instanceof FunctionsHttpError, `got ${error?.constructor?.name}`);
  const response = error.context as Response;
  assert.equal(response.status, 401);
  const body = await response.json();
  assert.equal(body.error, "token_expired");
  await assertNothingWritten(ops);

  // Request-level errors reach supabase-js the same way, with their details.
  const bad = await clientFor(await rm1()).functions.invoke("sync/push", {
    body: { protocol: 2, client_id: "nope", ops: [] },
  });
  assert.ok(bad.error instanceof FunctionsHttpError);
  const badResponse = bad.error.context as Response;
  assert.equal(badResponse.status, 400);
  assert.deepEqual(await badResponse.json(), {
    error: "invalid_request",
    message: "the push request is not valid",
    details: [{ path: ["client_id"], message: "expected a uuid" }],
  });
  await assertStillServes();
});
