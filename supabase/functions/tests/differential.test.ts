// The two doors check the same request rules: the function with its zod schemas (checkPush,
// checkPull), and the SQL API for RPC callers (sync.normalize_push; public.sync_pull's checks, run
// as a staff user). The same bodies go through both, hand-picked and generated, and get the same
// verdict (valid, invalid_request, unsupported_protocol, too_large) and, for a body with one fault,
// the same paths. A body with several faults gets the same verdict; the paths may then differ, as
// each side stops at a different point.
//
// Where the two differ on purpose, or the SQL side is known to be looser, the difference is listed
// below (DIFFERENCES) with its reason and a body that shows it; each entry is checked to still hold,
// so one that no longer holds fails until it is taken off the list. What the function checks on the
// body's text before any schema (JSON syntax, UTF-8, U+0000, unpaired surrogates, nesting, numbers
// the database cannot hold, the byte size) never reaches the SQL side as jsonb, and has its own
// tests (hostile_input, unstorable_numbers, requests).
import assert from "node:assert/strict";
import fc from "fast-check";
import { HttpError } from "../sync/errors.ts";
import { checkPull, checkPush } from "../sync/schemas.ts";
import { call, sql, test, tokenFor, users } from "./_helpers.ts";

const RUNS = Number(Deno.env.get("FC_RUNS") ?? 60);
const SEED = Number(Deno.env.get("FC_SEED") ?? 20261125);
// The function's default (SYNC_MAX_OPS) and the database's (sync.settings.max_push_ops) alike.
const MAX_OPS = 1000;

type Door = "push" | "pull";
type Body = Record<string, unknown>;
interface Verdict {
  code: string;
  paths: string[];
}

/** What the function says of a body before the database sees it. */
function functionVerdict(door: Door, body: unknown): Verdict {
  try {
    if (door === "push") checkPush(body, MAX_OPS);
    else checkPull(body);
    return { code: "valid", paths: [] };
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    const details = (err.details ?? []) as { path: unknown[] }[];
    return { code: err.code, paths: [...new Set(details.map((d) => JSON.stringify(d.path)))].sort() };
  }
}

const SQL_CODES: Record<string, string> = {
  SYRQ1: "invalid_request",
  SYPR1: "unsupported_protocol",
  SYLM1: "too_large",
  SYCR1: "invalid_cursor",
};
const rm1Claims = JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" });

/**
 * What the SQL API says of a body: the push's validator as the engine runs it, or the pull as a
 * staff user (in a transaction that writes nothing). A pull whose cursor the database did not issue
 * passed every shape check first, so invalid_cursor counts as a valid shape: the cursor's signature
 * is the database's to check, and the function leaves it to it.
 */
