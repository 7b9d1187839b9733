// The protocol versions, the uuid rule and the bounds of a request's values are defined once on the
// TypeScript side (supabase/functions/sync/contract.ts); the SQL side spells them in its own terms
// (sync.is_uuid, the protocols sync.normalize_push, public.sync_pull and public.sync_health serve,
// sync.request_limits()). These tests hold the two to the same answers.
import assert from "node:assert/strict";
import fc from "fast-check";
import { fitsBytes, isServedProtocol, PROTOCOLS, REQUEST_LIMITS, UUID } from "../sync/contract.ts";
import { uuid as uuidSchema } from "../sync/schemas.ts";
import { call, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

const SEED = Number(Deno.env.get("FC_SEED") ?? 20261125);
const RUNS = Number(Deno.env.get("FC_RUNS") ?? 60);

const sample = "6f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a01";
const edgeCases: unknown[] = [
  sample,
  sample.toUpperCase(),
  "6F1c2B1e-8A0e-4a56-9a51-3C1f3f6f0A01",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  `{${sample}}`,
  `urn:uuid:${sample}`,
  sample.replaceAll("-", ""),
  ` ${sample}`,
  `${sample} `,
  `${sample}\n`,
  `\n${sample}`,
  sample.slice(1),
  sample.slice(0, -1),
  `${sample}0`,
  sample.replace("6f1c2b1e-8a0e", "6f1c2b1e8-a0e"), // a dash moved: the length and the count stay
  sample.replace("-4a56-", "-4a5--"), // a dash for a digit: 36 characters, 31 digits
  sample.replace("a01", "-01"),
  "6f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a0g",
  "6f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a0G",
  "６f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a01", // a full-width digit
  "6f1c2b1e_8a0e_4a56_9a51_3c1f3f6f0a01",
  "%f1c2b1e-8a0e-4a56-9a51-3c1f3f6f0a01",
  "------------------------------------",
  "",
  "-",
  null,
  0,
  12345678,
  true,
  [sample],
  { id: sample },
];

/** Strings near a uuid's shape: hex digits and dashes in roughly the right number, and some strays. */
const nearUuid = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF-"), minLength: 34, maxLength: 38 }),
  fc.tuple(fc.uuid(), fc.nat(35), fc.constantFrom("-", "g", " ", "_", "\u00e9", "{", "0", "")).map(([u, at, c]) =>
    u.slice(0, at) + c + u.slice(at + 1)
  ),
  fc.string({ maxLength: 40 }),
);

/** What the database answers for each value: sync.is_uuid of the value as jsonb. */
async function sqlIsUuid(values: unknown[]): Promise<boolean[]> {
  const rows = await sql`
    select v.ok from (select sync.is_uuid(e.value) as ok, e.n
                        from jsonb_array_elements(${
    JSON.stringify(values)
  }::text::jsonb) with ordinality e (value, n)) v
     order by v.n`;
  return rows.map((r) => r.ok);
}

test("sync.is_uuid takes exactly the values the protocol's uuid rule takes: hand-picked edge cases", async () => {
  const answers = await sqlIsUuid(edgeCases);
  edgeCases.forEach((value, i) => {
    const expected = typeof value === "string" && UUID.test(value);
    assert.equal(uuidSchema.safeParse(value).success, expected, `the function's schema on ${JSON.stringify(value)}`);
    assert.equal(answers[i], expected, `sync.is_uuid(${JSON.stringify(value)})`);
  });
  assert.ok(answers.filter(Boolean).length >= 5 && answers.filter((a) => !a).length >= 20, "both answers are met");
});

test("sync.is_uuid takes exactly the strings the protocol's uuid rule takes: generated strings", async () => {
  // PostgreSQL's text holds neither U+0000 nor an unpaired surrogate; the function refuses both first.
  const values = fc.sample(nearUuid, { numRuns: 40 * RUNS, seed: SEED })
    .filter((s) => !s.includes("\u0000") && s.isWellFormed());
  const answers = await sqlIsUuid(values);
  const disagreements = values.filter((v, i) => answers[i] !== UUID.test(v));
  assert.deepEqual(disagreements, [], "strings the two rules answer differently");
  assert.ok(answers.filter(Boolean).length > values.length / 10, "a fair share of the strings are uuids");
});

/** The protocol numbers to try: the served ones, their neighbours, and numbers no version is. */
const candidates = [...new Set([...PROTOCOLS, ...PROTOCOLS.map((p) => p + 1), ...PROTOCOLS.map((p) => p - 1)])]
  .concat([-1, 1.5, 2.25, 1e6]);

