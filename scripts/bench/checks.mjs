// @ts-check
// The correctness checks, collected over the run: the bench's exit code says whether they all
// passed, never whether a target was met.
import { log } from "../lib/cluster.mjs";

/** @typedef {{ name: string, ok: boolean, detail: string }} Check */

/** @type {Check[]} */
export const checks = [];

/**
 * Records a check; a failed one is logged at once.
 * @param {string} name
 * @param {unknown} ok
 * @param {string} [detail]
 */
export function check(name, ok, detail = "") {
  checks.push({ name, ok: Boolean(ok), detail });
  if (!ok) log(`CHECK FAILED: ${name}${detail ? ` (${detail})` : ""}`);
  return ok;
}
