import assert from "node:assert/strict";
import http from "node:http";
import { type AuthChangeEvent, createClient, type SupabaseClient } from "@supabase/supabase-js";
import * as jose from "jose";
import { localAuth } from "../../../scripts/lib/local_auth.mjs";
import { env, test, users } from "./_helpers.ts";

// The local stack's development-only Auth subset (scripts/lib/local_auth.mjs), driven by supabase-js
// as an app drives hosted Supabase Auth: it signs in, refreshes, reads the user and signs out, and
// the errors are GoTrue's (status, code, message), so supabase-js reacts to them as it does there.

const user = users.rm2Jakarta;
const PASSWORD = "password123";

/** supabase-js as an app makes it, against `url` (the stack's gateway unless told). */
function client(url = env.apiUrl): SupabaseClient {
  return createClient(url, env.anonKey, { auth: { persistSession: false, autoRefreshToken: false } });
}

/** A raw refresh, as another device holding the same refresh token would send it. */
async function refreshRaw(refreshToken: string, url = env.apiUrl) {
  const res = await fetch(`${url}/auth/v1/token?grant_type=refresh_token`, {
    method: "POST",
    headers: { apikey: env.anonKey, "content-type": "application/json", "x-supabase-api-version": "2024-01-01" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * The Auth subset on a port of its own with access tokens of `expiresIn` seconds, on the stack's
 * database and key (its tokens are the stack's, accepted by the sync function).
 */
async function authServer(expiresIn: number) {
  let url = "";
  const auth = localAuth({ dbUrl: env.dbUrl, keys: keysOfStack(), apiUrl: env.apiUrl, expiresIn });
  const server = http.createServer(async (req, res) => {
    if (!(await auth.handle(req, res, new URL(req.url ?? "/", url)))) {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return {
    url,
    async close() {
      await new Promise((r) => server.close(r));
      await auth.close();
    },
  };
}

function keysOfStack() {
  const { d: _d, ...publicJwk } = env.es256Jwk;
  return {
    jwtSecret: env.jwtSecret,
    anonKey: env.anonKey,
    serviceRoleKey: env.serviceRoleKey,
    privateJwk: env.es256Jwk as jose.JWK & { kid: string },
    publicJwk,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("signInWithPassword gives a GoTrue-shaped session whose access token the sync function accepts", async () => {
  const supabase = client();
  const { data, error } = await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD });
  assert.equal(error, null);
  const session = data.session!;
  assert.equal(session.token_type, "bearer");
  assert.equal(session.expires_in, 3600);
  assert.ok(Math.abs(session.expires_at! - (Math.floor(Date.now() / 1000) + 3600)) <= 5);
  assert.match(session.refresh_token, /^[A-Za-z0-9_-]{20,}$/);
  assert.equal(session.user.id, user.id);
  assert.equal(session.user.email, user.email);
  assert.equal(data.user?.id, user.id);
  const header = jose.decodeProtectedHeader(session.access_token);
  assert.deepEqual([header.alg, header.kid], ["ES256", env.es256Jwk.kid]);
  const claims = jose.decodeJwt(session.access_token);
  assert.equal(claims.sub, user.id);
  assert.equal(claims.iss, `${env.apiUrl}/auth/v1`);
  assert.equal(claims.aud, "authenticated");
  assert.equal(claims.role, "authenticated");
  assert.equal(claims.aal, "aal1");
  assert.match(String(claims.session_id), /^[0-9a-f-]{36}$/);

  const pull = await supabase.functions.invoke("sync/pull", { body: { protocol: 2, cursor: null, limit: 1 } });
  assert.equal(pull.error, null, "the sync function takes the signed-in user's token");
  assert.equal(pull.response?.status, 200);
  await supabase.auth.signOut({ scope: "local" });
});

test("a wrong password and an unknown email are refused alike: 400 invalid_credentials, 'Invalid login credentials'", async () => {
  for (const [email, password] of [[user.email, "wrong-password"], ["nobody@crm.test", PASSWORD]]) {
    const supabase = client();
    const { data, error } = await supabase.auth.signInWithPassword({ email, password });
    assert.equal(data.session, null);
    assert.equal(error?.name, "AuthApiError");
    assert.equal(error?.status, 400);
    assert.equal(error?.code, "invalid_credentials");
    assert.equal(error?.message, "Invalid login credentials");
  }
});

test("a client without the API-version header gets GoTrue's older error body { code: status, error_code, msg }", async () => {
  const res = await fetch(`${env.apiUrl}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { apikey: env.anonKey, "content-type": "application/json" },
    body: JSON.stringify({ email: user.email, password: "wrong-password" }),
  });
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), {
    code: 400,
    error_code: "invalid_credentials",
    msg: "Invalid login credentials",
  });
});

test("refreshSession rotates the refresh token and keeps the session; the access token is new", async () => {
  const supabase = client();
  const first = (await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD })).data.session!;
  await sleep(1100); // a new iat, so the new access token differs from the first
  const { data, error } = await supabase.auth.refreshSession();
  assert.equal(error, null);
  const second = data.session!;
  assert.notEqual(second.refresh_token, first.refresh_token);
  assert.notEqual(second.access_token, first.access_token);
  assert.equal(jose.decodeJwt(second.access_token).session_id, jose.decodeJwt(first.access_token).session_id);
  assert.equal(second.user.id, user.id);
  await supabase.auth.signOut({ scope: "local" });
});

test("a rotated refresh token used again is refused (400 refresh_token_already_used) and ends its whole session", async () => {
  const supabase = client();
  const first = (await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD })).data.session!;
  const rotated = await refreshRaw(first.refresh_token);
  assert.equal(rotated.status, 200);
  const reused = await refreshRaw(first.refresh_token);
  assert.equal(reused.status, 400);
  assert.deepEqual(reused.body, { code: "refresh_token_already_used", message: "Invalid Refresh Token: Already Used" });
  // The newest token of that session is revoked with it: whoever copied the old one is out too.
  const newest = await refreshRaw(rotated.body.refresh_token);
  assert.equal(newest.status, 400);
  assert.equal(newest.body.code, "refresh_token_already_used");
});

test("supabase-js whose refresh token was already used by another holder ends signed out", async () => {
  const auth = await authServer(1);
  try {
    const supabase = client(auth.url);
    const events: AuthChangeEvent[] = [];
    supabase.auth.onAuthStateChange((event) => void events.push(event));
    const mine = (await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD })).data.session!;
    assert.equal((await refreshRaw(mine.refresh_token, auth.url)).status, 200, "another holder rotates it first");
    await sleep(2100); // supabase-js's access token has expired: the refresh token is all it has
    const { data, error } = await supabase.auth.refreshSession();
    assert.equal(data.session, null);
    assert.equal(error?.code, "refresh_token_already_used");
    assert.equal((await supabase.auth.getSession()).data.session, null, "supabase-js has dropped the session");
    assert.ok(events.includes("SIGNED_OUT"), `events: ${events.join(", ")}`);
  } finally {
    await auth.close();
  }
});

test("getUser() answers the signed-in user; a forged token is refused with 403 bad_jwt", async () => {
  const supabase = client();
  await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD });
  const { data, error } = await supabase.auth.getUser();
  assert.equal(error, null);
  assert.equal(data.user?.id, user.id);
  assert.equal(data.user?.email, user.email);
  assert.deepEqual(data.user?.app_metadata, { provider: "email", providers: ["email"] });

  const forged = await new jose.SignJWT({ role: "authenticated", session_id: crypto.randomUUID() })
    .setProtectedHeader({ alg: "HS256" }).setSubject(user.id).setIssuer(`${env.apiUrl}/auth/v1`)
    .setExpirationTime("1h").sign(new TextEncoder().encode("not-the-key-not-the-key-not-the-key!"));
  const res = await fetch(`${env.apiUrl}/auth/v1/user`, {
    headers: { apikey: env.anonKey, authorization: `Bearer ${forged}`, "x-supabase-api-version": "2024-01-01" },
  });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).code, "bad_jwt");
  await supabase.auth.signOut({ scope: "local" });
});

test("signOut() revokes: the session's refresh token is gone and its access token no longer reads the user", async () => {
  const supabase = client();
  const session = (await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD })).data.session!;
  const { error } = await supabase.auth.signOut();
  assert.equal(error, null);
  assert.equal((await supabase.auth.getSession()).data.session, null);
  const refresh = await refreshRaw(session.refresh_token);
  assert.equal(refresh.status, 400);
  assert.deepEqual(refresh.body, {
    code: "refresh_token_not_found",
    message: "Invalid Refresh Token: Refresh Token Not Found",
  });
  const other = client();
  const { error: userError } = await other.auth.getUser(session.access_token);
  assert.equal(userError?.name, "AuthSessionMissingError", "session_not_found reads as signed out");
});

test("with a short expiry supabase-js refreshes on its own: getSession() answers a new token of the same session", async () => {
  const auth = await authServer(1);
  try {
    const supabase = client(auth.url);
    const events: AuthChangeEvent[] = [];
    supabase.auth.onAuthStateChange((event) => void events.push(event));
    const first = (await supabase.auth.signInWithPassword({ email: user.email, password: PASSWORD })).data.session!;
    assert.equal(first.expires_in, 1);
    await sleep(2100);
    const { data } = await supabase.auth.getSession();
    assert.ok(data.session, "still signed in");
    assert.notEqual(data.session.refresh_token, first.refresh_token, "refreshed, without being asked to");
    assert.ok(data.session.expires_at! > first.expires_at!);
    assert.ok(events.includes("TOKEN_REFRESHED"), `events: ${events.join(", ")}`);
    // Not sent to the function: a one-second token may expire on its way on a busy machine.
    const claims = jose.decodeJwt(data.session.access_token);
    assert.equal(claims.session_id, jose.decodeJwt(first.access_token).session_id);
    await supabase.auth.signOut({ scope: "local" });
  } finally {
    await auth.close();
  }
});

test("sessions outlive the server: a refresh token from before a restart still works after it", async () => {
  const before = await authServer(3600);
  const session = (await client(before.url).auth.signInWithPassword({ email: user.email, password: PASSWORD }))
    .data.session!;
  await before.close();
  const after = await authServer(3600);
  try {
    const refreshed = await refreshRaw(session.refresh_token, after.url);
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.body.user.id, user.id);
  } finally {
    await after.close();
  }
});

test("the Auth routes answer a browser's preflight from any origin, and expose the API-version header", async () => {
  const res = await fetch(`${env.apiUrl}/auth/v1/token?grant_type=password`, {
    method: "OPTIONS",
    headers: {
      origin: "http://localhost:5173",
      "access-control-request-method": "POST",
      "access-control-request-headers": "apikey, content-type, x-client-info, x-supabase-api-version, authorization",
    },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  const allowed = res.headers.get("access-control-allow-headers")!.split(/,\s*/);
  for (const h of ["apikey", "content-type", "x-client-info", "x-supabase-api-version", "authorization"]) {
    assert.ok(allowed.includes(h), `${h} is allowed`);
  }
  assert.equal(res.headers.get("access-control-expose-headers"), "x-supabase-api-version");
  const answer = await fetch(`${env.apiUrl}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { origin: "http://localhost:5173", "content-type": "application/json" },
    body: JSON.stringify({ email: user.email, password: "wrong-password" }),
  });
  assert.equal(answer.headers.get("access-control-allow-origin"), "*", "the answer itself carries CORS too");
  await answer.body?.cancel();
});

test("bad requests name what is wrong: a missing email, a missing refresh token, an unknown grant", async () => {
  const post = async (grant: string, body: unknown) => {
    const res = await fetch(`${env.apiUrl}/auth/v1/token?grant_type=${grant}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-supabase-api-version": "2024-01-01" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  assert.deepEqual(await post("password", { password: PASSWORD }), {
    status: 400,
    body: { code: "validation_failed", message: "An email address is required" },
  });
  assert.deepEqual(await post("refresh_token", {}), {
    status: 400,
    body: { code: "validation_failed", message: "A refresh_token is required" },
  });
  assert.deepEqual(await post("id_token", {}), {
    status: 400,
    body: {
      code: "unsupported_grant_type",
      message: 'grant_type must be password or refresh_token in the local stack, not "id_token"',
    },
  });
});
