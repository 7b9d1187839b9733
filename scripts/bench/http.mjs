// @ts-check
// HTTP to the function through the local gateway.
import { log } from "../lib/cluster.mjs";
import { now } from "./util.mjs";

const REQUEST_TIMEOUT_MS = 180_000;

/**
 * The run's HTTP state: 5xx answers retried, and how to cancel the function's running query.
 * @type {{ retried5xx: number, cancel: null | (() => Promise<unknown>) }}
 */
export const http = { retried5xx: 0, cancel: null };

/**
 * @typedef {object} Answer
 * @property {number} status
 * @property {any} json the parsed body, or null
 * @property {string} text
 * @property {number} bytes
 * @property {number} ms
 * @property {number} attempts
 */

/**
 * POST to the function. A 5xx is retried once (push and pull are idempotent) and counted. A request
 * that outlives its timeout is abandoned and the function's running query in the bench database is
 * cancelled (http.cancel), so no runaway statement skews what follows.
 * @param {string} apiUrl
 * @param {string} route
 * @param {string} token
 * @param {unknown} body
 * @param {{ retry?: boolean, timeoutMs?: number }} [options]
 * @returns {Promise<Answer>}
 */
export async function call(apiUrl, route, token, body, { retry = true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const t0 = now();
  for (let attempt = 0;; attempt++) {
    let res;
    try {
      res = await fetch(`${apiUrl}/functions/v1/sync${route}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (/** @type {{ name?: string } | null} */ (err)?.name !== "TimeoutError") throw err;
      await http.cancel?.().catch(() => {});
      throw Object.assign(
        new Error(`${route} took longer than ${timeoutMs / 1000} s; its query was cancelled`),
        { timeout: true },
      );
    }
    const text = await res.text();
    if (res.status >= 500 && retry && attempt === 0) {
      http.retried5xx++;
      log(`${route}: ${res.status} ${text.slice(0, 200)}; retrying once`);
      continue;
    }
    let json = null;
    try {
      json = JSON.parse(text);
    } catch { /* reported by the caller through status/json */ }
    return { status: res.status, json, text, bytes: Buffer.byteLength(text), ms: now() - t0, attempts: attempt + 1 };
  }
}

/**
 * @typedef {object} PullRun
 * @property {number} pages
 * @property {number} bytes
 * @property {number} ms
 * @property {number} changes
 * @property {Record<string, number>} ops changes by op (upsert, delete, evict)
 * @property {string} cursor
 * @property {number[]} pageMs
 */

/**
 * Pulls from `cursor` until has_more is false (bounded by pages and a deadline).
 * @param {string} apiUrl
 * @param {string} token
 * @param {object} options
 * @param {string | null} [options.cursor]
 * @param {number} options.limit
 * @param {string[]} [options.tables]
 * @param {number} [options.maxPages]
 * @param {boolean} [options.firstPageOnly]
 * @param {import("./util.mjs").Deadline | null} [options.deadline]
 * @param {((change: any) => unknown) | null} [options.onChange]
 * @param {number} [options.timeoutMs]
 * @returns {Promise<PullRun>}
 */
export async function pullAll(
  apiUrl,
  token,
  {
    cursor = null,
    limit,
    tables = undefined,
    maxPages = 100_000,
    firstPageOnly = false,
    deadline = null,
    onChange = null,
    timeoutMs,
  },
) {
  let pages = 0;
  let bytes = 0;
  let ms = 0;
  let changes = 0;
  /** @type {Record<string, number>} */
  const ops = {};
  const pageMs = [];
  for (;;) {
    const r = await call(apiUrl, "/pull", token, { protocol: 2, cursor, limit, ...(tables ? { tables } : {}) }, {
      timeoutMs,
    });
    if (r.status !== 200 || !r.json) throw new Error(`pull failed: ${r.status} ${r.text.slice(0, 300)}`);
    if (r.json.resync_required) throw new Error("pull answered resync_required");
    pages++;
    bytes += r.bytes;
    ms += r.ms;
    pageMs.push(r.ms);
    changes += r.json.changes.length;
    for (const c of r.json.changes) {
      ops[c.op] = (ops[c.op] ?? 0) + 1;
      onChange?.(c);
    }
    cursor = r.json.cursor;
    if (!r.json.has_more || firstPageOnly) break;
    if (pages >= maxPages) throw new Error(`pull did not finish within ${maxPages} pages`);
    deadline?.check();
  }
  return { pages, bytes, ms, changes, ops, cursor: /** @type {string} */ (cursor), pageMs };
}
