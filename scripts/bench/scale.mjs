// @ts-check
// Phase 5, scale. At each level, with filler customers owned by another rm (rm2.surabaya) bulk-loaded
// up to it:
//  - catch-up: the scale user's delta pull right after the load (the filler is in its window,
//    none of it visible to them): reported, not a per-row figure;
//  - full pull of customers only (tables: ["customers"], one page of up to 2000): the first pull's
//    per-row cost where it meets the table's size (an all-table first pull repeats that for every
//    child table page and would not finish at 1 000 000 in this run's time);
//  - push of mixed ops in batches, then the delta pull of exactly those changes (all tables).
import { log } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { claimsOf, loadRows, preload } from "./db.mjs";
import { call, pullAll } from "./http.mjs";
import { pgssReset } from "./pgss.mjs";
import { fmt, medianOf, messageOf, now, quantile, rnd } from "./util.mjs";
import { Stream, verifyPush } from "./workload.mjs";

const SCALE_PULL_ROWS = 800;

/**
 * A figure, or the error that kept it from being taken.
 * @template T
 * @typedef {{ value: T, error?: undefined } | { value?: undefined, error: string }} Timed
 */

/**
 * @param {import("./setup.mjs").Bench} b
 * @returns {Promise<Record<string, any>[]>} one entry per level run
 */
