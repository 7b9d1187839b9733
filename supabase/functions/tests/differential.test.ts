// The two doors check the same request rules: the function with its zod schemas (checkPush,
// checkPull), and the SQL API for RPC callers (sync.normalize_push; public.sync_pull's checks, run
// as a staff user). The same bodies go through both, hand-picked and generated, and get the same
// verdict (valid, invalid_request, unsupported_protocol, too_large) and, for a body with one fault,
// the same paths. A body with several faults gets the same verdict; the paths may then differ, as
// each side stops at a different point.
//
// The SQL side refuses all the function refuses, with the same bounds (REQUEST_LIMITS and
// sync.request_limits(), held together by contract.test.ts). Where the two still differ, the function
// is the looser because the rule is data in the database, which the function does not read: it passes
// the body on and answers the database's refusal. Each such difference is listed below
// (DIFFERENCES) with its reason and a body that shows it, and checked to still hold, so one that no
// longer holds fails until it is taken off the list. What the function checks on the body's text
// before any schema (JSON syntax, UTF-8, U+0000, unpaired surrogates, nesting, numbers the database
// cannot hold, the byte size) never reaches the SQL side as jsonb, and has its own tests
// (hostile_input, unstorable_numbers, requests); so do numbers whose digits JavaScript cannot keep
// (the last test here).
import assert from "node:assert/strict";
import fc from "fast-check";
import { REQUEST_LIMITS } from "../sync/contract.ts";
import { HttpError } from "../sync/errors.ts";
import { checkPull, checkPush } from "../sync/schemas.ts";
import { call, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

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
async function sqlVerdict(door: Door, body: unknown, text = JSON.stringify(body)): Promise<Verdict> {
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
const { nameBytes, cursorBytes, wholeNumberMax, pullLimitMax, pullTablesMax } = REQUEST_LIMITS;
// Names within the bound in bytes, and at it: 62 bytes of two-byte characters, 63 of ASCII.
const name = fc.oneof(text(1, nameBytes), fc.constantFrom("é".repeat(31), "x".repeat(nameBytes), "€".repeat(21)));
const tableName = fc.oneof(fc.constantFrom(...TABLES), name);
const version = fc.oneof(fc.nat(), fc.constant(wholeNumberMax));

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const withoutUndefined = (o: Body): Body => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const v2Op = fc.oneof(
  fc.record({
    op_id: uuidArb,
    table: tableName,
    op: fc.constantFrom("insert", "update"),
    id: uuidArb,
    base_version: optional(fc.option(version, { nil: null })),
    data: record,
    base: optional(fc.option(record, { nil: null })),
  }),
  fc.record({
    op_id: uuidArb,
    table: tableName,
    op: fc.constant("delete"),
    id: uuidArb,
    base_version: version,
    data: optional(fc.option(record, { nil: null })),
    base: optional(fc.option(record, { nil: null })),
  }),
).map(withoutUndefined);

const v2Body = fc.record({
  protocol: fc.constant(2),
  client_id: uuidArb,
  ops: fc.uniqueArray(v2Op, { maxLength: 4, selector: (o) => String(o.op_id).toLowerCase() }),
});

const queueId = fc.oneof(fc.integer(), fc.constantFrom(wholeNumberMax, -wholeNumberMax), text(1));
// A legacy item keeps whatever else the old app stored beside it: the database ignores it, the
// function's name for its own finding (unstorable_numbers) included.
const itemExtras = {
  retryCount: optional(fc.nat()),
  lastError: optional(fc.option(text(), { nil: null })),
  unstorable_numbers: optional(fc.constant([["payload", "name"]])),
};
const legacyItem = fc.oneof(
  fc.record({
    id: queueId,
    entityType: name,
    entityId: uuidArb,
    operation: fc.constantFrom("create", "update"),
    payload: record,
    createdAt: text(1, 30),
    ...itemExtras,
  }),
  fc.record({
    id: queueId,
    entityType: name,
    entityId: uuidArb,
    operation: fc.constant("delete"),
    payload: optional(fc.option(record, { nil: null })),
    createdAt: text(1, 30),
    ...itemExtras,
  }),
).map(withoutUndefined);

// So does a legacy body (its app version, a list beside the items).
const v1Body = fc.record({
  protocol: fc.constant(1),
  client_id: uuidArb,
  items: fc.array(legacyItem, { maxLength: 4 }),
  appVersion: optional(text()),
  ops: optional(fc.constant([])),
}).map(withoutUndefined);

// A pull from no cursor is a real pull: it asks for a few rows. Any other cursor is one the database
// did not issue, refused after the shape checks.
const pullBody = fc.record({
  protocol: fc.constantFrom(1, 2),
  cursor: optional(fc.oneof(fc.constant(null), text(0, cursorBytes), fc.constant("é".repeat(cursorBytes / 2)))),
  tables: optional(fc.oneof(
    fc.uniqueArray(fc.constantFrom(...TABLES), { minLength: 1 }),
    fc.constant(Array(pullTablesMax).fill("customers")),
  )),
  limit: optional(fc.oneof(fc.integer({ min: 1, max: pullLimitMax }), fc.constant(pullLimitMax))),
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
const notWholeNumber = fc.constantFrom(-1, 1.5, "3", true, [], {}, 1e19, -0.5, wholeNumberMax + 1, 1e17);
/** Names no table can have: empty, or longer than PostgreSQL's identifiers in bytes if not in characters. */
const notName = fc.constantFrom("", "x".repeat(nameBytes + 1), "é".repeat(32), "€".repeat(22), "😀".repeat(16));
/** A key no schema knows of (a misspelling, a key of another protocol). */
const unknownKey = (known: string[]) =>
  fc.oneof(fc.constantFrom("items", "since", "base_verison", "ops_"), text(1, 10)).filter((k) => !known.includes(k));
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
  "a key of its own beside protocol, client_id and ops": [
    unknownKey(["protocol", "client_id", "ops"]),
    (b, _, key) => set(b, String(key), []),
  ],
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
  "a table name empty or longer than 63 bytes": [
    notName,
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "table", bad)),
  ],
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
  "data not an object, whatever the op": [
    notObject.filter((v) => v !== null),
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "data", bad)),
  ],
  "base not an object": [
    notObject.filter((v) => v !== null),
    (b, p, bad) => inList(b, "ops", p, (o) => set(o, "base", bad)),
  ],
  // unstorable_numbers is no exception: the function tells the database of its own findings apart.
  "an unknown key in an op": [
    fc.oneof(
      fc.constant("unstorable_numbers"),
      unknownKey(["op_id", "table", "op", "id", "base_version", "data", "base"]),
    ),
    (b, p, key) => inList(b, "ops", p, (o) => set(o, String(key), [["data", "name"]])),
  ],
};

