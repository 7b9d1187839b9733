// Configuration from the environment, with defaults a production deployment can keep.
export interface Config {
  supabaseUrl: string;
  dbUrl: string;
  /** A read replica (a hot standby of dbUrl's cluster) that serves pulls, or null for the primary alone. */
  readDbUrl?: string | null;
  jwtSecret: string | null;
  jwtIssuer: string | null;
  jwksUrl: string | null;
  maxOps: number;
  maxBodyBytes: number;
  maxPageSize: number;
  dbPoolSize: number;
  /** The seconds an `unavailable` answer's Retry-After asks the client to wait. */
  retryAfterSeconds: number;
  corsOrigin: string;
  log: boolean;
  /**
   * POST /sync/probe, for `npm run bench` only (SYNC_BENCH_PROBE=on): the pull's door (token, body,
   * transaction as the user) around `select 1`, the baseline of the empty delta pull. Off by default.
   */
  benchProbe?: boolean;
}

function int(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number, got ${raw}`);
  return n;
}

// Hosted Supabase hands a function its project's URL, https://<ref>.supabase.co, and Supabase Auth
// issues the project's tokens as https://<ref>.supabase.co/auth/v1 (a custom domain changes neither).
// Elsewhere SUPABASE_URL is no guide to the issuer (under `supabase functions serve` it is the
// internal gateway), so nothing is derived and SYNC_JWT_ISSUER is the way to name it.
const HOSTED_PROJECT_URL = /^https:\/\/([a-z0-9]+)\.supabase\.co\/?$/i;

export function hostedIssuer(supabaseUrl: string): string | null {
  const ref = HOSTED_PROJECT_URL.exec(supabaseUrl)?.[1];
  return ref ? `https://${ref.toLowerCase()}.supabase.co/auth/v1` : null;
}

export function loadConfig(): Config {
  const supabaseUrl = (Deno.env.get("SUPABASE_URL") ?? "").replace(/\/$/, "");
  // Hosted Supabase sets SUPABASE_DB_URL itself and keeps the SUPABASE_ names to itself, so the
  // transaction pooler (port 6543) is named by SYNC_DB_URL, which wins when set (not empty).
  const dbUrl = Deno.env.get("SYNC_DB_URL") || (Deno.env.get("SUPABASE_DB_URL") ?? "");
  if (!dbUrl) throw new Error("neither SYNC_DB_URL nor SUPABASE_DB_URL is set");
  return {
    supabaseUrl,
    dbUrl,
    readDbUrl: Deno.env.get("SYNC_READ_DB_URL") || null,
    // The legacy HS256 secret is optional: projects on asymmetric signing keys verify through JWKS only.
    jwtSecret: Deno.env.get("SYNC_JWT_SECRET") ?? Deno.env.get("SUPABASE_JWT_SECRET") ?? null,
    // The token's iss must be this: SYNC_JWT_ISSUER when set (not empty), else the hosted project's.
    jwtIssuer: Deno.env.get("SYNC_JWT_ISSUER") || hostedIssuer(supabaseUrl),
    jwksUrl: Deno.env.get("SYNC_JWKS_URL") ?? (supabaseUrl ? `${supabaseUrl}/auth/v1/.well-known/jwks.json` : null),
    maxOps: int("SYNC_MAX_OPS", 1000),
    maxBodyBytes: int("SYNC_MAX_BODY_BYTES", 5 * 1024 * 1024),
    maxPageSize: int("SYNC_MAX_PAGE_SIZE", 2000),
    dbPoolSize: int("SYNC_DB_POOL_SIZE", 10),
    retryAfterSeconds: int("SYNC_RETRY_AFTER_SECONDS", 2),
    corsOrigin: Deno.env.get("SYNC_CORS_ORIGIN") ?? "*",
    log: Deno.env.get("SYNC_LOG") !== "off",
    benchProbe: Deno.env.get("SYNC_BENCH_PROBE") === "on",
  };
}