/** The SQLSTATE the SQL side raises for a body, or "ok". */
async function sqlState(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

test("the SQL push serves exactly PROTOCOLS: sync.normalize_push takes them and refuses every other number with SYPR1", async () => {
  for (const protocol of candidates) {
    // The list each protocol reads, and nothing else: protocol 2 takes no other keys.
    const body = { protocol, client_id: uuid(), ...(protocol === 1 ? { items: [] } : { ops: [] }) };
    const state = await sqlState(() =>
      sql.begin(async (tx) => {
        await tx`set local role sync_engine`;
        await tx`select sync.normalize_push(${JSON.stringify(body)}::text::jsonb)`;
      })
    );
    assert.equal(state, isServedProtocol(protocol) ? "ok" : "SYPR1", `protocol ${protocol}`);
  }
});

test("the SQL pull serves exactly PROTOCOLS: public.sync_pull refuses every other number with SYPR1 and a message listing them", async () => {
  const claims = JSON.stringify({ sub: users.rm1Jakarta.id, role: "authenticated" });
  for (const protocol of candidates) {
    let message = "";
    // A served protocol gets past the protocol check to the cursor's: a cursor not issued here.
    const state = await sqlState(() =>
      sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claims}, true)`;
        await tx`select public.sync_pull(${JSON.stringify({ protocol, cursor: "not-a-cursor" })}::text::jsonb)`;
      }).catch((err) => {
        message = err.message;
        throw err;
      })
    );
    const served = isServedProtocol(protocol);
    assert.equal(state, served ? "SYCR1" : "SYPR1", `protocol ${protocol}: ${message}`);
    if (!served) assert.ok(message.endsWith(`supported: ${JSON.stringify(PROTOCOLS)}`), message);
  }
});

test("sync_health and GET /sync/health list PROTOCOLS, and a 426 names them as supported", async () => {
  const [{ health }] = await sql`select public.sync_health() as health`;
  assert.deepEqual(health.protocols, PROTOCOLS);
  const res = await call("/health");
  assert.deepEqual(res.body.protocols, PROTOCOLS);
  const token = await tokenFor(users.rm1Jakarta);
  for (const route of ["/push", "/pull"]) {
    const refused = await call(route, { protocol: Math.max(...PROTOCOLS) + 1, client_id: uuid(), ops: [] }, { token });
    assert.equal(refused.status, 426, refused.text);
    assert.deepEqual(refused.body.supported, PROTOCOLS, route);
  }
});

test("the SQL door's bounds are the schemas': sync.request_limits() is REQUEST_LIMITS", async () => {
  const [row] = await sql`select to_jsonb(l) as limits from sync.request_limits() l`;
  assert.deepEqual(row.limits, {
    name_bytes: REQUEST_LIMITS.nameBytes,
    cursor_bytes: REQUEST_LIMITS.cursorBytes,
    whole_number_max: REQUEST_LIMITS.wholeNumberMax,
    pull_limit_max: REQUEST_LIMITS.pullLimitMax,
    pull_tables_max: REQUEST_LIMITS.pullTablesMax,
  });
});

test("a string's bytes are counted as PostgreSQL's octet_length counts them, on either side of each bound", async () => {
  const strings = fc.sample(fc.string({ unit: "binary", maxLength: 70 }), { numRuns: 20 * RUNS, seed: SEED })
    .concat(["", "x".repeat(63), "x".repeat(64), "é".repeat(31), "é".repeat(32), "€".repeat(21), "€".repeat(22)])
    .concat(["😀".repeat(15) + "xxx", "😀".repeat(16), "c".repeat(65536), "c".repeat(65537), "é".repeat(32768)])
    .filter((s) => !s.includes("\u0000") && s.isWellFormed());
  const rows = await sql`select octet_length(e.value #>> '{}') as bytes
                           from jsonb_array_elements(${JSON.stringify(strings)}::text::jsonb) with ordinality e
                          order by e.ordinality`;
  const disagreements = strings.filter((s, i) =>
    [REQUEST_LIMITS.nameBytes, REQUEST_LIMITS.cursorBytes].some((max) => fitsBytes(s, max) !== rows[i].bytes <= max)
  );
  assert.deepEqual(disagreements, []);
  assert.ok(rows.some((r) => r.bytes > REQUEST_LIMITS.nameBytes) && rows.some((r, i) => r.bytes > strings[i].length));
});
