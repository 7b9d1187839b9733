// Configuration from the environment, with defaults a production deployment can keep.
export interface Config {
  supabaseUrl: string;
  dbUrl: string;
  jwtSecret: string | null;
  jwtIssuer: string | null;
  jwksUrl: string | null;
  maxOps: number;
  maxBodyBytes: number;
  maxPageSize: number;
  dbPoolSize: number;
  corsOrigin: string;
  log: boolean;
}

function int(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number, got ${raw}`);
  return n;
}

export function loadConfig(): Config {
  const supabaseUrl = (Deno.env.get("SUPABASE_URL") ?? "").replace(/\/$/, "");
  const dbUrl = Deno.env.get("SUPABASE_DB_URL") ?? "";
  if (!dbUrl) throw new Error("SUPABASE_DB_URL is not set");
  return {
    supabaseUrl,
    dbUrl,
    // The legacy HS256 secret is optional: projects on asymmetric signing keys verify through JWKS only.
    jwtSecret: Deno.env.get("SYNC_JWT_SECRET") ?? Deno.env.get("SUPABASE_JWT_SECRET") ?? null,
    jwtIssuer: Deno.env.get("SYNC_JWT_ISSUER") ?? null,
    jwksUrl: Deno.env.get("SYNC_JWKS_URL") ?? (supabaseUrl ? `${supabaseUrl}/auth/v1/.well-known/jwks.json` : null),
    maxOps: int("SYNC_MAX_OPS", 1000),
    maxBodyBytes: int("SYNC_MAX_BODY_BYTES", 5 * 1024 * 1024),
    maxPageSize: int("SYNC_MAX_PAGE_SIZE", 2000),
    dbPoolSize: int("SYNC_DB_POOL_SIZE", 10),
    corsOrigin: Deno.env.get("SYNC_CORS_ORIGIN") ?? "*",
    log: Deno.env.get("SYNC_LOG") !== "off",
  };
}
