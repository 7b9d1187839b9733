#!/usr/bin/env node
// `npm run bench` (issue 5): push and pull measured side by side, in one run, on the same rows, with
// the same triggers and RLS, against raw PostgreSQL (the ceiling) and the per-item pattern (the floor).
// Prints a Markdown table of figures and ratios with the issue's targets beside them, and writes the
// figures as JSON to bench/results/<timestamp>.json. Targets are reported, never asserted: the exit
// code only says whether the correctness checks passed (every push applied, pulls complete, no errors
// and no deadlocks).
//
//   npm run bench                full run (10 000 ops, 100 000 rows, scale to 1 000 000; ~15 min)
//   npm run bench -- --quick     under two minutes: small sizes, scale at 10 000 only
//   npm run bench -- --smoke     the check `npm test` runs: a few hundred ops, no scale phase
//   options: --db NAME (default supasync_bench), --keep-db, --no-json, --page N, --push-ops N,
//            --pull-rows N, --devices N, --rounds N, --scale 10000,100000
//
// The database is dropped and re-created each run (migrations and seed, as `npm test` does); it is
// kept afterwards for inspection, except in --smoke mode. The function is started on free loopback
// ports from 56000 up. Every loop is bounded in count and in time.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { log, ROOT, server } from "./lib/cluster.mjs";
import { createDatabase, dropDatabase, localKeys, migrate, signAccessToken, startApi } from "./lib/stack.mjs";

// ---------------------------------------------------------------------------------------------------
// Options and presets

const { values: argv } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    db: { type: "string" },
    "keep-db": { type: "boolean", default: false },
    "no-json": { type: "boolean", default: false },
    page: { type: "string" },
    "push-ops": { type: "string" },
    "pull-rows": { type: "string" },
    devices: { type: "string" },
    rounds: { type: "string" },
    scale: { type: "string" },
  },
  strict: true,
});

const MODE = argv.smoke ? "smoke" : argv.quick ? "quick" : "full";
const PRESETS = {
  // pushOps: ops through the function (and the same shape through the ceiling); perItemMax caps the
  // per-item sample at min(perItemMax, pushOps / 10); pullRows: rows loaded for the full-pull user.
  full: {
    pushOps: 10_000, batch: 500, perItemMax: 1000, pullRows: 100_000, page: 1000, pullRounds: 3, emptyPulls: 50,
    statsPushes: 2, statsPages: 3, statsEmpty: 10,
    devices: 50, rounds: 6, deviceOps: 20, devicesBudgetMs: 240_000,
    scale: [10_000, 100_000, 1_000_000], scalePushOps: 4000, scalePullRows: 5000, phaseBudgetMs: 400_000,
    scaleRequestTimeoutMs: 240_000, scaleBudgetMs: 600_000,
  },
  quick: {
    pushOps: 2000, batch: 500, perItemMax: 200, pullRows: 6000, page: 1000, pullRounds: 3, emptyPulls: 30,
    statsPushes: 2, statsPages: 2, statsEmpty: 10,
    devices: 50, rounds: 3, deviceOps: 10, devicesBudgetMs: 35_000,
    scale: [10_000], scalePushOps: 1000, scalePullRows: 2000, phaseBudgetMs: 60_000,
    scaleRequestTimeoutMs: 60_000, scaleBudgetMs: 60_000,
  },
  smoke: {
    pushOps: 300, batch: 100, perItemMax: 30, pullRows: 600, page: 200, pullRounds: 1, emptyPulls: 10,
    statsPushes: 1, statsPages: 2, statsEmpty: 3,
    devices: 5, rounds: 2, deviceOps: 10, devicesBudgetMs: 30_000,
    scale: [], scalePushOps: 0, scalePullRows: 0, phaseBudgetMs: 30_000,
    scaleRequestTimeoutMs: 30_000, scaleBudgetMs: 30_000,
  },
};
const P = { ...PRESETS[MODE] };
const intOpt = (name, key) => {
  if (argv[name] === undefined) return;
  const n = Number(argv[name]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive whole number`);
  P[key] = n;
};
intOpt("page", "page");
intOpt("push-ops", "pushOps");
intOpt("pull-rows", "pullRows");
intOpt("devices", "devices");
intOpt("rounds", "rounds");
if (argv.scale !== undefined) P.scale = argv.scale.split(",").filter(Boolean).map(Number);
P.perItemOps = Math.max(1, Math.min(P.perItemMax, Math.floor(P.pushOps / 10)));
const DB_NAME = argv.db ?? "supasync_bench";
const SCALE_PULL_ROWS = 800;
const REQUEST_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------------------------------------------
// Small utilities

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const ZERO_UUID = "00000000-0000-0000-0000-000000000000";

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const rnd = (x, d = 1) => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const fmt = (x, d = 1) => (x == null || !Number.isFinite(x) ? "n/a" : rnd(x, d).toLocaleString("en-US"));
const pct = (x) => (x == null || !Number.isFinite(x) ? "n/a" : `${fmt(100 * x, 1)}%`);

async function freePort(from) {
  for (let port = from; port < from + 400; port++) {
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port from ${from}`);
}

async function freePorts(from) {
  const api = await freePort(from);
  const fn = await freePort(api + 1);
  return [api, fn];
}