export async function runScale(b) {
  const { P, sql, api, U, tokens, clientId } = b;
  /** @type {Record<string, any>[]} */
  const scale = [];
  if (!P.scale.length) return scale;
  const phaseT0 = now();
  log(`scale: ${P.scale.join(", ")} customers; filler owned by ${U.rm2s.email}`);
  await loadRows(sql, { owner: U.rm1s, total: P.scalePullRows, label: "Scale" });
  const scaleParents = await b.customersOf(U.rm1s);
  // The scale user's cursor over all tables, taken before any filler exists.
  let scaleCursor = (await pullAll(api.apiUrl, tokens.rm1s, { limit: 2000, maxPages: 1000 })).cursor;
  /**
   * @template T
   * @param {string} what
   * @param {() => Promise<T>} fn
   * @returns {Promise<Timed<T>>}
   */
  const timed = async (what, fn) => {
    try {
      return { value: await fn() };
    } catch (err) {
      log(`scale: ${what}: ${messageOf(err)}`);
      return { error: messageOf(err) };
    }
  };
  for (const level of P.scale) {
    // Every level pushes the same batches: a stream of its own, from the same seed and parents,
    // over a pool of rows written just before. One stream carried from level to level updated
    // more and older rows at each level, so the deltas compared different mixes (3 030, 3 575
    // and 3 752 rows for the same 4 000 ops). The pool is delivered before the fill, so the
    // catch-up pull below still has nothing to send.
    const levelStream = new Stream({ name: `scale${level}`, seed: 11, user: U.rm1s, parents: scaleParents });
    await preload(sql, levelStream, 300);
    const delivered = await timed(
      "pool pull",
      () => pullAll(api.apiUrl, tokens.rm1s, { limit: 2000, maxPages: 1000, cursor: scaleCursor }),
    );
    if (delivered.value?.cursor) scaleCursor = delivered.value.cursor;
    const [{ n: before }] = await sql`select count(*)::int as n from public.customers`;
    const fillT0 = now();
    let filled = 0;
    for (let from = before + 1; from <= level; from += 100_000) {
      const to = Math.min(level, from + 99_999);
      // As the superuser, the way a data migration would; the row triggers fire.
      await sql`
        insert into public.customers (name, industry, email, city, tax_id, notes, assigned_rm_id, branch_id)
        select 'PT Filler ' || i, (array['manufacturing', 'retail', 'logistics', 'agriculture'])[1 + i % 4], 'filler' || i || '@bench.test',
               'Surabaya', lpad(i::text, 15, '0'), 'filler', ${U.rm2s.id}::uuid, ${U.rm2s.branch_id}::uuid
          from generate_series(${from}::int, ${to}::int) i`;
      filled += to - from + 1;
    }
    // Every table a level writes, the engine's own included, is vacuumed before anything is timed:
    // an autovacuum made due by the previous level's pushes would otherwise take one of the two
    // cores in the middle of this level's measurements (autovacuum was seen to run on customers,
    // applied_ops and row_versions during a level).
    await sql.unsafe(`vacuum (analyze) public.customers, public.key_persons, public.pipelines, public.activities,
                          sync.applied_ops, sync.row_versions, sync.conflicts, sync.scope_changes`);
    // The load's WAL is flushed before anything is timed, so no checkpoint lands in a measurement.
    await sql.unsafe("checkpoint");
    const fillMs = now() - fillT0;
    const [{ n: customers }] = await sql`select count(*)::int as n from public.customers`;
    const opts = { timeoutMs: P.scaleRequestTimeoutMs, maxPages: 200 };
    log(`scale ${customers}: filled ${filled} in ${fmt(fillMs / 1000)} s; catch-up delta pull`);

    const catchUp = await timed(
      "catch-up delta pull",
      () => pullAll(api.apiUrl, tokens.rm1s, { ...opts, cursor: scaleCursor, limit: 2000 }),
    );
    if (catchUp.value?.cursor) scaleCursor = catchUp.value.cursor;

    const [{ n: visibleCustomers }] = await sql`
      select count(*)::int as n from public.customers where assigned_rm_id = ${U.rm1s.id}::uuid and deleted_at is null`;
    // The same number of rows at every level (the pushes between levels add customers): a first
    // page of SCALE_PULL_ROWS, so per-row costs compare like with like.
    const pullRows = Math.min(SCALE_PULL_ROWS, visibleCustomers);
    log(`scale ${customers}: first page of ${pullRows} of ${visibleCustomers} customers`);
    // Each read is timed nine times and the median kept: a single read is short enough that
    // scheduling, caches and the garbage collector move it as much as the work does (the first,
    // with cold caches, is one of the nine).
    const full = await timed("full pull of customers", () =>
      medianOf(
        9,
        () =>
          pullAll(api.apiUrl, tokens.rm1s, { ...opts, limit: pullRows, firstPageOnly: true, tables: ["customers"] }),
      ));
    if (full.value) {
      const { changes } = full.value;
      check(`scale ${level}: the customers page was full`, changes === pullRows, `${changes} of ${pullRows}`);
    }

    log(`scale ${customers}: push of ${P.scalePushOps} ops`);
    /** @type {string[]} */
    const samples = [];
    let bad = 0;
    let pushMs = 0;
    const push = await timed("push", async () => {
      /** @type {number[]} */
      const perOp = [];
      for (let done = 0; done < P.scalePushOps; done += P.batch) {
        const size = Math.min(P.batch, P.scalePushOps - done);
        const batch = levelStream.batch(size);
        const r = await call(api.apiUrl, "/push", tokens.rm1s, { protocol: 2, client_id: clientId, ops: batch.ops }, {
          timeoutMs: P.scaleRequestTimeoutMs,
        });
        pushMs += r.ms;
        perOp.push(r.ms / size);
        bad += verifyPush(r, batch, samples);
        batch.commit();
      }
      // The median batch, for the same reason as the reads.
      return { ms: /** @type {number} */ (quantile(perOp, 0.5)) * P.scalePushOps, total_ms: pushMs };
    });
    if (push.value) check(`scale ${level}: every op applied`, bad === 0, samples.join("; "));
    // A pull only reads, so the same delta can be pulled nine times from the same cursor.
    const deltaFrom = scaleCursor;
    /** @type {Timed<import("./http.mjs").PullRun>} */
    const delta = catchUp.error ? { error: "no cursor" } : await timed(
      "delta pull",
      () => medianOf(9, () => pullAll(api.apiUrl, tokens.rm1s, { ...opts, cursor: scaleCursor, limit: 1000 })),
    );
    if (delta.value?.cursor) scaleCursor = delta.value.cursor;
    // The same delta's buffer accesses, a counter that noise does not move (issue 18).
    const buffers = catchUp.error ? { error: "no cursor" } : await timed(
      "delta buffers",
      () => deltaBuffers(b, U.rm1s, deltaFrom, 1000),
    );
    const bu = buffers.value;
    const [c, f, p, d] = [catchUp.value, full.value, push.value, delta.value];
    scale.push({
      level,
      customers,
      filled,
      fill_ms: rnd(fillMs),
      catch_up_ms: rnd(c?.ms),
      catch_up_changes: c?.changes ?? null,
      catch_up_error: catchUp.error,
      full_pull_rows: f?.changes ?? null,
      full_pull_ms: rnd(f?.ms),
      full_pull_ms_per_row: f ? rnd(f.ms / f.changes, 4) : null,
      full_pull_error: full.error,
      push_ops: P.scalePushOps,
      push_ms: rnd(p?.ms),
      push_ms_per_op: p ? rnd(p.ms / P.scalePushOps, 3) : null,
      push_error: push.error,
      delta_rows: d?.changes ?? null,
      delta_ms: rnd(d?.ms),
      delta_ms_per_row: d ? rnd(d.ms / Math.max(1, d.changes), 4) : null,
      delta_error: delta.error,
      delta_buffers: bu?.buffers ?? null,
      delta_buffer_rows: bu?.changes ?? null,
      delta_buffers_per_row: bu ? rnd(bu.buffers / Math.max(1, bu.changes), 3) : null,
      delta_sql_ms_per_row: bu ? rnd(bu.ms / Math.max(1, bu.changes), 4) : null,
      delta_buffers_top: bu?.top ?? null,
      delta_buffers_error: buffers.error,
    });
    log(
      `scale ${customers}: catch-up ${fmt((c?.ms ?? NaN) / 1000, 2)} s, customers pull ${
        fmt((f?.ms ?? NaN) / Math.max(1, f?.changes ?? NaN), 3)
      } ms/row, push ${fmt((p?.ms ?? NaN) / P.scalePushOps, 2)} ms/op, delta ${
        fmt((d?.ms ?? NaN) / Math.max(1, d?.changes ?? NaN), 3)
      } ms/row`,
    );
    if (now() - phaseT0 > P.scaleBudgetMs) {
      log(`scale: the phase's time budget is spent; levels above ${level} are skipped`);
      break;
    }
  }
  const base = scale[0];
  /**
   * @param {number | null} v
   * @param {number | null} b
   */
  const rel = (v, b) => (v == null || b == null ? null : rnd(v / b, 3));
  for (const s of scale) {
    s.push_vs_smallest = rel(s.push_ms_per_op, base.push_ms_per_op);
    s.full_pull_vs_smallest = rel(s.full_pull_ms_per_row, base.full_pull_ms_per_row);
    s.delta_vs_smallest = rel(s.delta_ms_per_row, base.delta_ms_per_row);
    s.delta_buffers_vs_smallest = rel(s.delta_buffers_per_row, base.delta_buffers_per_row);
  }
  return scale;
}

