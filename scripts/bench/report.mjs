// @ts-check
// The report: the plans and where the database time goes (except in smoke mode), the correctness
// checks, and the Markdown table of figures and ratios with the issue's targets beside them.
import { fmt, pct } from "./util.mjs";

/**
 * The report of a finished run, as Markdown.
 * @param {Record<string, any>} r the run's results, checks included
 * @returns {string}
 */
export function formatReport(r) {
  const f = r.figures;
  /** @type {string[]} */
  const out = [];
  const say = (s = "") => out.push(s);
  /** @param {boolean | null | undefined} ok */
  const met = (ok) => (ok == null ? "n/a" : ok ? "met" : "**missed**");

  if (r.mode !== "smoke" && r.plans?.user) {
    say(`\n## Plans (EXPLAIN ANALYZE, BUFFERS) as ${r.plans.user}, ${fmt(r.plans.customers, 0)} rows in customers`);
    for (const [name, { plan }] of Object.entries(r.plans.plans ?? {})) {
      say(`\n### ${name}\n\n\`\`\`\n${plan}\n\`\`\``);
    }
  }

  const st = f.statements;
  if (st && r.mode !== "smoke") {
    say("\n## Where the database time goes (pg_stat_statements, track = all, nested statements by total time)");
    for (
      const [name, s, key] of [
        ["push request", st.push, "push"],
        ["pull page", st.pull_page, "pull_page"],
        ["empty delta pull", st.empty_delta, "empty_delta"],
      ]
    ) {
      say(
        `\n${name}: ${fmt(s.toplevel_per_request, 1)} top-level statements per request (${
          fmt(s.toplevel_txn_control_per_request, 1)
        } BEGIN/COMMIT, ${fmt(s.toplevel_setup_per_request, 1)} role/claims set-up), ${
          fmt(s.nested_per_request, 1)
        } nested${s.nested_per_op ? ` (${fmt(s.nested_per_op, 1)} per op)` : ""}; ${
          fmt(s.db_ms_per_request, 1)
        } ms in the database per request`,
      );
      say("\n| calls/request | total ms | statement |\n|---:|---:|---|");
      for (const q of s.top_nested) {
        say(`| ${fmt(q.per_request, 1)} | ${fmt(q.ms, 1)} | \`${q.query.replaceAll("|", "\\|")}\` |`);
      }
      /** @type {{ function: string, calls: number, self_ms: number, total_ms: number }[]} */
      const fns = st.functions?.[key] ?? [];
      if (fns.length) {
        say(`\nfunctions by their own time (track_functions = all), per ${name}:\n`);
        say("| calls | self ms | total ms | function |\n|---:|---:|---:|---|");
        for (const q of fns) {
          say(`| ${fmt(q.calls, 1)} | ${fmt(q.self_ms, 2)} | ${fmt(q.total_ms, 2)} | ${q.function} |`);
        }
      }
    }
  }

  /** @type {Record<string, any>[]} */
  const levels = (f.scale ?? []).filter((/** @type {Record<string, any>} */ l) => l.delta_buffers_top?.length);
  if (levels.length && r.mode !== "smoke") {
    say("\n## Where the delta pull's buffers go at each level (pg_stat_statements, nested statements)");
    for (const l of levels) {
      say(`\n${fmt(l.customers, 0)} customers: ${fmt(l.delta_buffers_per_row, 2)} buffers per row in all\n`);
      say("| calls | buffers per row | statement |\n|---:|---:|---|");
      for (const q of l.delta_buffers_top) {
        say(`| ${fmt(q.calls, 1)} | ${fmt(q.buffers_per_row, 3)} | \`${q.query.replaceAll("|", "\\|")}\` |`);
      }
    }
  }

  say("\n## Correctness checks\n");
  for (const c of r.checks) say(`- ${c.ok ? "ok" : "FAILED"}: ${c.name}${!c.ok && c.detail ? ` (${c.detail})` : ""}`);

  /** @type {string[][]} */
  const rows = [];
  /**
   * @param {string} measure
   * @param {string} value
   * @param {string} baseline
   * @param {string} ratio
   * @param {string} target
   * @param {string} ok
   * @param {string} [spread] min..max of the ratio over the rounds
   */
  const add = (measure, value, baseline, ratio, target, ok, spread = "") =>
    rows.push([measure, value, baseline, ratio, spread, target, ok]);
  /**
   * A figure's spread over rounds, as min..max.
   * @param {{ min: number | null, max: number | null } | undefined} sp
   * @param {(x: number | null) => string} f
   */
  const range = (sp, f) => (sp ? `${f(sp.min)}..${f(sp.max)}` : "");
  /** @param {number | null} x */
  const times = (x) => `${fmt(x, 2)}x`;
  /** @param {number | null} x */
  const ms1 = (x) => `${fmt(x, 1)}`;
  const tr = f.triggers;
  if (tr) {
    for (
      const [k, what, limit] of /** @type {const} */ ([
        ["insert_1", "insert, 1 row a statement", 2],
        ["insert_500", "insert, 500 rows a statement", 2],
        ["update_1", "update, 1 row a statement", 3],
        ["update_500", "update, 500 rows a statement", 3],
      ])
    ) {
      const t = tr[k];
      add(
        `Sync triggers' cost per row: ${what} (${tr.rounds} rounds, as the superuser)`,
        `customers ${fmt(t.customers_ms_per_row.median, 4)} ms/row`,
        `same table without sync triggers: ${fmt(t.plain_ms_per_row.median, 4)} ms/row`,
        times(t.ratio.median),
        `<= ${limit}x`,
        met(t.ratio.median <= limit),
        range(t.ratio, times),
      );
    }
  }
  const p = f.push;
  if (p) {
    const own = p.own_work_ms_per_batch;
    add(
      `Push: ${
        fmt(p.ops, 0)
      } mixed ops (${p.kinds.insert}/${p.kinds.update}/${p.kinds.delete} ins/upd/del) via the function, ${p.batch} per request, vs the same upserts as the user (RLS, field rules, triggers), ${p.rounds} rounds`,
      `${fmt(p.function.ops_per_s)} ops/s (${fmt(p.function_ms_per_batch?.median)} ms a batch)`,
      `${fmt(p.ceiling_as_user.rows_per_s)} rows/s (${fmt(p.user_upserts_ms_per_batch?.median)} ms a batch)`,
      pct(p.vs_user_rounds?.median),
      ">= 70%",
      met(p.vs_user_rounds?.median >= 0.7),
      range(p.vs_user_rounds, pct),
    );
    add(
      `Push: its own work beyond the writes, ms per batch of ${p.batch} (push minus the user's upserts)`,
      `${fmt(own?.median)} ms`,
      "",
      "",
      "(reported; must shrink as the triggers get cheaper)",
      "",
      range(own, ms1),
    );
    const split = p.db_split;
    if (split) {
      add(
        `Push: where a batch's time goes (pg_stat_statements over the phase): in the database / outside it`,
        `${fmt(split.push_db_ms_per_batch)} / ${fmt(split.push_outside_db_ms_per_batch)} ms`,
        `the user's upserts: ${fmt(split.user_upserts_db_ms_per_batch)} / ${
          fmt(split.user_upserts_outside_db_ms_per_batch)
        } ms`,
        "",
        "(reported)",
        "",
      );
    }
    add(
      "Push: the same, against one multi-row upsert per table as the superuser (reference)",
      `${fmt(p.function.ops_per_s)} ops/s`,
      `ceiling: ${fmt(p.ceiling.rows_per_s)} rows/s; the user's upserts are ${pct(p.ceiling_as_user_vs_ceiling)} of it`,
      pct(p.vs_ceiling_rounds?.median),
      "(reference)",
      "",
      range(p.vs_ceiling_rounds, pct),
    );
    add(
      `Push: batched vs per-item (${p.per_item.ops} requests of 1 op, scaled to ${fmt(p.ops, 0)})`,
      `${fmt(p.function.ops_per_s)} ops/s`,
      `per-item: ${fmt(p.per_item.ops_per_s)} ops/s (${fmt(p.per_item.scaled_to_n_ms / 1000)} s for all)`,
      `${fmt(p.ratio_vs_per_item, 2)}x`,
      ">= 20x per-item",
      met(p.ratio_vs_per_item >= 20),
    );
  }
  const pl = f.pull;
  if (pl) {
    add(
      `Pull: first pull of ${fmt(pl.rows, 0)} visible rows, pages of ${pl.page}, ${pl.rounds} rounds`,
      `${fmt(pl.function.rows_per_s)} rows/s (${fmt(pl.function.ms / 1000)} s, ${pl.function.pages} pages)`,
      `raw keyset SELECT as the user (RLS): ${fmt(pl.ceiling.rows_per_s)} rows/s (${fmt(pl.ceiling.ms / 1000, 2)} s)`,
      pct(pl.vs_ceiling_rounds?.median),
      ">= 60%",
      met(pl.vs_ceiling_rounds?.median >= 0.6),
      range(pl.vs_ceiling_rounds, pct),
    );
    add(
      "Pull: the same, against the same rows selected without RLS (scope as plain predicates, superuser)",
      `${fmt(pl.function.rows_per_s)} rows/s`,
      `${fmt(pl.without_rls.rows_per_s)} rows/s (${fmt(pl.without_rls.ms / 1000, 2)} s)`,
      pct(pl.ratio_vs_without_rls),
      "(reference: the cost of RLS)",
      "",
    );
  }
  const e = f.empty_delta;
  if (e) {
    add(
      `Empty delta pull vs the probe (token, body, transaction as the user, \`select 1\`), p50, ${e.rounds} rounds of ${
        fmt(e.requests / Math.max(1, e.rounds), 0)
      } each`,
      `${fmt(e.pull_p50_rounds?.median, 1)} ms (p95 ${fmt(e.p95_ms, 1)})`,
      `probe: ${fmt(e.probe_p50_rounds?.median, 1)} ms (p95 ${fmt(e.probe_p95_ms, 1)})`,
      times(e.vs_probe_rounds?.median),
      "<= 1.5x",
      met(e.vs_probe_rounds?.median <= 1.5),
      range(e.vs_probe_rounds, times),
    );
    add("Empty delta pull: response size", `${e.bytes_max} B`, "", "", "< 1 KB", met(e.bytes_max < 1024));
  }
  const cp = f.cold_pull;
  if (cp) {
    add(
      `First pull's first page (${cp.changes} rows) on a fresh connection (connect included) vs a warm one, SQL level, ${cp.rounds} rounds`,
      `${fmt(cp.fresh_ms.median, 1)} ms (connect ${fmt(cp.connect_ms.median, 1)}, pull ${
        fmt(cp.first_pull_on_fresh_ms.median, 1)
      }, next pull ${fmt(cp.second_pull_on_fresh_ms.median, 1)})`,
      `warm: ${fmt(cp.warm_ms.median, 1)} ms`,
      times(cp.ratio.median),
      "<= 3x",
      met(cp.ratio.median <= 3),
      range(cp.ratio, times),
    );
  }
  if (st) {
    add(
      "Empty delta pull: queries reading synced rows",
      fmt(st.empty_delta.data_queries_per_request, 1),
      `${
        fmt(st.empty_delta.executed_besides_setup_per_request, 1)
      } statements in all, nested ones included (cursor HMAC, profile look-ups of the RLS helpers)`,
      "",
      "a single indexed query",
      met(st.empty_delta.data_queries_per_request <= 1),
    );
    add(
      "Push request: top-level statements besides set-up (BEGIN/COMMIT and set_config excluded)",
      fmt(st.push.toplevel_besides_setup_per_request, 1),
      "",
      "",
      "<= 2",
      met(st.push.toplevel_besides_setup_per_request <= 2),
    );
    add(
      `Push request (${st.push_ops_per_request} ops): statements run inside that one call, triggers included`,
      fmt(st.push.executed_besides_setup_per_request, 0),
      `${fmt(st.push.nested_per_op, 1)} per op`,
      "",
      "(context)",
      "",
    );
    add(
      "Pull request: top-level statements besides set-up",
      fmt(st.pull_page.toplevel_besides_setup_per_request, 1),
      "",
      "",
      "<= 2",
      met(st.pull_page.toplevel_besides_setup_per_request <= 2),
    );
    add(
      `Pull request (page of ${st.pull_page_size}): statements run inside that one call`,
      fmt(st.pull_page.executed_besides_setup_per_request, 0),
      `${fmt(st.pull_page.data_queries_per_request, 1)} of them read synced rows`,
      "",
      "(context)",
      "",
    );
  } else {
    add("Statements per request", "n/a", "pg_stat_statements is not loaded", "", "<= 2", "n/a");
  }
  const br = f.browser;
  if (br) {
    const spread = (/** @type {number[]} */ v, d = 0, unit = "") => v.map((x) => `${fmt(x, d)}${unit}`).join(", ");
    add(
      `Chromium: ${
        fmt(br.rows, 0)
      } rows of pull pages (${br.page} a page) applied to IndexedDB through the kit, median of ${br.rounds}`,
      `${fmt(br.kit.rows_per_s)} rows/s (${fmt(br.kit.median_ms / 1000, 2)} s; rounds ${spread(br.kit.ms)} ms)`,
      `raw IndexedDB bulk writes, strict durability: ${fmt(br.raw.rows_per_s)} rows/s (rounds ${spread(br.raw.ms)} ms)`,
      `${pct(br.ratio_vs_raw)} (rounds ${br.ratios.map(pct).join(", ")})`,
      ">= 50% of raw",
      met(br.ratio_vs_raw >= 0.5),
    );
    const h = br.heap;
    add(
      `Chromium: JS heap while the kit syncs ${fmt(h.large, 0)} rows vs ${
        fmt(h.small, 0)
      }: what is live (forced collection before each page)`,
      `${spread(h.kit.live_large_mb, 1, " MB")}`,
      `${spread(h.kit.live_small_mb, 1, " MB")}`,
      `${fmt(h.kit.live_ratio, 2)}x`,
      "<= 1.2x",
      met(h.kit.live_ratio <= 1.2),
    );
    add(
      "Chromium: the same, peak of the used heap (garbage V8 has not collected yet included)",
      `${spread(h.kit.peak_large_mb, 1, " MB")}`,
      `${spread(h.kit.peak_small_mb, 1, " MB")}; raw IndexedDB writes of the same rows: ${
        spread(h.raw.peak_large_mb, 1, " MB")
      } vs ${spread(h.raw.peak_small_mb, 1, " MB")} (${fmt(h.raw.peak_ratio, 2)}x)`,
      `${fmt(h.kit.peak_ratio, 2)}x`,
      "(reported: when V8 collects is its own choice)",
      "",
    );
  }
  /** @type {Record<string, any>[]} */
  const sc = f.scale ?? [];
  if (sc.length) {
    const base = sc[0];
    const names = sc.map((s) => fmt(s.customers, 0)).join(" / ");
    /**
     * @param {string} key
     * @param {number} d
     */
    const list = (key, d, unit = "") =>
      sc.map((s) => (s[key] == null ? "timed out" : `${fmt(s[key], d)}${unit}`)).join(" / ");
    /** @param {string} key */
    const verdict = (key) => {
      if (sc.length === 1) return "n/a (one level)";
      const v = sc.map((s) => s[key]);
      if (v.some((x) => x == null)) return met(false);
      return met(Math.max(...v) <= 1.2);
    };
    add(
      `Scale: push cost per op (${fmt(base.push_ops, 0)} ops) at ${names} customers`,
      `${list("push_ms_per_op", 3)} ms/op`,
      `smallest: ${fmt(base.push_ms_per_op, 3)} ms/op`,
      list("push_vs_smallest", 2, "x"),
      "within 20%",
      verdict("push_vs_smallest"),
    );
    add(
      `Scale: first pull of customers, cost per row (${sc.map((s) => fmt(s.full_pull_rows, 0)).join(" / ")} rows)`,
      `${list("full_pull_ms_per_row", 3)} ms/row`,
      `smallest: ${fmt(base.full_pull_ms_per_row, 3)} ms/row`,
      list("full_pull_vs_smallest", 2, "x"),
      "within 20%",
      verdict("full_pull_vs_smallest"),
    );
    add(
      `Scale: delta pull of the push, cost per row (${sc.map((s) => fmt(s.delta_rows, 0)).join(" / ")} rows)`,
      `${list("delta_ms_per_row", 3)} ms/row`,
      `smallest: ${fmt(base.delta_ms_per_row, 3)} ms/row`,
      list("delta_vs_smallest", 2, "x"),
      "(reported; judged on buffers)",
      "",
    );
    add(
      `Scale: delta pull of the push, buffers (shared hit + read) per row, EXPLAIN (ANALYZE, BUFFERS) of every page`,
      `${list("delta_buffers_per_row", 2)} buffers/row`,
      `smallest: ${fmt(base.delta_buffers_per_row, 2)}; SQL time ${list("delta_sql_ms_per_row", 3, " ms/row")}`,
      list("delta_buffers_vs_smallest", 2, "x"),
      "within 20%",
      verdict("delta_buffers_vs_smallest"),
    );
    add(
      "Scale: delta pull right after the bulk load (0 visible changes)",
      `${sc.map((s) => (s.catch_up_ms == null ? "timed out" : `${fmt(s.catch_up_ms / 1000, 2)} s`)).join(" / ")}`,
      `filled ${sc.map((s) => fmt(s.filled, 0)).join(" / ")} rows`,
      "",
      "(reported)",
      "",
    );
  } else {
    add("Scale", "not run in this mode", "", "", "within 20%", "n/a");
  }
  const d = f.devices;
  if (d) {
    add(
      `Devices: ${d.devices} concurrent x ${d.rounds_planned} rounds (${d.rounds_done} device-rounds done), ${d.requests} requests: push p50 / p95`,
      `${fmt(d.push_p50_ms)} / ${fmt(d.push_p95_ms)} ms`,
      "",
      "",
      "(reported: p95)",
      "",
    );
    add(
      "Devices: pull page p50 / p95",
      `${fmt(d.pull_p50_ms)} / ${fmt(d.pull_p95_ms)} ms`,
      "",
      "",
      "(reported: p95)",
      "",
    );
    add(
      "Devices: errors (failed requests + ops not applied)",
      `${d.http_errors + d.op_errors}`,
      `${d.applied_with_conflict} applied over a conflict`,
      "",
      "0",
      met(d.http_errors + d.op_errors === 0),
    );
    add(
      "Deadlocks (devices phase / whole run)",
      `${d.deadlocks} / ${f.deadlocks_run_total}`,
      "",
      "",
      "0",
      met(d.deadlocks === 0 && f.deadlocks_run_total === 0),
    );
  }

  say(
    `\n## Results (${r.mode}, ${r.machine.cpu_count} x ${r.machine.cpu_model}, ${r.machine.memory_gib} GiB, ${
      r.postgres?.split(" on ")[0] ?? "no database"
    }, commit ${r.git?.commit?.slice(0, 9) ?? "?"}${r.git?.dirty ? " + local changes" : ""})\n`,
  );
  say("| Measure | Sync function | Baseline in the same run | Ratio (median) | Spread (min..max) | Target | |");
  say("|---|---|---|---|---|---|---|");
  for (const row of rows) say(`| ${row.map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`);
  say(
    `\nNoise: load average ${r.noise.start?.loadavg_1m} -> ${r.noise.end?.loadavg_1m}; other active backends on the server ${r.noise.start?.other_active_backends} -> ${r.noise.end?.other_active_backends}; 5xx retried once: ${r.http_5xx_retried}. Duration ${r.duration_s} s (${
      Object.entries(r.phases_s ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")
    }).`,
  );
  return out.join("\n");
}
