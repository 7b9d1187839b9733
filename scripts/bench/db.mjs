// @ts-check
// The bench's database work, as the superuser that owns the bench database: the ceilings the
// function is measured against, bulk loads, and what the checks compare with.
import { execFileSync } from "node:child_process";
import os from "node:os";
import { ROOT } from "../lib/cluster.mjs";
import { CEILING_COLUMNS, TABLES } from "./workload.mjs";
import { now, quoteIdent, rnd, ZERO_UUID } from "./util.mjs";

/** @typedef {import("postgres").Sql} Sql */
/** @typedef {import("./workload.mjs").BenchUser} BenchUser */

/** @param {{ id: string, email: string }} user */
export const claimsOf = (user) =>
  JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });

/**
 * The ceiling: one multi-row INSERT ... ON CONFLICT (id) DO UPDATE per table of the batch, one
 * transaction, as the superuser; with asUser, the same statements as the user under RLS.
 * @param {Sql} sql
 * @param {BenchUser} user
 * @param {Record<string, Record<string, unknown>[]>} rowsByTable
 * @param {{ asUser?: boolean }} [options]
 */
export async function upsertRows(sql, user, rowsByTable, { asUser = false } = {}) {
  const t0 = now();
  let written = 0;
  await sql.begin(async (tx) => {
    // The triggers attribute rows to the same user as the function's path (created_by, updated_by).
    await (asUser
      ? tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`
      : tx`select set_config('request.jwt.claims', ${claimsOf(user)}, true)`);
    for (const table of TABLES) {
      const rows = rowsByTable[table];
      if (!rows?.length) continue;
      const cols = CEILING_COLUMNS[table];
      /** @type {any[]} */
      const params = [];
      const tuples = rows.map((r) =>
        `(${cols.map((c) => (params.push(r[c] ?? null), `$${params.length}`)).join(", ")})`
      );
      const set = cols.filter((c) => c !== "id").map((c) => `${c} = excluded.${c}`).join(", ");
      const res = await tx.unsafe(
        `insert into public.${table} (${cols.join(", ")}) values ${
          tuples.join(", ")
        } on conflict (id) do update set ${set}`,
        params,
        { prepare: false },
      );
      written += res.count;
    }
  });
  return { ms: now() - t0, written };
}

/**
 * Writes `count` insert ops of a stream through the ceiling path (a pool of rows to update and delete).
 * @param {Sql} sql
 * @param {import("./workload.mjs").Stream} stream
 * @param {number} count
 */
export async function preload(sql, stream, count) {
  for (let left = count; left > 0; left -= 500) {
    const b = stream.batch(Math.min(500, left), { insertsOnly: true });
    await upsertRows(sql, stream.user, b.rows);
    b.commit();
  }
}

/**
 * Bulk rows for a user, as the superuser with generate_series (triggers fire): 4% customers owned by
 * `owner`, 32% key persons, 16% pipelines, 48% activities spread over them.
 * @param {Sql} sql
 * @param {{ owner: BenchUser, total: number, label: string }} options
 */
export async function loadRows(sql, { owner, total, label }) {
  const nc = Math.max(1, Math.round(total * 0.04));
  const nk = Math.round(total * 0.32);
  const np = Math.round(total * 0.16);
  const na = Math.max(0, total - nc - nk - np);
  const t0 = now();
  await sql.begin(async (tx) => {
    await tx.unsafe("create temp table bench_parents (n int primary key, id uuid not null) on commit drop");
    await tx`insert into bench_parents select n, gen_random_uuid() from generate_series(1, ${nc}::int) n`;
    await tx`
      insert into public.customers (id, name, industry, email, phone, city, notes, assigned_rm_id, branch_id)
      select p.id, 'PT ' || ${label}::text || ' ' || p.n, (array['manufacturing', 'retail', 'logistics', 'agriculture'])[1 + p.n % 4],
             ${label}::text || p.n || '@load.bench.test', '+62 21 ' || lpad(p.n::text, 7, '0'), ${owner.branchName}::text,
             'loaded by the bench', ${owner.id}::uuid, ${owner.branch_id}::uuid
        from bench_parents p`;
    await tx`
      insert into public.key_persons (customer_id, name, position, phone, is_primary)
      select p.id, 'Contact ' || ${label}::text || ' ' || i, (array['Director', 'Finance Manager'])[1 + i % 2], '+62 813 ' || i, i <= ${nc}::int
        from generate_series(1, ${nk}::int) i join bench_parents p on p.n = 1 + i % ${nc}::int`;
    await tx`
      insert into public.pipelines (customer_id, title, stage, potential_value, expected_close_date, notes, assigned_rm_id, branch_id)
      select p.id, 'Fleet insurance ' || ${label}::text || ' ' || i, (array['prospect', 'qualified', 'proposal', 'negotiation'])[1 + i % 4],
             100000000 + i, date '2027-03-31', 'loaded by the bench', ${owner.id}::uuid, ${owner.branch_id}::uuid
        from generate_series(1, ${np}::int) i join bench_parents p on p.n = 1 + i % ${nc}::int`;
    await tx`
      insert into public.activities (customer_id, activity_type, subject, scheduled_at, notes)
      select p.id, (array['call', 'meeting', 'visit', 'email', 'note'])[1 + i % 5], 'Follow-up ' || ${label}::text || ' ' || i,
             timestamptz '2027-01-01 09:00+07' + (i % 300) * interval '1 day', 'loaded by the bench'
        from generate_series(1, ${na}::int) i join bench_parents p on p.n = 1 + i % ${nc}::int`;
  });
  await sql.unsafe("vacuum (analyze) public.customers, public.key_persons, public.pipelines, public.activities");
  return { ms: now() - t0, customers: nc, key_persons: nk, pipelines: np, activities: na };
}

/**
 * What a first pull must deliver to `user`: live rows visible under RLS, plus their open conflicts.
 * @param {Sql} sql
 * @param {BenchUser} user
 */
export async function visibleCount(sql, user) {
  let total = 0;
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    const tables = await tx`select table_name from sync.tables order by sync_order`;
    for (const { table_name } of tables) {
      const [{ n }] = await tx.unsafe(
        `select count(*)::int as n from public.${quoteIdent(table_name)} t where t.deleted_at is null`,
      );
      total += n;
    }
    // Conflicts are the engine's to read (no client role reads sync.conflicts): as sync_engine,
    // which row-level security treats as the same user.
    await tx`select set_config('role', 'sync_engine', true)`;
    const [{ n }] = await tx`
      select count(*)::int as n from sync.conflicts c
       where c.resolution = 'manual_pending' and (c.user_id = ${user.id} or c.server_user_id = ${user.id})`;
    total += n;
  });
  return total;
}

/**
 * An rm's read scope written as plain predicates from the registry (what the RLS policies decide for
 * an rm: owned rows by owner, branch rows by branch, shared rows all, child rows through the parent).
 * Used by the superuser's reference select that shows what RLS itself costs.
 * @param {Sql} sql
 * @param {BenchUser} user
 * @returns {Promise<Record<string, string>>}
 */
export async function rmScopePredicates(sql, user) {
  const reg =
    await sql`select table_name, scope::text as scope, parent_table, parent_column, owner_column, branch_column from sync.tables`;
  const byName = new Map(reg.map((r) => [r.table_name, r]));
  /**
   * @param {string} name
   * @param {string} alias
   * @returns {string}
   */
  const pred = (name, alias, depth = 0) => {
    const r = /** @type {import("postgres").Row} */ (byName.get(name));
    if (r.scope === "owned") return `${alias}.${quoteIdent(r.owner_column)} = '${user.id}'::uuid`;
    if (r.scope === "branch") return `${alias}.${quoteIdent(r.branch_column)} = '${user.branch_id}'::uuid`;
    if (r.scope === "shared") return "true";
    const a = `p${depth}`;
    return `exists (select 1 from public.${quoteIdent(r.parent_table)} ${a} where ${a}.id = ${alias}.${
      quoteIdent(r.parent_column)
    } and ${pred(r.parent_table, a, depth + 1)})`;
  };
  // A row is read in scope (a child's parent in scope, never merely granted) or through a grant of its own.
  return Object.fromEntries(
    reg.map((r) => [
      r.table_name,
      `(${
        pred(r.table_name, "t")
      } or t.id in (select g.row_id from sync.row_grants g where g.user_id = '${user.id}'::uuid and g.table_name = '${r.table_name}'))`,
    ]),
  );
}

/**
 * The pull's ceiling: a keyset SELECT of the same rows, as the same user under the same RLS. With
 * `predicates`, the superuser selects the same rows by plain predicates instead (no RLS).
 * @param {Sql} sql
 * @param {BenchUser} user
 * @param {number} page
 * @param {{ predicates?: Record<string, string> | null }} [options]
 */
export async function rawKeysetPull(sql, user, page, { predicates = null } = {}) {
  const t0 = now();
  let rows = 0;
  let queries = 0;
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    if (!predicates) {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
        claimsOf(user)
      }, true)`;
    }
    const tables = await tx`select table_name from sync.tables order by sync_order`;
    for (const { table_name } of tables) {
      let x = "0";
      let id = ZERO_UUID;
      for (let guard = 0; guard < 100_000; guard++) {
        const batch = await tx.unsafe(
          `select t.change_xid::text as x, t.id, to_jsonb(t) - 'change_xid' as row
             from public.${quoteIdent(table_name)} t
            where t.deleted_at is null and (t.change_xid, t.id) > ($1::xid8, $2::uuid) ${
            predicates ? `and ${predicates[table_name]}` : ""
          }
            order by t.change_xid, t.id
            limit $3`,
          [x, id, page],
        );
        queries++;
        rows += batch.length;
        if (batch.length < page) break;
        ({ x, id } = batch[batch.length - 1]);
      }
    }
    await tx`select set_config('role', 'sync_engine', true)`;
    const open = await tx`
      select to_jsonb(c) - 'change_xid' as row from sync.conflicts c
       where c.resolution = 'manual_pending' and (c.user_id = ${user.id} or c.server_user_id = ${user.id})`;
    rows += open.length;
    queries++;
  });
  return { ms: now() - t0, rows, queries };
}

/** The commit the run measured, and whether the work tree had changes on top of it. */
export function gitInfo() {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/**
 * What else the machine and the server were doing.
 * @param {Sql} sql
 */
export async function noiseSnapshot(sql) {
  const [{ others }] = await sql`
    select count(*)::int as others from pg_stat_activity
     where backend_type = 'client backend' and state = 'active' and datname <> current_database()`;
  return { loadavg_1m: rnd(os.loadavg()[0], 2), other_active_backends: others };
}

/**
 * The bench database's deadlock counter.
 * @param {Sql} sql
 * @returns {Promise<number>}
 */
export async function deadlocks(sql) {
  await sql`select pg_stat_clear_snapshot()`;
  const [{ n }] = await sql`select deadlocks::int as n from pg_stat_database where datname = current_database()`;
  return n;
}
