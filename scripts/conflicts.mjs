#!/usr/bin/env node
// @ts-check
// `npm run conflicts -- [--open] [--table T] [--since 7d] [--row ID] [--json]`: the conflict review
// for people who do not live in psql. Reads the review views against DB_URL (or DATABASE_URL, or
// the local stack's database).
import { parseArgs } from "node:util";
import postgres from "postgres";
import { localUrl } from "./lib/cluster.mjs";
import { LOCAL_DB_NAME } from "./lib/stack.mjs";

const { values } = parseArgs({
  options: {
    open: { type: "boolean", default: false },
    table: { type: "string" },
    since: { type: "string", default: "7d" },
    row: { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("usage: npm run conflicts -- [--open] [--table T] [--since 7d|24h|30m] [--row ID] [--json]");
  process.exit(0);
}

const m = values.since.match(/^(\d+)\s*([dhm])$/);
if (!m) {
  console.error(`--since takes a duration like 7d, 24h or 30m, not ${values.since}`);
  process.exit(2);
}
const interval = `${m[1]} ${{ d: "days", h: "hours", m: "minutes" }[m[2]]}`;
const url = process.env.DB_URL ?? process.env.DATABASE_URL ?? localUrl(LOCAL_DB_NAME);
const sql = postgres(url, { max: 1, onnotice: () => {} });

/** @param {unknown} v */
const show = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));

/**
 * @param {Record<string, unknown>[]} rows
 * @param {string[]} columns
 */
function table(rows, columns) {
  if (!rows.length) return "(none)";
  const widths = columns.map((c) => Math.min(48, Math.max(c.length, ...rows.map((r) => show(r[c]).length))));
  /** @type {(s: string, w: number) => string} */
  const cut = (s, w) => (s.length > w ? s.slice(0, w - 1) + "…" : s.padEnd(w));
  /** @param {string[]} cells */
  const line = (cells) => cells.map((s, i) => cut(s, widths[i])).join("  ");
  return [
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(columns.map((c) => show(r[c])))),
  ].join("\n");
}

try {
  const since = sql`detected_at >= now() - ${interval}::interval`;
  const byTable = values.table ? sql`and table_name = ${values.table}` : sql``;
  const byRow = values.row ? sql`and row_id = ${values.row}` : sql``;
  let rows;
  let columns;
  if (values.open) {
    rows =
      await sql`select conflict_id, table_name, row_id, field, server_value, client_value, base_value, user_id, detected_at
                       from sync.open_conflicts where ${since} ${byTable} ${byRow} order by detected_at, conflict_id, field`;
    columns = [
      "conflict_id",
      "table_name",
      "row_id",
      "field",
      "server_value",
      "client_value",
      "base_value",
      "user_id",
      "detected_at",
    ];
  } else {
    rows =
      await sql`select conflict_id, table_name, row_id, resolution, fields, pending_fields, user_id, server_user_id, detected_at, resolved_at
                       from sync.conflict_history where ${since} ${byTable} ${byRow} order by detected_at desc, conflict_id`;
    columns = [
      "conflict_id",
      "table_name",
      "row_id",
      "resolution",
      "fields",
      "pending_fields",
      "user_id",
      "server_user_id",
      "detected_at",
      "resolved_at",
    ];
  }
  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log(
      table(
        rows.map((r) => ({
          ...r,
          detected_at: r.detected_at?.toISOString(),
          resolved_at: r.resolved_at?.toISOString(),
        })),
        columns,
      ),
    );
    if (values.open && rows.length) {
      console.log(
        `\nResolve one with: select public.resolve_conflict('<conflict_id>', 'server' | 'client' | 'custom', '{"column": value}');`,
      );
    }
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  await sql.end();
}
