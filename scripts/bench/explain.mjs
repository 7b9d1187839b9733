// @ts-check
// EXPLAIN (ANALYZE, BUFFERS) as the user, in a transaction that rolls back, of the engine's own
// statements taken from the installed functions' source.
import { claimsOf } from "./db.mjs";
import { quoteIdent, ZERO_UUID } from "./util.mjs";

/** @typedef {import("postgres").Sql} Sql */
/** @typedef {import("./workload.mjs").BenchUser} BenchUser */

const ROLLBACK = Symbol("rollback");

/**
 * The plan of `text`. As the user the plan is for: the engine runs these statements as sync_engine,
 * which RLS treats like the user by the claims (a member of authenticated) and which alone may
 * execute the engine.
 * @param {Sql} sql
 * @param {BenchUser} user
 * @param {string} text
 * @param {{ asUser?: boolean, analyze?: boolean }} [options]
 * @returns {Promise<string>} the plan, or "EXPLAIN failed: ..."
 */
export async function explainAs(sql, user, text, { asUser = true, analyze = true } = {}) {
  let plan = "";
  try {
    await sql.begin(async (tx) => {
      if (asUser) {
        await tx`select set_config('role', 'sync_engine', true), set_config('request.jwt.claims', ${
          claimsOf(user)
        }, true)`;
      } else {
        await tx`select set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
      }
      const rows = await tx.unsafe(`explain ${analyze ? "(analyze, buffers)" : ""} ${text}`);
      plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) return `EXPLAIN failed: ${/** @type {Error} */ (err).message}`;
  }
  return plan;
}

/**
 * What a plan reads: its sequential scans, its indexes, the rows its filters removed, its time.
 * @param {string} plan
 */
export function planSummary(plan) {
  const removed = [...plan.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const seq = [...plan.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]);
  const idx = [...plan.matchAll(/Index(?: Only)? Scan(?: Backward)? using (\w+)/g)].map((m) => m[1]);
  const time = Number(plan.match(/Execution Time: ([\d.]+) ms/)?.[1] ?? NaN);
  return {
    seq_scans: [...new Set(seq)],
    indexes: [...new Set(idx)],
    rows_removed_by_filter: removed,
    execution_ms: time,
  };
}

/**
 * The query sync.changed_page() runs for one table, taken from the installed function's source so the
 * plan is the engine's (the format() template in 20261125001600_sync_pull.sql), with the parameters
 * inlined as the constants EXECUTE ... USING plans with.
 * @param {Sql} sql
 * @param {string} table
 * @param {{ lo: string | null, hi: string, limit: number, user: BenchUser }} window
 */
export async function changedRowsQuery(sql, table, { lo, hi, limit, user }) {
  const [{ src }] = await sql`select prosrc as src from pg_proc where oid = 'sync.changed_page'::regproc`;
  const m = src.match(
    /format\(\s*'((?:[^']|'')*)',\s*p_table,\s*sync\.row_json_expression\(p_table\),[\s\S]*?coalesce\(sync\.caller_scope_condition\(p_table, 't'\), 'true'\)\)/,
  );
  const [{ rowSql }] = await sql`select sync.row_json_expression(${table}) as "rowSql"`;
  // The caller's scope condition depends on who asks: worked out as the user the plan is for.
  const scopeSql = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'sync_engine', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
    const [{ cond }] = await tx`select coalesce(sync.caller_scope_condition(${table}, 't'), 'true') as cond`;
    return /** @type {string} */ (cond);
  });
  if (!m) {
    throw new Error(
      "could not find the query template in sync.changed_page(); update changedRowsQuery in scripts/bench/explain.mjs",
    );
  }
  const template = m[1].replaceAll("''", "'");
  /** @type {Record<string, string>} */
  const params = {
    $1: lo ? `'${lo}'::pg_snapshot` : "null::pg_snapshot",
    $2: `'${hi}'::pg_snapshot`,
    // where sync.changed_page starts a delta's scan: just before its window
    $3: lo ? `(pg_snapshot_xmin('${lo}'::pg_snapshot)::text::numeric - 1)::text::xid8` : "'0'::xid8",
    $4: lo ? "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid" : `'${ZERO_UUID}'::uuid`,
    $5: lo ? "false" : "true",
    $6: String(limit),
  };
  return template
    .replaceAll("%1$L", () => `'${table}'`)
    .replaceAll("%1$I", () => quoteIdent(table))
    .replace("%2$s", () => rowSql)
    .replace("%3$s", () => scopeSql)
    .replace(/\$([1-6])\b/g, (/** @type {string} */ k) => params[k]);
}

/**
 * The query sync.visible_changes_exist() runs, taken from the generated function's source, with the
 * window and the table list inlined.
 * @param {Sql} sql
 * @param {{ lo: string, hi: string, user: BenchUser }} window
 */
export async function changeProbeQuery(sql, { lo, hi, user }) {
  const [{ src }] = await sql`select prosrc as src from pg_proc where oid = 'sync.visible_changes_exist'::regproc`;
  // The expression the probe returns for the reach of the user's role, with the values it plans with.
  const [{ reach }] = await sql`select reach::text as reach from sync.roles where role = ${user.role}`;
  const m = src.match(new RegExp(`if v_reach = '${reach}' then\\s+return\\s+([\\s\\S]*?);\\s*end if;`));
  if (!m) {
    throw new Error(
      "could not find the expression of sync.visible_changes_exist(); update changeProbeQuery in scripts/bench/explain.mjs",
    );
  }
  const tables = (await sql`select table_name from sync.tables`).map((r) => r.table_name).concat("conflicts");
  return `select ${
    m[1]
      .replace(/\bp_lo\b/g, `'${lo}'::pg_snapshot`)
      .replace(/\bp_hi\b/g, `'${hi}'::pg_snapshot`)
      .replace(/\bp_tables\b/g, `array[${tables.map((t) => `'${t}'`).join(", ")}]::text[]`)
      .replace(/\bv_uid\b/g, `'${user.id}'::uuid`)
      .replace(/\bv_branches\b/g, `array['${user.branch_id}']::uuid[]`)
  }`;
}
