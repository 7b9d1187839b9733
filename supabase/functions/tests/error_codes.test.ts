// The registry of codes (supabase/functions/sync/error_codes.ts) is the one source: the SQL API's
// map of request errors, the function's answers, the codes the engine writes into push results,
// and docs/protocol.md all say what it says.
import assert from "node:assert/strict";
import {
  OP_RESULT_CODES,
  OP_STATUSES,
  type OpResultCode,
  type OpStatus,
  REQUEST_ERRORS,
  type RequestErrorCode,
} from "../sync/error_codes.ts";
import { PROTOCOLS } from "../sync/contract.ts";
import { type Answer, call, insert, pull, push, sql, test, tokenFor, type User, users, uuid } from "./_helpers.ts";

const requestCodes = Object.keys(REQUEST_ERRORS) as RequestErrorCode[];
const opCodes = Object.keys(OP_RESULT_CODES) as OpResultCode[];
const protocolDoc = await Deno.readTextFile(new URL("../../../docs/protocol.md", import.meta.url));

/** The error sync.request_error raises for a code, raised as the engine raises it (role sync_engine). */
async function raised(code: string, details?: unknown): Promise<{ code?: string; message?: string; detail?: string }> {
  try {
    await sql.begin(async (tx) => {
      await tx`set local role sync_engine`;
      await tx`select sync.request_error(${code}, ${`raised for ${code}`}, ${
        details === undefined ? null : JSON.stringify(details)
      }::text::jsonb)`;
    });
  } catch (err) {
    return err as { code?: string; message?: string; detail?: string };
  }
  throw new Error(`sync.request_error(${code}) did not raise`);
}

test("the SQL API's map of request errors is the registry's: each code the database raises, with its SQLSTATE", async () => {
  const rows = await sql`select code, sqlstate from sync.request_error_codes() order by code`;
  const fromDatabase = Object.fromEntries(rows.map((r) => [r.code, r.sqlstate]));
  const fromRegistry = Object.fromEntries(
    requestCodes.filter((c) => REQUEST_ERRORS[c].sqlstate !== null).map((c) => [c, REQUEST_ERRORS[c].sqlstate]),
  );
  assert.deepEqual(fromDatabase, fromRegistry);
  assert.equal(new Set(Object.values(fromDatabase)).size, rows.length, "no two codes share a SQLSTATE");
});

test("sync.request_error raises each registry code with the registry's SQLSTATE, the message and the details as DETAIL", async () => {
  for (const code of requestCodes.filter((c) => REQUEST_ERRORS[c].sqlstate !== null)) {
    const details = [{ path: ["ops", 0, "op_id"], message: "expected a uuid" }];
    const err = await raised(code, details);
    assert.equal(err.code, REQUEST_ERRORS[code].sqlstate, code);
    assert.equal(err.message, `raised for ${code}`, code);
    assert.deepEqual(JSON.parse(err.detail ?? "null"), details, code);
  }
});

test("sync.request_error refuses a code the SQL API does not raise as the engine's own failure (XX000), never as the client's", async () => {
  for (const code of ["no_such_code", "", ...requestCodes.filter((c) => REQUEST_ERRORS[c].sqlstate === null)]) {
    const err = await raised(code);
    assert.equal(err.code, "XX000", `${code}: ${err.message}`);
    assert.match(err.message ?? "", /is not a request error code/, code);
  }
});

/** A user with a valid token and no staff profile. */
async function signedUpUser(): Promise<User> {
  const user: User = { id: uuid(), email: `codes.${uuid()}@example.com` };
  await sql`insert into auth.users (id, email) values (${user.id}, ${user.email})`;
  return user;
}

// How a client meets each request error over HTTP. `internal` has no request that makes it: it is the
// function's answer to its own failures, and the hostile-input tests hold that no request makes a 500.
// `unavailable` is the database's state, not the request's: connection_budget.test.ts meets it, on
// function instances whose database has no connection to give.
// The two a read replica causes are met where there is one (replica.test.ts): `replica_behind`, which
// the function answers from the primary instead, and `busy`, a pull cancelled by a recovery conflict.
const elsewhere: RequestErrorCode[] = ["internal", "unavailable", "replica_behind", "busy"];
const provoke: Record<
  Exclude<RequestErrorCode, "internal" | "unavailable" | "replica_behind" | "busy">,
  () => Promise<Answer>
> = {
  invalid_request: async () => await push(await tokenFor(users.rm1Jakarta), [{ ...insert("customers", "x", {}) }]),
  // Raised by the database: the cursor's signature is checked there.
  invalid_cursor: async () => await pull(await tokenFor(users.rm1Jakarta), "not-a-cursor"),
  missing_token: async () => await call("/pull", { protocol: 2, cursor: null }),
  invalid_token: async () => await call("/pull", { protocol: 2, cursor: null }, { token: "not-a-jwt" }),
  token_expired: async () => await pull(await tokenFor(users.rm1Jakarta, { expiresIn: -60 }), null),
  // Raised by the database: sync serves staff, which the token does not say.
  not_staff: async () => await pull(await tokenFor(await signedUpUser()), null),
  account_inactive: async () => await pull(await tokenFor({ id: uuid(), email: "gone@example.com" }), null),
  not_found: async () => await call("/nowhere"),
  method_not_allowed: async () => await call("/push"),
  too_large: async () =>
    await push(
      await tokenFor(users.rm1Jakarta),
      Array.from({ length: 1001 }, () => insert("customers", uuid(), { name: "PT Too Many" })),
    ),
  unsupported_protocol: async () =>
    await call("/pull", { protocol: Math.max(...PROTOCOLS) + 1, cursor: null }, {
      token: await tokenFor(users.rm1Jakarta),
    }),
};

