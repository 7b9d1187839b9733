// Request bodies of the protocol (docs/protocol.md). The SQL API checks the same rules again for
// RPC callers, with the same bounds (REQUEST_LIMITS, sync.request_limits()), and differential.test.ts
// holds the two to the same verdicts and paths; here they produce 400s with the failing paths before
// a database round trip. The descriptions travel into docs/openapi.json.
import { z } from "zod";
import { fitsBytes, isServedProtocol, PROTOCOLS, REQUEST_LIMITS, UUID, UUID_PATTERN } from "./contract.ts";
import { HttpError, unsupportedProtocol } from "./errors.ts";

export const uuid = z.string().regex(UUID, "expected a uuid").meta({
  description: `A uuid: 8-4-4-4-12 hex digits, either case (${UUID_PATTERN}).`,
});
/**
 * A string of at least `min` characters and at most `maxBytes` bytes of UTF-8, as the database
 * counts it. The length in characters (never more than the bytes) is checked first, and is what the
 * OpenAPI description can say (maxLength); the bytes then, for a string short in characters. Either
 * way one issue, worded alike.
 */
function boundedString(min: number, maxBytes: number) {
  const tooBig = `Too big: expected at most ${maxBytes} bytes of UTF-8`;
  return (min > 0 ? z.string().min(min) : z.string()).max(maxBytes, tooBig)
    .refine((s) => s.length > maxBytes || fitsBytes(s, maxBytes), tooBig);
}
const { nameBytes, cursorBytes, wholeNumberMax, pullLimitMax, pullTablesMax } = REQUEST_LIMITS;

const row = z.record(z.string(), z.unknown()).meta({
  description: "Column values by column name, as the table's columns keep them (docs/protocol.md, Values).",
});

export const pushOp = z
  .strictObject({
    op_id: uuid.meta({ description: "The op's idempotency key: unique per user, kept across retries." }),
    table: boundedString(1, nameBytes).meta({ description: `A syncable table (at most ${nameBytes} bytes of UTF-8).` }),
    op: z.enum(["insert", "update", "delete"]),
    id: uuid.meta({ description: "The row's id." }),
    base_version: z.int().min(0).max(wholeNumberMax).nullable().optional().meta({
      description: "The row version the edit was based on. Required for delete; an update without it is an " +
        "explicit last-write-wins.",
    }),
    data: row.nullable().optional().meta({ description: "The values to write. Required for insert and update." }),
    base: row.nullable().optional().meta({
      description: "The values the edit started from, for the field merge of a stale update.",
    }),
  })
  .superRefine((o, ctx) => {
    if (o.op !== "delete" && (o.data === undefined || o.data === null)) {
      ctx.addIssue({ code: "custom", path: ["data"], message: `required for ${o.op}` });
    }
    if (o.op === "delete" && (o.base_version === undefined || o.base_version === null)) {
      ctx.addIssue({ code: "custom", path: ["base_version"], message: "required for delete" });
    }
  })
  .meta({
    description: "One queued edit. No other keys are accepted.",
    // What the refinement above checks, said in JSON Schema for the OpenAPI description.
    if: { properties: { op: { const: "delete" } } },
    then: { required: ["base_version"], properties: { base_version: { type: "integer" } } },
    else: { required: ["data"], properties: { data: { type: "object" } } },
  });

export const pushV2 = z
  .strictObject({
    protocol: z.literal(2),
    client_id: uuid.meta({ description: "The device." }),
    ops: z.array(pushOp).meta({ description: "The edits, in the order they were made; each op_id at most once." }),
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
  })
  .meta({ description: "A push, protocol 2." });

