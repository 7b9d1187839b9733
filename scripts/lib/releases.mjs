// @ts-check
// Released migrations are frozen. `supabase/releases.json` lists each release with the SHA-256 of
// every migration it shipped and of its seed. A deployed database records which migrations it ran,
// by version, and `supabase db push` applies only the ones it has not: a released migration edited
// afterwards would never reach it, and a new migration sorted before a released one would run in a
// different order there than in a fresh build. So a change after a release is a new migration that
// sorts after every released one; these checks hold the repository to it, and the upgrade check
// proves that a database built at each release and upgraded ends where a fresh build does.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const RELEASES_FILE = "supabase/releases.json";
const MIGRATIONS = "supabase/migrations";
const SEED = "supabase/seed.sql";

/**
 * @typedef {object} Release
 * @property {string} version
 * @property {string} date
 * @property {Record<string, string>} migrations file name -> sha256 of its bytes
 * @property {string} seed sha256 of supabase/seed.sql as released
 */

/** @param {string | Buffer} bytes */
export const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** @returns {Release[]} */
export function readReleases(root = ROOT) {
  const file = path.join(root, RELEASES_FILE);
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")).releases : [];
}

/** The migration files of a checkout, in the order `supabase db push` applies them. */
export function migrationFiles(root = ROOT) {
  return readdirSync(path.join(root, MIGRATIONS)).filter((f) => f.endsWith(".sql")).sort();
}

/**
 * What breaks the freeze, one sentence each: a released migration changed or gone, a new migration
 * that sorts before a released one, a release that is not the start of the next one.
 * @returns {string[]}
 */
export function freezeProblems(root = ROOT) {
  const releases = readReleases(root);
  const files = migrationFiles(root);
  /** @type {string[]} */
  const problems = [];
  let previous = /** @type {string[]} */ ([]);
  for (const r of releases) {
    const names = Object.keys(r.migrations).sort();
    if (previous.some((n, i) => names[i] !== n)) {
      problems.push(`release ${r.version} does not start with the migrations of the release before it`);
    }
    for (const name of names) {
      const file = path.join(root, MIGRATIONS, name);
      if (!existsSync(file)) {
        problems.push(`${MIGRATIONS}/${name} was released in ${r.version} and is gone`);
      } else if (sha256(readFileSync(file)) !== r.migrations[name]) {
        problems.push(
          `${MIGRATIONS}/${name} was released in ${r.version} and has changed since: ` +
            "restore it and make the change a new migration",
        );
      }
    }
    previous = names;
  }
  const last = previous.at(-1);
  const released = new Set(previous);
  for (const name of files) {
    if (last && !released.has(name) && name < last) {
      problems.push(
        `${MIGRATIONS}/${name} is not released and sorts before ${last}, which was: ` +
          "a deployed database would apply it out of order; give it a later timestamp",
      );
    }
  }
  return problems;
}

/**
 * The seed a release shipped: the working tree's while it is unchanged, else the tag's
 * (`git show v<version>:supabase/seed.sql`).
 * @param {Release} release
 */
export function releasedSeed(release, root = ROOT) {
  const current = readFileSync(path.join(root, SEED));
  if (sha256(current) === release.seed) return current;
  const res = spawnSync("git", ["show", `v${release.version}:${SEED}`], { cwd: root, maxBuffer: 64 << 20 });
  if (res.status === 0 && sha256(res.stdout) === release.seed) return res.stdout;
  throw new Error(
    `the seed changed after ${release.version} and the tag v${release.version} that holds its seed is not ` +
      "in this clone (git fetch --tags)",
  );
}

/**
 * A Supabase project directory holding exactly what a release shipped: its migrations (the freeze
 * guarantees they are the working tree's bytes) and its seed. The caller removes it.
 * @param {Release} release
 */
export function releaseWorkdir(release, root = ROOT) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `supasync-${release.version}-`));
  mkdirSync(path.join(dir, MIGRATIONS), { recursive: true });
  copyFileSync(path.join(root, "supabase/config.toml"), path.join(dir, "supabase/config.toml"));
  for (const name of Object.keys(release.migrations)) {
    copyFileSync(path.join(root, MIGRATIONS, name), path.join(dir, MIGRATIONS, name));
  }
  const seed = releasedSeed(release, root);
  writeFileSync(path.join(dir, SEED), seed);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