const pushV1Faults: Record<string, [fc.Arbitrary<unknown>, Fault]> = {
  ...topFaults("items"),
  "id neither a whole number nor a non-empty string": [
    fc.constantFrom(null, true, [], {}, "", 1.5, -0.5, wholeNumberMax + 1, -wholeNumberMax - 1, 1e17),
    (b, p, bad) => inList(b, "items", p, (o) => set(o, "id", bad)),
  ],
  "id missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "id"))],
  "entityType not a string": [notString, (b, p, bad) => inList(b, "items", p, (o) => set(o, "entityType", bad))],
  "entityType missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "entityType"))],
  "entityType empty or longer than 63 bytes": [
    notName,
    (b, p, bad) => inList(b, "items", p, (o) => set(o, "entityType", bad)),
  ],
  "entityId not a uuid": [notUuid, (b, p, bad) => inList(b, "items", p, (o) => set(o, "entityId", bad))],
  "entityId missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "entityId"))],
  // With a payload or without: an unknown operation asks for none.
  "operation not create, update or delete": [
    fc.tuple(fc.constantFrom("insert", "CREATE", "", null, 2, "remove"), fc.boolean()),
    (b, p, bad) =>
      inList(b, "items", p, (o) => {
        const [operation, withoutPayload] = bad as [unknown, boolean];
        return set(withoutPayload ? drop(o, "payload") : o, "operation", operation);
      }),
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
  "a payload not an object, whatever the operation": [
    notObject.filter((v) => v !== null),
    (b, p, bad) => inList(b, "items", p, (o) => set(o, "payload", bad)),
  ],
  "createdAt not a non-empty string": [
    fc.oneof(notString, fc.constant("")),
    (b, p, bad) => inList(b, "items", p, (o) => set(o, "createdAt", bad)),
  ],
  "createdAt missing": [fc.constant(0), (b, p) => inList(b, "items", p, (o) => drop(o, "createdAt"))],
};

const pullFaults: Record<string, [fc.Arbitrary<unknown>, Fault]> = {
  "the body not an object": [notObject, (_, __, bad) => bad],
  "protocol not a number": [notProtocolNumber, (b, _, bad) => set(b, "protocol", bad)],
  "protocol missing": [fc.constant(0), (b) => drop(b, "protocol")],
  "a key of its own": [unknownKey(["protocol", "cursor", "tables", "limit"]), (b, _, key) => set(b, String(key), 0)],
  "cursor neither a string nor null": [fc.constantFrom(0, true, [], {}, ["c"]), (b, _, bad) => set(b, "cursor", bad)],
  "a cursor longer than its limit in bytes": [
    fc.constantFrom("c".repeat(cursorBytes + 1), "é".repeat(cursorBytes / 2 + 1), "😀".repeat(cursorBytes / 4 + 1)),
    (b, _, bad) => set(b, "cursor", bad),
  ],
  "tables not a list": [fc.constantFrom(0, true, "customers", {}, null), (b, _, bad) => set(b, "tables", bad)],
  "more than 100 tables": [fc.constant(0), (b) => set(b, "tables", Array(pullTablesMax + 1).fill("customers"))],
  "a table name not a string": [
    fc.constantFrom(null, 0, true, [], {}),
    (b, p, bad) => b.tables ? inList(b, "tables", p, () => bad) : set(b, "tables", [bad]),
  ],
  "a table name empty or longer than 63 bytes": [
    notName,
    (b, p, bad) => b.tables ? inList(b, "tables", p, () => bad) : set(b, "tables", [bad]),
  ],
  "limit not a whole number from 1 to 1 000 000": [
    fc.constantFrom(0, -1, 1.5, "5", true, [], {}, null, pullLimitMax + 1, 1e9, 1e20),
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
const valid: Verdict = { code: "valid", paths: [] };
const invalid = (...paths: unknown[][]): Verdict => ({
  code: "invalid_request",
  paths: paths.map((p) => JSON.stringify(p)).sort(),
});

const DIFFERENCES: Record<string, Difference> = {
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

// JavaScript reads a JSON number as the nearest double, so the function's schemas cannot tell 1.0
// from 1, nor 1.0000000000000001 from 1; the database keeps every digit. Both doors take a number
// that is whole by its value (1.0, as a client that keeps numbers as doubles writes 1). A fraction
// JavaScript rounds away passes the function, which hands the push's text on: the database refuses
// it, and its 400 is the answer. A pull's limit reaches the database as the function read it.
test("numbers are whole by their value at both doors; what JavaScript rounds away, the database refuses", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const client_id = uuid();
  const row = uuid();
  const created = await call("/push", {
    protocol: 2,
    client_id,
    ops: [{ op_id: uuid(), table: "customers", op: "insert", id: row, data: { name: "PT Doubles" } }],
  }, { token });
  assert.equal(created.body.results?.[0]?.status, "applied", created.text);
  const update = (n: string) =>
    JSON.stringify({
      protocol: 2,
      client_id,
      ops: [{ op_id: uuid(), table: "customers", op: "update", id: row, base_version: "__N__", data: { notes: n } }],
    }).replace('"__N__"', n);
  const item = (n: string) =>
    JSON.stringify({
      protocol: 1,
      client_id,
      items: [{ id: "__N__", entityType: "customer", entityId: row, operation: "update", payload: {}, createdAt: n }],
    }).replace('"__N__"', n);
  const pull = (n: string) => `{"protocol": 2, "cursor": null, "tables": ["branches"], "limit": ${n}}`;
  const cases: [Door, string, Verdict, number][] = [
    ["push", update("1.0"), valid, 200],
    ["push", update("1.0000000000000001"), invalid(["ops", 0, "base_version"]), 400],
    ["push", item("7.0"), valid, 200],
    ["push", item("7.0000000000000001"), invalid(["items", 0, "id"]), 400],
    ["pull", pull("1.0"), valid, 200],
    ["pull", pull("1.0000000000000001"), invalid(["limit"]), 200],
  ];
  for (const [door, text, sqlSays, status] of cases) {
    assert.deepEqual(functionVerdict(door, JSON.parse(text)), valid, `the function: ${text}`);
    assert.deepEqual(await sqlVerdict(door, undefined, text), sqlSays, `the SQL API: ${text}`);
    const res = await call(`/${door}`, undefined, { token, rawBody: text });
    assert.equal(res.status, status, `through the function: ${text}: ${res.text.slice(0, 300)}`);
    if (status === 400) {
      assert.deepEqual(
        res.body.details?.map((i: { path: unknown[] }) => JSON.stringify(i.path)),
        sqlSays.paths,
        text,
      );
    }
  }
  const [{ version }] = await sql`select version::int from public.customers where id = ${row}`;
  assert.equal(version, 2, "the update based on version 1.0 was applied as based on version 1");
});
