// @ts-check
// The upgrade check `npm test` runs for every release in supabase/releases.json: a database built
// at the release (its migrations, its seed) and then brought to HEAD by `supabase db push`, as a
// deployed database is, must have the schema of a fresh HEAD build (the two `pg_dump --schema-only`
// texts are equal, and the engine's registry holds the same rows) and still hold every row it held,
// each column it had with the value it had.
import { spawnSync } from "node:child_process";
import path from "node:path";
import postgres from "postgres";
import { findPgBin } from "./cluster.mjs";
import { createDatabase, dropDatabase, migrate } from "./stack.mjs";
import { readReleases, releaseWorkdir } from "./releases.mjs";

/** @typedef {{ name: string, ok: boolean, detail?: string }} Check */

/**
 * The schema as pg_dump prints it, without what differs between any two dumps (the header's
 * versions, the session key of `\restrict`).
 * @param {string} dbUrl
 */
export function schemaDump(dbUrl) {
  const bin = findPgBin();
  const pgDump = bin ? path.join(bin, "pg_dump") : "pg_dump";
  const res = spawnSync(pgDump, [
    "--schema-only",
    "--no-owner",
    "--no-privileges",
    // The CLI's own bookkeeping: which migrations ran, and whether a seed did.
    "--exclude-schema=supabase_migrations",
    "--dbname",
    dbUrl,
  ], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  if (res.status !== 0) throw new Error(`pg_dump failed: ${res.stderr || res.error}`);
  // Privileges are compared separately by the catalog tests; ownership follows the role that ran
  // each migration, the same on both sides.
  return res.stdout
    .split("\n")
    .filter((l) => !/^(-- Dumped (from|by)|\\(un)?restrict )/.test(l))
    .join("\n");
}

/**
 * The tables whose rows the migrations declare (the engine's registry and its settings, whose
 * schema_epoch a migration bumps): a later migration may revise them, so after an upgrade they must
 * equal a fresh build's, except what each build draws for itself (the cursor secret, timestamps).
 */
const DECLARED = new Set([
  "sync.tables",
  "sync.field_rules",
  "sync.column_conflict_rules",
  "sync.roles",
  "sync.settings",
]);

/**
 * Every row of every table outside the system schemas, as the JSON text of its columns (those the
 * table has now), sorted.
 * @param {string} dbUrl
 * @returns {Promise<Map<string, { columns: string[], rows: string[] }>>}
 */
export async function tableContents(dbUrl) {
  const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    const tables = await db`
      select c.oid::regclass::text as name,
             array_agg(quote_ident(a.attname) order by a.attnum) as columns
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
       where c.relkind in ('r', 'p') and c.relpersistence = 'p'
         and n.nspname not in ('pg_catalog', 'information_schema', 'supabase_migrations')
         and n.nspname not like 'pg\\_%'
       group by c.oid
       order by 1`;
    const out = new Map();
    for (const t of tables) out.set(t.name, { columns: t.columns, rows: await rowsOf(db, t.name, t.columns) });
    return out;
  } finally {
    await db.end();
  }
}

/**
 * The rows of the registry's tables over their columns that a build does not stamp with its own
 * moment or randomness (a `now()` default such as `registered_at`).
 * @param {string} dbUrl
 * @returns {Promise<Map<string, string[]>>}
 */
async function declaredRows(dbUrl) {
  const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    const out = new Map();
    for (const table of DECLARED) {
      const [{ columns }] = await db`
        select array_agg(quote_ident(a.attname) order by a.attnum) as columns
          from pg_attribute a
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where a.attrelid = ${table}::regclass and a.attnum > 0 and not a.attisdropped
           and coalesce(pg_get_expr(d.adbin, d.adrelid), '') !~ '(now|clock_timestamp|random|gen_random_[a-z]+|pg_current_xact_id)\\('`;
      out.set(table, await rowsOf(db, table, columns));
    }
    return out;
  } finally {
    await db.end();
  }
}

/**
 * @param {postgres.Sql} db
 * @param {string} table
 * @param {string[]} columns
 * @returns {Promise<string[]>}
 */