class Deadline {
  constructor(ms, what) {
    this.at = Date.now() + ms;
    this.what = what;
  }
  get passed() {
    return Date.now() > this.at;
  }
  check() {
    if (this.passed) throw new Error(`${this.what} exceeded its time budget`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Correctness checks, collected over the run

const checks = [];
function check(name, ok, detail = "") {
  checks.push({ name, ok: Boolean(ok), detail });
  if (!ok) log(`CHECK FAILED: ${name}${detail ? ` (${detail})` : ""}`);
  return ok;
}

// ---------------------------------------------------------------------------------------------------
// HTTP to the function through the local gateway

const http = { retried5xx: 0, cancel: null };

/**
 * POST to the function. A 5xx is retried once (push and pull are idempotent) and counted. A request
 * that outlives its timeout is abandoned and the function's running query in the bench database is
 * cancelled (http.cancel), so no runaway statement skews what follows.
 */
async function call(apiUrl, route, token, body, { retry = true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const t0 = now();
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await fetch(`${apiUrl}/functions/v1/sync${route}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if (err?.name !== "TimeoutError") throw err;
      await http.cancel?.().catch(() => {});
      const e = new Error(`${route} took longer than ${timeoutMs / 1000} s; its query was cancelled`);
      e.timeout = true;
      throw e;
    }
    const text = await res.text();
    if (res.status >= 500 && retry && attempt === 0) {
      http.retried5xx++;
      log(`${route}: ${res.status} ${text.slice(0, 200)}; retrying once`);
      continue;
    }
    let json = null;
    try {
      json = JSON.parse(text);
    } catch { /* reported by the caller through status/json */ }
    return { status: res.status, json, text, bytes: Buffer.byteLength(text), ms: now() - t0, attempts: attempt + 1 };
  }
}

// ---------------------------------------------------------------------------------------------------
// Workload: mixed ops (70% insert, 25% update, 5% delete) over customers and their children.
// Updates and deletes target rows that exist before the batch (a preloaded pool, then the stream's own
// earlier inserts), so every id appears once per batch and the ceiling can write each batch as one
// multi-row upsert per table. Every op is expected to be `applied` with a predictable version.

const TABLES = ["customers", "key_persons", "pipelines", "activities"];
const INSERT_MIX = [["customers", 0.25], ["key_persons", 0.25], ["pipelines", 0.15], ["activities", 0.35]];
// What the ceiling writes: the client columns the rows use, and the owner columns the function fills
// from their defaults (auth.uid(), the caller's branch).
const CEILING_COLUMNS = {
  customers: ["id", "name", "customer_type", "industry", "email", "phone", "city", "notes", "assigned_rm_id", "branch_id", "deleted_at"],
  key_persons: ["id", "customer_id", "name", "position", "email", "phone", "is_primary", "notes", "deleted_at"],
  pipelines: ["id", "customer_id", "title", "stage", "potential_value", "currency", "expected_close_date", "notes", "assigned_rm_id", "branch_id", "deleted_at"],
  activities: ["id", "customer_id", "activity_type", "subject", "scheduled_at", "notes", "deleted_at"],
};

class Stream {
  /**
   * user: the pushing user ({id, email, role, branch_id, branchName}); assignTo: the rm a bm assigns
   * new customers to; parents: live customer ids the user may attach children to.
   */
  constructor({ name, seed, user, assignTo = null, parents = [] }) {
    this.name = name;
    this.rng = mulberry32(seed);
    this.user = user;
    this.assignTo = assignTo;
    this.parents = [...parents];
    this.pool = [];
    this.seq = 0;
    this.slot = 0;
  }

  pick(list) {
    return list[Math.floor(this.rng() * list.length)];
  }

  pickTable() {
    let x = this.rng();
    for (const [table, share] of INSERT_MIX) {
      if ((x -= share) < 0) return table;
    }
    return "activities";
  }

  rowFor(table, parent) {
    const k = ++this.seq;
    const tag = `${this.name}-${k}`;
    switch (table) {
      case "customers":
        return {
          name: `PT Bench ${tag}`, customer_type: k % 5 ? "company" : "individual",
          industry: ["manufacturing", "retail", "logistics", "agriculture"][k % 4],
          email: `c${k}@${this.name}.bench.test`, phone: `+62 21 ${String(k).padStart(7, "0")}`,
          city: this.user.branchName, notes: `created by the bench (${tag})`,
          ...(this.assignTo ? { assigned_rm_id: this.assignTo.id } : {}),
        };
      case "key_persons":
        return {
          customer_id: parent, name: `Contact ${tag}`, position: k % 2 ? "Director" : "Finance Manager",
          email: `kp${k}@${this.name}.bench.test`, phone: `+62 813 ${String(k).padStart(7, "0")}`, is_primary: false,
          notes: `key person (${tag})`,
        };
      case "pipelines":
        return {
          customer_id: parent, title: `Fleet insurance ${tag}`, stage: "prospect", potential_value: 100_000_000 + k,
          currency: "IDR", expected_close_date: "2027-06-30", notes: `pipeline (${tag})`,
        };
      default:
        return {
          customer_id: parent, activity_type: ["call", "meeting", "visit", "email", "note"][k % 5], subject: `Follow-up ${tag}`,
          scheduled_at: new Date(Date.UTC(2027, 0, 1 + (k % 300), 9)).toISOString(), notes: `activity (${tag})`,
        };
    }
  }

  editFor(table) {
    const k = ++this.seq;
    const data = { notes: `edited by the bench (${this.name}-${k})` };
    if (table === "customers" && k % 2) data.phone = `+62 21 9${String(k).padStart(6, "0")}`;
    if (table === "key_persons" && k % 2) data.position = `Head of ${k}`;
    return data;
  }

  ceilingRow(table, id, row, deleted) {
    const out = { id, ...row, deleted_at: deleted ? new Date().toISOString() : null };
    if (table === "customers") {
      out.assigned_rm_id = row.assigned_rm_id ?? this.user.id;
      out.branch_id = this.user.branch_id;
    } else if (table === "pipelines") {
      out.assigned_rm_id = this.user.id;
      out.branch_id = this.user.branch_id;
    }
    return out;
  }

  pickTarget(touched) {
    for (let tries = 0; tries < 12 && this.pool.length; tries++) {
      const e = this.pick(this.pool);
      if (!touched.has(e.id)) return e;
    }
    return null;
  }

  /** The next `size` ops; call commit() once they were applied. */
  batch(size, { insertsOnly = false } = {}) {
    const ops = [];
    const expect = [];
    const rows = Object.fromEntries(TABLES.map((t) => [t, []]));
    const effects = [];
    const touched = new Set();
    const kinds = { insert: 0, update: 0, delete: 0 };
    for (let i = 0; i < size; i++) {
      const slot = this.slot++ % 20;
      let kind = insertsOnly ? "insert" : slot < 14 ? "insert" : slot < 19 ? "update" : "delete";
      const target = kind === "insert" ? null : this.pickTarget(touched);
      if (!target) kind = "insert";
      kinds[kind]++;
      if (kind === "insert") {
        let table = this.pickTable();
        if (table !== "customers" && !this.parents.length) table = "customers";
        const parent = table === "customers" ? null : this.pick(this.parents);
        const id = randomUUID();
        const row = this.rowFor(table, parent);
        ops.push({ op_id: randomUUID(), table, op: "insert", id, data: row });
        expect.push(1);
        rows[table].push(this.ceilingRow(table, id, row, false));
        const entry = { table, id, version: 1, row };
        effects.push(() => {
          this.pool.push(entry);
          if (table === "customers") this.parents.push(id);
        });
        touched.add(id);
      } else if (kind === "update") {
        const data = this.editFor(target.table);
        ops.push({ op_id: randomUUID(), table: target.table, op: "update", id: target.id, base_version: target.version, data });
        expect.push(target.version + 1);
        const next = { ...target.row, ...data };
        rows[target.table].push(this.ceilingRow(target.table, target.id, next, false));
        effects.push(() => {
          target.row = next;
          target.version += 1;
        });
        touched.add(target.id);
      } else {
        ops.push({ op_id: randomUUID(), table: target.table, op: "delete", id: target.id, base_version: target.version });
        expect.push(target.version + 1);
        rows[target.table].push(this.ceilingRow(target.table, target.id, target.row, true));
        // A deleted customer takes no new children from here on.
        if (target.table === "customers") this.parents = this.parents.filter((p) => p !== target.id);
        effects.push(() => {
          const i = this.pool.indexOf(target);
          if (i >= 0) this.pool.splice(i, 1);
        });
        touched.add(target.id);
      }
    }
    return { ops, expect, rows, kinds, commit: () => effects.forEach((f) => f()) };
  }
}

/** Checks a push answer against the batch's predictions; returns the number of mismatches. */
function verifyPush(res, batch, samples) {
  if (res.status !== 200 || !Array.isArray(res.json?.results)) {
    samples.push(`HTTP ${res.status}: ${res.text.slice(0, 300)}`);
    return batch.ops.length;
  }
  let bad = 0;
  res.json.results.forEach((r, i) => {
    const ok = r.status === "applied" && r.op_id === batch.ops[i].op_id && Number(r.row?.version) === batch.expect[i];
    if (!ok) {
      bad++;
      if (samples.length < 5) {
        samples.push(`${batch.ops[i].op} ${batch.ops[i].table}: ${r.status}/${r.code ?? ""} ${r.message ?? ""} (version ${r.row?.version}, expected ${batch.expect[i]})`);
      }
    }
  });
  if (res.json.results.length !== batch.ops.length) bad += Math.abs(res.json.results.length - batch.ops.length);
  return bad;
}

// ---------------------------------------------------------------------------------------------------
// Database helpers (as the superuser that owns the bench database)

const claimsOf = (user) => JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });

/**
 * The ceiling: one multi-row INSERT ... ON CONFLICT (id) DO UPDATE per table of the batch, one
 * transaction, as the superuser; with asUser, the same statements as the user under RLS.
 */
async function upsertRows(sql, user, rowsByTable, { asUser = false } = {}) {
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
      const params = [];
      const tuples = rows.map((r) => `(${cols.map((c) => (params.push(r[c] ?? null), `$${params.length}`)).join(", ")})`);
      const set = cols.filter((c) => c !== "id").map((c) => `${c} = excluded.${c}`).join(", ");
      const res = await tx.unsafe(
        `insert into public.${table} (${cols.join(", ")}) values ${tuples.join(", ")} on conflict (id) do update set ${set}`,
        params,
        { prepare: false },
      );
      written += res.count;
    }
  });
  return { ms: now() - t0, written };
}

/** Writes `count` insert ops of a stream through the ceiling path (a pool of rows to update and delete). */
async function preload(sql, stream, count) {
  for (let left = count; left > 0; left -= 500) {
    const b = stream.batch(Math.min(500, left), { insertsOnly: true });
    await upsertRows(sql, stream.user, b.rows);
    b.commit();
  }
}

/**
 * Bulk rows for a user, as the superuser with generate_series (triggers fire): 4% customers owned by
 * `owner`, 32% key persons, 16% pipelines, 48% activities spread over them.
 */
async function loadRows(sql, { owner, total, label }) {
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

/** What a first pull must deliver to `user`: live rows visible under RLS, plus their open conflicts. */
async function visibleCount(sql, user) {
  let total = 0;
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
    const tables = await tx`select table_name from sync.tables order by sync_order`;
    for (const { table_name } of tables) {
      const [{ n }] = await tx.unsafe(`select count(*)::int as n from public.${quoteIdent(table_name)} t where t.deleted_at is null`);
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

const quoteIdent = (s) => '"' + s.replaceAll('"', '""') + '"';

/**
 * An rm's read scope written as plain predicates from the registry (what the RLS policies decide for
 * an rm: owned rows by owner, branch rows by branch, shared rows all, child rows through the parent).
 * Used by the superuser's reference select that shows what RLS itself costs.
 */
async function rmScopePredicates(sql, user) {
  const reg = await sql`select table_name, scope::text as scope, parent_table, parent_column, owner_column, branch_column from sync.tables`;
  const byName = new Map(reg.map((r) => [r.table_name, r]));
  const pred = (name, alias, depth = 0) => {
    const r = byName.get(name);
    if (r.scope === "owned") return `${alias}.${quoteIdent(r.owner_column)} = '${user.id}'::uuid`;
    if (r.scope === "branch") return `${alias}.${quoteIdent(r.branch_column)} = '${user.branch_id}'::uuid`;
    if (r.scope === "shared") return "true";
    const a = `p${depth}`;
    return `exists (select 1 from public.${quoteIdent(r.parent_table)} ${a} where ${a}.id = ${alias}.${quoteIdent(r.parent_column)} and ${pred(r.parent_table, a, depth + 1)})`;
  };
  return Object.fromEntries(reg.map((r) => [r.table_name, pred(r.table_name, "t")]));
}

/**
 * The pull's ceiling: a keyset SELECT of the same rows, as the same user under the same RLS. With
 * `predicates`, the superuser selects the same rows by plain predicates instead (no RLS).
 */
async function rawKeysetPull(sql, user, page, { predicates = null } = {}) {
  const t0 = now();
  let rows = 0;
  let queries = 0;
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    if (!predicates) {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
    }
    const tables = await tx`select table_name from sync.tables order by sync_order`;
    for (const { table_name } of tables) {
      let x = "0";
      let id = ZERO_UUID;
      for (let guard = 0; guard < 100_000; guard++) {
        const batch = await tx.unsafe(
          `select t.change_xid::text as x, t.id, to_jsonb(t) - 'change_xid' as row
             from public.${quoteIdent(table_name)} t
            where t.deleted_at is null and (t.change_xid, t.id) > ($1::xid8, $2::uuid) ${predicates ? `and ${predicates[table_name]}` : ""}
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

/** The run with the median `ms`. */
const medianRun = (runs) => [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)];

/** Runs `fn` n times in a row and returns the median run. */
async function medianOf(n, fn) {
  const runs = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  return medianRun(runs);
}

/** Pulls from `cursor` until has_more is false (bounded by pages and a deadline). */
async function pullAll(apiUrl, token, { cursor = null, limit, tables = undefined, maxPages = 100_000, firstPageOnly = false, deadline = null, onChange = null, timeoutMs }) {
  let pages = 0;
  let bytes = 0;
  let ms = 0;
  let changes = 0;
  const ops = {};
  const pageMs = [];
  for (;;) {
    const r = await call(apiUrl, "/pull", token, { protocol: 2, cursor, limit, ...(tables ? { tables } : {}) }, { timeoutMs });
    if (r.status !== 200 || !r.json) throw new Error(`pull failed: ${r.status} ${r.text.slice(0, 300)}`);
    if (r.json.resync_required) throw new Error("pull answered resync_required");
    pages++;
    bytes += r.bytes;
    ms += r.ms;
    pageMs.push(r.ms);
    changes += r.json.changes.length;
    for (const c of r.json.changes) {
      ops[c.op] = (ops[c.op] ?? 0) + 1;
      onChange?.(c);
    }
    cursor = r.json.cursor;
    if (!r.json.has_more || firstPageOnly) break;
    if (pages >= maxPages) throw new Error(`pull did not finish within ${maxPages} pages`);
    deadline?.check();
  }
  return { pages, bytes, ms, changes, ops, cursor, pageMs };
}

// ---------------------------------------------------------------------------------------------------
// pg_stat_statements

async function pgssRows(sql, dbid) {
  return await sql`
    select toplevel, calls::float8 as calls, total_exec_time::float8 as ms, rows::float8 as rows, query
      from extensions.pg_stat_statements
     where dbid = ${dbid} and query not ilike '%pg_stat_statements%'`;
}

async function pgssReset(sql, dbid) {
  await sql`select extensions.pg_stat_statements_reset(0::oid, ${dbid}::oid, 0::bigint)`;
}

const isTxnControl = (q) => /^\s*(begin|start transaction|commit|rollback|end)\b/i.test(q);
const isSetup = (q) => /^\s*select\s+set_config\s*\(/i.test(q);

/** Statements per request from a pg_stat_statements window that held `requests` requests. */
function statementsPerRequest(rows, requests, ops = null) {
  const top = rows.filter((r) => r.toplevel);
  const nested = rows.filter((r) => !r.toplevel);
  const sum = (list) => list.reduce((a, r) => a + r.calls, 0);
  const topAll = sum(top);
  const topTxn = sum(top.filter((r) => isTxnControl(r.query)));
  const topSetup = sum(top.filter((r) => isSetup(r.query)));
  const topWork = topAll - topTxn - topSetup;
  const nestedCalls = sum(nested);
  const call = top.find((r) => /public\.sync_(push|pull)/.test(r.query));
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
      .map((r) => ({ calls: r.calls, ms: rnd(r.ms, 1), per_request: rnd(r.calls / requests, 1), query: r.query.replace(/\s+/g, " ").slice(0, 220) })),
  };
}

// ---------------------------------------------------------------------------------------------------
// EXPLAIN (ANALYZE, BUFFERS) as the user, in a transaction that rolls back

const ROLLBACK = Symbol("rollback");

// As the user the plan is for: the engine runs these statements as sync_engine, which RLS treats
// like the user by the claims (a member of authenticated) and which alone may execute the engine.
async function explainAs(sql, user, text, { asUser = true, analyze = true } = {}) {
  let plan = "";
  try {
    await sql.begin(async (tx) => {
      if (asUser) {
        await tx`select set_config('role', 'sync_engine', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
      } else {
        await tx`select set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
      }
      const rows = await tx.unsafe(`explain ${analyze ? "(analyze, buffers)" : ""} ${text}`);
      plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) return `EXPLAIN failed: ${err.message}`;
  }
  return plan;
}

function planSummary(plan) {
  const removed = [...plan.matchAll(/Rows Removed by Filter: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const seq = [...plan.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]);
  const idx = [...plan.matchAll(/Index(?: Only)? Scan(?: Backward)? using (\w+)/g)].map((m) => m[1]);
  const time = Number(plan.match(/Execution Time: ([\d.]+) ms/)?.[1] ?? NaN);
  return { seq_scans: [...new Set(seq)], indexes: [...new Set(idx)], rows_removed_by_filter: removed, execution_ms: time };
}

/**
 * The query sync.changed_page() runs for one table, taken from the installed function's source so the
 * plan is the engine's (the format() template in 20261125001600_sync_pull.sql), with the parameters
 * inlined as the constants EXECUTE ... USING plans with.
 */
async function changedRowsQuery(sql, table, { lo, hi, limit, user }) {
  const [{ src }] = await sql`select prosrc as src from pg_proc where oid = 'sync.changed_page'::regproc`;
  const m = src.match(/format\(\s*'((?:[^']|'')*)',\s*p_table,\s*sync\.row_json_expression\(p_table\),[\s\S]*?coalesce\(sync\.caller_scope_condition\(p_table, 't'\), 'true'\)\)/);
  const [{ rowSql }] = await sql`select sync.row_json_expression(${table}) as "rowSql"`;
  // The caller's scope condition depends on who asks: worked out as the user the plan is for.
  const scopeSql = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'sync_engine', true), set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
    const [{ cond }] = await tx`select coalesce(sync.caller_scope_condition(${table}, 't'), 'true') as cond`;
    return cond;
  });
  if (!m) throw new Error("could not find the query template in sync.changed_page(); update changedRowsQuery in scripts/bench.mjs");
  const template = m[1].replaceAll("''", "'");
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
    .replace(/\$([1-6])\b/g, (k) => params[k]);
}

/**
 * The query sync.visible_changes_exist() runs, taken from the generated function's source, with the
 * window and the table list inlined.
 */
async function changeProbeQuery(sql, { lo, hi, user }) {
  const [{ src }] = await sql`select prosrc as src from pg_proc where oid = 'sync.visible_changes_exist'::regproc`;
  // The expression the probe returns for the reach of the user's role, with the values it plans with.
  const [{ reach }] = await sql`select reach::text as reach from sync.roles where role = ${user.role}`;
  const m = src.match(new RegExp(`if v_reach = '${reach}' then\\s+return\\s+([\\s\\S]*?);\\s*end if;`));
  if (!m) throw new Error("could not find the expression of sync.visible_changes_exist(); update changeProbeQuery in scripts/bench.mjs");
  const tables = (await sql`select table_name from sync.tables`).map((r) => r.table_name).concat("conflicts");
  return `select ${m[1]
    .replace(/\bp_lo\b/g, `'${lo}'::pg_snapshot`)
    .replace(/\bp_hi\b/g, `'${hi}'::pg_snapshot`)
    .replace(/\bp_tables\b/g, `array[${tables.map((t) => `'${t}'`).join(", ")}]::text[]`)
    .replace(/\bv_uid\b/g, `'${user.id}'::uuid`)
    .replace(/\bv_branches\b/g, `array['${user.branch_id}']::uuid[]`)}`;
}

// ---------------------------------------------------------------------------------------------------
// The run

const results = {
  mode: MODE,
  params: P,
  started_at: new Date().toISOString(),
  machine: {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu_model: os.cpus()[0]?.model ?? "unknown",
    cpu_count: os.cpus().length,
    memory_gib: rnd(os.totalmem() / 2 ** 30, 1),
    node: process.version,
  },
  noise: {},
  figures: {},
  plans: {},
};

function gitInfo() {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

async function noiseSnapshot(sql) {
  const [{ others }] = await sql`
    select count(*)::int as others from pg_stat_activity
     where backend_type = 'client backend' and state = 'active' and datname <> current_database()`;
  return { loadavg_1m: rnd(os.loadavg()[0], 2), other_active_backends: others };
}

async function deadlocks(sql) {
  await sql`select pg_stat_clear_snapshot()`;
  const [{ n }] = await sql`select deadlocks::int as n from pg_stat_database where datname = current_database()`;
  return n;
}

const phases = {};
let currentPhase = null;
let phaseStarted = 0;
/** Marks the start of a phase (null: the end of the last); durations go to results.phases_s. */
function phase(name) {
  const t = now();
  if (currentPhase) phases[currentPhase] = rnd((t - phaseStarted) / 1000, 1);
  currentPhase = name;
  phaseStarted = t;
}

async function main() {
  const t0 = Date.now();
  phase("setup");
  const srv = server();
  const apis = [];
  let sql;
  let dbUrl;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    for (const a of apis) await a.stop().catch(() => {});
    await sql?.end({ timeout: 5 }).catch(() => {});
    if (dbUrl && MODE === "smoke" && !argv["keep-db"]) await dropDatabase(srv.url, DB_NAME).catch(() => {});
    srv.stop();
  };
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, async () => {
      await shutdown();
      process.exit(130);
    });
  }

  try {
    log(`bench (${MODE}): database ${DB_NAME}`);
    dbUrl = await createDatabase(srv.url, DB_NAME, { reset: true });
    await migrate(dbUrl, { seed: true });
    sql = postgres(dbUrl, { max: 4, onnotice: () => {}, idle_timeout: 30, connect_timeout: 10 });
    results.git = gitInfo();
    results.postgres = (await sql`select version() as v`)[0].v;
    results.noise.start = await noiseSnapshot(sql);
    const [{ dbid }] = await sql`select oid::int as dbid from pg_database where datname = current_database()`;
    http.cancel = () => sql`
      select pg_cancel_backend(pid) from pg_stat_activity
       where datname = current_database() and application_name = 'sync-function' and state = 'active'`;

    // pg_stat_statements: preloaded by the private cluster (scripts/lib/cluster.mjs) since it was added there.
    const [{ preload: preloadLibs }] = await sql`select current_setting('shared_preload_libraries') as preload`;
    let pgss = preloadLibs.split(",").map((s) => s.trim()).includes("pg_stat_statements");
    if (pgss) {
      await sql`create extension if not exists pg_stat_statements with schema extensions`;
    } else {
      const where = process.env.DATABASE_URL
        ? "the server named by DATABASE_URL does not preload it"
        : "the private cluster in .local/pgdata was created before scripts/lib/cluster.mjs added shared_preload_libraries = 'pg_stat_statements'; add that line to .local/pgdata/postgresql.auto.conf and restart the cluster (or remove .local/pgdata to recreate it)";
      log(`pg_stat_statements is not loaded: ${where}. Statement counts are skipped.`);
    }
    results.pg_stat_statements = pgss;
    const deadlocksAtStart = await deadlocks(sql);

    const users = Object.fromEntries(
      (await sql`
        select u.email, u.id::text as id, p.role, p.branch_id::text as branch_id, b.name as "branchName"
          from auth.users u join public.profiles p on p.id = u.id left join public.branches b on b.id = p.branch_id
         where u.email like '%@crm.test'`).map((u) => [u.email, u]),
    );
    const U = {
      rm1j: users["rm1.jakarta@crm.test"], rm2j: users["rm2.jakarta@crm.test"], bmj: users["bm.jakarta@crm.test"],
      rm1s: users["rm1.surabaya@crm.test"], rm2s: users["rm2.surabaya@crm.test"], bms: users["bm.surabaya@crm.test"],
    };
    for (const [k, v] of Object.entries(U)) if (!v) throw new Error(`seed user ${k} is missing`);
    const customersOf = async (user) =>
      (await sql`
        select id::text from public.customers
         where deleted_at is null and (${user.role === "bm"} and branch_id = ${user.branch_id}::uuid or assigned_rm_id = ${user.id}::uuid)
         order by id limit 200`).map((r) => r.id);

    const keys = await localKeys();
    const [apiPort, functionPort] = await freePorts(56000);
    const api = await startApi({ dbUrl, keys, apiPort, functionPort, quiet: true });
    apis.push(api);
    const tokens = {};
    for (const [k, u] of Object.entries(U)) tokens[k] = await signAccessToken(keys, api.apiUrl, u, { expiresIn: 4 * 3600 });
    // A first request warms the function's JWKS cache and connection pool.
    await call(api.apiUrl, "/pull", tokens.rm1s, { protocol: 2, cursor: null, limit: 1 });

    // ---------------------------------------------------------------- 1. push
    phase("push");
    log(`push: ${P.pushOps} mixed ops through the function in batches of ${P.batch}, the same through the ceiling; ${P.perItemOps} per-item requests`);
    const rm1Parents = await customersOf(U.rm1j);
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

    const push = { fn: { ms: 0, ops: 0, batchMs: [] }, ceiling: { ms: 0, rows: 0 }, userCeiling: { ms: 0, rows: 0 }, kinds: { insert: 0, update: 0, delete: 0 } };
    const pushSamples = [];
    let pushBad = 0;
    let ceilingBad = 0;
    const clientId = randomUUID();
    // One batch of each side, written and checked; `into` adds its time and size to the figures.
    const ceilingBatch = async (stream, size, into, options) => {
      const b = stream.batch(size);
      const c = await upsertRows(sql, U.rm1j, b.rows, options);
      if (into) {
        into.ms += c.ms;
        into.rows += c.written;
      }
      if (c.written !== size) ceilingBad += Math.abs(size - c.written);
      b.commit();
    };
    const functionBatch = async (size, into) => {
      const b = fnStream.batch(size);
      const r = await call(api.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: b.ops });
      if (into) {
        for (const k of Object.keys(b.kinds)) push.kinds[k] += b.kinds[k];
        into.ms += r.ms;
        into.ops += size;
        into.batchMs.push(r.ms);
      }
      pushBad += verifyPush(r, b, pushSamples);
      b.commit();
    };
    // One batch each, untimed, first: the function's connection compiles its PL/pgSQL and fills its
    // plan caches on its first push (the ceiling's connection has long been warm), and a server
    // that has run for a while has both done that.
    await ceilingBatch(ceilStream, P.batch, null);
    await ceilingBatch(userCeilStream, P.batch, null, { asUser: true });
    await functionBatch(P.batch, null);
    if (pgss) await pgssReset(sql, dbid);
    const pushDeadline = new Deadline(P.phaseBudgetMs, "the push phase");
    for (let done = 0; done < P.pushOps; done += P.batch) {
      const size = Math.min(P.batch, P.pushOps - done);
      // Interleaved, batch by batch, so all three see the same database size and the same machine noise.
      await ceilingBatch(ceilStream, size, push.ceiling);
      await ceilingBatch(userCeilStream, size, push.userCeiling, { asUser: true });
      await functionBatch(size, push.fn);
      pushDeadline.check();
    }
    const pushDb = pgss ? statementsPerRequest(await pgssRows(sql, dbid), push.fn.batchMs.length, push.fn.ops) : null;
    check("push: every op of the batched pushes applied, at the predicted version", pushBad === 0, pushSamples.join("; "));
    check("push ceiling: every row written, as the superuser and as the user", ceilingBad === 0, `${ceilingBad} rows missing`);

    // The per-item pattern: one request per op, in order, as the old app did.
    const item = { ms: 0, ops: 0, reqMs: [] };
    const itemSamples = [];
    let itemBad = 0;
    for (let i = 0; i < P.perItemOps; i++) {
      const b = itemStream.batch(1);
      const r = await call(api.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: b.ops });
      item.ms += r.ms;
      item.ops++;
      item.reqMs.push(r.ms);
      itemBad += verifyPush(r, b, itemSamples);
      b.commit();
      pushDeadline.check();
    }
    check("push per-item: every op applied, at the predicted version", itemBad === 0, itemSamples.join("; "));