test("every request error of the registry reaches the client over HTTP with the registry's status and code", async () => {
  assert.deepEqual(
    Object.keys(provoke).sort(),
    requestCodes.filter((c) => !elsewhere.includes(c)).sort(),
    "each registry code has a way to meet it here",
  );
  for (const [code, request] of Object.entries(provoke)) {
    const res = await request();
    assert.equal(res.status, REQUEST_ERRORS[code as RequestErrorCode].status, `${code}: ${res.text}`);
    assert.equal(res.body?.error, code, res.text);
    assert.equal(typeof res.body.message, "string", code);
  }
});

test("the engine writes into push results only the registry's per-op codes, each with the registry's status", async () => {
  // The catalog is the oracle: every function of the engine, as deployed (but the health check,
  // whose answer has a status of its own).
  const rows = await sql`
    select p.prosrc
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname in ('sync', 'public') and p.proname not like '%health%'`;
  const written = new Set<string>();
  const statuses = new Set<string>();
  for (const { prosrc } of rows) {
    const results = [
      ...prosrc.matchAll(/op_result\(\s*\w+\s*,\s*'(\w+)'(?:\s*,\s*'(\w+)')?/g),
      ...prosrc.matchAll(/'status'\s*,\s*'(\w+)'(?:\s*,\s*'code'\s*,\s*'(\w+)')?/g),
      ...prosrc.matchAll(/'(\w+)'\s+as\s+status\b()/g),
    ];
    for (const [, status, code] of results) {
      statuses.add(status);
      if (code) written.add(`${status}/${code}`);
    }
  }
  assert.deepEqual(
    [...written].sort(),
    opCodes.map((c) => `${OP_RESULT_CODES[c].status}/${c}`).sort(),
    "the codes written (status/code) are the registry's",
  );
  assert.deepEqual([...statuses].sort(), Object.keys(OP_STATUSES).sort(), "the statuses written are the registry's");
});

test("a push result says retryable exactly when the registry says so of its status, for every code", async () => {
  for (const code of opCodes) {
    const status = OP_RESULT_CODES[code].status;
    const [{ result }] = await sql`
      select sync.op_result(${JSON.stringify({ op_id: "x" })}::jsonb, ${status}, ${code}, 'm') as result`;
    assert.deepEqual(
      { status: result.status, code: result.code, retryable: result.retryable },
      { status, code, retryable: OP_STATUSES[status].retryable },
    );
  }
  for (const status of Object.keys(OP_STATUSES) as OpStatus[]) {
    const [{ result }] = await sql`
      select sync.op_result(${JSON.stringify({ op_id: "x" })}::jsonb, ${status}, p_row => '{}') as result`;
    assert.equal(result.retryable, OP_STATUSES[status].retryable, status);
  }
});

/** The rows of the markdown table that follows `heading` in docs/protocol.md, as cells. */
function tableAfter(heading: string): string[][] {
  const at = protocolDoc.indexOf(heading);
  assert.ok(at >= 0, `docs/protocol.md has "${heading}"`);
  const lines = protocolDoc.slice(at).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}
const codesIn = (cell: string) => [...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]);
type RequestErrorEntryShown = { status: number; sqlstate: string | null; retryable: boolean };

Deno.test("docs/protocol.md lists every request error with the registry's status, SQLSTATE and retryability, and nothing else", () => {
  const documented: Record<string, RequestErrorEntryShown> = {};
  for (const [status, code, sqlstate, retryable] of tableAfter("## Request-level errors")) {
    const [name] = codesIn(code);
    assert.ok(name && !(name in documented), `${code} is a code, listed once`);
    documented[name] = {
      status: Number(status),
      sqlstate: codesIn(sqlstate)[0] ?? null,
      retryable: /^yes/.test(retryable),
    };
  }
  assert.deepEqual(
    documented,
    Object.fromEntries(
      requestCodes.map((c) => {
        const { status, sqlstate, retryable } = REQUEST_ERRORS[c];
        return [c, { status, sqlstate, retryable }];
      }),
    ),
  );
});

Deno.test("docs/protocol.md lists every per-op result code with the registry's status, and every status", () => {
  const documented: Record<string, string> = {};
  const statuses = new Set<string>();
  for (const [status, codes] of tableAfter("Result codes (")) {
    const [name] = codesIn(status);
    statuses.add(name);
    for (const code of codesIn(codes)) {
      assert.ok(!(code in documented), `${code} is listed once`);
      documented[code] = name;
    }
  }
  assert.deepEqual(documented, Object.fromEntries(opCodes.map((c) => [c, OP_RESULT_CODES[c].status])));
  assert.deepEqual([...statuses].sort(), Object.keys(OP_STATUSES).sort());
});
