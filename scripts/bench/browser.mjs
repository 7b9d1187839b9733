// @ts-check
// The client kit in Chromium (issue 16): pull pages applied into IndexedDB through the kit against raw
// IndexedDB bulk writes of the same rows with the same (strict) durability, interleaved rounds in one
// browser, the median of each side kept; and the peak JS heap while the kit syncs N rows against N/10,
// each in a fresh tab. The page code is client/bench/browser.ts, built with the kit; a static server
// on a loopback port the system picks gives it an origin (IndexedDB needs one). Without Chromium the
// phase is skipped and says so.
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { spawnSync } from "node:child_process";
import puppeteer from "puppeteer-core";
import { log, ROOT } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { quantile, rnd } from "./util.mjs";

/** @param {number[]} values */
const median = (values) => /** @type {number} */ (quantile(values, 0.5));

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const DIST = path.join(ROOT, "client/dist");

/**
 * @typedef {object} BrowserFigures
 * @property {number} rows
 * @property {number} page
 * @property {number} rounds
 * @property {{ ms: (number | null)[], median_ms: number | null, rows_per_s: number | null }} kit
 * @property {{ ms: (number | null)[], median_ms: number | null, rows_per_s: number | null }} raw
 * @property {number | null} ratio_vs_raw the kit's rate as a share of raw's, from the medians
 * @property {(number | null)[]} ratios each round's
 * @property {{ small: number, large: number, kit: HeapFigures, raw: HeapFigures }} heap
 */

/**
 * @typedef {object} HeapFigures the JS heap at the small and the large size, in MB
 * @property {(number | null)[]} peak_small_mb the used heap's peak, uncollected garbage included
 * @property {(number | null)[]} peak_large_mb
 * @property {number | null} peak_ratio large / small, from the medians
 * @property {(number | null)[]} live_small_mb the peak of what is live after a forced collection
 * @property {(number | null)[]} live_large_mb
 * @property {number | null} live_ratio large / small, from the medians
 */

/**
 * @param {{ peak: number[], live: number[] }} small
 * @param {{ peak: number[], live: number[] }} large
 * @returns {HeapFigures}
 */
function heapFigures(small, large) {
  const mb = (/** @type {number[]} */ v) => v.map((x) => rnd(x, 1));
  return {
    peak_small_mb: mb(small.peak),
    peak_large_mb: mb(large.peak),
    peak_ratio: rnd(median(large.peak) / median(small.peak), 3),
    live_small_mb: mb(small.live),
    live_large_mb: mb(large.live),
    live_ratio: rnd(median(large.live) / median(small.live), 3),
  };
}

/**
 * Serves an empty page and the kit's build on a loopback port.
 * @returns {Promise<{ url: string, close: () => Promise<void> }>}
 */
async function staticServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end('<!doctype html><meta charset="utf-8"><title>supasync bench</title>');
    }
    const file = path.join(DIST, path.normalize(url.pathname).replace(/^(\.\.[/\\])+/, ""));
    if (!file.startsWith(DIST + path.sep) || !file.endsWith(".js") || !existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
    res.end(readFileSync(file));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

/**
 * @param {import("puppeteer-core").Browser} browser
 * @param {string} url
 */
async function benchTab(browser, url) {
  const page = await browser.newPage();
  page.on("pageerror", (err) => log(`bench page error: ${err}`));
  await page.goto(`${url}/`, { waitUntil: "load" });
  await page.addScriptTag({ type: "module", url: `${url}/bench/browser.js` });
  await page.waitForFunction(() => "bench" in globalThis);
  return page;
}

/**
 * @param {{ rows: number, heapRows: [number, number], rounds: number, page: number }} sizes
 * @returns {Promise<BrowserFigures | null>}
 */
export async function runBrowser({ rows, heapRows, rounds, page: size }) {
  if (!existsSync(CHROMIUM)) {
    log(`*** SKIPPED: the bench's Chromium phase needs Chromium at ${CHROMIUM} (apt-get install -y chromium) ***`);
    return null;
  }
  const built = spawnSync(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "client"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`the kit's build failed: ${built.stdout}${built.stderr}`);
  const server = await staticServer();
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--enable-precise-memory-info", "--js-flags=--expose-gc"],
    // One call writes 100k rows with an fsync per page: far longer than puppeteer's default on a busy machine.
    protocolTimeout: 1_800_000,
  });
  try {
    /** @typedef {{ bench: any }} G */
    const tab = await benchTab(browser, server.url);
    await tab.evaluate(
      (rows, size) => /** @type {G} */ (/** @type {unknown} */ (globalThis)).bench.prepare(rows, size),
      rows,
      size,
    );
    /** @type {number[]} */ const kitMs = [];
    /** @type {number[]} */ const rawMs = [];
    // A round that is not counted first: the browser's first IndexedDB database and the JIT warm up.
    for (let round = -1; round < rounds; round++) {
      for (const side of round % 2 ? ["kit", "raw"] : ["raw", "kit"]) {
        const r = await tab.evaluate(
          (side, size) => /** @type {G} */ (/** @type {unknown} */ (globalThis)).bench[side](size),
          side,
          size,
        );
        check(`browser: ${side} wrote every row (round ${round + 1})`, r.rows === rows, `${r.rows} of ${rows}`);
        if (round >= 0) (side === "kit" ? kitMs : rawMs).push(r.ms);
      }
    }
    await tab.close();

    /** @type {Record<string, { peak: number[], live: number[] }>} */
    const heaps = {};
    for (let round = 0; round < rounds; round++) {
      for (const n of round % 2 ? [heapRows[1], heapRows[0]] : heapRows) {
        for (const side of ["kit", "raw"]) {
          // A fresh tab each time: nothing of the last run is left in the heap.
          const t = await benchTab(browser, server.url);
          const r = await t.evaluate(
            // Warmed up by a write of the small size: the JIT's code is not what is compared.
            (side, n, size, warm) =>
              /** @type {G} */ (/** @type {unknown} */ (globalThis)).bench.heap(side, n, size, warm),
            side,
            n,
            size,
            heapRows[0],
          );
          await t.close();
          check(`browser: the ${side} heap run wrote every row (${n} rows)`, r.rows === n, `${r.rows} of ${n}`);
          const h = (heaps[`${side}${n === heapRows[0] ? "small" : "large"}`] ??= { peak: [], live: [] });
          h.peak.push(r.peak / 2 ** 20);
          h.live.push(r.live / 2 ** 20);
        }
      }
    }
    const ratios = kitMs.map((k, i) => rawMs[i] / k);
    const mk = (/** @type {number[]} */ ms) => ({
      ms: ms.map((x) => rnd(x)),
      median_ms: rnd(median(ms)),
      rows_per_s: rnd(rows / (median(ms) / 1000)),
    });
    return {
      rows,
      page: size,
      rounds,
      kit: mk(kitMs),
      raw: mk(rawMs),
      ratio_vs_raw: rnd(median(rawMs) / median(kitMs), 3),
      ratios: ratios.map((x) => rnd(x, 3)),
      heap: {
        small: heapRows[0],
        large: heapRows[1],
        kit: heapFigures(heaps.kitsmall, heaps.kitlarge),
        raw: heapFigures(heaps.rawsmall, heaps.rawlarge),
      },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
