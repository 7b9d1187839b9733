// Request-level errors of the protocol: a stable code clients can act on, answered with the HTTP
// status the registry (error_codes.ts) gives it, so no code can travel with another status.
import { PROTOCOLS } from "./contract.ts";
import { REQUEST_ERRORS, type RequestErrorCode, requestErrorOfSqlstate } from "./error_codes.ts";

export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: RequestErrorCode,
    message: string,
    readonly details?: unknown,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = REQUEST_ERRORS[code].status;
  }
}

/** The refusal of a protocol outside PROTOCOLS, with the list clients may fall back to. */
export function unsupportedProtocol(message: string): HttpError {
  return new HttpError("unsupported_protocol", message, undefined, { supported: PROTOCOLS });
}

// The SQL API raises its request-level errors with the SQLSTATEs of the same registry
// (sync.request_error); they reach the client as the function's own would.
export function fromDatabaseError(err: unknown): HttpError | null {
  const e = err as { code?: string; message?: string; detail?: string };
  const code = typeof e?.code === "string" ? requestErrorOfSqlstate(e.code) : undefined;
  if (!code) return null;
  let details: unknown;
  try {
    details = e.detail ? JSON.parse(e.detail) : undefined;
    if (Array.isArray(details) && details.length === 0) details = undefined;
  } catch {
    details = undefined;
  }
  const message = e.message ?? code;
  return code === "unsupported_protocol" ? unsupportedProtocol(message) : new HttpError(code, message, details);
}
