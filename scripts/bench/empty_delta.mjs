// @ts-check
// Phase 3, empty delta pull: the full-pull user asks again and again from the cursor it was given,
// with nothing changed for them since.
import { check } from "./checks.mjs";
import { call } from "./http.mjs";
import { quantile, rnd } from "./util.mjs";

/**
 * @param {import("./setup.mjs").Bench} b
 * @param {string} cursor where the full pull ended
 * @returns {Promise<{ cursor: string }>} the last cursor handed out
 */
export async function runEmptyDelta(b, cursor) {
  const { P, api, tokens, results } = b;
  const empty = { ms: /** @type {number[]} */ ([]), bytes: /** @type {number[]} */ ([]), nonEmpty: 0 };
  for (let i = 0; i < P.emptyPulls; i++) {
    const r = await call(api.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor, limit: P.page });
    if (r.status !== 200 || !r.json) {
      empty.nonEmpty++;
      continue;
    }
    if (r.json.changes.length || r.json.has_more || r.json.resync_required) empty.nonEmpty++;
    empty.ms.push(r.ms);
    empty.bytes.push(r.bytes);
    cursor = r.json.cursor;
  }
  check("empty delta: every answer was empty", empty.nonEmpty === 0, `${empty.nonEmpty} of ${P.emptyPulls} were not`);
  results.figures.empty_delta = {
    requests: P.emptyPulls,
    p50_ms: rnd(quantile(empty.ms, 0.5), 2),
    p95_ms: rnd(quantile(empty.ms, 0.95), 2),
    bytes_max: Math.max(...empty.bytes),
    bytes_p50: quantile(empty.bytes, 0.5),
  };
  return { cursor };
}
