// The sync Edge Function: a thin, typed door over the SQL API (public.sync_pull, and sync.apply_push,
// the entry behind public.sync_push).
// Auth, validation, limits and logging live here; the semantics live in SQL.
import { makeVerifier } from "./auth.ts";
import type { Config } from "./config.ts";
import type { Database } from "./db.ts";
import { fromDatabaseError, HttpError } from "./errors.ts";
import { markUnstorableNumbers, type Path } from "./numbers.ts";
import { checkPull, checkPush, scanText, type TextScan, unstorableIssues } from "./schemas.ts";

const ROUTES: Record<string, string> = { "/health": "GET", "/push": "POST", "/pull": "POST" };

interface LogLine {
  route: string;
  method: string;
  status?: number;
  user?: string;
  ops?: Record<string, number>;
  changes?: number;
  bytes?: number;
  error?: string;
  duration_ms?: number;
}

export function makeHandler(config: Config, db: Database) {
  const verify = makeVerifier(config);
  // The bench's probe is a route only when the bench asked for it; otherwise /probe is unknown.
  const routes: Record<string, string> = config.benchProbe ? { ...ROUTES, "/probe": "POST" } : ROUTES;
  const cors = {
    "access-control-allow-origin": config.corsOrigin,
    "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-max-age": "86400",
  };

  const json = (status: number, body: string, headers: Record<string, string> = {}) =>
    new Response(body, { status, headers: { ...cors, "content-type": "application/json", ...headers } });

  const errorResponse = (err: HttpError) =>
    json(
      err.status,
      JSON.stringify({
        error: err.code,
        message: err.message,
        ...(err.details ? { details: err.details } : {}),
        ...err.extra,
      }),
      err.status === 405
        ? { allow: `${err.extra.allow}, OPTIONS` }
        : err.code === "unavailable" || (err.code === "busy" && typeof err.extra.retry_after !== "number")
        ? { "retry-after": String(config.retryAfterSeconds) }
        : typeof err.extra.retry_after === "number"
        ? { "retry-after": String(err.extra.retry_after) }
        : {},
    );

  // The body parsed (for the checks here) and as received: a push goes to the database as its text,
  // since JSON.parse would round a number with more than 15 or so significant digits (a
  // numeric(18,2) amount) and jsonb keeps it exact.
  async function readJson(req: Request): Promise<{ body: unknown; text: string; scan: TextScan }> {
    const declared = Number(req.headers.get("content-length") ?? "0");
    if (declared > config.maxBodyBytes) {
      throw new HttpError("too_large", `the body is larger than ${config.maxBodyBytes} bytes`);
    }
    const reader = req.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > config.maxBodyBytes) {
        await reader.cancel();
        throw new HttpError("too_large", `the body is larger than ${config.maxBodyBytes} bytes`);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const c of chunks) {
      bytes.set(c, offset);
      offset += c.byteLength;
    }
    let body: unknown;
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      body = JSON.parse(text);
    } catch {
      throw new HttpError("invalid_request", "the body is not valid JSON");
    }
    const scan = scanText(text);
    const unstorable = unstorableIssues(body, scan);
    if (unstorable.length) {
      throw new HttpError("invalid_request", "the body holds JSON the database cannot store", unstorable);
    }
    return { body, text, scan };
  }

  async function push(req: Request, log: LogLine): Promise<Response> {
    const caller = await verify(req.headers.get("authorization"));
    log.user = caller.userId;
    const { body, text, scan } = await readJson(req);
    const request = checkPush(body, config.maxOps);
    // The schemas transform nothing, so the text says what the checked value says, digits included;
    // only a number the database cannot hold is replaced by its text, and the database told where.
    let payload = text;
    let unstorable: Path[] = [];
    if (scan.numbers) {
      const marked = markUnstorableNumbers(text, request.protocol);
      if (marked.issues.length) {
        throw new HttpError("invalid_request", "the body holds a number the database cannot hold", marked.issues);
      }
      payload = marked.text;
      unstorable = marked.unstorable;
    }
    const { answer, statuses } = await db.push(caller.claims, payload, unstorable);
    log.ops = statuses;
    return json(200, answer);
  }

  async function pullChanges(req: Request, log: LogLine): Promise<Response> {
    const caller = await verify(req.headers.get("authorization"));
    log.user = caller.userId;
    const { body } = await readJson(req);
    const parsed = checkPull(body);
    const request = { ...parsed, limit: Math.min(parsed.limit ?? 500, config.maxPageSize) };
    const { answer, servedBy } = await db.pull(caller.claims, JSON.stringify(request), parsed.min_lsn);
    log.bytes = answer.length;
    // Which server read the page: the replica tests hold the routing to it, and operators see it.
    return json(200, answer, { "x-sync-read-from": servedBy });
  }

  // The empty delta pull's baseline in `npm run bench`: what a pull does besides sync_pull (the
  // token, the body read and checked, the transaction as the user on the pull's server) around a
  // trivial statement.
  async function probe(req: Request, log: LogLine): Promise<Response> {
    const caller = await verify(req.headers.get("authorization"));
    log.user = caller.userId;
    const { body } = await readJson(req);
    const parsed = checkPull(body);
    return json(200, await db.probe(caller.claims, parsed.min_lsn));
  }

  return async function handle(req: Request): Promise<Response> {
    const started = performance.now();
    const url = new URL(req.url);
    // Hosted Supabase hands the function /sync/<route>; accept any prefix up to the function's name.
    const route = url.pathname.replace(/^.*?\/sync(?=\/|$)/, "").replace(/\/$/, "") || "/";
    const log: LogLine = { route, method: req.method };
    let res: Response;
    try {
      if (req.method === "OPTIONS") {
        res = new Response(null, { status: 204, headers: cors });
      } else if (!(route in routes)) {
        throw new HttpError("not_found", `no route ${route}; use /sync/health, /sync/push or /sync/pull`);
      } else if (req.method !== routes[route]) {
        throw new HttpError("method_not_allowed", `${route} takes ${routes[route]}`, undefined, {
          allow: routes[route],
        });
      } else if (route === "/health") {
        res = json(200, await db.health());
      } else if (route === "/push") {
        res = await push(req, log);
      } else if (route === "/probe") {
        res = await probe(req, log);
      } else {
        res = await pullChanges(req, log);
      }
    } catch (err) {
      const known = err instanceof HttpError ? err : fromDatabaseError(err);
      if (known) {
        res = errorResponse(known);
        log.error = known.code;
      } else {
        // Nothing of the failure reaches the client but its class; the log keeps the rest.
        res = errorResponse(new HttpError("internal", "the server failed; nothing of this request was applied"));
        log.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
    }
    log.status = res.status;
    log.duration_ms = Math.round((performance.now() - started) * 10) / 10;
    if (config.log) console.log(JSON.stringify({ ts: new Date().toISOString(), fn: "sync", ...log }));
    return res;
  };
}
