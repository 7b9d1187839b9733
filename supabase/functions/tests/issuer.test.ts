import assert from "node:assert/strict";
import * as jose from "jose";
import { loadConfig } from "../sync/config.ts";
import { env, test, users } from "./_helpers.ts";

// A token's `iss` must be the project's Auth. On hosted Supabase, SUPABASE_URL is the project's
// https://<ref>.supabase.co and its tokens' issuer is https://<ref>.supabase.co/auth/v1, so that
// is checked without configuration. Elsewhere (`supabase functions serve`, where SUPABASE_URL is
// the internal gateway, or a self-hosted stack) SUPABASE_URL says nothing about the issuer, and
// SYNC_JWT_ISSUER is the way to name it; it also overrides the derived one.

const HOSTED = "https://abcdefghijklmnopqrst.supabase.co";
const ROOT = new URL("../../../", import.meta.url).pathname;

/** loadConfig() under these variables (others as the process has them), restored afterwards. */
function configWith(vars: Record<string, string | undefined>) {
  const names = ["SUPABASE_URL", "SUPABASE_DB_URL", "SYNC_JWT_ISSUER", ...Object.keys(vars)];
  const saved = Object.fromEntries(names.map((n) => [n, Deno.env.get(n)]));
  try {
    Deno.env.delete("SYNC_JWT_ISSUER");
    Deno.env.set("SUPABASE_DB_URL", "postgres://unused");
    for (const [k, v] of Object.entries(vars)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    return loadConfig();
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

Deno.test("on hosted Supabase the issuer is derived from SUPABASE_URL: https://<ref>.supabase.co/auth/v1", () => {
  assert.equal(configWith({ SUPABASE_URL: HOSTED }).jwtIssuer, `${HOSTED}/auth/v1`);
  assert.equal(configWith({ SUPABASE_URL: `${HOSTED}/` }).jwtIssuer, `${HOSTED}/auth/v1`, "a trailing slash");
  assert.equal(
    configWith({ SUPABASE_URL: HOSTED, SYNC_JWT_ISSUER: "" }).jwtIssuer,
    `${HOSTED}/auth/v1`,
    "an empty variable is unset",
  );
});

Deno.test("SYNC_JWT_ISSUER names the issuer, and wins over the derived one", () => {
  assert.equal(
    configWith({ SUPABASE_URL: HOSTED, SYNC_JWT_ISSUER: "https://auth.example.com/auth/v1" }).jwtIssuer,
    "https://auth.example.com/auth/v1",
  );
  assert.equal(
    configWith({ SUPABASE_URL: "http://kong:8000", SYNC_JWT_ISSUER: "http://127.0.0.1:54321/auth/v1" }).jwtIssuer,
    "http://127.0.0.1:54321/auth/v1",
  );
});

Deno.test("where SUPABASE_URL is not a hosted project's, no issuer is derived from it", () => {
  for (
    const url of [
      "http://kong:8000", // supabase functions serve: the internal gateway
      "http://127.0.0.1:54321",
      "https://api.example.com", // self-hosted
      "http://abcdefghijklmnopqrst.supabase.co", // not https
      "https://abcdefghijklmnopqrst.supabase.co.example.com",
      "https://example.com/abcdefghijklmnopqrst.supabase.co",
      "https://abcdefghijklmnopqrst.supabase.co:8443",
      "https://a.b.supabase.co",
      "",
    ]
  ) {
    assert.equal(configWith({ SUPABASE_URL: url }).jwtIssuer, null, url);
  }
});

// -- Over HTTP: the function as deployed, with its own configuration ---------------------------------

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs the sync function with these variables (its keys from the test stack's JWKS) while `fn` runs. */
async function withFunction(vars: Record<string, string>, fn: (url: string) => Promise<void>) {
  const port = freePort();
  const inherited = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("SUPABASE_") && !k.startsWith("SYNC_")),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", "supabase/functions/sync/index.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: {
      ...inherited,
      SUPABASE_DB_URL: env.dbUrl,
      SYNC_JWKS_URL: `${env.apiUrl}/auth/v1/.well-known/jwks.json`,
      SYNC_JWT_SECRET: env.jwtSecret,
      SYNC_FUNCTION_PORT: String(port),
      SYNC_LOG: "off",
      ...vars,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/sync`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`${url}/health`);
        await res.body?.cancel();
        if (res.ok) break;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`the function did not start on ${url}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await fn(url);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

/** A user access token as Supabase Auth issues it, with this `iss` (none when null). */
async function tokenWithIssuer(iss: string | null, alg: "ES256" | "HS256" = "ES256"): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = alg === "ES256" ? await jose.importJWK(env.es256Jwk, "ES256") : new TextEncoder().encode(env.jwtSecret);
  const jwt = new jose.SignJWT({ aud: "authenticated", role: "authenticated", email: users.rm1Jakarta.email })
    .setProtectedHeader(alg === "ES256" ? { alg, kid: env.es256Jwk.kid, typ: "JWT" } : { alg, typ: "JWT" })
    .setSubject(users.rm1Jakarta.id)
    .setIssuedAt(now)
    .setExpirationTime(now + 600);
  if (iss !== null) jwt.setIssuer(iss);
  return await jwt.sign(key);
}

async function pullWith(url: string, token: string) {
  const res = await fetch(`${url}/pull`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ protocol: 2, cursor: null, tables: ["branches"], limit: 1 }),
  });
  return { status: res.status, body: await res.json() };
}

test("with a hosted SUPABASE_URL, a token of another issuer, or of none, is 401 invalid_token", async () => {
  await withFunction({ SUPABASE_URL: HOSTED }, async (url) => {
    const ok = await pullWith(url, await tokenWithIssuer(`${HOSTED}/auth/v1`));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    for (
      const [what, token] of [
        ["another project's issuer", await tokenWithIssuer("https://zyxwvutsrqponmlkjihg.supabase.co/auth/v1")],
        ["the project's URL without /auth/v1", await tokenWithIssuer(HOSTED)],
        ["no issuer", await tokenWithIssuer(null)],
        [
          "another issuer, legacy HS256",
          await tokenWithIssuer("https://zyxwvutsrqponmlkjihg.supabase.co/auth/v1", "HS256"),
        ],
      ] as const
    ) {
      const res = await pullWith(url, token);
      assert.equal(res.status, 401, `${what}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body, { error: "invalid_token", message: "the token's iss claim is not accepted" }, what);
    }
  });
});

test("with SYNC_JWT_ISSUER configured, a token of another issuer is 401 invalid_token", async () => {
  const issuer = "https://auth.example.test/auth/v1";
  await withFunction({ SUPABASE_URL: "http://kong:8000", SYNC_JWT_ISSUER: issuer }, async (url) => {
    assert.equal((await pullWith(url, await tokenWithIssuer(issuer))).status, 200);
    assert.equal((await pullWith(url, await tokenWithIssuer(issuer, "HS256"))).status, 200, "HS256 too");
    for (const iss of [`${env.apiUrl}/auth/v1`, "https://auth.example.test", null]) {
      const res = await pullWith(url, await tokenWithIssuer(iss));
      assert.equal(res.status, 401, `${iss}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, "invalid_token");
    }
  });
});
