// A number PostgreSQL cannot hold (numeric keeps at most 131072 digits before the decimal point and
// 16383 after) is valid JSON, and the function hands the request's JSON text to the database: cast
// there, it failed the whole request with a 500 on every retry, a poison pill that blocked the rest
// of the device's queue. In an op's data it is now that op's rejected / invalid naming the field,
// and the rest of the batch is applied; elsewhere in a request it is a 400 naming the path.
import assert from "node:assert/strict";
import {
  call,
  insert,
  type OpResult,
  seedCustomer,
  seedPipeline,
  sql,
  test,
  tokenFor,
  update,
  users,
  uuid,
} from "./_helpers.ts";

const CANNOT_HOLD =
  "is a number the database cannot hold (at most 131072 digits before the decimal point and 16383 after)";

// A push whose body is written with raw JSON number tokens: each "__RAW_<i>__" placeholder string
// in the JSON of `body` becomes raws[i], unquoted.
async function rawPush(token: string, body: unknown, raws: string[]) {
  let rawBody = JSON.stringify(body);
  raws.forEach((raw, i) => {
    rawBody = rawBody.replace(`"__RAW_${i}__"`, raw);
  });
  return await call("/push", undefined, { token, rawBody });
}
const raw = (i: number) => `__RAW_${i}__`;
const outcome = (r: OpResult) => [r.status, r.code ?? null, r.field ?? null];

test("a batch with 1e400000 in one op's data: that op is rejected as invalid naming the field, the ops around it are applied", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const [customer, pipeline, activity] = [uuid(), uuid(), uuid()];
  const body = {
    protocol: 2,
    client_id: uuid(),
    ops: [
      insert("customers", customer, { name: "PT Before The Poison" }),
      insert("pipelines", pipeline, { customer_id: seedCustomer(4), title: "Poison", potential_value: raw(0) }),
      insert("activities", activity, {
        customer_id: seedCustomer(4),
        activity_type: "call",
        subject: "After the poison",
      }),
    ],
  };
  const res = await rawPush(token, body, ["1e400000"]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.results.map(outcome), [
    ["applied", null, null],
    ["rejected", "invalid", "potential_value"],
    ["applied", null, null],
  ]);
  assert.equal(res.body.results[1].message, `pipelines.potential_value: ${CANNOT_HOLD}`);
  assert.equal(res.body.results[1].retryable, false, "nothing to retry: the value itself is refused");
  const rows = await sql`select (select count(*) from public.customers where id = ${customer})::int as customers,
                                (select count(*) from public.pipelines where id = ${pipeline})::int as pipelines,
                                (select count(*) from public.activities where id = ${activity})::int as activities`;
  assert.deepEqual({ ...rows[0] }, { customers: 1, pipelines: 0, activities: 1 });

  // The queue's retry of the same request is answered from the record: the device moves on.
  const again = await rawPush(token, body, ["1e400000"]);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.body.results.map((r) => [r.status, r.original_status]), [
    ["duplicate", "applied"],
    ["duplicate", "rejected"],
    ["duplicate", "applied"],
  ]);
});

test("tiny, negative and long-digit numbers the database cannot hold, in numeric, text and base, are refused per op", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const [{ version }] = await sql`select version::int from public.pipelines where id = ${seedPipeline(4)}`;
  const before = await sql`select to_jsonb(p) - 'change_xid' as row from public.pipelines p where id = ${
    seedPipeline(4)
  }`;
  const cases: [string, string, Record<string, unknown>, string][] = [
    ["1e-400000", "pipelines", { potential_value: raw(0) }, "potential_value"],
    ["-1e400000", "pipelines", { approved_value: raw(0) }, "approved_value"],
    ["1" + "0".repeat(131072), "pipelines", { potential_value: raw(0) }, "potential_value"],
    ["0." + "0".repeat(16383) + "1", "pipelines", { potential_value: raw(0) }, "potential_value"],
    ["1e400000", "pipelines", { notes: raw(0) }, "notes"],
    ["1e-400000", "pipelines", { title: raw(0) }, "title"],
    ["1E+99999999999", "pipelines", { notes: raw(0) }, "notes"],
  ];
  for (const [token_, table, data, field] of cases) {
    const op = update(table, seedPipeline(4), version, data);
    const res = await rawPush(token, { protocol: 2, client_id: uuid(), ops: [op] }, [token_]);
    const what = `${table}.${field} = ${token_.slice(0, 24)}`;
    assert.equal(res.status, 200, `${what}: ${res.text.slice(0, 300)}`);
    assert.deepEqual(outcome(res.body.results[0]), ["rejected", "invalid", field], what);
    assert.equal(res.body.results[0].message, `${table}.${field}: ${CANNOT_HOLD}`, what);
  }
  // In base (the values the edit started from) too: the op cannot be checked against them.
  const op = {
    ...update("pipelines", seedPipeline(4), null, { notes: "based on a poison" }),
    base: { potential_value: raw(0) },
  };
  const res = await rawPush(token, { protocol: 2, client_id: uuid(), ops: [op] }, ["1e400000"]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(outcome(res.body.results[0]), ["rejected", "invalid", "potential_value"]);
  const after = await sql`select to_jsonb(p) - 'change_xid' as row from public.pipelines p where id = ${
    seedPipeline(4)
  }`;
  assert.deepEqual(after[0].row, before[0].row, "the pipeline is unchanged");
});

