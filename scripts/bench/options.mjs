// @ts-check
// The bench's command line and the sizes of its three modes.
import { parseArgs } from "node:util";

/**
 * @typedef {object} Preset
 * @property {number} pushOps ops through the function (and the same shape through the ceiling)
 * @property {number} batch ops per push request
 * @property {number} perItemMax caps the per-item sample at min(perItemMax, pushOps / 10)
 * @property {number} perItemOps the per-item sample, worked out from the two above
 * @property {number} pullRows rows loaded for the full-pull user
 * @property {number} page pull page size
 * @property {number} pushRounds interleaved rounds the push's batches are grouped into (a ratio per round)
 * @property {number} pullRounds rounds of the pull phase (the median of each side is kept)
 * @property {number} deltaRounds rounds of empty delta pulls interleaved with probe requests
 * @property {number} triggerRows rows written one per statement, per table and round (triggers phase)
 * @property {number} triggerBulkRows rows written 500 per statement, per table and round
 * @property {number} triggerRounds interleaved rounds of the triggers phase
 * @property {number} coldRounds rounds of the fresh-connection first pull
 * @property {number} emptyPulls empty delta pulls timed
 * @property {number} statsPushes pushes counted by pg_stat_statements
 * @property {number} statsPages pull pages counted by pg_stat_statements
 * @property {number} statsEmpty empty delta pulls counted by pg_stat_statements
 * @property {number} devices concurrent devices
 * @property {number} rounds rounds of push and pull per device
 * @property {number} deviceOps ops per device push
 * @property {number} devicesBudgetMs time budget of the devices phase
 * @property {number[]} scale customer counts the scale phase fills up to
 * @property {number} scalePushOps ops pushed at each scale level
 * @property {number} scalePullRows rows loaded for the scale user
 * @property {number} phaseBudgetMs time budget of the push phase (and of each pull round)
 * @property {number} scaleRequestTimeoutMs a request's timeout in the scale phase
 * @property {number} scaleBudgetMs once spent, the scale phase runs no further level
 * @property {number} browserRows rows applied through the kit in Chromium, and written raw
 * @property {[number, number]} browserHeapRows the two sync sizes whose peak heaps are compared
 * @property {number} browserRounds interleaved rounds of the Chromium phase
 */

/** @typedef {"full" | "quick" | "smoke"} Mode */

/**
 * @typedef {object} Options
 * @property {Mode} mode
 * @property {Preset} P
 * @property {string} dbName
 * @property {boolean} keepDb
 * @property {boolean} noJson
 * @property {boolean} browserOnly run only the Chromium phase (no database)
 * @property {boolean} noBrowser skip the Chromium phase
 */

