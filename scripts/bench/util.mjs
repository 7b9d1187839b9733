// @ts-check
// Small utilities of the bench: time, seeded randomness, figures, ports, budgets.

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.now();
export const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

/**
 * A small seeded generator: the same seed gives the same workload in every run.
 * @param {number} seed
 * @returns {() => number} numbers in [0, 1)
 */
export function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * @param {number[]} values
 * @param {number} q
 * @returns {number | null}
 */
export function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/**
 * `x` rounded to `d` decimals, or null when it is no finite number.
 * @param {number | null | undefined} x
 * @param {number} [d]
 * @returns {number | null}
 */
export const rnd = (x, d = 1) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/**
 * @param {number | null | undefined} x
 * @param {number} [d]
 */
export const fmt = (x, d = 1) =>
  x == null || !Number.isFinite(x) ? "n/a" : /** @type {number} */ (rnd(x, d)).toLocaleString("en-US");

/** @param {number | null | undefined} x */
export const pct = (x) => (x == null || !Number.isFinite(x) ? "n/a" : `${fmt(100 * x, 1)}%`);

/** @param {string} s */
export const quoteIdent = (s) => '"' + s.replaceAll('"', '""') + '"';

/** A time budget: check() throws once it is spent, so every loop stops by itself. */
export class Deadline {
  /**
   * @param {number} ms
   * @param {string} what
   */
  constructor(ms, what) {
    this.at = Date.now() + ms;
    this.what = what;
  }
  get passed() {
    return Date.now() > this.at;
  }
  check() {
    if (this.passed) throw new Error(`${this.what} exceeded its time budget`);
  }
}

/**
 * The run with the median `ms`.
 * @template {{ ms: number }} T
 * @param {T[]} runs
 * @returns {T}
 */
export const medianRun = (runs) => [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)];

/**
 * Runs `fn` n times in a row and returns the median run.
 * @template {{ ms: number }} T
 * @param {number} n
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function medianOf(n, fn) {
  const runs = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  return medianRun(runs);
}

/**
 * The message of whatever was thrown.
 * @param {unknown} err
 */
export const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/**
 * A figure over interleaved rounds: the median and the spread (min..max), and every round's value.
 * @typedef {{ median: number | null, min: number | null, max: number | null, rounds: (number | null)[] }} Spread
 */

/**
 * The median and spread of one figure over rounds (values rounded to `d` decimals).
 * @param {(number | null | undefined)[]} values
 * @param {number} [d]
 * @returns {Spread}
 */
export function spreadOf(values, d = 4) {
  const v = /** @type {number[]} */ (values.filter((x) => x != null && Number.isFinite(x)));
  const s = [...v].sort((a, b) => a - b);
  const median = !s.length ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return {
    median: rnd(median, d),
    min: rnd(s[0], d),
    max: rnd(s[s.length - 1], d),
    rounds: values.map((x) => rnd(x, d)),
  };
}