async function rowsOf(db, table, columns) {
  const rows = await db.unsafe(`select json_build_array(${columns.join(", ")})::text as r from ${table} order by 1`);
  return rows.map((r) => r.r);
}

/**
 * Builds each release, upgrades it and compares it with a fresh build, in databases of its own
 * on `serverUrl` that it drops. Two checks per release.
 * @param {string} serverUrl
 * @returns {Promise<Check[]>}
 */
export async function checkUpgrades(serverUrl) {
  const releases = readReleases();
  if (!releases.length) return [];
  const tag = `${Date.now().toString(36)}_${process.pid}`;
  /** @type {Check[]} */
  const checks = [];
  const fresh = await createDatabase(serverUrl, `supasync_fresh_${tag}`);
  try {
    // Without the seed: a migration whose effect depends on the rows present shows as a difference.
    await migrate(fresh, { seed: false });
    const headSchema = schemaDump(fresh);
    const headRegistry = await declaredRows(fresh);
    for (const release of releases) {
      const name = `supasync_from_${release.version.replaceAll(".", "_")}_${tag}`;
      const db = await createDatabase(serverUrl, name);
      const work = releaseWorkdir(release);
      try {
        await migrate(db, { seed: true, workdir: work.dir });
        const before = await tableContents(db);
        await migrate(db, { seed: false });
        const diff = firstDifference(headSchema, schemaDump(db));
        checks.push({
          name:
            `a database at ${release.version} with its seed, upgraded to HEAD, has the schema of a fresh HEAD build`,
          ok: !diff,
          detail: diff,
        });
        const after = await declaredRows(db);
        const registry = [...DECLARED].filter((t) => !sameRows(headRegistry.get(t), after.get(t)));
        checks.push({
          name: `upgraded from ${release.version}, the engine's registry holds what a fresh HEAD build declares`,
          ok: registry.length === 0,
          detail: registry.map((t) => `${t} differs from a fresh build's`).join("\n"),
        });
        const lost = await lostRows(db, before);
        checks.push({
          name: `upgrading from ${release.version} keeps every row and value the database held`,
          ok: lost.length === 0,
          detail: lost.join("\n"),
        });
      } finally {
        work.remove();
        await dropDatabase(serverUrl, name).catch(() => {});
      }
    }
  } finally {
    await dropDatabase(serverUrl, `supasync_fresh_${tag}`).catch(() => {});
  }
  return checks;
}

/**
 * @param {string[] | undefined} a
 * @param {string[] | undefined} b
 */
const sameRows = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * Each table outside the registry that lost a row or a value it held before the upgrade, read over
 * the columns it had then (rows a migration adds are no loss).
 * @param {string} dbUrl
 * @param {Awaited<ReturnType<typeof tableContents>>} before
 */
async function lostRows(dbUrl, before) {
  const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    /** @type {string[]} */
    const lost = [];
    for (const [table, was] of before) {
      if (DECLARED.has(table)) continue;
      const [{ exists }] = await db`select to_regclass(${table}) is not null as exists`;
      if (!exists) {
        if (was.rows.length) lost.push(`${table} (${was.rows.length} rows) is gone`);
        continue;
      }
      /** @type {Set<string>} */
      let now;
      try {
        now = new Set(await rowsOf(db, table, was.columns));
      } catch (err) {
        lost.push(
          `${table}: its rows can no longer be read over the columns it had (${/** @type {Error} */ (err).message})`,
        );
        continue;
      }
      const missing = was.rows.filter((r) => !now.has(r));
      if (missing.length) {
        lost.push(`${table}: ${missing.length} of ${was.rows.length} rows lost or changed, e.g. ${missing[0]}`);
      }
    }
    return lost;
  } finally {
    await db.end();
  }
}

/**
 * The first differing line of two dumps with a few lines around it, or "" when they are equal.
 * @param {string} expected
 * @param {string} actual
 */
function firstDifference(expected, actual) {
  if (expected === actual) return "";
  const a = expected.split("\n"), b = actual.split("\n");
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const around = (/** @type {string[]} */ l) => l.slice(Math.max(0, i - 3), i + 4).join("\n");
  return `the dumps differ at line ${i + 1}\n--- fresh HEAD build\n${around(a)}\n--- upgraded\n${around(b)}`;
}
