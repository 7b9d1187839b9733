// The registry of the protocol's codes, the one place each is defined: the request-level errors
// (HTTP status, the SQLSTATE the SQL API raises for it, whether the same request may be sent again)
// and the per-op result codes of a push. The function answers from it (errors.ts), the OpenAPI
// description lists it, and error_codes.test.ts holds the SQL map (sync.request_error_codes), the
// codes the engine's functions write into op results and docs/protocol.md to it.

export interface RequestErrorEntry {
  /** The HTTP status the function answers with. */
  readonly status: number;
  /** The SQLSTATE sync.request_error raises for it (RPC callers see this), or null when only the function answers it. */
  readonly sqlstate: string | null;
  /** Whether sending the same request again can succeed (after the step the meaning names). */
  readonly retryable: boolean;
  readonly meaning: string;
}

export const REQUEST_ERRORS = {
  invalid_request: {
    status: 400,
    sqlstate: "SYRQ1",
    retryable: false,
    meaning: "The body is not JSON (UTF-8), fails the schema, or holds JSON the database cannot store; " +
      "`details` lists each problem as {path, message}.",
  },
  invalid_cursor: {
    status: 400,
    sqlstate: "SYCR1",
    retryable: false,
    meaning: "The cursor was not issued by this server, was altered, or was issued to another user.",
  },
  missing_token: {
    status: 401,
    sqlstate: "SYAU1",
    retryable: false,
    meaning: "No bearer token (through the RPC: no user in the claims).",
  },
  invalid_token: {
    status: 401,
    sqlstate: null,
    retryable: false,
    meaning: "The token is not a user's access token of this project: signature, algorithm, audience, " +
      "issuer, role or subject refused.",
  },
  token_expired: {
    status: 401,
    sqlstate: null,
    retryable: true,
    meaning: "The access token has expired: refresh the session, then send the same request again.",
  },
  not_staff: {
    status: 403,
    sqlstate: "SYST1",
    retryable: false,
    meaning: "The token's user has no staff profile; nothing was read or written.",
  },
  account_inactive: {
    status: 403,
    sqlstate: "SYST2",
    retryable: false,
    meaning: "The user's staff profile is closed, or the user is banned or deleted; nothing was read or written.",
  },
  not_found: {
    status: 404,
    sqlstate: null,
    retryable: false,
    meaning: "Unknown route.",
  },
  method_not_allowed: {
    status: 405,
    sqlstate: null,
    retryable: false,
    meaning: "Wrong verb for the route; the `Allow` header lists the right one.",
  },
  too_large: {
    status: 413,
    sqlstate: "SYLM1",
    retryable: false,
    meaning: "More ops than the batch limit, or a body over the byte limit (the message says which).",
  },
  unsupported_protocol: {
    status: 426,
    sqlstate: "SYPR1",
    retryable: false,
    meaning: "The `protocol` is not served; the body's `supported` lists the ones that are.",
  },
  unavailable: {
    status: 503,
    sqlstate: null,
    retryable: true,
    meaning: "The database had no connection to give (its or the pooler's connection limit reached, no " +
      "pooled connection free in time, or the database unreachable). Wait the `Retry-After` seconds, then " +
      "send the same request again (a push that did commit comes back as duplicates).",
  },
  replica_behind: {
    status: 503,
    sqlstate: "SYRP1",
    retryable: true,
    meaning: "A read replica has not yet replayed what the pull asks for (its cursor, or `min_lsn`). The function " +
      "serves such a pull from the primary, so only a caller of the SQL API on a replica sees it; retry shortly.",
  },
  busy: {
    status: 503,
    sqlstate: "SYBZ1",
    retryable: true,
    meaning: "The read replica cancelled the pull's query to replay a change that conflicted with it, or a commit " +
      "the pull's window counts as visible was not yet visible on the server reading it; nothing was read. Send " +
      "the same request again after `Retry-After` seconds.",
  },
  internal: {
    status: 500,
    sqlstate: null,
    retryable: true,
    meaning: "Anything else; nothing of the request stays committed. Retry with backoff.",
  },
} as const satisfies Record<string, RequestErrorEntry>;

export type RequestErrorCode = keyof typeof REQUEST_ERRORS;

/** The status of a push op's result. */
export interface OpStatusEntry {
  /** The result's `retryable`: true exactly for `failed`, whose outcomes are not recorded, so the op may be sent again. */
  readonly retryable: boolean;
  readonly meaning: string;
}

export const OP_STATUSES = {
  applied: {
    retryable: false,
    meaning: "Took effect; `row` is the new server state (with `conflict` when applied over a concurrent change).",
  },
  duplicate: {
    retryable: false,
    meaning: "Processed before for this user; the original result is repeated with `original_status`.",
  },
  rejected: { retryable: false, meaning: "Not applied, for good; `code` says why." },
  conflict: {
    retryable: false,
    meaning: "Not applied: the row changed since `base_version` and the table's strategy keeps the server's.",
  },
  failed: { retryable: true, meaning: "Not applied, for a passing reason; not recorded, so the op may be retried." },
} as const satisfies Record<string, OpStatusEntry>;

export type OpStatus = keyof typeof OP_STATUSES;

export interface OpResultCodeEntry {
  /** The status a result with this code has when the op is first processed (a duplicate's `original_status`). */
  readonly status: Exclude<OpStatus, "applied" | "duplicate">;
  readonly meaning: string;
}

export const OP_RESULT_CODES = {
  op_id_reused: {
    status: "rejected",
    meaning: "The op_id was used before, by this user, for a different op; a new op needs a new op_id.",
  },
  not_found: {
    status: "rejected",
    meaning: "Update or delete of a row that does not exist or that the caller cannot see.",
  },
  already_exists: { status: "rejected", meaning: "Insert of an id that exists." },
  forbidden: { status: "rejected", meaning: "A field rule or a scope rule refused it; the message names the rule." },
  invalid: {
    status: "rejected",
    meaning: "A value the column refuses or would not keep as sent, an unknown column or table; `field` names it.",
  },
  deleted: { status: "rejected", meaning: "Update of a deleted row: deleted rows are never resurrected; audited." },
  stale: {
    status: "conflict",
    meaning: "The row changed since `base_version` under `server_wins` or `manual`; `row` is the server's state.",
  },
  dependency_missing: {
    status: "failed",
    meaning: "The parent row is not on the server yet; retry after pushing it.",
  },
  blocked: { status: "failed", meaning: "An earlier op on the same row in this request was not applied." },
  busy: { status: "failed", meaning: "The row was busy (a lock or serialization failure); retry with backoff." },
  server_error: { status: "failed", meaning: "The server could not apply this op; retry with backoff." },
} as const satisfies Record<string, OpResultCodeEntry>;

export type OpResultCode = keyof typeof OP_RESULT_CODES;

/** The request-level error a SQLSTATE of the SQL API stands for, if it is one. */
export function requestErrorOfSqlstate(sqlstate: string): RequestErrorCode | undefined {
  return (Object.keys(REQUEST_ERRORS) as RequestErrorCode[]).find((code) => REQUEST_ERRORS[code].sqlstate === sqlstate);
}
