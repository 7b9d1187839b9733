// Request bodies of the protocol (docs/protocol.md). The SQL API checks the same rules again for
// RPC callers; here they produce 400s with the failing paths before a database round trip.
import { z } from "npm:zod@4.6.7";

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "expected a uuid");
const row = z.record(z.string(), z.unknown());

const op = z
  .strictObject({
    op_id: uuid,
    table: z.string().min(1).max(63),
    op: z.enum(["insert", "update", "delete"]),
    id: uuid,
    base_version: z.int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
    data: row.nullable().optional(),
    base: row.nullable().optional(),
  })
  .superRefine((o, ctx) => {
    if (o.op !== "delete" && (o.data === undefined || o.data === null)) {
      ctx.addIssue({ code: "custom", path: ["data"], message: `required for ${o.op}` });
    }
    if (o.op === "delete" && (o.base_version === undefined || o.base_version === null)) {
      ctx.addIssue({ code: "custom", path: ["base_version"], message: "required for delete" });
    }
  });

export const pushV2 = z
  .strictObject({
    protocol: z.literal(2),
    client_id: uuid,
    ops: z.array(op),
  })
  .superRefine((body, ctx) => {
    const seen = new Map<string, number>();
    body.ops.forEach((o, i) => {
      const key = o.op_id.toLowerCase();
      if (seen.has(key)) {
        ctx.addIssue({
          code: "custom",
          path: ["ops", i, "op_id"],
          message: `duplicate op_id (also ops[${seen.get(key)}])`,
        });
      } else seen.set(key, i);
    });
  });

// The legacy queue items keep whatever else the old app stored beside them (retry counts, errors).
const legacyItem = z.looseObject({
  id: z.union([z.int(), z.string().min(1)]),
  entityType: z.string().min(1).max(63),
  entityId: uuid,
  operation: z.enum(["create", "update", "delete"]),
  payload: row.nullable().optional(),
  createdAt: z.string().min(1),
}).superRefine((item, ctx) => {
  if (item.operation !== "delete" && !item.payload) {
    ctx.addIssue({ code: "custom", path: ["payload"], message: `required for ${item.operation}` });
  }
});

export const pushV1 = z.looseObject({
  protocol: z.literal(1),
  client_id: uuid,
  items: z.array(legacyItem),
});

export const pull = z.strictObject({
  protocol: z.union([z.literal(1), z.literal(2)]),
  cursor: z.string().max(4096).nullable().optional(),
  tables: z.array(z.string().min(1).max(63)).max(100).optional(),
  limit: z.int().min(1).max(1_000_000).optional(),
});

export type Issue = { path: (string | number)[]; message: string };

const MAX_DEPTH = 64;

// JSON text can carry what PostgreSQL's jsonb cannot take: U+0000, an unpaired UTF-16 surrogate,
// nesting deep enough to exhaust the parser's stack, or a number beyond what numeric holds. Sent on,
// such a body fails in the database as a 500 on every retry. The strings and the nesting are found
// here (iteratively, whatever the depth) as a 400 naming the path; the numbers in numbers.ts.
// `scan` is what one pass over the JSON text found: a text that cannot hold any of it (nearly every
// body) is not walked.
export function unstorableIssues(body: unknown, scan: TextScan): Issue[] {
  if (!scan.walk) return [];
  const issues: Issue[] = [];
  const text = (s: string) =>
    s.includes("\u0000")
      ? "contains U+0000 (NUL), which cannot be stored"
      : s.isWellFormed()
      ? null
      : "contains an unpaired surrogate, which is not valid Unicode";
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: body, path: [] }];
  while (stack.length && issues.length < 50) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      const problem = text(value);
      if (problem) issues.push({ path, message: problem });
    } else if (value !== null && typeof value === "object") {
      if (path.length >= MAX_DEPTH) {
        issues.push({ path, message: `nested deeper than ${MAX_DEPTH} levels` });
        continue;
      }
      const entries: [string | number, unknown][] = Array.isArray(value)
        ? value.map((v, i) => [i, v])
        : Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, v] = entries[i];
        const problem = typeof key === "string" ? text(key) : null;
        if (problem) issues.push({ path: [...path, key], message: `the key ${problem}` });
        stack.push({ value: v, path: [...path, key] });
      }
    }
  }
  return issues.slice(0, 50);
}

/** What one pass over a JSON text found that the database may not take. */
export interface TextScan {
  /** The parsed value must be walked: a string or key may hold U+0000 or an unpaired surrogate, or the nesting is too deep. */
  walk: boolean;
  /** A number may be beyond what numeric holds: it has an exponent, or more than 1000 characters. */
  numbers: boolean;
}

// A number token of at most this many characters and without an exponent always fits numeric.
const PLAIN_NUMBER_CHARS = 1000;

// What unstorableIssues looks for can be in the JSON text only as an escape (\u0000, \ud800 to
// \udfff: the body was decoded as strict UTF-8, and JSON allows no raw control characters) or as
// brackets nested deeper than MAX_DEPTH; a number the database cannot hold only outside strings, as
// a digit followed by an exponent or as a long run of number characters. One scan of the text is
// cheaper than a walk of the parsed value, and nearly every body needs nothing more.
export function scanText(text: string): TextScan {
  let walk = /\\u(?:0000|d[89a-f])/i.test(text);
  let numbers = false;
  let depth = 0;
  let inString = false;
  let run = 0; // characters of the number token being read
  let afterDigit = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65 || c === 0x45) {
      // An "e" after a digit is an exponent (the "e" of true and false follows a letter).
      if ((c === 0x65 || c === 0x45) && afterDigit) numbers = true;
      if (++run > PLAIN_NUMBER_CHARS) numbers = true;
      afterDigit = c >= 0x30 && c <= 0x39;
      continue;
    }
    run = 0;
    afterDigit = false;
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_DEPTH) walk = true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return { walk, numbers };
}

export function issuesOf(error: z.ZodError): Issue[] {
  return error.issues.slice(0, 50).map((i) => ({
    path: i.path.map((p) => (typeof p === "symbol" ? String(p) : p)),
    message: i.message,
  }));
}
