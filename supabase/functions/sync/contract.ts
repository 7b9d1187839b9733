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