/** @type {Record<Mode, Omit<Preset, "perItemOps">>} */
export const PRESETS = {
  full: {
    pushOps: 10_000,
    batch: 500,
    perItemMax: 1000,
    pullRows: 100_000,
    page: 1000,
    pullRounds: 5,
    emptyPulls: 50,
    statsPushes: 2,
    statsPages: 3,
    statsEmpty: 10,
    devices: 50,
    rounds: 6,
    deviceOps: 20,
    devicesBudgetMs: 240_000,
    scale: [10_000, 100_000, 1_000_000],
    scalePushOps: 4000,
    scalePullRows: 5000,
    phaseBudgetMs: 400_000,
    scaleRequestTimeoutMs: 240_000,
    scaleBudgetMs: 600_000,
    browserRows: 100_000,
    browserHeapRows: [10_000, 100_000],
    browserRounds: 5,
    pushRounds: 5,
    deltaRounds: 5,
    triggerRows: 300,
    triggerBulkRows: 2000,
    triggerRounds: 5,
    coldRounds: 7,
  },
  quick: {
    pushOps: 2500,
    batch: 500,
    perItemMax: 200,
    pullRows: 6000,
    page: 1000,
    pullRounds: 5,
    emptyPulls: 30,
    statsPushes: 2,
    statsPages: 2,
    statsEmpty: 10,
    devices: 50,
    rounds: 3,
    deviceOps: 10,
    devicesBudgetMs: 35_000,
    scale: [10_000],
    scalePushOps: 1000,
    scalePullRows: 2000,
    phaseBudgetMs: 60_000,
    scaleRequestTimeoutMs: 60_000,
    scaleBudgetMs: 60_000,
    browserRows: 20_000,
    browserHeapRows: [2000, 20_000],
    browserRounds: 3,
    pushRounds: 5,
    deltaRounds: 5,
    triggerRows: 200,
    triggerBulkRows: 1000,
    triggerRounds: 5,
    coldRounds: 5,
  },
  smoke: {
    pushOps: 300,
    batch: 100,
    perItemMax: 30,
    pullRows: 600,
    page: 200,
    pullRounds: 1,
    emptyPulls: 10,
    statsPushes: 1,
    statsPages: 2,
    statsEmpty: 3,
    devices: 5,
    rounds: 2,
    deviceOps: 10,
    devicesBudgetMs: 30_000,
    scale: [],
    scalePushOps: 0,
    scalePullRows: 0,
    phaseBudgetMs: 30_000,
    scaleRequestTimeoutMs: 30_000,
    scaleBudgetMs: 30_000,
    browserRows: 2000,
    browserHeapRows: [500, 2000],
    browserRounds: 1,
    pushRounds: 1,
    deltaRounds: 1,
    triggerRows: 20,
    triggerBulkRows: 500,
    triggerRounds: 1,
    coldRounds: 1,
  },
};

/**
 * The options of `npm run bench -- ...`: a mode's preset with the sizes the command line overrides.
 * @param {string[]} args
 * @returns {Options}
 */
export function parseOptions(args) {
  const { values: argv } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      db: { type: "string" },
      "keep-db": { type: "boolean", default: false },
      "no-json": { type: "boolean", default: false },
      page: { type: "string" },
      "push-ops": { type: "string" },
      "pull-rows": { type: "string" },
      devices: { type: "string" },
      rounds: { type: "string" },
      scale: { type: "string" },
      "browser-only": { type: "boolean", default: false },
      "no-browser": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (argv.help) {
    console.log(`npm run bench [-- options]
  (none)            the full run
  --quick           small sizes, scale at 10 000 customers only (a few minutes)
  --smoke           the check npm test runs
  --no-browser      skip the Chromium phase;  --browser-only  run only it
  --db NAME         the bench database (default supasync_bench), re-created each run;  --keep-db  keep it after --smoke
  --no-json         write no bench/results file
  --page N --push-ops N --pull-rows N --devices N --rounds N --scale 10000,100000   override a mode's sizes`);
    process.exit(0);
  }
  /** @type {Mode} */
  const mode = argv.smoke ? "smoke" : argv.quick ? "quick" : "full";
  const P = { ...PRESETS[mode], perItemOps: 0 };
  /**
   * @param {"page" | "push-ops" | "pull-rows" | "devices" | "rounds"} name
   * @param {"page" | "pushOps" | "pullRows" | "devices" | "rounds"} key
   */
  const intOpt = (name, key) => {
    if (argv[name] === undefined) return;
    const n = Number(argv[name]);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive whole number`);
    P[key] = n;
  };
  intOpt("page", "page");
  intOpt("push-ops", "pushOps");
  intOpt("pull-rows", "pullRows");
  intOpt("devices", "devices");
  intOpt("rounds", "rounds");
  if (argv.scale !== undefined) P.scale = argv.scale.split(",").filter(Boolean).map(Number);
  P.perItemOps = Math.max(1, Math.min(P.perItemMax, Math.floor(P.pushOps / 10)));
  return {
    mode,
    P,
    dbName: argv.db ?? "supasync_bench",
    keepDb: Boolean(argv["keep-db"]),
    noJson: Boolean(argv["no-json"]),
    browserOnly: Boolean(argv["browser-only"]),
    noBrowser: Boolean(argv["no-browser"]),
  };
}
