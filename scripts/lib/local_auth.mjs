// @ts-check
// The local stack's development-only subset of the Supabase Auth API: what supabase-js needs to sign
// a seed user in and keep the session (password and refresh-token grants, the user, sign-out).
// It is NOT Supabase Auth: no sign-up, no email, no MFA, no rate limits. It answers as GoTrue does
// (status, error code and message) so that an app behaves here as it does on hosted Supabase.
// Sessions and refresh tokens live in the database (auth.sessions, auth.refresh_tokens of the
// compatibility bootstrap, a subset of GoTrue's columns), so a restart of the stack signs no one out.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import * as jose from "jose";
import { signAccessToken } from "./stack.mjs";

/** The API version whose error body is `{ code, message }`; supabase-js asks for it on every request. */
const API_VERSION = "2024-01-01";
const API_VERSION_HEADER = "x-supabase-api-version";

/**
 * @typedef {import("./stack.mjs").LocalKeys} LocalKeys
 * @typedef {import("node:http").IncomingMessage} Req
 * @typedef {import("node:http").ServerResponse} Res
 * @typedef {{ id: string, email: string, email_confirmed_at: Date | null, raw_app_meta_data: unknown,
 *   raw_user_meta_data: unknown, created_at: Date, updated_at: Date, banned_until: Date | null,
 *   deleted_at: Date | null, aud: string | null, role: string | null }} UserRow
 */

/** An error as GoTrue answers it: the HTTP status, its error code and its message. */
class AuthError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * The Auth routes of the gateway. `expiresIn` is the access tokens' lifetime in seconds (the stack
 * takes it from SUPASYNC_AUTH_EXPIRES_IN, so tests can watch supabase-js refresh on its own).
 * @param {{ dbUrl: string, keys: LocalKeys, apiUrl: string, expiresIn?: number, corsOrigin?: string }} options
 */