    // The database holds what the answers said.
    const [{ live, gone }] = await sql`
      select count(*) filter (where deleted_at is null)::int as live, count(*) filter (where deleted_at is not null)::int as gone
        from (select id, deleted_at from public.customers union all select id, deleted_at from public.key_persons
              union all select id, deleted_at from public.pipelines union all select id, deleted_at from public.activities) t
       where t.id = any (${fnStream.pool.map((e) => e.id)}::uuid[])`;
    check("push: the function's surviving rows are stored and live", live === fnStream.pool.length && gone === 0,
      `${live} live and ${gone} deleted of ${fnStream.pool.length}`);

    const fnRate = push.fn.ops / (push.fn.ms / 1000);
    const ceilRate = push.ceiling.rows / (push.ceiling.ms / 1000);
    const userCeilRate = push.userCeiling.rows / (push.userCeiling.ms / 1000);
    const itemRate = item.ops / (item.ms / 1000);
    results.figures.push = {
      ops: push.fn.ops, batch: P.batch, kinds: push.kinds,
      function: { ms: rnd(push.fn.ms), ops_per_s: rnd(fnRate), batch_p50_ms: rnd(quantile(push.fn.batchMs, 0.5)), batch_p95_ms: rnd(quantile(push.fn.batchMs, 0.95)),
        db_ms_per_request: rnd(pushDb?.db_ms_per_request) },
      ceiling: { ms: rnd(push.ceiling.ms), rows: push.ceiling.rows, rows_per_s: rnd(ceilRate) },
      ceiling_as_user: { ms: rnd(push.userCeiling.ms), rows: push.userCeiling.rows, rows_per_s: rnd(userCeilRate) },
      per_item: { ops: item.ops, ms: rnd(item.ms), ops_per_s: rnd(itemRate), request_p50_ms: rnd(quantile(item.reqMs, 0.5)),
        request_p95_ms: rnd(quantile(item.reqMs, 0.95)), scaled_to_n_ms: rnd((P.pushOps / itemRate) * 1000) },
      ratio_vs_ceiling: rnd(fnRate / ceilRate, 4),
      ratio_vs_ceiling_as_user: rnd(fnRate / userCeilRate, 4),
      ceiling_as_user_vs_ceiling: rnd(userCeilRate / ceilRate, 4),
      ratio_vs_per_item: rnd(fnRate / itemRate, 2),
    };
    log(`push: function ${fmt(fnRate)} ops/s, ceiling ${fmt(ceilRate)} rows/s (as the user ${fmt(userCeilRate)}), per-item ${fmt(itemRate)} ops/s`);