// The legacy queue items keep whatever else the old app stored beside them (retry counts, errors).
export const legacyItem = z.looseObject({
  id: z.union([z.int().min(-wholeNumberMax).max(wholeNumberMax), z.string().min(1)]).meta({
    description: "The row id of the app's sync_queue.",
  }),
  entityType: boundedString(1, nameBytes).meta({
    description: "The registry's entity name (customer, keyPerson, ...), its snake_case form or the table name " +
      `(at most ${nameBytes} bytes of UTF-8).`,
  }),
  entityId: uuid.meta({ description: "The row's id." }),
  operation: z.enum(["create", "update", "delete"]),
  payload: row.nullable().optional().meta({
    description: "The entity as the device last saw it, camelCase keys. Required for create and update.",
  }),
  createdAt: z.string().min(1).meta({ description: "When the item was queued (with id, the item's identity)." }),
}).superRefine((item, ctx) => {
  if (item.operation !== "delete" && !item.payload) {
    ctx.addIssue({ code: "custom", path: ["payload"], message: `required for ${item.operation}` });
  }
}).meta({
  description: "A legacy device queue item; other keys are kept by the app and ignored.",
  // What the refinement above checks, said in JSON Schema for the OpenAPI description.
  if: { properties: { operation: { const: "delete" } } },
  else: { required: ["payload"], properties: { payload: { type: "object" } } },
});

export const pushV1 = z.looseObject({
  protocol: z.literal(1),
  client_id: uuid.meta({ description: "The device." }),
  items: z.array(legacyItem),
}).meta({ description: "A push of the legacy device queue, protocol 1." });

export const pull = z.strictObject({
  protocol: z.literal(PROTOCOLS),
  cursor: boundedString(0, cursorBytes).nullable().optional().meta({
    description: `The cursor of the last page, or null (or absent) for a first pull (at most ${cursorBytes} bytes).`,
  }),
  tables: z.array(boundedString(1, nameBytes)).max(pullTablesMax).optional().meta({
    description: "Syncable tables (and `conflicts`) to pull; all of them when absent. A cursor belongs to one set.",
  }),
  limit: z.int().min(1).max(pullLimitMax).optional().meta({
    description: "Most changes on the page: 500 when absent, clamped to the server's maximum.",
  }),
  min_lsn: z.string().regex(
    /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/,
    "expected a WAL position such as 0/16B3748 (a push's commit_lsn)",
  )
    .optional().meta({
      description: "The `commit_lsn` of the device's last push: the page is served by a read replica only once it " +
        "has replayed that far, else by the primary, so a device never pulls a state older than its own push.",
    }),
}).meta({ description: "A pull." });

export type PushRequest = z.infer<typeof pushV2> | z.infer<typeof pushV1>;
export type PullRequest = z.infer<typeof pull>;

function refuseUnservedProtocol(body: unknown) {
  const protocol = (body as { protocol?: unknown })?.protocol;
  if (typeof protocol === "number" && !isServedProtocol(protocol)) {
    throw unsupportedProtocol(`protocol ${protocol} is not served`);
  }
}

/**
 * A push body as the function checks it before the database sees it: the protocol, the number of
 * ops, the schema. Throws the HttpError the function answers with.
 */
export function checkPush(body: unknown, maxOps: number): PushRequest {
  refuseUnservedProtocol(body);
  // The list the protocol reads is the one counted: protocol 1's items whatever else the body
  // holds (an empty "ops" beside them let any number through). Only a real array counts: a string
  // or an object with a length is the schema's 400, not a 413.
  const { protocol, ops, items } = (body ?? {}) as { protocol?: unknown; ops?: unknown; items?: unknown };
  const list = protocol === 1 ? items : ops;
  const count = Array.isArray(list) ? list.length : undefined;
  if (count !== undefined && count > maxOps) {
    throw new HttpError("too_large", `a push carries at most ${maxOps} ops; this one has ${count}`);
  }
  const parsed = protocol === 1 ? pushV1.safeParse(body) : pushV2.safeParse(body);
  if (!parsed.success) {
    throw new HttpError("invalid_request", "the push request is not valid", issuesOf(parsed.error));
  }
  return parsed.data;
}

/** A pull body as the function checks it before the database sees it. */
export function checkPull(body: unknown): PullRequest {
  refuseUnservedProtocol(body);
  const parsed = pull.safeParse(body);
  if (!parsed.success) {
    throw new HttpError("invalid_request", "the pull request is not valid", issuesOf(parsed.error));
  }
  return parsed.data;
}

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
