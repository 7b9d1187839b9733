#!/usr/bin/env node
// @ts-check
// `npm run seed -- --branches N --rms-per-branch N --customers-per-rm N [--seed S]`: fills the local
// database (or DATABASE_URL's) with a bank's shape at any scale, next to the small development seed.
// The SQL is scripts/sql/seed_scale.sql; this reads the arguments, runs it, and says what it wrote.
import { readFileSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { localUrl, log, ROOT } from "./lib/cluster.mjs";
import { LOCAL_DB_NAME } from "./lib/stack.mjs";

const USAGE = "usage: npm run seed -- --branches N --rms-per-branch N --customers-per-rm N [--seed S]";

/**
 * The arguments, each a whole number in its range, or an error naming the one at fault.
 * @param {string[]} argv
 */
export function parseArgs(argv) {
  /** @type {Record<string, { min: number, max: number, value?: number }>} */
  const spec = {
    "--branches": { min: 1, max: 10_000 },
    "--rms-per-branch": { min: 1, max: 1_000 },
    "--customers-per-rm": { min: 1, max: 100_000 },
    "--seed": { min: 0, max: 2 ** 31 - 1, value: 1 },
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, raw] = [argv[i], argv[i + 1]];
    const s = spec[name];
    if (!s) throw new Error(`unknown argument ${name}\n${USAGE}`);
    if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < s.min || Number(raw) > s.max) {
      throw new Error(`${name} expects a whole number from ${s.min} to ${s.max}, got ${raw ?? "nothing"}\n${USAGE}`);
    }
    s.value = Number(raw);
  }
  for (const [name, s] of Object.entries(spec)) {
    if (s.value === undefined) throw new Error(`${name} is required\n${USAGE}`);
  }
  const args = {
    branches: /** @type {number} */ (spec["--branches"].value),
    rmsPerBranch: /** @type {number} */ (spec["--rms-per-branch"].value),
    customersPerRm: /** @type {number} */ (spec["--customers-per-rm"].value),
    seed: /** @type {number} */ (spec["--seed"].value),
  };
  if (args.branches * args.rmsPerBranch * args.customersPerRm > 50_000_000) {
    throw new Error(`at most 50 000 000 customers in one run\n${USAGE}`);
  }
  return args;
}

/**
 * Writes one seed's data (idempotent: a second run with the same arguments adds nothing).
 * @param {string} dbUrl
 * @param {ReturnType<typeof parseArgs>} args
 */
export async function seedScale(dbUrl, args) {
  const text = readFileSync(path.join(ROOT, "scripts/sql/seed_scale.sql"), "utf8");
  const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    const started = performance.now();
    /** @type {{ table: string, rows: number }[]} */
    const written = [];
    await db.begin(async (tx) => {
      await tx`select set_config('seed_scale.seed', ${String(args.seed)}, true),
                      set_config('seed_scale.branches', ${String(args.branches)}, true),
                      set_config('seed_scale.rms_per_branch', ${String(args.rmsPerBranch)}, true),
                      set_config('seed_scale.customers_per_rm', ${String(args.customersPerRm)}, true)`;
      await tx.unsafe(text);
      for (const r of await tx`select table_name, rows from pg_temp.seed_scale_written order by ord`) {
        written.push({ table: r.table_name, rows: Number(r.rows) });
      }
    });
    // Fresh statistics, so the first pulls over the new rows are planned for their size.
    await db.unsafe(
      "analyze auth.users, public.branches, public.profiles, public.customers, public.key_persons, " +
        "public.customer_hvc_links, public.pipelines, public.pipeline_referrals, public.activities, " +
        "public.cadences, public.cadence_participants",
    );
    return { written, seconds: (performance.now() - started) / 1000 };
  } finally {
    await db.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(/** @type {Error} */ (e).message);
    process.exit(2);
  }
  const dbUrl = process.env.DATABASE_URL ?? localUrl(LOCAL_DB_NAME);
  const { written, seconds } = await seedScale(dbUrl, args);
  for (const w of written) log(`${w.table}: ${w.rows} row(s) written`);
  log(`seed ${args.seed}: done in ${seconds.toFixed(1)} s`);
  log(`sign in as rm1.b1.s${args.seed}@scale.test or bm.b1.s${args.seed}@scale.test (password password123)`);
}
