// @ts-check
// The run: the phases in order, each timed, then the report and the figures as JSON. Whatever
// happens, the function instances stop, the connections close, and a smoke run drops its database.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, server } from "../lib/cluster.mjs";
import { dropDatabase } from "../lib/stack.mjs";
import { check, checks } from "./checks.mjs";
import { deadlocks, noiseSnapshot } from "./db.mjs";
import { runDevices } from "./devices.mjs";
import { runEmptyDelta } from "./empty_delta.mjs";
import { http } from "./http.mjs";
import { parseOptions } from "./options.mjs";
import { runBrowser } from "./browser.mjs";
import { runCold } from "./cold.mjs";
import { runPlans } from "./plans.mjs";
import { runPull } from "./pull.mjs";
import { runPush } from "./push.mjs";
import { formatReport } from "./report.mjs";
import { runScale } from "./scale.mjs";
import { setup } from "./setup.mjs";
import { runStatements } from "./statements.mjs";
import { runTriggers } from "./triggers.mjs";
import { messageOf, now, rnd, sleep } from "./util.mjs";

/**
 * Marks the start of each phase; the durations go to results.phases_s.
 */
class PhaseClock {
  constructor() {
    /** @type {Record<string, number | null>} */
    this.durations = {};
    /** @type {string | null} */
    this.current = null;
    this.started = 0;
  }
  /** @param {string | null} name the phase that starts now (null: the end of the last) */
  phase(name) {
    const t = now();
    if (this.current) this.durations[this.current] = rnd((t - this.started) / 1000, 1);
    this.current = name;
    this.started = t;
  }
}

/**
 * `npm run bench -- ...`: runs the bench and exits, 0 when every correctness check passed.
 * @param {string[]} args
 */
export async function run(args) {
  const opts = parseOptions(args);
  const { mode, P } = opts;
  /** @type {Record<string, any>} */
  const results = {
    mode,
    params: P,
    started_at: new Date().toISOString(),
    machine: {
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      cpu_model: os.cpus()[0]?.model ?? "unknown",
      cpu_count: os.cpus().length,
      memory_gib: rnd(os.totalmem() / 2 ** 30, 1),
      node: process.version,
    },
    noise: {},
    figures: {},
    plans: {},
  };
  const t0 = Date.now();
  const clock = new PhaseClock();
  clock.phase("setup");
  /** @type {import("./setup.mjs").Resources} */
  const live = { srv: server(), apis: [], sql: null, dbUrl: null };
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    for (const a of live.apis) await a.stop().catch(() => {});
    await live.sql?.end({ timeout: 5 }).catch(() => {});
    if (live.dbUrl && mode === "smoke" && !opts.keepDb) await dropDatabase(live.srv.url, opts.dbName).catch(() => {});
    live.srv.stop();
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, async () => {
      await shutdown();
      process.exit(130);
    });
  }

  const browserPhase = async () => {
    clock.phase("browser");
    results.figures.browser = await runBrowser({
      rows: P.browserRows,
      heapRows: P.browserHeapRows,
      rounds: P.browserRounds,
      page: 500,
    });
  };
  try {
    if (opts.browserOnly) {
      await browserPhase();
      clock.phase(null);
      results.phases_s = clock.durations;
      results.duration_s = rnd((Date.now() - t0) / 1000);
      results.checks = checks;
      console.log(formatReport(results));
    } else {
      const b = await setup(opts, results, live);
      const { sql } = b;

      clock.phase("triggers");
      await runTriggers(b);

      clock.phase("push");
      const { rm1Parents } = await runPush(b);

      clock.phase("devices");
      await runDevices(b);

      clock.phase("pull");
      const pulled = await runPull(b);

      clock.phase("empty_delta");
      const { cursor } = await runEmptyDelta(b, pulled.cursor);

      clock.phase("cold_pull");
      await runCold(b);

      clock.phase("statements");
      if (b.pgss) await runStatements(b, { cursor, rm1Parents });

      clock.phase("scale");
      results.figures.scale = await runScale(b);

      clock.phase("plans");
      await runPlans(b);

      if (!opts.noBrowser) await browserPhase();

      clock.phase("wrap_up");
      results.noise.end = await noiseSnapshot(sql);
      results.http_5xx_retried = http.retried5xx;
      for (const a of live.apis.splice(0)) await a.stop();
      await sleep(500);
      const dlTotal = (await deadlocks(sql)) - b.deadlocksAtStart;
      results.figures.deadlocks_run_total = dlTotal;
      check("run: no deadlock anywhere in the run", dlTotal === 0, `${dlTotal} deadlocks`);
      clock.phase(null);
      results.phases_s = clock.durations;
      results.duration_s = rnd((Date.now() - t0) / 1000);
      results.checks = checks;
      console.log(formatReport(results));
      if (mode !== "smoke" && !opts.noJson) {
        const dir = path.join(ROOT, "bench", "results");
        mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `${results.started_at.replace(/[:.]/g, "-")}-${mode}.json`);
        writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
        console.log(`\nFigures written to ${path.relative(ROOT, file)}`);
      }
    }
  } catch (err) {
    console.error(err);
    check("the bench ran to the end", false, messageOf(err));
  } finally {
    await shutdown();
  }
  const failed = checks.filter((c) => !c.ok);
  console.log(
    `\nbench ${mode}: ${checks.length - failed.length} checks passed, ${failed.length} failed (${
      rnd((Date.now() - t0) / 1000)
    } s)`,
  );
  process.exit(failed.length ? 1 : 0);
}