    // ---------------------------------------------------------------- 6. concurrent devices
    phase("devices");
    // Before the pull data is loaded, so that the devices' users hold seed-sized data sets.
    log(`devices: ${P.devices} devices x ${P.rounds} rounds of push (${P.deviceOps} ops) and pull`);
    const deviceUsers = [U.rm2j, U.rm1s, U.rm2s, U.bms];
    const tokenOf = new Map([[U.rm2j, tokens.rm2j], [U.rm1s, tokens.rm1s], [U.rm2s, tokens.rm2s], [U.bms, tokens.bms]]);
    const initial = new Map();
    const initT0 = now();
    for (const u of deviceUsers) {
      const known = new Map();
      const shared = await customersOf(u);
      const sharedSet = new Set(shared);
      const p = await pullAll(api.apiUrl, tokenOf.get(u), {
        limit: P.page, maxPages: 1000,
        onChange: (c) => c.table === "customers" && c.op === "upsert" && sharedSet.has(c.row.id) && known.set(c.row.id, Number(c.row.version)),
      });
      initial.set(u, { cursor: p.cursor, known, shared: shared.slice(0, 40) });
    }
    const initMs = now() - initT0;
    const dl0 = await deadlocks(sql);
    const dev = { pushMs: [], pullMs: [], httpErrors: 0, opStatus: {}, conflicts: 0, rounds: 0, changes: 0, errorSamples: [] };
    const devDeadline = new Deadline(P.devicesBudgetMs, "the devices phase");
    const devT0 = now();
    const rmOfBranch = (u) => (u.role === "bm" ? Object.values(U).find((x) => x.role === "rm" && x.branch_id === u.branch_id) : null);
    await Promise.all(Array.from({ length: P.devices }, async (_, d) => {
      const u = deviceUsers[d % deviceUsers.length];
      const token = tokenOf.get(u);
      const init = initial.get(u);
      const known = new Map(init.known);
      let cursor = init.cursor;
      const stream = new Stream({ name: `d${d}`, seed: 100 + d, user: u, assignTo: rmOfBranch(u), parents: init.shared });
      const sharedRng = mulberry32(1000 + d);
      const deviceClient = randomUUID();
      for (let round = 0; round < P.rounds && !devDeadline.passed; round++) {
        const b = stream.batch(P.deviceOps - 1);
        // One edit of a row the user shares with their other devices (and a bm with the rm), based on
        // the version this device last saw: concurrent edits meet here and are resolved and audited.
        const sharedId = init.shared[Math.floor(sharedRng() * init.shared.length)];
        const ops = [...b.ops];
        if (sharedId && known.has(sharedId)) {
          ops.push({ op_id: randomUUID(), table: "customers", op: "update", id: sharedId, base_version: known.get(sharedId),
            data: { notes: `device ${d} round ${round}` } });
        }
        const r = await call(api.apiUrl, "/push", token, { protocol: 2, client_id: deviceClient, ops });
        dev.pushMs.push(r.ms);
        if (r.status !== 200 || !Array.isArray(r.json?.results)) {
          dev.httpErrors++;
          if (dev.errorSamples.length < 5) dev.errorSamples.push(`push ${r.status}: ${r.text.slice(0, 200)}`);
        } else {
          r.json.results.forEach((res, i) => {
            dev.opStatus[res.status] = (dev.opStatus[res.status] ?? 0) + 1;
            if (res.conflict) dev.conflicts++;
            if (res.status !== "applied" && dev.errorSamples.length < 5) {
              dev.errorSamples.push(`${ops[i].op} ${ops[i].table}: ${res.status}/${res.code} ${res.message ?? ""}`);
            }
            if (ops[i].id === sharedId && res.row) known.set(sharedId, Number(res.row.version));
          });
          // Own rows: the answer's versions are the truth (a retried request may repeat as duplicate).
          b.commit();
        }
        try {
          const p = await pullAll(api.apiUrl, token, {
            cursor, limit: P.page, maxPages: 50,
            onChange: (c) => c.table === "customers" && c.op === "upsert" && known.has(c.row.id) && known.set(c.row.id, Number(c.row.version)),
          });
          dev.pullMs.push(...p.pageMs);
          dev.changes += p.changes;
          cursor = p.cursor;
        } catch (err) {
          dev.httpErrors++;
          if (dev.errorSamples.length < 5) dev.errorSamples.push(`pull: ${err.message.slice(0, 200)}`);
        }
        dev.rounds++;
      }
    }));
    const devMs = now() - devT0;
    await sleep(1500); // backends report their counters when idle
    const dl1 = await deadlocks(sql);
    const opErrors = Object.entries(dev.opStatus).filter(([s]) => s !== "applied").reduce((a, [, n]) => a + n, 0);
    results.figures.devices = {
      devices: P.devices, rounds_planned: P.rounds, rounds_done: dev.rounds, users: deviceUsers.map((u) => u.email),
      initial_pulls_ms: rnd(initMs), ms: rnd(devMs),
      push_p50_ms: rnd(quantile(dev.pushMs, 0.5)), push_p95_ms: rnd(quantile(dev.pushMs, 0.95)),
      pull_p50_ms: rnd(quantile(dev.pullMs, 0.5)), pull_p95_ms: rnd(quantile(dev.pullMs, 0.95)),
      requests: dev.pushMs.length + dev.pullMs.length, http_errors: dev.httpErrors, op_status: dev.opStatus, op_errors: opErrors,
      applied_with_conflict: dev.conflicts, changes_pulled: dev.changes, deadlocks: dl1 - dl0, error_samples: dev.errorSamples,
    };
    if (dev.rounds < P.devices * P.rounds) log(`devices: the time budget stopped the phase after ${dev.rounds} of ${P.devices * P.rounds} rounds`);
    if (MODE === "smoke") check("devices: every round completed", dev.rounds === P.devices * P.rounds, `${dev.rounds} of ${P.devices * P.rounds}`);
    check("devices: no request failed", dev.httpErrors === 0, dev.errorSamples.join("; "));
    check("devices: every op applied", opErrors === 0, JSON.stringify(dev.opStatus));
    check("devices: no deadlock", dl1 - dl0 === 0, `${dl1 - dl0} deadlocks`);
    log(`devices: push p50 ${fmt(quantile(dev.pushMs, 0.5))} ms, p95 ${fmt(quantile(dev.pushMs, 0.95))} ms; ${dev.httpErrors} errors`);

