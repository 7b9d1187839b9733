// The protocol's own constants, each defined here once: the function, its schemas, its OpenAPI
// description and the tests read them from here, and contract.test.ts holds the SQL side
// (sync.is_uuid, the protocols sync_push and sync_pull serve, sync_health) to the same values.

/** The protocol versions served: 2, and 1 for the legacy device queue. */
export const PROTOCOLS = [1, 2] as const;
export type Protocol = typeof PROTOCOLS[number];

export function isServedProtocol(value: unknown): value is Protocol {
  return (PROTOCOLS as readonly unknown[]).includes(value);
}

/**
 * A uuid as the protocol takes it: 8-4-4-4-12 hex digits, either case, nothing around them (no
 * braces, no urn: prefix, no blanks). Spelled without flags so that the OpenAPI `pattern` says the
 * same as the regular expression.
 */
export const UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
export const UUID = new RegExp(UUID_PATTERN);

/**
 * The bounds of a request's values, which the schemas apply and the SQL door reads from
 * sync.request_limits() (contract.test.ts holds the two to the same numbers). Names and cursors are
 * counted in bytes of UTF-8: PostgreSQL counts an identifier so (63 bytes at most), and JavaScript,
 * SQL and JSON Schema, which count characters three different ways, count bytes alike.
 */
export const REQUEST_LIMITS = {
  /** A table or legacy entity name: PostgreSQL's longest identifier. */
  nameBytes: 63,
  /**
   * A pull cursor. Its two snapshots list the writing transactions open when each was taken (one at
   * most per connection), about 15 bytes each once encoded: this leaves room for some 2 000 at once,
   * where 4096 bytes was passed with about 128 open and refused cursors this server had issued.
   */
  cursorBytes: 65536,
  /** Versions and legacy queue ids: the largest whole number JavaScript reads exactly (2^53 - 1). */
  wholeNumberMax: Number.MAX_SAFE_INTEGER,
  /** The most changes a pull may ask for (the server clamps it to its page size). */
  pullLimitMax: 1_000_000,
  /** The most table names a pull may list. */
  pullTablesMax: 100,
} as const;

const utf8 = new TextEncoder();

/** Is a string at most `max` bytes of UTF-8, as PostgreSQL's octet_length counts them? */
export function fitsBytes(s: string, max: number): boolean {
  // A UTF-16 unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4): a short string
  // needs no encoding.
  return s.length * 3 <= max || utf8.encode(s).length <= max;
}
