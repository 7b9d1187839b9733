// @ts-check
// Phase 3, empty delta pull: the full-pull user asks again and again from the cursor it was given,
// with nothing changed for them since. The baseline is the function's bench-only probe (POST
// /sync/probe, on only when SYNC_BENCH_PROBE=on): the same token check, body read and transaction
// as the user on the pull's server, around `select 1`. The two alternate request by request, in
// rounds; each round's p50s give a ratio, and the median and spread over rounds are the figures.
import { check } from "./checks.mjs";
import { call } from "./http.mjs";
import { quantile, rnd, spreadOf } from "./util.mjs";

/**
 * @param {import("./setup.mjs").Bench} b
 * @param {string} cursor where the full pull ended
 * @returns {Promise<{ cursor: string }>} the last cursor handed out
 */
export async function runEmptyDelta(b, cursor) {
  const { P, api, tokens, results } = b;
  const empty = { ms: /** @type {number[]} */ ([]), bytes: /** @type {number[]} */ ([]), nonEmpty: 0 };
  const probe = { ms: /** @type {number[]} */ ([]), failed: 0, sample: "" };
  /** @type {{ pull: number | null, probe: number | null }[]} */
  const rounds = [];
  const pullOnce = async () => {
    const r = await call(api.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor, limit: P.page });
    if (r.status !== 200 || !r.json) {
      empty.nonEmpty++;
      return null;
    }
    if (r.json.changes.length || r.json.has_more || r.json.resync_required) empty.nonEmpty++;
    empty.bytes.push(r.bytes);
    cursor = r.json.cursor;
    return r.ms;
  };
  // The probe gets the body a pull would, so it reads and checks as much.
  const probeOnce = async () => {
    const r = await call(api.apiUrl, "/probe", tokens.rm2j, { protocol: 2, cursor, limit: P.page });
    if (r.status !== 200 || r.json?.ok !== true) {
      probe.failed++;
      probe.sample ||= `${r.status} ${r.text.slice(0, 200)}`;
      return null;
    }
    return r.ms;
  };
  for (let round = 0; round < P.deltaRounds; round++) {
    /** @type {number[]} */
    const pulls = [];
    /** @type {number[]} */
    const probes = [];
    for (let i = 0; i < P.emptyPulls; i++) {
      const first = (i + round) % 2 ? probeOnce : pullOnce;
      const a = await first();
      const bMs = await (first === pullOnce ? probeOnce : pullOnce)();
      const [pullMs, probeMs] = first === pullOnce ? [a, bMs] : [bMs, a];
      if (pullMs != null) pulls.push(pullMs);
      if (probeMs != null) probes.push(probeMs);
    }
    empty.ms.push(...pulls);
    probe.ms.push(...probes);
    rounds.push({ pull: quantile(pulls, 0.5), probe: quantile(probes, 0.5) });
  }
  const requests = P.emptyPulls * P.deltaRounds;
  check("empty delta: every answer was empty", empty.nonEmpty === 0, `${empty.nonEmpty} of ${requests} were not`);
  check("empty delta probe: every probe answered", probe.failed === 0, probe.sample);
  results.figures.empty_delta = {
    requests,
    p50_ms: rnd(quantile(empty.ms, 0.5), 2),
    p95_ms: rnd(quantile(empty.ms, 0.95), 2),
    bytes_max: Math.max(...empty.bytes),
    bytes_p50: quantile(empty.bytes, 0.5),
    probe_p50_ms: rnd(quantile(probe.ms, 0.5), 2),
    probe_p95_ms: rnd(quantile(probe.ms, 0.95), 2),
    rounds: rounds.length,
    pull_p50_rounds: spreadOf(rounds.map((r) => r.pull), 2),
    probe_p50_rounds: spreadOf(rounds.map((r) => r.probe), 2),
    vs_probe_rounds: spreadOf(rounds.map((r) => (r.pull == null || r.probe == null ? null : r.pull / r.probe)), 3),
  };
  return { cursor };
}
