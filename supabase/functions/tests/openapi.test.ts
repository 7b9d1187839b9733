// docs/openapi.json is what client code generators are fed: it must be what the schemas generate
// (never stale), a valid OpenAPI 3.1 document, complete in its codes, and true of the function's real
// answers and of the requests it takes and refuses.
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { OPENAPI_PATH, openApiText } from "../../../scripts/openapi.ts";
import { OP_RESULT_CODES, OP_STATUSES, REQUEST_ERRORS } from "../sync/error_codes.ts";
import { healthResponse, pullResponse, pushResponse } from "../sync/responses.ts";
import {
  type Answer,
  call,
  insert,
  pull,
  push,
  remove,
  seedCustomer,
  sql,
  test,
  tokenFor,
  update,
  users,
  uuid,
} from "./_helpers.ts";

const checkedIn = await Deno.readTextFile(OPENAPI_PATH);
// deno-lint-ignore no-explicit-any -- a JSON document walked by key
const doc: any = JSON.parse(checkedIn);

// JSON Schema 2020-12, strict: an unknown keyword or format in a component is an error. The
// OpenAPI keywords that annotate a schema (discriminator) and the document around the schemas are
// known but not checked here.
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats.default(ajv);
ajv.addKeyword("discriminator");
ajv.addKeyword("openapi");
for (const key of ["info", "servers", "security", "paths", "components"]) ajv.addKeyword(key);
const BASE = "https://supasync.invalid/openapi.json";
ajv.addSchema({ ...doc, $id: BASE });

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
/** The validator of the document's schema at a place in it. */
const schemaAt = (...parts: string[]) => ajv.compile({ $ref: `${BASE}#/${pointer(...parts)}` });
const responseSchema = (route: string, method: string, status: number) =>
  schemaAt("paths", route, method, "responses", String(status), "content", "application/json", "schema");

/** The answer is what the document says the route answers with its status. */
function assertDocumented(route: string, method: string, res: Answer, what: string) {
  assert.ok(
    doc.paths[route]?.[method]?.responses?.[String(res.status)],
    `${what}: ${method.toUpperCase()} ${route} documents status ${res.status}`,
  );
  const validate = responseSchema(route, method, res.status);
  assert.ok(validate(res.body), `${what}: ${JSON.stringify(validate.errors)} in ${res.text.slice(0, 500)}`);
}

Deno.test("docs/openapi.json is what npm run openapi generates from the schemas (not stale)", () => {
  assert.ok(
    checkedIn === openApiText(),
    "docs/openapi.json differs from what the schemas generate: run npm run openapi and commit it",
  );
});

test("docs/openapi.json is a valid OpenAPI 3.1 document", async () => {
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.equal(validator.version, "3.1");
  assert.ok(result.valid, JSON.stringify(result.errors));
  // The validator does judge: the document with one thing broken is not valid.
  const broken = structuredClone(doc);
  broken.paths["/sync/push"].post.responses = { "200": { content: {} } };
  assert.equal((await new Validator().validate(broken)).valid, false);
});

Deno.test("every component of docs/openapi.json is a JSON Schema 2020-12 schema under strict rules", () => {
  for (const name of Object.keys(doc.components.schemas)) schemaAt("components", "schemas", name);
  assert.ok(Object.keys(doc.components.schemas).length >= 10);
});

Deno.test("docs/openapi.json names every code of the registry, each request error under its own status", () => {
  const { schemas } = doc.components;
  assert.deepEqual(schemas.Error.properties.error.enum, Object.keys(REQUEST_ERRORS));
  assert.deepEqual(schemas.OpResult.properties.code.enum, Object.keys(OP_RESULT_CODES));
  assert.deepEqual(schemas.OpResult.properties.status.enum, Object.keys(OP_STATUSES));
  const documented = new Set<string>();
  for (
    const operations of Object.values(doc.paths) as Record<
      string,
      { responses: Record<string, { description: string }> }
    >[]
  ) {
    for (const { responses } of Object.values(operations)) {
      for (const [status, { description }] of Object.entries(responses)) {
        for (const [, code] of description.matchAll(/`(\w+)`(?: \(retryable\))?:/g)) {
          assert.equal(
            REQUEST_ERRORS[code as keyof typeof REQUEST_ERRORS]?.status,
            Number(status),
            `${code} under ${status}`,
          );
          documented.add(code);
        }
      }
    }
  }
  // not_found answers a path no route has, so no route lists it.
  assert.deepEqual([...documented].sort(), Object.keys(REQUEST_ERRORS).filter((c) => c !== "not_found").sort());
});