    // ---------------------------------------------------------------- 2. full first pull
    phase("pull");
    log(`pull: loading ${P.pullRows} rows for ${U.rm2j.email}`);
    const loaded = await loadRows(sql, { owner: U.rm2j, total: P.pullRows, label: "Pull" });
    const expected = await visibleCount(sql, U.rm2j);
    // Three rounds, each the function's pull then the keyset select then the select without RLS,
    // and the median of each: one sample apiece swung the ratio by a third between runs.
    const pullDeadline = new Deadline(P.phaseBudgetMs * P.pullRounds, "the pull phase");
    const seen = new Set();
    let dupes = 0;
    const fnRuns = [];
    const rawRuns = [];
    const plainRuns = [];
    let pullDb = null;
    const predicates = await rmScopePredicates(sql, U.rm2j);
    for (let round = 0; round < P.pullRounds; round++) {
      if (pgss && round === 0) await pgssReset(sql, dbid);
      fnRuns.push(await pullAll(api.apiUrl, tokens.rm2j, {
        limit: P.page, deadline: pullDeadline,
        onChange: round > 0 ? null : (c) => {
          const key = `${c.table}/${c.row?.id ?? c.id}`;
          if (seen.has(key)) dupes++;
          seen.add(key);
        },
      }));
      if (pgss && round === 0) pullDb = statementsPerRequest(await pgssRows(sql, dbid), fnRuns[0].pages);
      rawRuns.push(await rawKeysetPull(sql, U.rm2j, P.page));
      plainRuns.push(await rawKeysetPull(sql, U.rm2j, P.page, { predicates }));
    }
    const fnPull = medianRun(fnRuns);
    const raw = medianRun(rawRuns);
    const plain = medianRun(plainRuns);
    check("pull: the function delivered every visible row once", fnRuns[0].changes === expected && dupes === 0 && (fnRuns[0].ops.upsert ?? 0) === expected,
      `${fnRuns[0].changes} changes (${dupes} repeated) for ${expected} visible rows`);
    check("pull ceiling: the keyset select read the same number of rows", raw.rows === expected, `${raw.rows} of ${expected}`);
    check("pull reference: the select without RLS read the same number of rows", plain.rows === expected, `${plain.rows} of ${expected}`);
    const fnPullRate = fnPull.changes / (fnPull.ms / 1000);
    const rawRate = raw.rows / (raw.ms / 1000);
    results.figures.pull = {
      rows: expected, loaded, page: P.page,
      function: { ms: rnd(fnPull.ms), pages: fnPull.pages, rows_per_s: rnd(fnPullRate), bytes: fnPull.bytes,
        page_p50_ms: rnd(quantile(fnPull.pageMs, 0.5)), page_p95_ms: rnd(quantile(fnPull.pageMs, 0.95)),
        db_ms_per_page: rnd(pullDb?.db_ms_per_request) },
      ceiling: { ms: rnd(raw.ms), rows_per_s: rnd(rawRate), queries: raw.queries },
      without_rls: { ms: rnd(plain.ms), rows_per_s: rnd(plain.rows / (plain.ms / 1000)) },
      ratio_vs_ceiling: rnd(fnPullRate / rawRate, 4),
      ratio_vs_without_rls: rnd(fnPullRate / (plain.rows / (plain.ms / 1000)), 4),
    };
    log(`pull: function ${fmt(fnPullRate)} rows/s, raw keyset ${fmt(rawRate)} rows/s`);

