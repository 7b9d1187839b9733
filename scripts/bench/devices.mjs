// @ts-check
// Phase 6, concurrent devices: many devices of four users push and pull at once, round after round,
// each editing a row its user shares with other devices so that concurrent edits meet. Run before
// the pull data is loaded, so that the devices' users hold seed-sized data sets.
import { randomUUID } from "node:crypto";
import { log } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { deadlocks } from "./db.mjs";
import { call, pullAll } from "./http.mjs";
import { Deadline, fmt, mulberry32, now, quantile, rnd, sleep } from "./util.mjs";
import { Stream } from "./workload.mjs";

/** @typedef {import("./workload.mjs").BenchUser} BenchUser */

/** @param {import("./setup.mjs").Bench} b */
export async function runDevices(b) {
  const { P, sql, api, U, tokens, results } = b;
  log(`devices: ${P.devices} devices x ${P.rounds} rounds of push (${P.deviceOps} ops) and pull`);
  const deviceUsers = [U.rm2j, U.rm1s, U.rm2s, U.bms];
  const tokenOf = new Map([[U.rm2j, tokens.rm2j], [U.rm1s, tokens.rm1s], [U.rm2s, tokens.rm2s], [U.bms, tokens.bms]]);
  /** @type {Map<BenchUser, { cursor: string, known: Map<string, number>, shared: string[] }>} */
  const initial = new Map();
  const initT0 = now();
  for (const u of deviceUsers) {
    /** @type {Map<string, number>} */
    const known = new Map();
    const shared = await b.customersOf(u);
    const sharedSet = new Set(shared);
    const p = await pullAll(api.apiUrl, /** @type {string} */ (tokenOf.get(u)), {
      limit: P.page,
      maxPages: 1000,
      onChange: (c) =>
        c.table === "customers" && c.op === "upsert" && sharedSet.has(c.row.id) &&
        known.set(c.row.id, Number(c.row.version)),
    });
    initial.set(u, { cursor: p.cursor, known, shared: shared.slice(0, 40) });
  }
  const initMs = now() - initT0;
  const dl0 = await deadlocks(sql);
  const dev = {
    pushMs: /** @type {number[]} */ ([]),
    pullMs: /** @type {number[]} */ ([]),
    httpErrors: 0,
    opStatus: /** @type {Record<string, number>} */ ({}),
    conflicts: 0,
    rounds: 0,
    changes: 0,
    errorSamples: /** @type {string[]} */ ([]),
  };
  const devDeadline = new Deadline(P.devicesBudgetMs, "the devices phase");
  const devT0 = now();
  /** @param {BenchUser} u */
  const rmOfBranch = (u) =>
    u.role === "bm" ? Object.values(U).find((x) => x.role === "rm" && x.branch_id === u.branch_id) ?? null : null;
  await Promise.all(Array.from({ length: P.devices }, async (_, d) => {
    const u = deviceUsers[d % deviceUsers.length];
    const token = /** @type {string} */ (tokenOf.get(u));
    const init = /** @type {{ cursor: string, known: Map<string, number>, shared: string[] }} */ (initial.get(u));
    const known = new Map(init.known);
    let cursor = init.cursor;
    const stream = new Stream({ name: `d${d}`, seed: 100 + d, user: u, assignTo: rmOfBranch(u), parents: init.shared });
    const sharedRng = mulberry32(1000 + d);
    const deviceClient = randomUUID();
    for (let round = 0; round < P.rounds && !devDeadline.passed; round++) {
      const batch = stream.batch(P.deviceOps - 1);
      // One edit of a row the user shares with their other devices (and a bm with the rm), based on
      // the version this device last saw: concurrent edits meet here and are resolved and audited.
      const sharedId = init.shared[Math.floor(sharedRng() * init.shared.length)];
      /** @type {import("./workload.mjs").Op[]} */
      const ops = [...batch.ops];
      if (sharedId && known.has(sharedId)) {
        ops.push({
          op_id: randomUUID(),
          table: "customers",
          op: "update",
          id: sharedId,
          base_version: known.get(sharedId),
          data: { notes: `device ${d} round ${round}` },
        });
      }
      const r = await call(api.apiUrl, "/push", token, { protocol: 2, client_id: deviceClient, ops });
      dev.pushMs.push(r.ms);
      if (r.status !== 200 || !Array.isArray(r.json?.results)) {
        dev.httpErrors++;
        if (dev.errorSamples.length < 5) dev.errorSamples.push(`push ${r.status}: ${r.text.slice(0, 200)}`);
      } else {
        r.json.results.forEach((/** @type {any} */ res, /** @type {number} */ i) => {
          dev.opStatus[res.status] = (dev.opStatus[res.status] ?? 0) + 1;
          if (res.conflict) dev.conflicts++;
          if (res.status !== "applied" && dev.errorSamples.length < 5) {
            dev.errorSamples.push(`${ops[i].op} ${ops[i].table}: ${res.status}/${res.code} ${res.message ?? ""}`);
          }
          if (ops[i].id === sharedId && res.row) known.set(sharedId, Number(res.row.version));
        });
        // Own rows: the answer's versions are the truth (a retried request may repeat as duplicate).
        batch.commit();
      }
      try {
        const p = await pullAll(api.apiUrl, token, {
          cursor,
          limit: P.page,
          maxPages: 50,
          onChange: (c) =>
            c.table === "customers" && c.op === "upsert" && known.has(c.row.id) &&
            known.set(c.row.id, Number(c.row.version)),
        });
        dev.pullMs.push(...p.pageMs);
        dev.changes += p.changes;
        cursor = p.cursor;
      } catch (err) {
        dev.httpErrors++;
        if (dev.errorSamples.length < 5) {
          dev.errorSamples.push(`pull: ${/** @type {Error} */ (err).message.slice(0, 200)}`);
        }
      }
      dev.rounds++;
    }
  }));
  const devMs = now() - devT0;
  await sleep(1500); // backends report their counters when idle
  const dl1 = await deadlocks(sql);
  const opErrors = Object.entries(dev.opStatus).filter(([s]) => s !== "applied").reduce((a, [, n]) => a + n, 0);
  results.figures.devices = {
    devices: P.devices,
    rounds_planned: P.rounds,
    rounds_done: dev.rounds,
    users: deviceUsers.map((u) => u.email),
    initial_pulls_ms: rnd(initMs),
    ms: rnd(devMs),
    push_p50_ms: rnd(quantile(dev.pushMs, 0.5)),
    push_p95_ms: rnd(quantile(dev.pushMs, 0.95)),
    pull_p50_ms: rnd(quantile(dev.pullMs, 0.5)),
    pull_p95_ms: rnd(quantile(dev.pullMs, 0.95)),
    requests: dev.pushMs.length + dev.pullMs.length,
    http_errors: dev.httpErrors,
    op_status: dev.opStatus,
    op_errors: opErrors,
    applied_with_conflict: dev.conflicts,
    changes_pulled: dev.changes,
    deadlocks: dl1 - dl0,
    error_samples: dev.errorSamples,
  };
  if (dev.rounds < P.devices * P.rounds) {
    log(`devices: the time budget stopped the phase after ${dev.rounds} of ${P.devices * P.rounds} rounds`);
  }
  if (b.opts.mode === "smoke") {
    check(
      "devices: every round completed",
      dev.rounds === P.devices * P.rounds,
      `${dev.rounds} of ${P.devices * P.rounds}`,
    );
  }
  check("devices: no request failed", dev.httpErrors === 0, dev.errorSamples.join("; "));
  check("devices: every op applied", opErrors === 0, JSON.stringify(dev.opStatus));
  check("devices: no deadlock", dl1 - dl0 === 0, `${dl1 - dl0} deadlocks`);
  log(
    `devices: push p50 ${fmt(quantile(dev.pushMs, 0.5))} ms, p95 ${
      fmt(quantile(dev.pushMs, 0.95))
    } ms; ${dev.httpErrors} errors`,
  );
}
