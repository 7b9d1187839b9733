// The protocol's codes as the client kit needs them: a copy of the server's registry
// (supabase/functions/sync/error_codes.ts) reduced to what a client decides on, so that a browser
// bundle does not carry the server's code. tests/codes.test.ts holds this copy equal to the
// registry: a code added there fails that test until it is added here.

/** Each request-level error: its HTTP status, and whether the same request may be sent again. */
export const REQUEST_ERRORS = {
  invalid_request: { status: 400, retryable: false },
  invalid_cursor: { status: 400, retryable: false },
  missing_token: { status: 401, retryable: false },
  invalid_token: { status: 401, retryable: false },
  token_expired: { status: 401, retryable: true },
  not_staff: { status: 403, retryable: false },
  account_inactive: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  method_not_allowed: { status: 405, retryable: false },
  too_large: { status: 413, retryable: false },
  unsupported_protocol: { status: 426, retryable: false },
  unavailable: { status: 503, retryable: true },
  internal: { status: 500, retryable: true },
  replica_behind: { status: 503, retryable: true },
  busy: { status: 503, retryable: true },
} as const;

export type RequestErrorCode = keyof typeof REQUEST_ERRORS;

/** The status of a push op's result, and whether the op may be sent again (true exactly for `failed`). */
export const OP_STATUSES = {
  applied: { retryable: false },
  duplicate: { retryable: false },
  rejected: { retryable: false },
  conflict: { retryable: false },
  failed: { retryable: true },
} as const;

export type OpStatus = keyof typeof OP_STATUSES;

/** Each per-op result code and the status an op has when it is first processed with it. */
export const OP_RESULT_CODES = {
  op_id_reused: "rejected",
  not_found: "rejected",
  already_exists: "rejected",
  forbidden: "rejected",
  invalid: "rejected",
  deleted: "rejected",
  stale: "conflict",
  dependency_missing: "failed",
  blocked: "failed",
  busy: "failed",
  server_error: "failed",
} as const;

export type OpResultCode = keyof typeof OP_RESULT_CODES;

/**
 * The codes the kit gives ops it settles without the server, beside the registry's: an op that
 * depends on a create the server rejected (or that the app discarded) is `parent_rejected`; an op
 * the server refused as a request (a 400 naming it, or alone over the size limit) is held aside
 * with the request's code (`invalid_request`, `too_large`); a stored op of a queue format this
 * version of the kit cannot read is `unreadable_format`.
 */
export const LOCAL_CODES = {
  parent_rejected: "The op adds to or edits a row whose create was rejected or discarded.",
  unreadable_format:
    "The op was stored by a newer version of the app; it is kept, unsent, until one that reads it runs.",
} as const;

export type LocalCode = keyof typeof LOCAL_CODES;

/** Request errors after which the user must sign in again; pending edits are kept. */
export const SIGNED_OUT_CODES: readonly RequestErrorCode[] = [
  "missing_token",
  "invalid_token",
  "not_staff",
  "account_inactive",
];