export function localAuth({ dbUrl, keys, apiUrl, expiresIn = 3600, corsOrigin = "*" }) {
  if (!Number.isInteger(expiresIn) || expiresIn < 1) {
    throw new Error(`the access token lifetime must be a whole number of seconds >= 1, not ${expiresIn}`);
  }
  const db = postgres(dbUrl, { max: 4, onnotice: () => {}, connect_timeout: 10 });
  const publicKey = jose.importJWK(keys.publicJwk, "ES256");
  // What the function's gateway allows, plus the API-version header supabase-js sends (and reads
  // back: exposed, or a browser on another origin would hide it and misread the error body).
  const cors = {
    "access-control-allow-origin": corsOrigin,
    "access-control-allow-headers": `authorization, x-client-info, apikey, content-type, ${API_VERSION_HEADER}`,
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-expose-headers": API_VERSION_HEADER,
    "access-control-max-age": "86400",
  };

  /**
   * @param {UserRow} u
   */
  const userJson = (u) => ({
    id: u.id,
    aud: u.aud ?? "authenticated",
    role: u.role ?? "authenticated",
    email: u.email,
    email_confirmed_at: u.email_confirmed_at,
    phone: "",
    confirmed_at: u.email_confirmed_at,
    app_metadata: u.raw_app_meta_data,
    user_metadata: u.raw_user_meta_data,
    identities: [],
    created_at: u.created_at,
    updated_at: u.updated_at,
    is_anonymous: false,
  });

  const newRefreshToken = () => randomBytes(24).toString("base64url");

  /**
   * The token endpoint's answer for `user` in `sessionId`, with `refreshToken`.
   * @param {UserRow} user
   * @param {string} sessionId
   * @param {Date} signedInAt
   * @param {string} refreshToken
   */
  async function tokenResponse(user, sessionId, signedInAt, refreshToken) {
    const accessToken = await signAccessToken(keys, apiUrl, user, {
      expiresIn,
      claims: {
        role: user.role ?? "authenticated",
        app_metadata: user.raw_app_meta_data,
        user_metadata: user.raw_user_meta_data,
        amr: [{ method: "password", timestamp: Math.floor(signedInAt.getTime() / 1000) }],
        session_id: sessionId,
      },
    });
    const { exp } = jose.decodeJwt(accessToken);
    return {
      access_token: accessToken,
      token_type: "bearer",
      expires_in: expiresIn,
      expires_at: exp,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  }

  /** @param {UserRow} user */
  function refuseInactive(user) {
    if (user.banned_until && user.banned_until.getTime() > Date.now()) {
      throw new AuthError(400, "user_banned", "User is banned");
    }
  }

  /** @param {Record<string, unknown>} body */
  async function passwordGrant(body) {
    const { email, password } = body;
    if (typeof email !== "string" || email === "") {
      throw new AuthError(400, "validation_failed", "An email address is required");
    }
    if (typeof password !== "string") {
      throw new AuthError(400, "validation_failed", "A password is required");
    }
    const [user] = /** @type {UserRow[]} */ (await db`
      select id, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
             banned_until, deleted_at, aud, role
        from auth.users
       where lower(email) = lower(${email}) and deleted_at is null
         and encrypted_password is not null
         and encrypted_password = extensions.crypt(${password}, encrypted_password)`);
    // One answer for an unknown email and a wrong password, as GoTrue gives.
    if (!user) throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
    if (!user.email_confirmed_at) throw new AuthError(400, "email_not_confirmed", "Email not confirmed");
    refuseInactive(user);
    const token = newRefreshToken();
    const [session] = await db.begin(async (tx) => {
      // The id is given: GoTrue's own auth.sessions (on a Supabase database) has no default for it.
      const rows = await tx`insert into auth.sessions (id, user_id) values (gen_random_uuid(), ${user.id})
                            returning id, created_at`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id) values (${token}, ${user.id}, ${
        rows[0].id
      })`;
      return rows;
    });
    return await tokenResponse(user, session.id, session.created_at, token);
  }

  const notFound = () =>
    new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");

  /** @param {Record<string, unknown>} body */
  async function refreshGrant(body) {
    const { refresh_token: presented } = body;
    if (typeof presented !== "string" || presented === "") {
      throw new AuthError(400, "validation_failed", "A refresh_token is required");
    }
    const next = newRefreshToken();
    // Locked, so two refreshes with one token cannot both rotate it.
    const found = await db.begin(async (tx) => {
      const [row] = await tx`
        select r.id, r.revoked, r.session_id, s.created_at as signed_in_at
          from auth.refresh_tokens r join auth.sessions s on s.id = r.session_id
         where r.token = ${presented}
           for update of r, s`;
      if (!row) return { error: notFound() };
      if (row.revoked) {
        // A rotated token used again was copied or stolen: the whole session goes, as GoTrue's
        // reuse detection revokes the token family, so whoever holds its newest token is out too.
        await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = ${row.session_id}`;
        return { error: new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used") };
      }
      const [user] = /** @type {UserRow[]} */ (await tx`
        select id, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
               banned_until, deleted_at, aud, role
          from auth.users u
         where u.id = (select user_id from auth.sessions where id = ${row.session_id}) and deleted_at is null`);
      if (!user) return { error: notFound() };
      await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where id = ${row.id}`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id, parent)
               values (${next}, ${user.id}, ${row.session_id}, ${presented})`;
      await tx`update auth.sessions set updated_at = now() where id = ${row.session_id}`;
      return { user, sessionId: row.session_id, signedInAt: row.signed_in_at };
    });
    // Outside the transaction, so the revocation of a reused token's family is committed.
    if ("error" in found) throw found.error;
    refuseInactive(found.user);
    return await tokenResponse(found.user, found.sessionId, found.signedInAt, next);
  }

  /**
   * The verified claims of the request's bearer token, and that its session still exists.
   * @param {Req} req
   */
  async function caller(req) {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    if (!m) throw new AuthError(401, "no_authorization", "This endpoint requires a Bearer token");
    let claims;
    try {
      ({ payload: claims } = await jose.jwtVerify(m[1], await publicKey, {
        algorithms: ["ES256"],
        issuer: `${apiUrl}/auth/v1`,
      }));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${why}`);
    }
    const sessionId = typeof claims.session_id === "string" ? claims.session_id : null;
    const [session] = sessionId ? await db`select id, user_id from auth.sessions where id = ${sessionId}` : [];
    if (!session || session.user_id !== claims.sub) {
      throw new AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist");
    }
    return { userId: session.user_id, sessionId: session.id };
  }

  /** @param {Req} req */
  async function getUser(req) {
    const { userId } = await caller(req);
    const [user] = /** @type {UserRow[]} */ (await db`
      select id, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
             banned_until, deleted_at, aud, role
        from auth.users where id = ${userId} and deleted_at is null`);
    if (!user) throw new AuthError(404, "user_not_found", "User from sub claim in JWT does not exist");
    return userJson(user);
  }

  /**
   * Deletes the caller's session (scope `local`), all of the user's (`global`, the default) or all
   * but this one (`others`); their refresh tokens go with them.
   * @param {Req} req
   * @param {URL} url
   */
  async function logout(req, url) {
    const { userId, sessionId } = await caller(req);
    const scope = url.searchParams.get("scope") ?? "global";
    if (scope === "local") await db`delete from auth.sessions where id = ${sessionId}`;
    else if (scope === "global") await db`delete from auth.sessions where user_id = ${userId}`;
    else if (scope === "others") await db`delete from auth.sessions where user_id = ${userId} and id <> ${sessionId}`;
    else throw new AuthError(400, "validation_failed", `scope must be one of global, local, others, not "${scope}"`);
  }

  /** @param {Req} req */
  async function readJson(req) {
    let text = "";
    for await (const chunk of req) text += chunk;
    try {
      const body = text === "" ? {} : JSON.parse(text);
      if (body && typeof body === "object" && !Array.isArray(body)) return body;
    } catch { /* answered below */ }
    throw new AuthError(400, "bad_json", "Could not parse request body as JSON: the body must be a JSON object");
  }

  /**
   * Answers `req` if its path is one of the Auth routes. Returns false when it is not.
   * @param {Req} req
   * @param {Res} res
   * @param {URL} url
   */
  async function handle(req, res, url) {
    const route = url.pathname.replace(/\/+$/, "");
    const routes = ["/auth/v1/token", "/auth/v1/user", "/auth/v1/logout"];
    if (!routes.includes(route)) return false;
    const modern = (req.headers[API_VERSION_HEADER] ?? "") >= API_VERSION;
    /**
     * @param {number} status
     * @param {unknown} [body]
     */
    const send = (status, body) => {
      /** @type {Record<string, string>} */
      const headers = { ...cors };
      if (modern) headers[API_VERSION_HEADER] = API_VERSION;
      if (body !== undefined) headers["content-type"] = "application/json";
      res.writeHead(status, headers);
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.method === "OPTIONS") {
      send(204);
      return true;
    }
    try {
      const expected = route === "/auth/v1/user" ? "GET" : "POST";
      if (req.method !== expected) {
        throw new AuthError(405, "method_not_allowed", `${route} takes ${expected}, not ${req.method}`);
      }
      if (route === "/auth/v1/token") {
        const grant = url.searchParams.get("grant_type");
        const body = await readJson(req);
        if (grant === "password") send(200, await passwordGrant(body));
        else if (grant === "refresh_token") send(200, await refreshGrant(body));
        else {
          throw new AuthError(
            400,
            "unsupported_grant_type",
            `grant_type must be password or refresh_token in the local stack, not "${grant ?? ""}"`,
          );
        }
      } else if (route === "/auth/v1/user") {
        send(200, await getUser(req));
      } else {
        await logout(req, url);
        send(204);
      }
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      // GoTrue's two error bodies: by API version, and the one from before API versions.
      send(
        err.status,
        modern
          ? { code: err.code, message: err.message }
          : { code: err.status, error_code: err.code, msg: err.message },
      );
    }
    return true;
  }

  return {
    handle,
    async close() {
      await db.end();
    },
  };
}