/**
 * The buffers (shared hits and reads) a delta pull from `cursor` touches, all its pages, as the user
 * in the function's transaction: `EXPLAIN (ANALYZE, BUFFERS)` of each page's `sync_pull` call (its
 * counts include every statement the call runs), the page itself run again to get the next cursor.
 * The pages are walked twice, each walk in a transaction of its own, and the second walk counted,
 * so the session's first catalog reads are in neither. Where pg_stat_statements is loaded, the
 * second walk's nested statements are tracked too, and the ones that touched the most buffers are
 * returned: where a level's extra buffers are read.
 * @param {import("./setup.mjs").Bench} b
 * @param {import("./workload.mjs").BenchUser} user
 * @param {string} cursor
 * @param {number} limit
 * @returns {Promise<{ buffers: number, changes: number, pages: number, ms: number, top: Record<string, any>[] }>}
 */
async function deltaBuffers(b, user, cursor, limit) {
  const { sql, pgss, dbid } = b;
  let counted = { buffers: 0, changes: 0, pages: 0, ms: 0 };
  for (let walk = 0; walk < 2; walk++) {
    const track = walk === 1 && pgss;
    if (track) await pgssReset(sql, dbid);
    counted = { buffers: 0, changes: 0, pages: 0, ms: 0 };
    await sql.begin("isolation level repeatable read read only", async (tx) => {
      if (track) await tx`set local pg_stat_statements.track = 'all'`;
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        claimsOf(user)
      }, true), set_config('sync.replayed_lsn', '', true)`;
      for (let at = cursor; counted.pages < 200;) {
        const payload = JSON.stringify({ protocol: 2, cursor: at, limit });
        const [row] = await tx.unsafe(
          `explain (analyze, buffers, format json) select public.sync_pull($1::text::jsonb)::text`,
          [payload],
        );
        const plan = row["QUERY PLAN"];
        const top = (typeof plan === "string" ? JSON.parse(plan) : plan)[0];
        counted.buffers += top.Plan["Shared Hit Blocks"] + top.Plan["Shared Read Blocks"];
        counted.ms += top["Execution Time"];
        const [{ answer }] = await tx`select public.sync_pull(${payload}::text::jsonb)::text as answer`;
        const page = JSON.parse(answer);
        counted.changes += page.changes.length;
        counted.pages++;
        at = page.cursor;
        if (!page.has_more) break;
      }
    });
  }
  // Each page ran twice in the counted walk (EXPLAIN, then for its cursor): halved. A statement's
  // counts include those of the statements it ran (sync.pull itself, which runs all, is left out).
  const top = !pgss ? [] : (await sql`
    select calls::float8 / 2 as calls, (shared_blks_hit + shared_blks_read)::float8 / 2 as buffers, left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 200) as query
      from extensions.pg_stat_statements
     where dbid = ${dbid} and not toplevel and query !~* '^[[:space:]]*explain' and query !~* '^[[:space:]]*select sync[.]pull[(]'
     order by shared_blks_hit + shared_blks_read desc limit 8`).map((r) => ({
    calls: r.calls,
    buffers: r.buffers,
    buffers_per_row: rnd(r.buffers / Math.max(1, counted.changes), 3),
    query: r.query,
  }));
  return { ...counted, top };
}