test("no client has an op refused so by saying it holds such a number: the key is refused in an op and ignored in a legacy item, at both doors", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const claims = JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" });
  const rpc = (body: unknown) =>
    sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
      const [{ answer }] = await tx`select public.sync_push(${JSON.stringify(body)}::text::jsonb) as answer`;
      return answer;
    });
  const refused = [{ path: ["ops", 0], message: 'Unrecognized key: "unstorable_numbers"' }];
  const op = {
    ...update("customers", seedCustomer(4), null, { notes: "a plain note" }),
    unstorable_numbers: [["data", "notes"]],
  };
  const body = { protocol: 2, client_id: uuid(), ops: [op] };
  const res = await call("/push", body, { token });
  assert.equal(res.status, 400, res.text);
  assert.deepEqual(res.body.details, refused);
  const err = await rpc(body).then(() => null, (e) => e);
  assert.equal(err?.code, "SYRQ1", String(err));
  assert.deepEqual(JSON.parse(err.detail), refused);

  // A legacy item keeps the old app's other keys, and this is one of them: the item is applied.
  const item = (name: string) => ({
    id: 1,
    entityType: "customer",
    entityId: uuid(),
    operation: "create",
    createdAt: new Date().toISOString(),
    payload: { name },
    unstorable_numbers: [["payload", "name"]],
  });
  const legacy = await call("/push", { protocol: 1, client_id: uuid(), items: [item("PT Says So")] }, { token });
  assert.equal(legacy.status, 200, legacy.text);
  assert.deepEqual(legacy.body.results.map(outcome), [["applied", null, null]]);
  const answer = await rpc({ protocol: 1, client_id: uuid(), items: [item("PT Says So Too")] });
  assert.deepEqual(answer.results.map(outcome), [["applied", null, null]]);
});

test("a legacy queue item (protocol 1) with such a number in its payload is rejected naming the column; the next item is applied", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const [pipeline, customer] = [uuid(), uuid()];
  const createdAt = new Date().toISOString();
  const body = {
    protocol: 1,
    client_id: uuid(),
    items: [
      {
        id: 1,
        entityType: "pipeline",
        entityId: pipeline,
        operation: "create",
        createdAt,
        payload: { customerId: seedCustomer(4), title: "Legacy poison", potentialValue: raw(0) },
      },
      {
        id: 2,
        entityType: "customer",
        entityId: customer,
        operation: "create",
        createdAt,
        payload: { name: "PT Next In Queue" },
      },
    ],
  };
  const res = await rawPush(token, body, ["1e400000"]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.results.map(outcome), [["rejected", "invalid", "potential_value"], [
    "applied",
    null,
    null,
  ]]);
});

test("the other numbers of a request that holds such a number keep every digit", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const [exact, poison, scaled] = [uuid(), uuid(), uuid()];
  const res = await rawPush(token, {
    protocol: 2,
    client_id: uuid(),
    ops: [
      insert("pipelines", exact, { customer_id: seedCustomer(4), title: "Exact", potential_value: raw(0) }),
      insert("pipelines", poison, { customer_id: seedCustomer(4), title: "Poison", potential_value: raw(1) }),
      insert("pipelines", scaled, { customer_id: seedCustomer(4), title: "Exponent", potential_value: raw(2) }),
    ],
  }, ["1234567890123456.78", "1e400000", "1.5E+3"]);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.results.map(outcome), [
    ["applied", null, null],
    ["rejected", "invalid", "potential_value"],
    ["applied", null, null],
  ]);
  const rows =
    await sql`select id, potential_value::text as value from public.pipelines where id in (${exact}, ${scaled}) order by title`;
  assert.deepEqual(rows.map((r) => r.value).sort(), ["1234567890123456.78", "1500.00"]);
});

