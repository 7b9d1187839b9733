// @ts-check
// A first pull on a fresh database connection against the same pull on a warm one (issue 18), at
// the SQL level: a new connection made and set up as the function's pool makes and sets up its
// own (postgres.js, no prepared statements), then the first page of a first pull in the
// transaction the function runs it in, against the same page on a connection that has served
// pulls before. The function's pool closes a connection idle for 30 s, so after a quiet spell a
// pull meets a fresh one. The fresh side is timed in two parts: the connect (with one trivial
// statement, which a new connection needs anyway to be usable) and the first pull on it, whose
// cost over the warm one is the backend's caches (catalog, PL/pgSQL compilation, plans) filling.
import postgres from "postgres";
import { log } from "../lib/cluster.mjs";
import { claimsOf } from "./db.mjs";
import { fmt, now, spreadOf } from "./util.mjs";

/** @typedef {import("postgres").Sql} Sql */

/**
 * @param {import("./setup.mjs").Bench} b
 */
export async function runCold(b) {
  const { P, dbUrl, U, results } = b;
  const user = U.rm2j;
  const payload = JSON.stringify({ protocol: 2, cursor: null, limit: P.page });
  /** @param {number} max */
  const open = (max) =>
    postgres(dbUrl, {
      prepare: false,
      max,
      idle_timeout: 30,
      connect_timeout: 10,
      onnotice: () => {},
      connection: { application_name: "bench-cold" },
    });
  /**
   * The function's pull transaction: the set-up and the call pipelined, repeatable read, read only.
   * @param {Sql} db
   */
  const pullPage = async (db) => {
    const t0 = now();
    const [, rows] = await db.begin("isolation level repeatable read read only", (tx) => [
      tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsOf(user)}, true),
                set_config('sync.replayed_lsn', '', true)`,
      tx`select public.sync_pull(${payload}::text::jsonb)::text as answer`,
    ]);
    const ms = now() - t0;
    const changes = JSON.parse(rows[0].answer).changes.length;
    return { ms, changes };
  };
  log(`cold: the first page (${P.page}) of a first pull on a fresh connection vs a warm one, ${P.coldRounds} rounds`);
  const warm = open(1);
  /** @type {{ connect: number, first: number, second: number, warm: number }[]} */
  const rounds = [];
  let changes = 0;
  try {
    for (let i = 0; i < 3; i++) await pullPage(warm);
    for (let round = 0; round < P.coldRounds; round++) {
      const warmSide = async () => (await pullPage(warm)).ms;
      const freshSide = async () => {
        const fresh = open(1);
        try {
          const t0 = now();
          await fresh`select 1`;
          const connect = now() - t0;
          const first = await pullPage(fresh);
          changes = first.changes;
          const second = (await pullPage(fresh)).ms;
          return { connect, first: first.ms, second };
        } finally {
          await fresh.end({ timeout: 5 });
        }
      };
      if (round % 2) {
        const w = await warmSide();
        rounds.push({ ...(await freshSide()), warm: w });
      } else {
        const f = await freshSide();
        rounds.push({ ...f, warm: await warmSide() });
      }
    }
  } finally {
    await warm.end({ timeout: 5 });
  }
  results.figures.cold_pull = {
    page: P.page,
    changes,
    rounds: rounds.length,
    // The judged figure: connect and the first pull on the new connection, against the warm pull.
    fresh_ms: spreadOf(rounds.map((r) => r.connect + r.first), 2),
    connect_ms: spreadOf(rounds.map((r) => r.connect), 2),
    first_pull_on_fresh_ms: spreadOf(rounds.map((r) => r.first), 2),
    second_pull_on_fresh_ms: spreadOf(rounds.map((r) => r.second), 2),
    warm_ms: spreadOf(rounds.map((r) => r.warm), 2),
    ratio: spreadOf(rounds.map((r) => (r.connect + r.first) / r.warm), 3),
    ratio_without_connect: spreadOf(rounds.map((r) => r.first / r.warm), 3),
  };
  const c = results.figures.cold_pull;
  log(
    `cold: fresh ${fmt(c.fresh_ms.median, 1)} ms (connect ${fmt(c.connect_ms.median, 1)}), warm ${
      fmt(c.warm_ms.median, 1)
    } ms: ${fmt(c.ratio.median, 2)}x`,
  );
}
