// @ts-check
// Phase 1, push: mixed ops through the function in batches, interleaved batch by batch with the same
// ops through the ceiling (a multi-row upsert as the superuser) and through the ceiling's statements
// as the user; then the per-item pattern, one request per op.
import { log } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { preload, upsertRows } from "./db.mjs";
import { call } from "./http.mjs";
import { pgssReset, pgssRows, statementsPerRequest } from "./pgss.mjs";
import { Deadline, fmt, quantile, rnd, spreadOf } from "./util.mjs";
import { Stream, verifyPush } from "./workload.mjs";

/**
 * @param {import("./setup.mjs").Bench} b
 * @returns {Promise<{ rm1Parents: string[] }>} the customers the push user attached children to
 */
export async function runPush(b) {
  const { P, sql, api, U, tokens, pgss, dbid, clientId, results } = b;
  log(
    `push: ${P.pushOps} mixed ops through the function in batches of ${P.batch}, the same through the ceiling; ${P.perItemOps} per-item requests`,
  );
  const rm1Parents = await b.customersOf(U.rm1j);
  const fnStream = new Stream({ name: "fn", seed: 1, user: U.rm1j, parents: rm1Parents });
  const ceilStream = new Stream({ name: "ceil", seed: 1, user: U.rm1j, parents: rm1Parents });
  // A reference, not the target: the ceiling's statements as the user, under RLS and the field
  // rules, which the function cannot skip and the superuser does.
  const userCeilStream = new Stream({ name: "ceiluser", seed: 1, user: U.rm1j, parents: rm1Parents });
  const itemStream = new Stream({ name: "item", seed: 3, user: U.rm1j, parents: rm1Parents });
  const poolSize = Math.min(300, P.pushOps);
  await preload(sql, fnStream, poolSize);
  await preload(sql, ceilStream, poolSize);
  await preload(sql, userCeilStream, poolSize);
  await preload(sql, itemStream, Math.min(300, P.perItemOps * 2));
  await sql.unsafe("vacuum (analyze) public.customers, public.key_persons, public.pipelines, public.activities");

  const push = {
    fn: { ms: 0, ops: 0, batchMs: /** @type {number[]} */ ([]) },
    ceiling: { ms: 0, rows: 0 },
    userCeiling: { ms: 0, rows: 0, batches: 0 },
    kinds: { insert: 0, update: 0, delete: 0 },
  };
  /** @type {string[]} */
  const pushSamples = [];
  let pushBad = 0;
  let ceilingBad = 0;
  /**
   * One batch of the ceiling, written and checked; `into` adds its time and size to the figures.
   * @param {Stream} stream
   * @param {number} size
   * @param {{ ms: number, rows: number } | null} into
   * @param {{ asUser?: boolean }} [options]
   */
  const ceilingBatch = async (stream, size, into, options) => {
    const batch = stream.batch(size);
    const c = await upsertRows(sql, U.rm1j, batch.rows, options);
    if (into) {
      into.ms += c.ms;
      into.rows += c.written;
    }
    if (c.written !== size) ceilingBad += Math.abs(size - c.written);
    batch.commit();
  };
  /**
   * The same through the function.
   * @param {number} size
   * @param {{ ms: number, ops: number, batchMs: number[] } | null} into
   */
  const functionBatch = async (size, into) => {
    const batch = fnStream.batch(size);
    const r = await call(api.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: batch.ops });
    if (into) {
      for (const k of /** @type {("insert" | "update" | "delete")[]} */ (Object.keys(batch.kinds))) {
        push.kinds[k] += batch.kinds[k];
      }
      into.ms += r.ms;
      into.ops += size;
      into.batchMs.push(r.ms);
    }
    pushBad += verifyPush(r, batch, pushSamples);
    batch.commit();
  };
  // One batch each, untimed, first: the function's connection compiles its PL/pgSQL and fills its
  // plan caches on its first push (the ceiling's connection has long been warm), and a server
  // that has run for a while has both done that.
  await ceilingBatch(ceilStream, P.batch, null);
  await ceilingBatch(userCeilStream, P.batch, null, { asUser: true });
  await functionBatch(P.batch, null);
  if (pgss) await pgssReset(sql, dbid);
  const pushDeadline = new Deadline(P.phaseBudgetMs, "the push phase");
  // The batches are grouped into rounds, a ratio per round, and the median and spread of those are
  // the figures (a single ratio over the whole phase moved by ten points between runs). Within a
  // batch the three sides run one after the other, so all three see the same database size and the
  // same machine noise; the order turns round from one round to the next.
  const batches = Math.ceil(P.pushOps / P.batch);
  const rounds = Math.max(1, Math.min(P.pushRounds, batches));
  /** @type {{ fnMs: number, fnOps: number, userMs: number, userRows: number, ceilMs: number, ceilRows: number, batches: number }[]} */
  const perRound = Array.from(
    { length: rounds },
    () => ({ fnMs: 0, fnOps: 0, userMs: 0, userRows: 0, ceilMs: 0, ceilRows: 0, batches: 0 }),
  );
  for (let i = 0, done = 0; done < P.pushOps; i++, done += P.batch) {
    const size = Math.min(P.batch, P.pushOps - done);
    const round = Math.floor((i * rounds) / batches);
    const r = perRound[round];
    const before = { fn: push.fn.ms, fnOps: push.fn.ops, user: push.userCeiling.ms, userRows: push.userCeiling.rows };
    const ceil0 = { ms: push.ceiling.ms, rows: push.ceiling.rows };
    const sides = [
      () => ceilingBatch(ceilStream, size, push.ceiling),
      () => ceilingBatch(userCeilStream, size, push.userCeiling, { asUser: true }),
      () => functionBatch(size, push.fn),
    ];
    for (const side of round % 2 ? sides.reverse() : sides) await side();
    r.fnMs += push.fn.ms - before.fn;
    r.fnOps += push.fn.ops - before.fnOps;
    r.userMs += push.userCeiling.ms - before.user;
    r.userRows += push.userCeiling.rows - before.userRows;
    r.ceilMs += push.ceiling.ms - ceil0.ms;
    r.ceilRows += push.ceiling.rows - ceil0.rows;
    r.batches++;
    push.userCeiling.batches++;
    pushDeadline.check();
  }
  const pushDb = pgss ? statementsPerRequest(await pgssRows(sql, dbid), push.fn.batchMs.length, push.fn.ops) : null;
  // The user's upserts' time in the database (their statements as `authenticated`), to split the
  // push's own work into what it does in the database and what outside.
  const [userDb] = pgss
    ? await sql`
      select coalesce(sum(s.total_exec_time), 0)::float8 as ms from extensions.pg_stat_statements s
       where s.dbid = ${dbid} and s.toplevel and s.userid = 'authenticated'::regrole and s.query ilike 'insert into public.%'`
    : [null];
  check(
    "push: every op of the batched pushes applied, at the predicted version",
    pushBad === 0,
    pushSamples.join("; "),
  );
  check(
    "push ceiling: every row written, as the superuser and as the user",
    ceilingBad === 0,
    `${ceilingBad} rows missing`,
  );

  // The per-item pattern: one request per op, in order, as the old app did.
  const item = { ms: 0, ops: 0, reqMs: /** @type {number[]} */ ([]) };
  /** @type {string[]} */
  const itemSamples = [];
  let itemBad = 0;
  for (let i = 0; i < P.perItemOps; i++) {
    const batch = itemStream.batch(1);
    const r = await call(api.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: batch.ops });
    item.ms += r.ms;
    item.ops++;
    item.reqMs.push(r.ms);
    itemBad += verifyPush(r, batch, itemSamples);
    batch.commit();
    pushDeadline.check();
  }
  check("push per-item: every op applied, at the predicted version", itemBad === 0, itemSamples.join("; "));

  // The database holds what the answers said.
  const [{ live, gone }] = await sql`
    select count(*) filter (where deleted_at is null)::int as live, count(*) filter (where deleted_at is not null)::int as gone
      from (select id, deleted_at from public.customers union all select id, deleted_at from public.key_persons
            union all select id, deleted_at from public.pipelines union all select id, deleted_at from public.activities) t
     where t.id = any (${fnStream.pool.map((e) => e.id)}::uuid[])`;
  check(
    "push: the function's surviving rows are stored and live",
    live === fnStream.pool.length && gone === 0,
    `${live} live and ${gone} deleted of ${fnStream.pool.length}`,
  );

  const fnRate = push.fn.ops / (push.fn.ms / 1000);
  const ceilRate = push.ceiling.rows / (push.ceiling.ms / 1000);
  const userCeilRate = push.userCeiling.rows / (push.userCeiling.ms / 1000);
  const itemRate = item.ops / (item.ms / 1000);
  results.figures.push = {
    ops: push.fn.ops,
    batch: P.batch,
    kinds: push.kinds,
    function: {
      ms: rnd(push.fn.ms),
      ops_per_s: rnd(fnRate),
      batch_p50_ms: rnd(quantile(push.fn.batchMs, 0.5)),
      batch_p95_ms: rnd(quantile(push.fn.batchMs, 0.95)),
      db_ms_per_request: rnd(pushDb?.db_ms_per_request),
    },
    ceiling: { ms: rnd(push.ceiling.ms), rows: push.ceiling.rows, rows_per_s: rnd(ceilRate) },
    ceiling_as_user: { ms: rnd(push.userCeiling.ms), rows: push.userCeiling.rows, rows_per_s: rnd(userCeilRate) },
    per_item: {
      ops: item.ops,
      ms: rnd(item.ms),
      ops_per_s: rnd(itemRate),
      request_p50_ms: rnd(quantile(item.reqMs, 0.5)),
      request_p95_ms: rnd(quantile(item.reqMs, 0.95)),
      scaled_to_n_ms: rnd((P.pushOps / itemRate) * 1000),
    },
    ratio_vs_ceiling: rnd(fnRate / ceilRate, 4),
    ratio_vs_ceiling_as_user: rnd(fnRate / userCeilRate, 4),
    // The judged figure (issue 18): the push against the same upserts run as the user, by round.
    rounds: perRound.length,
    vs_user_rounds: spreadOf(perRound.map((r) => (r.fnOps / r.fnMs) / (r.userRows / r.userMs))),
    vs_ceiling_rounds: spreadOf(perRound.map((r) => (r.fnOps / r.fnMs) / (r.ceilRows / r.ceilMs))),
    // What the push does besides the writes the user's upserts also do, per batch of P.batch ops:
    // validation, version reads, idempotency records, the answer, the token, zod and HTTP.
    own_work_ms_per_batch: spreadOf(perRound.map((r) => (r.fnMs - r.userMs) / r.batches), 1),
    // Over the whole phase (pg_stat_statements): the push's call in the database against the user's
    // upserts' statements there, per batch; the rest of each side is outside the database.
    db_split: pushDb?.db_ms_per_request == null || userDb == null ? null : {
      push_db_ms_per_batch: rnd(pushDb.db_ms_per_request),
      user_upserts_db_ms_per_batch: rnd(userDb.ms / push.userCeiling.batches),
      push_outside_db_ms_per_batch: rnd(push.fn.ms / push.fn.batchMs.length - pushDb.db_ms_per_request),
      user_upserts_outside_db_ms_per_batch: rnd((push.userCeiling.ms - userDb.ms) / push.userCeiling.batches),
    },
    function_ms_per_batch: spreadOf(perRound.map((r) => r.fnMs / r.batches), 1),
    user_upserts_ms_per_batch: spreadOf(perRound.map((r) => r.userMs / r.batches), 1),
    ceiling_as_user_vs_ceiling: rnd(userCeilRate / ceilRate, 4),
    ratio_vs_per_item: rnd(fnRate / itemRate, 2),
  };
  log(
    `push: function ${fmt(fnRate)} ops/s, ceiling ${fmt(ceilRate)} rows/s (as the user ${
      fmt(userCeilRate)
    }), per-item ${fmt(itemRate)} ops/s`,
  );
  return { rm1Parents };
}