test("such a number outside an op's data is a 400 naming its path, and nothing is applied", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const id = uuid();
  const cases: [unknown, string, (string | number)[]][] = [
    [
      {
        protocol: 2,
        client_id: uuid(),
        ops: [{ ...update("customers", seedCustomer(4), null, { notes: "x" }), base_version: raw(0) }],
      },
      "1e-400000",
      ["ops", 0, "base_version"],
    ],
    [
      {
        protocol: 2,
        client_id: uuid(),
        ops: [insert("customers", id, { name: "PT Never" }), {
          ...insert("customers", uuid(), { name: "PT Never" }),
          base_version: raw(0),
        }],
      },
      "-1e-400000",
      ["ops", 1, "base_version"],
    ],
    [
      {
        protocol: 1,
        client_id: uuid(),
        items: [{
          id: raw(0),
          entityType: "customer",
          entityId: id,
          operation: "create",
          createdAt: "2026-01-01T00:00:00Z",
          payload: { name: "PT Never" },
        }],
      },
      "0e-400000",
      ["items", 0, "id"],
    ],
    [
      {
        protocol: 1,
        client_id: uuid(),
        items: [{
          id: 1,
          entityType: "customer",
          entityId: id,
          operation: "create",
          createdAt: "2026-01-01T00:00:00Z",
          payload: { name: "PT Never" },
          retryCount: raw(0),
        }],
      },
      "1e400000",
      ["items", 0, "retryCount"],
    ],
  ];
  for (const [body, token_, path] of cases) {
    const res = await rawPush(token, body, [token_]);
    assert.equal(res.status, 400, `${JSON.stringify(path)}: ${res.text}`);
    assert.equal(res.body.error, "invalid_request");
    assert.deepEqual(res.body.details, [{ path, message: CANNOT_HOLD.replace(/^is /, "") }]);
  }
  const [{ count }] = await sql`select count(*)::int from public.customers where id = ${id}`;
  assert.equal(count, 0);
});

test("the function's verdict on numbers near PostgreSQL's limits is PostgreSQL's own", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const tokens = [
    "1e131071",
    "9.99e131071",
    "1e131072",
    "0.1e131072",
    "10e131071",
    "-1e131072",
    "1" + "0".repeat(131071),
    "1" + "0".repeat(131072),
    "1" + "0".repeat(131071) + ".5",
    "1e-16383",
    "1e-16384",
    "1.0e-16382",
    "1.00e-16382",
    "0e-16383",
    "0e-16384",
    "0.0e400000",
    "0e400000",
    "0." + "0".repeat(16382) + "1",
    "0." + "0".repeat(16383) + "1",
    "0." + "0".repeat(16384),
    "1e1073741822",
    "1e-1073741822",
    "0e1073741823",
    "0e-1073741823",
    "1e99999999999999999999",
    "1e-0",
    "1E+2",
    "-0.5e-1",
  ];
  // PostgreSQL's verdict, asked directly.
  const holds: boolean[] = [];
  for (const t of tokens) {
    holds.push(await sql`select ${t}::text::jsonb is not null as ok`.then(() => true, () => false));
  }
  assert.ok(holds.includes(true) && holds.includes(false), "the list straddles the limits");
  // The function's, on one batch: each token as the notes of a new customer.
  const ids = tokens.map(() => uuid());
  const res = await rawPush(token, {
    protocol: 2,
    client_id: uuid(),
    ops: tokens.map((_, i) => insert("customers", ids[i], { name: `PT Limit ${i}`, notes: raw(i) })),
  }, tokens);
  assert.equal(res.status, 200, res.text.slice(0, 300));
  tokens.forEach((t, i) => {
    const r = res.body.results[i];
    const refused = r.status === "rejected" && r.message === `customers.notes: ${CANNOT_HOLD}`;
    assert.equal(
      refused,
      !holds[i],
      `${t.slice(0, 30)}${t.length > 30 ? `… (${t.length} characters)` : ""}: ${JSON.stringify(r).slice(0, 200)}`,
    );
  });
});