test("the function's answers are what docs/openapi.json and the response schemas say: every kind of push result, pull change and error", async () => {
  const rm1 = await tokenFor(users.rm1Jakarta);
  const bm = await tokenFor(users.bmJakarta);

  const health = await call("/health");
  assertDocumented("/sync/health", "get", health, "health");
  healthResponse.parse(health.body);

  // A first pull, then a cursor to read a delta from.
  let cursor: string | null = null;
  for (let page = 0;; page++) {
    const res = await pull(rm1, cursor, { limit: 1000 });
    assertDocumented("/sync/pull", "post", res, `first pull, page ${page}`);
    pullResponse.parse(res.body);
    cursor = res.body.cursor;
    if (!res.body.has_more) break;
  }

  const [gone, moved, parent, pipeline] = [uuid(), uuid(), uuid(), uuid()];
  const created = [
    insert("customers", gone, { name: "PT OpenAPI Gone" }),
    insert("customers", moved, { name: "PT OpenAPI Moved" }),
    insert("customers", parent, { name: "PT OpenAPI Parent" }),
    insert("pipelines", pipeline, { customer_id: parent, title: "Fleet", potential_value: 100 }),
  ];
  const first = await push(rm1, created);
  assertDocumented("/sync/push", "post", first, "inserts");
  const res = await push(rm1, [
    created[0], // processed before: a duplicate
    update("customers", parent, 1, { city: "Bandung" }),
    update("customers", parent, 1, { phone: "+62 1" }), // stale, merged or client_wins: applied with a conflict
    update("pipelines", pipeline, 1, { potential_value: 200 }),
    update("pipelines", pipeline, 1, { potential_value: 300 }), // stale on a manual column: conflict/stale
    update("customers", uuid(), 1, { city: "Nowhere" }), // rejected/not_found
    insert("key_persons", uuid(), { customer_id: uuid(), name: "Orphan" }), // failed/dependency_missing
    remove("customers", gone, 1),
  ]);
  assertDocumented("/sync/push", "post", res, "a push of every outcome");
  pushResponse.parse(res.body);
  const outcomes = res.body.results.map((r: { status: string; code?: string; conflict?: unknown }) =>
    `${r.status}${r.code ? `/${r.code}` : ""}${r.conflict ? "+conflict" : ""}`
  );
  for (
    const kind of [
      "duplicate",
      "applied+conflict",
      "conflict/stale+conflict",
      "rejected/not_found",
      "failed/dependency_missing",
    ]
  ) {
    assert.ok(outcomes.includes(kind), `the push met ${kind}: ${outcomes}`);
  }

  const legacy = await call("/push", {
    protocol: 1,
    client_id: uuid(),
    items: [{
      id: 1,
      entityType: "customer",
      entityId: uuid(),
      operation: "create",
      payload: { name: "PT OpenAPI Legacy" },
      createdAt: new Date().toISOString(),
      retryCount: 0,
    }],
  }, { token: rm1 });
  assertDocumented("/sync/push", "post", legacy, "a protocol 1 push");
  pushResponse.parse(legacy.body);

  // The bm hands one of rm1's customers to rm2: rm1's next delta evicts it.
  const reassigned = await push(bm, [update("customers", moved, 1, { assigned_rm_id: users.rm2Jakarta.id })]);
  assert.equal(reassigned.body.results[0].status, "applied", reassigned.text);
  const kinds = new Set<string>();
  for (let page = 0;; page++) {
    const delta = await pull(rm1, cursor, { limit: 1000 });
    assertDocumented("/sync/pull", "post", delta, `delta, page ${page}`);
    pullResponse.parse(delta.body);
    for (const c of delta.body.changes) kinds.add(c.table === "conflicts" ? "conflicts" : c.op);
    cursor = delta.body.cursor;
    if (!delta.body.has_more) break;
  }
  assert.deepEqual([...kinds].sort(), ["conflicts", "delete", "evict", "upsert"]);

  // The conflict left waiting for a person is settled, so that the other tests' first pulls as rm1
  // (which bring open conflicts) meet the seed's state.
  for (
    const { id }
      of await sql`select id::text from sync.conflicts where row_id = ${pipeline} and resolution = 'manual_pending'`
  ) {
    await sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        JSON.stringify({ sub: users.bmJakarta.id, role: "authenticated" })
      }, true)`;
      await tx`select public.resolve_conflict(${id}::uuid, 'server')`;
    });
  }
  const [{ open }] =
    await sql`select count(*)::int as open from sync.conflicts where row_id = ${pipeline} and resolution = 'manual_pending'`;
  assert.equal(open, 0);

  const refusals: [string, string, Answer][] = [
    ["/sync/push", "post", await push(rm1, [{ ...insert("customers", "not-a-uuid", {}) }])],
    ["/sync/pull", "post", await pull(rm1, "not-a-cursor")],
    ["/sync/pull", "post", await call("/pull", { protocol: 2, cursor: null })],
    ["/sync/push", "post", await call("/push", { protocol: 3, client_id: uuid(), ops: [] }, { token: rm1 })],
    // A wrong verb is documented under the route's one operation.
    ["/sync/push", "post", await call("/push")],
    [
      "/sync/push",
      "post",
      await push(rm1, Array.from({ length: 1001 }, () => remove("customers", seedCustomer(1), 1))),
    ],
  ];
  for (const [route, method, refused] of refusals) {
    assert.ok(refused.status >= 400, refused.text);
    assertDocumented(route, method, refused, `${refused.status} ${refused.body?.error}`);
  }
});

test("the request bodies docs/openapi.json describes are the ones the function takes", async () => {
  const pushBody = schemaAt("paths", "/sync/push", "post", "requestBody", "content", "application/json", "schema");
  const pullBody = schemaAt("paths", "/sync/pull", "post", "requestBody", "content", "application/json", "schema");
  const id = uuid();
  const token = await tokenFor(users.rm1Jakarta);
  const cases: [string, typeof pushBody, unknown, boolean][] = [
    ["push v2", pushBody, { protocol: 2, client_id: uuid(), ops: [insert("customers", id, { name: "PT Doc" })] }, true],
    ["push v2 delete", pushBody, { protocol: 2, client_id: uuid(), ops: [remove("customers", id, 1)] }, true],
    ["push v2 delete without base_version", pushBody, {
      protocol: 2,
      client_id: uuid(),
      ops: [{ op_id: uuid(), table: "customers", op: "delete", id }],
    }, false],
    ["push v2 update without data", pushBody, {
      protocol: 2,
      client_id: uuid(),
      ops: [{ op_id: uuid(), table: "customers", op: "update", id, base_version: 1 }],
    }, false],
    ["push v2 op with an unknown key", pushBody, {
      protocol: 2,
      client_id: uuid(),
      ops: [{ ...update("customers", id, 1, {}), basever: 1 }],
    }, false],
    ["push v1", pushBody, {
      protocol: 1,
      client_id: uuid(),
      items: [{
        id: 7,
        entityType: "customer",
        entityId: uuid(),
        operation: "create",
        payload: { name: "PT Doc" },
        createdAt: "2026-01-01T00:00:00Z",
        lastError: null,
      }],
    }, true],
    ["push v1 create without payload", pushBody, {
      protocol: 1,
      client_id: uuid(),
      items: [{ id: 7, entityType: "customer", entityId: uuid(), operation: "create", createdAt: "2026-01-01" }],
    }, false],
    ["push v1 delete without payload", pushBody, {
      protocol: 1,
      client_id: uuid(),
      items: [{ id: 8, entityType: "customer", entityId: id, operation: "delete", createdAt: "2026-01-01" }],
    }, true],
    ["push with protocol 3", pushBody, { protocol: 3, client_id: uuid(), ops: [] }, false],
    ["pull", pullBody, { protocol: 2, cursor: null, tables: ["customers"], limit: 10 }, true],
    ["pull with a limit of 0", pullBody, { protocol: 2, cursor: null, limit: 0 }, false],
    ["pull with an unknown key", pullBody, { protocol: 2, cursor: null, since: 0 }, false],
  ];
  for (const [what, validate, body, documented] of cases) {
    assert.equal(validate(body), documented, `${what}: the document says ${!documented}`);
    const route = validate === pushBody ? "/push" : "/pull";
    const res = await call(route, body, { token });
    assert.equal(
      res.status === 200,
      documented,
      `${what}: the function answers ${res.status} ${res.text.slice(0, 300)}`,
    );
  }
});