    // ---------------------------------------------------------------- 3. empty delta pull
    phase("empty_delta");
    let cursor = fnPull.cursor;
    const empty = { ms: [], bytes: [], nonEmpty: 0 };
    for (let i = 0; i < P.emptyPulls; i++) {
      const r = await call(api.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor, limit: P.page });
      if (r.status !== 200 || !r.json) {
        empty.nonEmpty++;
        continue;
      }
      if (r.json.changes.length || r.json.has_more || r.json.resync_required) empty.nonEmpty++;
      empty.ms.push(r.ms);
      empty.bytes.push(r.bytes);
      cursor = r.json.cursor;
    }
    check("empty delta: every answer was empty", empty.nonEmpty === 0, `${empty.nonEmpty} of ${P.emptyPulls} were not`);
    results.figures.empty_delta = {
      requests: P.emptyPulls, p50_ms: rnd(quantile(empty.ms, 0.5), 2), p95_ms: rnd(quantile(empty.ms, 0.95), 2),
      bytes_max: Math.max(...empty.bytes), bytes_p50: quantile(empty.bytes, 0.5),
    };

    // ---------------------------------------------------------------- 4. statements per request
    phase("statements");
    if (pgss) {
      log("statements: a second function instance with pg_stat_statements.track = all");
      await sql.unsafe(`alter database ${quoteIdent(DB_NAME)} set pg_stat_statements.track = 'all'`);
      const [p2, f2] = await freePorts(functionPort + 1);
      const api2 = await startApi({ dbUrl, keys, apiPort: p2, functionPort: f2, quiet: true });
      apis.push(api2);
      try {
        await call(api2.apiUrl, "/pull", tokens.rm1s, { protocol: 2, cursor: null, limit: 1 });
        const statsStream = new Stream({ name: "stats", seed: 7, user: U.rm1j, parents: rm1Parents });
        await preload(sql, statsStream, Math.min(300, P.batch));
        await pgssReset(sql, dbid);
        let statsBad = 0;
        const statsSamples = [];
        for (let i = 0; i < P.statsPushes; i++) {
          const b = statsStream.batch(P.batch);
          const r = await call(api2.apiUrl, "/push", tokens.rm1j, { protocol: 2, client_id: clientId, ops: b.ops }, { retry: false });
          statsBad += verifyPush(r, b, statsSamples);
          b.commit();
        }
        const stPush = statementsPerRequest(await pgssRows(sql, dbid), P.statsPushes, P.statsPushes * P.batch);
        check("statements phase: every op applied", statsBad === 0, statsSamples.join("; "));

        await pgssReset(sql, dbid);
        let c = null;
        for (let i = 0; i < P.statsPages; i++) {
          const r = await call(api2.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor: c, limit: P.page }, { retry: false });
          c = r.json?.cursor ?? null;
        }
        const stPull = statementsPerRequest(await pgssRows(sql, dbid), P.statsPages);

        await pgssReset(sql, dbid);
        for (let i = 0; i < P.statsEmpty; i++) {
          const r = await call(api2.apiUrl, "/pull", tokens.rm2j, { protocol: 2, cursor, limit: P.page }, { retry: false });
          cursor = r.json?.cursor ?? cursor;
        }
        const stEmpty = statementsPerRequest(await pgssRows(sql, dbid), P.statsEmpty);
        results.figures.statements = { push: stPush, pull_page: stPull, empty_delta: stEmpty, push_ops_per_request: P.batch, pull_page_size: P.page };
      } finally {
        await sql.unsafe(`alter database ${quoteIdent(DB_NAME)} reset pg_stat_statements.track`);
        await api2.stop();
        apis.splice(apis.indexOf(api2), 1);
      }
    }

    // ---------------------------------------------------------------- 5. scale
    phase("scale");
    // At each level, with filler customers owned by another rm (rm2.surabaya) bulk-loaded up to it:
    //  - catch-up: the scale user's delta pull right after the load (the filler is in its window,
    //    none of it visible to them): reported, not a per-row figure;
    //  - full pull of customers only (tables: ["customers"], one page of up to 2000): the first pull's
    //    per-row cost where it meets the table's size (an all-table first pull repeats that for every
    //    child table page and would not finish at 1 000 000 in this run's time);
    //  - push of mixed ops in batches, then the delta pull of exactly those changes (all tables).
    const scale = [];
    if (P.scale.length) {
      const phaseT0 = now();
      log(`scale: ${P.scale.join(", ")} customers; filler owned by ${U.rm2s.email}`);
      await loadRows(sql, { owner: U.rm1s, total: P.scalePullRows, label: "Scale" });
      const scaleParents = await customersOf(U.rm1s);
      // The scale user's cursor over all tables, taken before any filler exists.
      let scaleCursor = (await pullAll(api.apiUrl, tokens.rm1s, { limit: 2000, maxPages: 1000 })).cursor;
      const timed = async (what, fn) => {
        try {
          return await fn();
        } catch (err) {
          log(`scale: ${what}: ${err.message}`);
          return { error: err.message };
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
        const delivered = await timed("pool pull", () => pullAll(api.apiUrl, tokens.rm1s, { limit: 2000, maxPages: 1000, cursor: scaleCursor }));
        if (delivered.cursor) scaleCursor = delivered.cursor;
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

        const catchUp = await timed("catch-up delta pull", () => pullAll(api.apiUrl, tokens.rm1s, { ...opts, cursor: scaleCursor, limit: 2000 }));
        if (catchUp.cursor) scaleCursor = catchUp.cursor;

        const [{ n: visibleCustomers }] = await sql`
          select count(*)::int as n from public.customers where assigned_rm_id = ${U.rm1s.id}::uuid and deleted_at is null`;
        // The same number of rows at every level (the pushes between levels add customers): a first
        // page of SCALE_PULL_ROWS, so per-row costs compare like with like.
        const pullRows = Math.min(SCALE_PULL_ROWS, visibleCustomers);
        log(`scale ${customers}: first page of ${pullRows} of ${visibleCustomers} customers`);
        // Each read is timed nine times and the median kept: one sample of some 70 ms on this
        // machine is as much noise as measurement (the first, with cold caches, is one of the nine).
        const full = await timed("full pull of customers", () => medianOf(9, () => pullAll(api.apiUrl, tokens.rm1s, { ...opts, limit: pullRows, firstPageOnly: true, tables: ["customers"] })));
        if (!full.error) {
          check(`scale ${level}: the customers page was full`, full.changes === pullRows, `${full.changes} of ${pullRows}`);
        }

        log(`scale ${customers}: push of ${P.scalePushOps} ops`);
        const samples = [];
        let bad = 0;
        let pushMs = 0;
        const push = await timed("push", async () => {
          const perOp = [];
          for (let done = 0; done < P.scalePushOps; done += P.batch) {
            const size = Math.min(P.batch, P.scalePushOps - done);
            const b = levelStream.batch(size);
            const r = await call(api.apiUrl, "/push", tokens.rm1s, { protocol: 2, client_id: clientId, ops: b.ops }, { timeoutMs: P.scaleRequestTimeoutMs });
            pushMs += r.ms;
            perOp.push(r.ms / size);
            bad += verifyPush(r, b, samples);
            b.commit();
          }
          // The median batch, for the same reason as the reads.
          return { ms: quantile(perOp, 0.5) * P.scalePushOps, total_ms: pushMs };
        });
        if (!push.error) check(`scale ${level}: every op applied`, bad === 0, samples.join("; "));
        // A pull only reads, so the same delta can be pulled nine times from the same cursor.
        const delta = catchUp.error ? { error: "no cursor" } : await timed("delta pull",
          () => medianOf(9, () => pullAll(api.apiUrl, tokens.rm1s, { ...opts, cursor: scaleCursor, limit: 1000 })));
        if (delta.cursor) scaleCursor = delta.cursor;
        scale.push({
          level, customers, filled, fill_ms: rnd(fillMs),
          catch_up_ms: rnd(catchUp.ms), catch_up_changes: catchUp.changes ?? null, catch_up_error: catchUp.error,
          full_pull_rows: full.changes ?? null, full_pull_ms: rnd(full.ms), full_pull_ms_per_row: full.error ? null : rnd(full.ms / full.changes, 4), full_pull_error: full.error,
          push_ops: P.scalePushOps, push_ms: rnd(push.ms), push_ms_per_op: push.error ? null : rnd(push.ms / P.scalePushOps, 3), push_error: push.error,
          delta_rows: delta.changes ?? null, delta_ms: rnd(delta.ms), delta_ms_per_row: delta.error ? null : rnd(delta.ms / Math.max(1, delta.changes), 4), delta_error: delta.error,
        });
        log(`scale ${customers}: catch-up ${fmt(catchUp.ms / 1000, 2)} s, customers pull ${fmt(full.ms / Math.max(1, full.changes), 3)} ms/row, push ${fmt(push.ms / P.scalePushOps, 2)} ms/op, delta ${fmt(delta.ms / Math.max(1, delta.changes), 3)} ms/row`);
        if (now() - phaseT0 > P.scaleBudgetMs) {
          log(`scale: the phase's time budget is spent; levels above ${level} are skipped`);
          break;
        }
      }
      const base = scale[0];
      const rel = (v, b) => (v == null || b == null ? null : rnd(v / b, 3));
      for (const s of scale) {
        s.push_vs_smallest = rel(s.push_ms_per_op, base.push_ms_per_op);
        s.full_pull_vs_smallest = rel(s.full_pull_ms_per_row, base.full_pull_ms_per_row);
        s.delta_vs_smallest = rel(s.delta_ms_per_row, base.delta_ms_per_row);
      }
    }
    results.figures.scale = scale;

    // ---------------------------------------------------------------- 7. plans
    phase("plans");
    log("plans: EXPLAIN (ANALYZE, BUFFERS) as the user, rolled back");
    const planUser = P.scale.length ? U.rm1s : U.rm2j;
    const [{ snap }] = await sql`select pg_current_snapshot()::text as snap`;
    const [{ customers: customersNow }] = await sql`select count(*)::int as customers from public.customers`;
    const sampleCustomer = (await customersOf(planUser))[0];
    const [sampleRow] = await sql`select id::text, version::int from public.customers where id = ${sampleCustomer}::uuid`;
    const newId = randomUUID();
    // The engine's own write statements for customers, as sync.refresh_bulk_writers wrote them into
    // sync.bulk_write, with literal arrays for its parameters.
    const [{ writer }] = await sql`select prosrc as writer from pg_catalog.pg_proc
      where oid = 'sync.bulk_write(text, text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid)'::regprocedure`;
    const customersWriter = writer.slice(writer.indexOf("if p_table = 'customers' then"));
    const writeStatement = (kind, values) =>
      customersWriter.match(new RegExp(`with w as \\(\\s*${kind}[\\s\\S]*?\\) x;`))[0]
        .replace(/\binto o_written, o_ords, o_results\b/, "")
        .replace(/;$/, "")
        .replace(/\bp_(ids|datas|ords|ops|versions|deletes|uid)\b/g, (_, k) => values[k]);
    const insertData = JSON.stringify({ name: "PT Explain", customer_type: "company", industry: "retail", email: "x@explain.test", phone: "+62 21 1", city: "Surabaya", notes: "explain" });
    const plans = {
      "pull page, customers, first pull (sync.changed_page)": await explainAs(sql, planUser,
        await changedRowsQuery(sql, "customers", { lo: null, hi: snap, limit: P.page, user: planUser })),
      "pull page, customers, delta from the current snapshot (sync.changed_page)": await explainAs(sql, planUser,
        await changedRowsQuery(sql, "customers", { lo: snap, hi: snap, limit: P.page, user: planUser })),
      "pull page, activities, first pull (sync.changed_page, child RLS)": await explainAs(sql, planUser,
        await changedRowsQuery(sql, "activities", { lo: null, hi: snap, limit: P.page, user: planUser })),
      "pull page, activities, delta from the current snapshot (sync.changed_page, child RLS)": await explainAs(sql, planUser,
        await changedRowsQuery(sql, "activities", { lo: snap, hi: snap, limit: P.page, user: planUser })),
      "empty delta: the change probe (sync.visible_changes_exist, every registered table)": await explainAs(sql, planUser,
        await changeProbeQuery(sql, { lo: snap, hi: snap, user: planUser })),
      // Every write since the beginning is in this window, nearly all of them other users': the
      // caller's own are found from (updated_by, change_xid) all the same.
      "pull: the caller's own writes in a window (sync.own_writes, security definer)": await explainAs(sql, planUser,
        `select t.id from public.customers t where t.updated_by = '${planUser.id}'::uuid and sync.changed_between(t.change_xid, null, '${snap}')`,
        { asUser: false }),
      // The bulk engine's statements, as sync.apply_ops_in_bulk builds them for one table.
      "push: current rows of a batch (sync.rows_by_key)": await explainAs(sql, planUser,
        `select coalesce(jsonb_object_agg(k, v), '{}') from (select 'customers/' || t.id, to_jsonb(t) from public.customers t
          where t.id = any (array(select x.id from unnest(array['customers', 'customers'], array['${sampleRow.id}', '${newId}']::uuid[]) x (tbl, id)
                                   where x.tbl = 'customers'))) r (k, v)`),
      "push: insert of a batch (sync.bulk_write)": await explainAs(sql, planUser,
        writeStatement("insert", { ids: `array['${newId}']::uuid[]`, datas: `array['${insertData}']::jsonb[]`, ords: "array[1]",
          ops: `array['{"op_id": "op"}']::jsonb[]` })),
      "push: update of a batch, guarded by each op's version (sync.bulk_write)": await explainAs(sql, planUser,
        writeStatement("update", { ids: `array['${sampleRow.id}']::uuid[]`, versions: `array[${sampleRow.version}]::bigint[]`,
          datas: `array['{"notes": "explained"}']::jsonb[]`, deletes: "array[false]", ords: "array[1]",
          ops: `array['{"op_id": "op"}']::jsonb[]`, uid: `'${planUser.id}'::uuid` })),
      "push: outcomes of earlier pushes (sync.claim_ops, security definer)": await explainAs(sql, planUser,
        `select coalesce(jsonb_object_agg(a.op_id::text, a.outcome), '{}') from sync.applied_ops a
          where a.user_id = '${planUser.id}'::uuid
            and a.op_id = any (array(select gen_random_uuid() from generate_series(1, ${P.batch})))`, { asUser: false }),
      "push: outcomes recorded (sync.record_outcomes, security definer)": await explainAs(sql, planUser,
        `insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome)
         select '${planUser.id}'::uuid, gen_random_uuid(), '${clientId}'::uuid, 'customers', gen_random_uuid(), '{"status": "applied"}'::jsonb
           from generate_series(1, ${P.batch})
         on conflict on constraint applied_ops_pkey do nothing`, { asUser: false }),
    };
    results.plans = { user: planUser.email, customers: customersNow, plans: Object.fromEntries(Object.entries(plans).map(([k, v]) => [k, { plan: v, summary: planSummary(v) }])) };
    const failedPlans = Object.entries(plans).filter(([, v]) => v.startsWith("EXPLAIN failed")).map(([k, v]) => `${k}: ${v}`);
    check("plans: every EXPLAIN ran", failedPlans.length === 0, failedPlans.join("; "));

    // ---------------------------------------------------------------- wrap up
    phase("wrap_up");
    results.noise.end = await noiseSnapshot(sql);
    results.http_5xx_retried = http.retried5xx;
    for (const a of apis.splice(0)) await a.stop();
    await sleep(500);
    const dlTotal = (await deadlocks(sql)) - deadlocksAtStart;
    results.figures.deadlocks_run_total = dlTotal;
    check("run: no deadlock anywhere in the run", dlTotal === 0, `${dlTotal} deadlocks`);
    phase(null);
    results.phases_s = phases;
    results.duration_s = rnd((Date.now() - t0) / 1000);
    results.checks = checks;
    report(results);
    if (MODE !== "smoke" && !argv["no-json"]) {
      const dir = path.join(ROOT, "bench", "results");
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${results.started_at.replace(/[:.]/g, "-")}-${MODE}.json`);
      writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
      console.log(`\nFigures written to ${path.relative(ROOT, file)}`);
    }
  } catch (err) {
    console.error(err);
    check("the bench ran to the end", false, String(err?.message ?? err));
  } finally {
    await shutdown();
  }
  const failed = checks.filter((c) => !c.ok);
  console.log(`\nbench ${MODE}: ${checks.length - failed.length} checks passed, ${failed.length} failed (${rnd((Date.now() - t0) / 1000)} s)`);
  process.exit(failed.length ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------------
// Report

function report(r) {
  const f = r.figures;
  const out = [];
  const say = (s = "") => out.push(s);
  const met = (ok) => (ok == null ? "n/a" : ok ? "met" : "**missed**");

  if (r.mode !== "smoke") {
    say(`\n## Plans (EXPLAIN ANALYZE, BUFFERS) as ${r.plans.user}, ${fmt(r.plans.customers, 0)} rows in customers`);
    for (const [name, { plan }] of Object.entries(r.plans.plans ?? {})) {
      say(`\n### ${name}\n\n\`\`\`\n${plan}\n\`\`\``);
    }
  }

  const st = f.statements;
  if (st && r.mode !== "smoke") {
    say("\n## Where the database time goes (pg_stat_statements, track = all, nested statements by total time)");
    for (const [name, s] of [["push request", st.push], ["pull page", st.pull_page], ["empty delta pull", st.empty_delta]]) {
      say(`\n${name}: ${fmt(s.toplevel_per_request, 1)} top-level statements per request (${fmt(s.toplevel_txn_control_per_request, 1)} BEGIN/COMMIT, ${fmt(s.toplevel_setup_per_request, 1)} role/claims set-up), ${fmt(s.nested_per_request, 1)} nested${s.nested_per_op ? ` (${fmt(s.nested_per_op, 1)} per op)` : ""}; ${fmt(s.db_ms_per_request, 1)} ms in the database per request`);
      say("\n| calls/request | total ms | statement |\n|---:|---:|---|");
      for (const q of s.top_nested) say(`| ${fmt(q.per_request, 1)} | ${fmt(q.ms, 1)} | \`${q.query.replaceAll("|", "\\|")}\` |`);
    }
  }

  say("\n## Correctness checks\n");
  for (const c of checks) say(`- ${c.ok ? "ok" : "FAILED"}: ${c.name}${!c.ok && c.detail ? ` (${c.detail})` : ""}`);

  const rows = [];
  const add = (measure, value, baseline, ratio, target, ok) => rows.push([measure, value, baseline, ratio, target, ok]);
  const p = f.push;
  if (p) {
    add(`Push: ${fmt(p.ops, 0)} mixed ops (${p.kinds.insert}/${p.kinds.update}/${p.kinds.delete} ins/upd/del) via the function, ${p.batch} per request`,
      `${fmt(p.function.ops_per_s)} ops/s`, `ceiling (multi-row upsert): ${fmt(p.ceiling.rows_per_s)} rows/s`, pct(p.ratio_vs_ceiling),
      ">= 50% of ceiling", met(p.ratio_vs_ceiling >= 0.5));
    if (p.ceiling_as_user) {
      add("Push: the same, against the ceiling's statements run as the user (RLS, field rules)", `${fmt(p.function.ops_per_s)} ops/s`,
        `${fmt(p.ceiling_as_user.rows_per_s)} rows/s, ${pct(p.ceiling_as_user_vs_ceiling)} of the ceiling`, pct(p.ratio_vs_ceiling_as_user),
        "(reference: the cost of RLS)", "");
    }
    add(`Push: batched vs per-item (${p.per_item.ops} requests of 1 op, scaled to ${fmt(p.ops, 0)})`,
      `${fmt(p.function.ops_per_s)} ops/s`, `per-item: ${fmt(p.per_item.ops_per_s)} ops/s (${fmt(p.per_item.scaled_to_n_ms / 1000)} s for all)`,
      `${fmt(p.ratio_vs_per_item, 2)}x`, ">= 20x per-item", met(p.ratio_vs_per_item >= 20));
  }
  const pl = f.pull;
  if (pl) {
    add(`Pull: first pull of ${fmt(pl.rows, 0)} visible rows, pages of ${pl.page}`, `${fmt(pl.function.rows_per_s)} rows/s (${fmt(pl.function.ms / 1000)} s, ${pl.function.pages} pages)`,
      `raw keyset SELECT as the user (RLS): ${fmt(pl.ceiling.rows_per_s)} rows/s (${fmt(pl.ceiling.ms / 1000, 2)} s)`, pct(pl.ratio_vs_ceiling), ">= 50% of ceiling", met(pl.ratio_vs_ceiling >= 0.5));
    add("Pull: the same, against the same rows selected without RLS (scope as plain predicates, superuser)", `${fmt(pl.function.rows_per_s)} rows/s`,
      `${fmt(pl.without_rls.rows_per_s)} rows/s (${fmt(pl.without_rls.ms / 1000, 2)} s)`, pct(pl.ratio_vs_without_rls), "(reference: the cost of RLS)", "");
  }
  const e = f.empty_delta;
  if (e) {
    add(`Empty delta pull (${e.requests} requests): latency p50 / p95`, `${fmt(e.p50_ms, 1)} / ${fmt(e.p95_ms, 1)} ms`, "", "", "(reported)", "");
    add("Empty delta pull: response size", `${e.bytes_max} B`, "", "", "< 1 KB", met(e.bytes_max < 1024));
  }
  if (st) {
    add("Empty delta pull: queries reading synced rows", fmt(st.empty_delta.data_queries_per_request, 1),
      `${fmt(st.empty_delta.executed_besides_setup_per_request, 1)} statements in all, nested ones included (cursor HMAC, profile look-ups of the RLS helpers)`, "",
      "a single indexed query", met(st.empty_delta.data_queries_per_request <= 1));
    add("Push request: top-level statements besides set-up (BEGIN/COMMIT and set_config excluded)", fmt(st.push.toplevel_besides_setup_per_request, 1), "", "",
      "<= 2", met(st.push.toplevel_besides_setup_per_request <= 2));
    add(`Push request (${st.push_ops_per_request} ops): statements run inside that one call, triggers included`, fmt(st.push.executed_besides_setup_per_request, 0),
      `${fmt(st.push.nested_per_op, 1)} per op`, "", "(context)", "");
    add("Pull request: top-level statements besides set-up", fmt(st.pull_page.toplevel_besides_setup_per_request, 1), "", "", "<= 2",
      met(st.pull_page.toplevel_besides_setup_per_request <= 2));
    add(`Pull request (page of ${st.pull_page_size}): statements run inside that one call`, fmt(st.pull_page.executed_besides_setup_per_request, 0),
      `${fmt(st.pull_page.data_queries_per_request, 1)} of them read synced rows`, "", "(context)", "");
  } else {
    add("Statements per request", "n/a", "pg_stat_statements is not loaded", "", "<= 2", "n/a");
  }
  const sc = f.scale ?? [];
  if (sc.length) {
    const base = sc[0];
    const names = sc.map((s) => fmt(s.customers, 0)).join(" / ");
    const list = (key, d, unit = "") => sc.map((s) => (s[key] == null ? "timed out" : `${fmt(s[key], d)}${unit}`)).join(" / ");
    const verdict = (key) => {
      if (sc.length === 1) return "n/a (one level)";
      const v = sc.map((s) => s[key]);
      if (v.some((x) => x == null)) return met(false);
      return met(Math.max(...v) <= 1.2);
    };
    add(`Scale: push cost per op (${fmt(base.push_ops, 0)} ops) at ${names} customers`, `${list("push_ms_per_op", 3)} ms/op`, `smallest: ${fmt(base.push_ms_per_op, 3)} ms/op`,
      list("push_vs_smallest", 2, "x"), "within 20%", verdict("push_vs_smallest"));
    add(`Scale: first pull of customers, cost per row (${sc.map((s) => fmt(s.full_pull_rows, 0)).join(" / ")} rows)`, `${list("full_pull_ms_per_row", 3)} ms/row`,
      `smallest: ${fmt(base.full_pull_ms_per_row, 3)} ms/row`, list("full_pull_vs_smallest", 2, "x"), "within 20%", verdict("full_pull_vs_smallest"));
    add(`Scale: delta pull of the push, cost per row (${sc.map((s) => fmt(s.delta_rows, 0)).join(" / ")} rows)`, `${list("delta_ms_per_row", 3)} ms/row`,
      `smallest: ${fmt(base.delta_ms_per_row, 3)} ms/row`, list("delta_vs_smallest", 2, "x"), "within 20%", verdict("delta_vs_smallest"));
    add("Scale: delta pull right after the bulk load (0 visible changes)", `${sc.map((s) => (s.catch_up_ms == null ? "timed out" : `${fmt(s.catch_up_ms / 1000, 2)} s`)).join(" / ")}`,
      `filled ${sc.map((s) => fmt(s.filled, 0)).join(" / ")} rows`, "", "(reported)", "");
  } else {
    add("Scale", "not run in this mode", "", "", "within 20%", "n/a");
  }
  const d = f.devices;
  if (d) {
    add(`Devices: ${d.devices} concurrent x ${d.rounds_planned} rounds (${d.rounds_done} device-rounds done), ${d.requests} requests: push p50 / p95`, `${fmt(d.push_p50_ms)} / ${fmt(d.push_p95_ms)} ms`, "", "", "(reported)", "");
    add("Devices: pull page p50 / p95", `${fmt(d.pull_p50_ms)} / ${fmt(d.pull_p95_ms)} ms`, "", "", "(reported)", "");
    add("Devices: errors (failed requests + ops not applied)", `${d.http_errors + d.op_errors}`, `${d.applied_with_conflict} applied over a conflict`, "", "0", met(d.http_errors + d.op_errors === 0));
    add("Deadlocks (devices phase / whole run)", `${d.deadlocks} / ${f.deadlocks_run_total}`, "", "", "0", met(d.deadlocks === 0 && f.deadlocks_run_total === 0));
  }

  say(`\n## Results (${r.mode}, ${r.machine.cpu_count} x ${r.machine.cpu_model}, ${r.machine.memory_gib} GiB, ${r.postgres.split(" on ")[0]}, commit ${r.git?.commit?.slice(0, 9) ?? "?"}${r.git?.dirty ? " + local changes" : ""})\n`);
  say("| Measure | Sync function | Baseline in the same run | Ratio | Target (issue 5) | |");
  say("|---|---|---|---|---|---|");
  for (const row of rows) say(`| ${row.map((c) => String(c).replaceAll("|", "\\|")).join(" | ")} |`);
  say(`\nNoise: load average ${r.noise.start?.loadavg_1m} -> ${r.noise.end?.loadavg_1m}; other active backends on the server ${r.noise.start?.other_active_backends} -> ${r.noise.end?.other_active_backends}; 5xx retried once: ${r.http_5xx_retried}. Duration ${r.duration_s} s (${Object.entries(r.phases_s ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")}).`);
  console.log(out.join("\n"));
}

await main();