async function sqlVerdict(door: Door, body: unknown): Promise<Verdict> {
  const text = JSON.stringify(body);
  try {
    await sql.begin(async (tx) => {
      if (door === "push") {
        await tx`set local role sync_engine`;
        await tx`select sync.normalize_push(${text}::text::jsonb)`;
      } else {
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${rm1Claims}, true)`;
        await tx`select public.sync_pull(${text}::text::jsonb)::text`;
      }
    });
    return { code: "valid", paths: [] };
  } catch (err) {
    const e = err as { code?: string; detail?: string };
    const code = SQL_CODES[e.code ?? ""];
    if (!code) throw err;
    if (code === "invalid_cursor") return { code: "valid", paths: [] };
    const details = JSON.parse(e.detail || "[]") as { path: unknown[] }[];
    return { code, paths: [...new Set(details.map((d) => JSON.stringify(d.path)))].sort() };
  }
}

// ---------------------------------------------------------------------------------------------
// Valid bodies, and faults

const uuidArb = fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()));
const text = (min = 0, max = 12) => fc.string({ minLength: min, maxLength: max });
// JSON values as a device sends them (no U+0000 nor lone surrogates: the function refuses those first).
const value = fc.jsonValue({ maxDepth: 2 }).filter((v) => {
  const t = JSON.stringify(v);
  return !t.includes("\\u0000") && !/\\ud[89a-f]/i.test(t);
});
const record = fc.dictionary(text(1, 8), value, { maxKeys: 4 });
const TABLES = ["branches", "profiles", "customers", "key_persons", "pipelines", "activities", "conflicts"];
const tableName = fc.oneof(fc.constantFrom(...TABLES), text(1, 63));

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const withoutUndefined = (o: Body): Body => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const v2Op = fc.oneof(
  fc.record({
    op_id: uuidArb,
    table: tableName,
    op: fc.constantFrom("insert", "update"),
    id: uuidArb,
    base_version: optional(fc.option(fc.nat(), { nil: null })),
    data: record,
    base: optional(fc.option(record, { nil: null })),
  }),
  fc.record({
    op_id: uuidArb,
    table: tableName,
    op: fc.constant("delete"),
    id: uuidArb,
    base_version: fc.nat(),
    data: optional(fc.option(record, { nil: null })),
    base: optional(fc.option(record, { nil: null })),
  }),
).map(withoutUndefined);

const v2Body = fc.record({
  protocol: fc.constant(2),
  client_id: uuidArb,
  ops: fc.uniqueArray(v2Op, { maxLength: 4, selector: (o) => String(o.op_id).toLowerCase() }),
});

const legacyItem = fc.oneof(
  fc.record({
    id: fc.oneof(fc.integer(), text(1)),
    entityType: text(1, 63),
    entityId: uuidArb,
    operation: fc.constantFrom("create", "update"),
    payload: record,
    createdAt: text(1, 30),
    retryCount: optional(fc.nat()),
  }),
  fc.record({
    id: fc.oneof(fc.integer(), text(1)),
    entityType: text(1, 63),
    entityId: uuidArb,
    operation: fc.constant("delete"),
    payload: optional(fc.option(record, { nil: null })),
    createdAt: text(1, 30),
    lastError: optional(fc.option(text(), { nil: null })),
    // the old app's keys are its own, the function's name for its findings included
    unstorable_numbers: optional(fc.constant([["payload", "name"]])),
  }),
).map(withoutUndefined);

const v1Body = fc.record({
  protocol: fc.constant(1),
  client_id: uuidArb,
  items: fc.array(legacyItem, { maxLength: 4 }),
  appVersion: optional(text()),
}).map(withoutUndefined);

// A pull from no cursor is a real pull: it asks for a few rows. Any other cursor is one the database
// did not issue, refused after the shape checks.
const pullBody = fc.record({
  protocol: fc.constantFrom(1, 2),
  cursor: optional(fc.oneof(fc.constant(null), text(0, 4096))),
  tables: optional(fc.uniqueArray(fc.constantFrom(...TABLES), { minLength: 1 })),
  limit: optional(fc.integer({ min: 1, max: 1_000_000 })),
}).map((b) => withoutUndefined(b.cursor == null ? { ...b, limit: Math.min(b.limit ?? 5, 5) } : b));

/** Values no rule takes where a uuid, a string, an object, an array or a number is expected. */
const notUuid = fc.oneof(
  fc.constantFrom(null, true, 0, [], {}, "", "not-a-uuid"),
  fc.uuid().map((u) => u.slice(1)),
  fc.uuid().map((u) => `{${u}}`),
);
const notString = fc.constantFrom(null, false, 7, 1.5, [], {}, ["customers"]);
const notObject = fc.constantFrom(null, true, 0, "x", [], [{}]);
const notArray = fc.constantFrom(null, true, 0, "x", {}, { length: 1 });
const notWholeNumber = fc.constantFrom(-1, 1.5, "3", true, [], {}, 1e19, -0.5);
const notProtocolNumber = fc.constantFrom("2", "1", null, true, [], {});
const unservedProtocol = fc.constantFrom(0, 3, -1, 1.5, 99);

/** A fault: a change to a valid body that one rule refuses. */
type Fault = (body: Body, pick: number, bad: unknown) => unknown;
const isBody = (v: unknown): v is Body => v !== null && typeof v === "object" && !Array.isArray(v);
const set = (o: Body, key: string, v: unknown): Body => ({ ...o, [key]: v });
const drop = (o: Body, key: string): Body => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
/** The body with the element `pick` (modulo the length) of its list `list` replaced. */
function inList(body: Body, list: string, pick: number, change: (e: Body, i: number) => unknown): Body | undefined {
  const items = body[list];
  if (!Array.isArray(items) || !items.length) return undefined;
  const i = pick % items.length;
  if (!isBody(items[i])) return undefined;
  const changed = change(items[i], i);
  return changed === undefined ? undefined : set(body, list, items.map((e, j) => (j === i ? changed : e)));
}

const topFaults = (listKey: string): Record<string, [fc.Arbitrary<unknown>, Fault]> => ({
  "client_id not a uuid": [notUuid, (b, _, bad) => set(b, "client_id", bad)],
  "client_id missing": [fc.constant(0), (b) => drop(b, "client_id")],
  [`${listKey} not a list`]: [notArray, (b, _, bad) => set(b, listKey, bad)],
  [`${listKey} missing`]: [fc.constant(0), (b) => drop(b, listKey)],
  [`an element of ${listKey} not an object`]: [notObject, (b, p, bad) => inList(b, listKey, p, () => bad)],
});

const pushV2Faults: Record<string, [fc.Arbitrary<unknown>, Fault]> = {
  ...topFaults("ops"),
  "the body not an object": [notObject, (_, __, bad) => bad],
  "protocol not a number": [notProtocolNumber, (b, _, bad) => set(b, "protocol", bad)],
  "protocol missing": [fc.constant(0), (b) => drop(b, "protocol")],
  "op_id not a uuid": [notUuid, (b, p, bad) => inList(b, "ops", p, (o) => set(o, "op_id", bad))],
  "op_id missing": [fc.constant(0), (b, p) => inList(b, "ops", p, (o) => drop(o, "op_id"))],
  "op_id of an earlier op": [fc.boolean(), (b, p, upper) =>
    inList(b, "ops", p, (o, i) => {
      const earlier = i === 0 ? undefined : (b.ops as unknown[])[p % i];
      if (!isBody(earlier) || typeof earlier.op_id !== "string") return undefined;
      return set(o, "op_id", upper ? earlier.op_id.toUpperCase() : earlier.op_id.toLowerCase());
    })],
  "table not a string": [notString, (b, p, bad) => inList(b, "ops", p, (o) => set(o, "table", bad))],
  "table missing": [fc.constant(0), (b, p) => inList(b, "ops", p, (o) => drop(o, "table"))],
  "op not insert, update or delete": [
    fc.constantFrom("upsert", "INSERT", "", null, 1, []),
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "op", bad)),
  ],
  "op missing": [fc.constant(0), (b, p) => inList(b, "ops", p, (o) => drop(o, "op"))],
  "id not a uuid": [notUuid, (b, p, bad) => inList(b, "ops", p, (o) => set(o, "id", bad))],
  "id missing": [fc.constant(0), (b, p) => inList(b, "ops", p, (o) => drop(o, "id"))],
  "base_version not a whole number": [
    notWholeNumber,
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "base_version", bad)),
  ],
  "a delete without base_version": [
    fc.boolean(),
    (b, p, asNull) =>
      inList(
        b,
        "ops",
        p,
        (o) => o.op === "delete" ? (asNull ? set(o, "base_version", null) : drop(o, "base_version")) : undefined,
      ),
  ],
  "an insert or update without data": [
    notObject,
    (b, p, bad) =>
      inList(b, "ops", p, (o) => o.op === "delete" ? undefined : bad === true ? drop(o, "data") : set(o, "data", bad)),
  ],
  "base not an object": [
    notObject.filter((v) => v !== null),
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "base", bad)),
  ],
  // unstorable_numbers is no exception: the function tells the database of its own findings apart.
  "an unknown key in an op": [
    fc.oneof(
      fc.constant("unstorable_numbers"),
      text(1, 10).filter((k) => !["op_id", "table", "op", "id", "base_version", "data", "base"].includes(k)),
    ),
    (b, p, key) => inList(b, "ops", p, (o) => set(o, String(key), [["data", "name"]])),
  ],
};

const pushV1Faults: Record<string, [fc.Arbitrary<unknown>, Fault]> = {
  ...topFaults("items"),
  "id neither a number nor a string": [
    fc.constantFrom(null, true, [], {}),
    (b, p, bad) => inList(b, "items", p, (o) => set(o, "id", bad)),
  ],
  "id missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "id"))],
  "entityType not a string": [notString, (b, p, bad) => inList(b, "items", p, (o) => set(o, "entityType", bad))],
  "entityType missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "entityType"))],
  "entityId not a uuid": [notUuid, (b, p, bad) => inList(b, "items", p, (o) => set(o, "entityId", bad))],
  "entityId missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "entityId"))],
  // With a payload: without one, the SQL side also reports the payload (see DIFFERENCES).
  "operation not create, update or delete": [
    fc.constantFrom("insert", "CREATE", "", null, 2),
    (b, p, bad) => inList(b, "items", p, (o) => set(set(o, "payload", o.payload ?? {}), "operation", bad)),
  ],
  "operation missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "operation"))],
  "a create or update without a payload object": [
    notObject,
    (b, p, bad) =>
      inList(
        b,
        "items",
        p,
        (o) => o.operation === "delete" ? undefined : bad === true ? drop(o, "payload") : set(o, "payload", bad),
      ),
  ],
  "createdAt not a string": [notString, (b, p, bad) => inList(b, "items", p, (o) => set(o, "createdAt", bad))],
  "createdAt missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "createdAt"))],
};

const pullFaults: Record<string, [fc.Arbitrary<unknown>, Fault]> = {
  "the body not an object": [notObject, (_, __, bad) => bad],
  "protocol not a number": [notProtocolNumber, (b, _, bad) => set(b, "protocol", bad)],
  "protocol missing": [fc.constant(0), (b) => drop(b, "protocol")],
  "cursor neither a string nor null": [fc.constantFrom(0, true, [], {}, ["c"]), (b, _, bad) => set(b, "cursor", bad)],
  "tables not a list": [fc.constantFrom(0, true, "customers", {}), (b, _, bad) => set(b, "tables", bad)],
  "a table name not a string": [
    fc.constantFrom(null, 0, true, [], {}),
    (b, p, bad) => b.tables ? inList(b, "tables", p, () => bad) : set(b, "tables", [bad]),
  ],
  "limit not a whole number of at least 1": [
    fc.constantFrom(0, -1, 1.5, "5", true, [], {}, 1e9, 1e20),
    (b, _, bad) => set(b, "limit", bad),
  ],
};

const doors: {
  door: Door;
  what: string;
  valid: fc.Arbitrary<Body>;
  faults: Record<string, [fc.Arbitrary<unknown>, Fault]>;
}[] = [
  { door: "push", what: "protocol 2 push", valid: v2Body, faults: pushV2Faults },
  { door: "push", what: "protocol 1 push", valid: v1Body, faults: pushV1Faults },
  { door: "pull", what: "pull", valid: pullBody, faults: pullFaults },
];

/** A valid body of the door with one fault (or none when the fault does not apply to it). */
function faulty(valid: fc.Arbitrary<Body>, faults: Record<string, [fc.Arbitrary<unknown>, Fault]>) {
  return fc.constantFrom(...Object.keys(faults)).chain((name) =>
    fc.record({ name: fc.constant(name), body: valid, pick: fc.nat(), bad: faults[name][0] })
  ).map(({ name, body, pick, bad }) => ({ name, body: faults[name][1](body, pick, bad) }))
    .filter((c) => c.body !== undefined);
}

async function assertSameVerdict(door: Door, body: unknown, what: string, comparePaths: boolean) {
  const fn = functionVerdict(door, body);
  const db = await sqlVerdict(door, body);
  const shown = `${what}: ${JSON.stringify(body).slice(0, 400)}`;
  assert.equal(db.code, fn.code, `function ${JSON.stringify(fn)}, SQL ${JSON.stringify(db)}: ${shown}`);
  if (comparePaths) assert.deepEqual(db.paths, fn.paths, `the paths: ${shown}`);
  return fn;
}

for (const { door, what, valid, faults } of doors) {
  test(`a valid ${what} is valid to both doors`, async () => {
    await fc.assert(
      fc.asyncProperty(valid, async (body) => {
        await assertSameVerdict(door, body, "valid", true);
        assert.equal(functionVerdict(door, body).code, "valid");
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  test(`a ${what} with one fault is refused by both doors at the same paths`, async () => {
    const met = new Set<string>();
    await fc.assert(
      fc.asyncProperty(faulty(valid, faults), async ({ name, body }) => {
        const verdict = await assertSameVerdict(door, body, name, true);
        assert.equal(verdict.code, "invalid_request", `${name} is a fault: ${JSON.stringify(body).slice(0, 300)}`);
        assert.ok(verdict.paths.length >= 1, name);
        met.add(name);
      }),
      { numRuns: 4 * RUNS, seed: SEED },
    );
    assert.ok(met.size >= Object.keys(faults).length / 2, `faults met: ${[...met]}`);
  });

  test(`a ${what} with several faults gets the same verdict from both doors`, async () => {
    const several = fc.tuple(faulty(valid, faults), fc.nat(), fc.constantFrom(...Object.keys(faults)), fc.nat())
      .chain(([first, pick, second, _]) =>
        faults[second][0].map((bad) =>
          isBody(first.body) ? faults[second][1](first.body, pick, bad) ?? first.body : first.body
        )
      );
    await fc.assert(
      fc.asyncProperty(several, async (body) => {
        await assertSameVerdict(door, body, "several faults", false);
      }),
      { numRuns: 2 * RUNS, seed: SEED },
    );
  });
}

test("a protocol neither door serves is unsupported_protocol to both, whatever else the body holds", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...doors),
      unservedProtocol,
      fc.boolean(),
      async ({ door, valid }, protocol, clean) => {
        const [body] = fc.sample(valid, { numRuns: 1, seed: SEED + protocol });
        const sent = clean ? { ...body, protocol } : { ...body, protocol, client_id: "x" };
        const verdict = await assertSameVerdict(door, sent, `protocol ${protocol}`, true);
        assert.equal(verdict.code, "unsupported_protocol");
      },
    ),
    { numRuns: 20, seed: SEED },
  );
});

test("more ops than the limit are too_large to both doors, on the list each protocol reads", async () => {
  const op = (i: number) => ({
    op_id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    table: "customers",
    op: "delete",
    id: "00000000-0000-4000-8000-000000000001",
    base_version: 1,
  });
  const item = (i: number) => ({
    id: i,
    entityType: "customer",
    entityId: op(i).op_id,
    operation: "delete",
    createdAt: "x",
  });
  const many = (f: (i: number) => unknown, n: number) => Array.from({ length: n }, (_, i) => f(i));
  const client_id = "6f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a01";
  for (
    const [body, code] of [
      [{ protocol: 2, client_id, ops: many(op, MAX_OPS + 1) }, "too_large"],
      [{ protocol: 2, client_id, ops: many(op, MAX_OPS) }, "valid"],
      [{ protocol: 1, client_id, items: many(item, MAX_OPS + 1), ops: [] }, "too_large"],
      [{ protocol: 2, client_id: "x", ops: many(op, MAX_OPS + 1) }, "too_large"],
    ] as const
  ) {
    const verdict = await assertSameVerdict("push", body, `${code}`, true);
    assert.equal(verdict.code, code);
  }
});

// ---------------------------------------------------------------------------------------------
// Where the doors differ

interface Difference {
  door: Door;
  body: Body;
  function: Verdict;
  sql: Verdict;
  reason: string;
}
const U = "6f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a01";
const v2 = (op: Body, extra: Body = {}): Body => ({
  protocol: 2,
  client_id: U,
  ops: [{ op_id: U, table: "customers", op: "update", id: U, base_version: 1, data: { name: "x" }, ...op }],
  ...extra,
});
const v1 = (item: Body): Body => ({
  protocol: 1,
  client_id: U,
  items: [{ id: 1, entityType: "customer", entityId: U, operation: "update", payload: {}, createdAt: "x", ...item }],
});
const valid: Verdict = { code: "valid", paths: [] };
const invalid = (...paths: unknown[][]): Verdict => ({
  code: "invalid_request",
  paths: paths.map((p) => JSON.stringify(p)).sort(),
});

const DIFFERENCES: Record<string, Difference> = {
  // The SQL side looser than the function: an RPC caller is answered where the function says 400.
  "a key of its own beside protocol, client_id and ops": {
    door: "push",
    body: v2({}, { opz: [] }),
    function: invalid([]),
    sql: valid,
    reason: "normalize_push checks the ops' keys but not the body's own; the function's schema is strict.",
  },
  "an empty table name, or one longer than PostgreSQL's 63 bytes": {
    door: "push",
    body: v2({ table: "" }),
    function: invalid(["ops", 0, "table"]),
    sql: valid,
    reason: "the engine answers a table it does not know per op (rejected/invalid, field table); the function " +
      "refuses a name no table can have before the round trip.",
  },
  "a base_version beyond 2^53 - 1": {
    door: "push",
    body: v2({ base_version: 1e17 }),
    function: invalid(["ops", 0, "base_version"]),
    sql: valid,
    reason: "JavaScript reads no whole number beyond 2^53 - 1 exactly; the database's bigint versions never get there.",
  },
  "data that is not an object on a delete": {
    door: "push",
    body: v2({ op: "delete", data: 5 }),
    function: invalid(["ops", 0, "data"]),
    sql: valid,
    reason:
      "a delete writes no data, and the database ignores it; the function's schema types the key whatever the op.",
  },
  "a legacy item id that is empty, a fraction or beyond 2^53 - 1": {
    door: "push",
    body: v1({ id: 1.5 }),
    function: invalid(["items", 0, "id"]),
    sql: valid,
    reason: "the app's queue ids are whole numbers or non-empty strings; the database only needs some id to " +
      "derive the op_id from.",
  },
  "an empty legacy entityType, or one longer than 63": {
    door: "push",
    body: v1({ entityType: "" }),
    function: invalid(["items", 0, "entityType"]),
    sql: valid,
    reason: "the engine answers an entity type it does not know per item (rejected/invalid).",
  },
  "an empty legacy createdAt": {
    door: "push",
    body: v1({ createdAt: "" }),
    function: invalid(["items", 0, "createdAt"]),
    sql: valid,
    reason: "the app always stamps its items; the database only needs a string to derive the op_id from.",
  },
  "a legacy delete whose payload is not an object": {
    door: "push",
    body: v1({ operation: "delete", payload: 5 }),
    function: invalid(["items", 0, "payload"]),
    sql: valid,
    reason: "a delete writes no payload, and the database ignores it; the function's schema types the key.",
  },
  "a legacy operation not create, update or delete, without a payload": {
    door: "push",
    body: v1({ operation: "remove", payload: undefined }),
    function: invalid(["items", 0, "operation"]),
    sql: invalid(["items", 0, "operation"], ["items", 0, "payload"]),
    reason: "the database asks for a payload whenever the operation is not delete; the function's schema asks " +
      "for it only once the operation is known.",
  },
  "a key of its own in a pull": {
    door: "pull",
    body: { protocol: 2, cursor: "c", since: 0 },
    function: invalid([]),
    sql: valid,
    reason: "sync_pull reads the keys it knows and ignores the others; the function's schema is strict.",
  },
  "a null limit or tables in a pull": {
    door: "pull",
    body: { protocol: 2, cursor: "c", limit: null, tables: null },
    function: invalid(["limit"], ["tables"]),
    sql: valid,
    reason: "sync_pull reads null as absent; the function's schema takes the keys absent, not null.",
  },
  "a pull limit above 1 000 000": {
    door: "pull",
    body: { protocol: 2, cursor: "c", limit: 5_000_000 },
    function: invalid(["limit"]),
    sql: valid,
    reason: "both clamp the limit to the page size; the function refuses a number no device asks for, the " +
      "database any up to nine digits.",
  },
  "a pull cursor longer than 4096 characters": {
    door: "pull",
    body: { protocol: 2, cursor: "c".repeat(4097) },
    function: invalid(["cursor"]),
    sql: valid, // invalid_cursor: no cursor this server issues is that long
    reason: "the function refuses the length before the round trip; the database refuses the signature.",
  },
  // The function looser than the database: it passes the request on and answers the database's 400.
  "an empty tables list in a pull": {
    door: "pull",
    body: { protocol: 2, cursor: null, tables: [] },
    function: valid,
    sql: invalid(["tables"]),
    reason: "the rule is the database's; the function answers its refusal (checked over HTTP below).",
  },
  "a pull table that is not syncable": {
    door: "pull",
    body: { protocol: 2, cursor: null, tables: ["customers", "auth_users"] },
    function: valid,
    sql: invalid(["tables", 1]),
    reason: "which tables sync is data in the database (sync.tables); the function does not read it, and answers " +
      "the database's refusal (checked over HTTP below).",
  },
};

test("the listed differences between the doors hold, each as stated; through the function, the stricter side answers", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  for (const [name, d] of Object.entries(DIFFERENCES)) {
    const body = JSON.parse(JSON.stringify(d.body));
    assert.deepEqual(functionVerdict(d.door, body), d.function, `${name}: the function (${d.reason})`);
    assert.deepEqual(await sqlVerdict(d.door, body), d.sql, `${name}: the SQL API (${d.reason})`);
    if (d.function.code === "valid") {
      // The function passes the body on: its answer is the database's refusal, paths and all.
      const res = await call(`/${d.door}`, body, { token });
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.deepEqual(
        [...new Set((res.body.details ?? []).map((i: { path: unknown[] }) => JSON.stringify(i.path)))].sort(),
        d.sql.paths,
        name,
      );
    }
  }
});
