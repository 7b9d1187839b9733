// @ts-check
// pg_stat_statements: how many statements a request costs, and where its database time goes.
import { rnd } from "./util.mjs";

/** @typedef {import("postgres").Sql} Sql */
/** @typedef {{ toplevel: boolean, calls: number, ms: number, rows: number, query: string }} StatementRow */

/**
 * @param {Sql} sql
 * @param {number} dbid
 * @returns {Promise<StatementRow[]>}
 */
export async function pgssRows(sql, dbid) {
  return /** @type {StatementRow[]} */ (/** @type {unknown} */ (await sql`
    select toplevel, calls::float8 as calls, total_exec_time::float8 as ms, rows::float8 as rows, query
      from extensions.pg_stat_statements
     where dbid = ${dbid} and query not ilike '%pg_stat_statements%'`));
}

/**
 * @param {Sql} sql
 * @param {number} dbid
 */
export async function pgssReset(sql, dbid) {
  await sql`select extensions.pg_stat_statements_reset(0::oid, ${dbid}::oid, 0::bigint)`;
}

/** @param {string} q */
const isTxnControl = (q) => /^\s*(begin|start transaction|commit|rollback|end)\b/i.test(q);
/** @param {string} q */
const isSetup = (q) => /^\s*select\s+set_config\s*\(/i.test(q);

/**
 * Statements per request from a pg_stat_statements window that held `requests` requests.
 * @param {StatementRow[]} rows
 * @param {number} requests
 * @param {number | null} [ops]
 */
export function statementsPerRequest(rows, requests, ops = null) {
  const top = rows.filter((r) => r.toplevel);
  const nested = rows.filter((r) => !r.toplevel);
  /** @param {StatementRow[]} list */
  const sum = (list) => list.reduce((a, r) => a + r.calls, 0);
  const topAll = sum(top);
  const topTxn = sum(top.filter((r) => isTxnControl(r.query)));
  const topSetup = sum(top.filter((r) => isSetup(r.query)));
  const topWork = topAll - topTxn - topSetup;
  const nestedCalls = sum(nested);
  const call = top.find((r) => /public\.sync_(push|pull)|sync\.apply_push/.test(r.query));
  return {
    requests,
    toplevel_per_request: topAll / requests,
    toplevel_txn_control_per_request: topTxn / requests,
    toplevel_setup_per_request: topSetup / requests,
    toplevel_besides_setup_per_request: topWork / requests,
    nested_per_request: nestedCalls / requests,
    nested_per_op: ops ? nestedCalls / ops : null,
    // Executed statements the request costs besides its role/claims set-up and BEGIN/COMMIT: the
    // top-level call and everything it ran inside.
    executed_besides_setup_per_request: (topWork + nestedCalls) / requests,
    // Of those, the queries that read synced rows: every one of them bounds change_xid (a pull
    // window or page). Profile look-ups of the RLS helpers and the cursor's HMAC are not among them.
    data_queries_per_request: sum(nested.filter((r) => /\bchange_xid\b/.test(r.query))) / requests,
    db_ms_per_request: call ? call.ms / Math.max(1, call.calls) : null,
    top_nested: nested
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 8)
      .map((r) => ({
        calls: r.calls,
        ms: rnd(r.ms, 1),
        per_request: rnd(r.calls / requests, 1),
        query: r.query.replace(/\s+/g, " ").slice(0, 220),
      })),
  };
}
