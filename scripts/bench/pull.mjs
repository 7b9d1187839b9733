// @ts-check
// Phase 2, full first pull: rows bulk-loaded for one rm, pulled through the function and read by a
// keyset select as the same user (the ceiling) and by the superuser without RLS (a reference).
import { log } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { loadRows, rawKeysetPull, rmScopePredicates, visibleCount } from "./db.mjs";
import { pullAll } from "./http.mjs";
import { pgssReset, pgssRows, statementsPerRequest } from "./pgss.mjs";
import { Deadline, fmt, medianRun, quantile, rnd, spreadOf } from "./util.mjs";

/**
 * @param {import("./setup.mjs").Bench} b
 * @returns {Promise<{ cursor: string }>} the cursor the function's first pull ended with
 */
export async function runPull(b) {
  const { P, sql, api, U, tokens, pgss, dbid, results } = b;
  log(`pull: loading ${P.pullRows} rows for ${U.rm2j.email}`);
  const loaded = await loadRows(sql, { owner: U.rm2j, total: P.pullRows, label: "Pull" });
  const expected = await visibleCount(sql, U.rm2j);
  // Rounds of the function's pull and the keyset select (then the select without RLS): one sample
  // apiece swung the ratio by a third between runs.
  const pullDeadline = new Deadline(P.phaseBudgetMs * P.pullRounds, "the pull phase");
  /** @type {Set<string>} */
  const seen = new Set();
  let dupes = 0;
  /** @type {import("./http.mjs").PullRun[]} */
  const fnRuns = [];
  /** @type {Awaited<ReturnType<typeof rawKeysetPull>>[]} */
  const rawRuns = [];
  /** @type {Awaited<ReturnType<typeof rawKeysetPull>>[]} */
  const plainRuns = [];
  let pullDb = /** @type {ReturnType<typeof statementsPerRequest> | null} */ (null);
  const predicates = await rmScopePredicates(sql, U.rm2j);
  for (let round = 0; round < P.pullRounds; round++) {
    if (pgss && round === 0) await pgssReset(sql, dbid);
    const fnSide = async () => {
      fnRuns.push(
        await pullAll(api.apiUrl, tokens.rm2j, {
          limit: P.page,
          deadline: pullDeadline,
          onChange: round > 0 ? null : (c) => {
            const key = `${c.table}/${c.row?.id ?? c.id}`;
            if (seen.has(key)) dupes++;
            seen.add(key);
          },
        }),
      );
      if (pgss && round === 0) pullDb = statementsPerRequest(await pgssRows(sql, dbid), fnRuns[0].pages);
    };
    const rawSide = async () => {
      rawRuns.push(await rawKeysetPull(sql, U.rm2j, P.page));
      plainRuns.push(await rawKeysetPull(sql, U.rm2j, P.page, { predicates }));
    };
    // Interleaved, the side that goes first turned round every round.
    if (round % 2) {
      await rawSide();
      await fnSide();
    } else {
      await fnSide();
      await rawSide();
    }
  }
  const fnPull = medianRun(fnRuns);
  const raw = medianRun(rawRuns);
  const plain = medianRun(plainRuns);
  check(
    "pull: the function delivered every visible row once",
    fnRuns[0].changes === expected && dupes === 0 && (fnRuns[0].ops.upsert ?? 0) === expected,
    `${fnRuns[0].changes} changes (${dupes} repeated) for ${expected} visible rows`,
  );
  check(
    "pull ceiling: the keyset select read the same number of rows",
    raw.rows === expected,
    `${raw.rows} of ${expected}`,
  );
  check(
    "pull reference: the select without RLS read the same number of rows",
    plain.rows === expected,
    `${plain.rows} of ${expected}`,
  );
  const fnPullRate = fnPull.changes / (fnPull.ms / 1000);
  const rawRate = raw.rows / (raw.ms / 1000);
  results.figures.pull = {
    rows: expected,
    loaded,
    page: P.page,
    function: {
      ms: rnd(fnPull.ms),
      pages: fnPull.pages,
      rows_per_s: rnd(fnPullRate),
      bytes: fnPull.bytes,
      page_p50_ms: rnd(quantile(fnPull.pageMs, 0.5)),
      page_p95_ms: rnd(quantile(fnPull.pageMs, 0.95)),
      db_ms_per_page: rnd(pullDb?.db_ms_per_request),
    },
    ceiling: { ms: rnd(raw.ms), rows_per_s: rnd(rawRate), queries: raw.queries },
    without_rls: { ms: rnd(plain.ms), rows_per_s: rnd(plain.rows / (plain.ms / 1000)) },
    ratio_vs_ceiling: rnd(fnPullRate / rawRate, 4),
    // The judged figure: the ratio of each round (the function's pull and the keyset select of
    // that round), median and spread.
    rounds: fnRuns.length,
    vs_ceiling_rounds: spreadOf(fnRuns.map((f, i) => (f.changes / f.ms) / (rawRuns[i].rows / rawRuns[i].ms))),
    ratio_vs_without_rls: rnd(fnPullRate / (plain.rows / (plain.ms / 1000)), 4),
  };
  log(`pull: function ${fmt(fnPullRate)} rows/s, raw keyset ${fmt(rawRate)} rows/s`);
  return { cursor: fnPull.cursor };
}
