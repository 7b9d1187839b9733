// Verifies the caller's Supabase access token: asymmetric signing keys through the project's JWKS
// (cached by jose), and the legacy HS256 secret when one is configured.
import * as jose from "jose";
import type { Config } from "./config.ts";
import { UUID } from "./contract.ts";
import { HttpError } from "./errors.ts";

export interface Caller {
  userId: string;
  claims: Record<string, unknown>;
}

const ASYMMETRIC = ["ES256", "RS256", "EdDSA"];

export function makeVerifier(config: Config) {
  const jwks = config.jwksUrl
    ? jose.createRemoteJWKSet(new URL(config.jwksUrl), { cacheMaxAge: 10 * 60 * 1000, cooldownDuration: 30 * 1000 })
    : null;
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : null;

  return async function verify(authorization: string | null): Promise<Caller> {
    const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!match) {
      throw new HttpError("missing_token", "send the user's access token as Authorization: Bearer <token>");
    }
    const token = match[1];

    let header: jose.ProtectedHeaderParameters;
    try {
      header = jose.decodeProtectedHeader(token);
    } catch {
      throw new HttpError("invalid_token", "the token is not a JWT");
    }
    // Supabase Auth always sets exp; a token without one would never expire and never be refreshed.
    const options: jose.JWTVerifyOptions = { audience: "authenticated", requiredClaims: ["exp"] };
    if (config.jwtIssuer) options.issuer = config.jwtIssuer;

    let payload: jose.JWTPayload;
    try {
      if (header.alg === "HS256" && secret) {
        ({ payload } = await jose.jwtVerify(token, secret, { ...options, algorithms: ["HS256"] }));
      } else if (header.alg && ASYMMETRIC.includes(header.alg) && jwks) {
        ({ payload } = await jose.jwtVerify(token, jwks, { ...options, algorithms: ASYMMETRIC }));
      } else {
        throw new HttpError(
          "invalid_token",
          `tokens signed with ${header.alg ?? "no algorithm"} are not accepted`,
        );
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof jose.errors.JWTExpired) {
        throw new HttpError("token_expired", "the access token has expired; refresh the session and retry");
      }
      if (err instanceof jose.errors.JWTClaimValidationFailed) {
        throw new HttpError("invalid_token", `the token's ${err.claim} claim is not accepted`);
      }
      throw new HttpError("invalid_token", "the token's signature or claims are not valid");
    }

    // An API key (anon, service_role) identifies no one: sync needs a signed-in user.
    if (typeof payload.sub !== "string" || !UUID.test(payload.sub)) {
      throw new HttpError("invalid_token", "the token does not belong to a user (an API key is not a user)");
    }
    if (payload.role !== "authenticated") {
      throw new HttpError("invalid_token", "only tokens of signed-in users (role authenticated) are accepted");
    }
    return { userId: payload.sub, claims: payload as Record<string, unknown> };
  };
}
