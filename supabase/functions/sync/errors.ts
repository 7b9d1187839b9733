// Request-level errors of the protocol: an HTTP status and a stable code clients can act on.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// SQLSTATEs the SQL API raises for request-level problems (see migration sync_settings).
const SQLSTATE_TO_HTTP: Record<string, [number, string]> = {
  SYRQ1: [400, "invalid_request"],
  SYCR1: [400, "invalid_cursor"],
  SYPR1: [426, "unsupported_protocol"],
  SYLM1: [413, "too_large"],
  SYAU1: [401, "missing_token"],
  // A valid token of someone sync does not serve: no staff profile, or an account no longer active.
  SYST1: [403, "not_staff"],
  SYST2: [403, "account_inactive"],
};

export function fromDatabaseError(err: unknown): HttpError | null {
  const e = err as { code?: string; message?: string; detail?: string };
  const mapped = e?.code ? SQLSTATE_TO_HTTP[e.code] : undefined;
  if (!mapped) return null;
  let details: unknown;
  try {
    details = e.detail ? JSON.parse(e.detail) : undefined;
    if (Array.isArray(details) && details.length === 0) details = undefined;
  } catch {
    details = undefined;
  }
  const extra = mapped[1] === "unsupported_protocol" ? { supported: [1, 2] } : {};
  return new HttpError(mapped[0], mapped[1], e.message ?? mapped[1], details, extra);
}
