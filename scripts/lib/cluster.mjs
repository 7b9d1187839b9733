// @ts-check
// The private PostgreSQL cluster of the local stack, or the server named by DATABASE_URL.
// PostgreSQL refuses to run as root, so when invoked as root the server runs as an unprivileged
// user (the system's `postgres` account, or a `supasync` account created for it). Its binaries are
// the system's, or the npm package's where the system has none (scripts/lib/pgbin.mjs).
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findPgBin, pgMajor } from "./pgbin.mjs";

export { findPgBin };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const LOCAL_DIR = path.join(ROOT, ".local");
export const DATA_DIR = path.join(LOCAL_DIR, "pgdata");
export const DB_PORT = Number(process.env.SUPASYNC_DB_PORT ?? 54322);
export const DB_PASSWORD = "postgres";

/** @param {...unknown} args */
export function log(...args) {
  console.error("[supasync]", ...args);
}

const isRoot = () => process.getuid?.() === 0;

/** @returns {string | null} the account the server runs as, or null to run it as this process */
export function runUser() {
  if (!isRoot()) return null;
  for (const name of ["postgres", "supasync"]) {
    if (spawnSync("id", ["-u", name]).status === 0) return name;
  }
  execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "supasync"]);
  return "supasync";
}

/**
 * @param {string | null} user
 * @param {string} cmd
 * @param {string[]} args
 * @param {Omit<import("node:child_process").SpawnSyncOptions, "encoding">} [opts]
 * @returns {import("node:child_process").SpawnSyncReturns<string>}
 */
function asUser(user, cmd, args, opts = {}) {
  if (!user) return spawnSync(cmd, args, { encoding: "utf8", ...opts });
  return spawnSync("runuser", ["-u", user, "--", cmd, ...args], { encoding: "utf8", ...opts });
}

// The data directory lives inside the project; a checkout under a 0700 temp dir would hide it from
// the server's account, so grant traverse-only (o+x) on the ancestors that lack it.
/**
 * @param {string} user
 * @param {string} dir
 */
function ensureTraversable(user, dir) {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let p = "/";
  for (const part of parts) {
    p = path.join(p, part);
    if (asUser(user, "test", ["-x", p]).status !== 0) {
      const mode = statSync(p).mode & 0o7777;
      chmodSync(p, mode | 0o001);
      log(`granted traverse permission on ${p} so the ${user} account can reach the data directory`);
    }
  }
}

/**
 * @param {import("node:child_process").SpawnSyncReturns<string>} res
 * @param {string} what
 */
function check(res, what) {
  if (res.status !== 0) {
    throw new Error(`${what} failed (exit ${res.status}):\n${res.stdout ?? ""}${res.stderr ?? ""}`);
  }
  return res;
}

/** @param {string} [db] */
export function localUrl(db = "postgres") {
  return `postgresql://postgres:${DB_PASSWORD}@127.0.0.1:${DB_PORT}/${db}?sslmode=disable`;
}

/** @param {string} bin the directory of the PostgreSQL binaries */
function isRunning(bin) {
  const pidFile = path.join(DATA_DIR, "postmaster.pid");
  if (!existsSync(pidFile)) return false;
  if (existsSync(path.join(bin, "pg_isready"))) {
    return spawnSync(path.join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(DB_PORT)]).status === 0;
  }
  // Binaries without pg_isready (the npm package's): what the server itself wrote in its pid file,
  // its process id, its port and, on the last line, whether it accepts connections.
  const lines = readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(lines[0]);
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to the server's account.
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== "EPERM") return false;
  }
  return Number(lines[3]) === DB_PORT && lines[7]?.trim() === "ready";
}

/**
 * A PostgreSQL server to use.
 * @typedef {object} Server
 * @property {string} url
 * @property {() => void} stop stops the server if this process started it, else does nothing
 * @property {boolean} startedHere
 * @property {boolean} [external] named by DATABASE_URL
 */

/**
 * Creates (first time) and starts the private cluster. Returns { url, stop, startedHere }.
 * @returns {Server}
 * stop() only stops a server this call started, so a test run never takes down a running `npm start`.
 */
export function startCluster() {
  const bin = findPgBin();
  const user = runUser();
  if (isRunning(bin)) {
    log(`reusing the private cluster already running on port ${DB_PORT}`);
    return { url: localUrl(), stop() {}, startedHere: false };
  }
  mkdirSync(LOCAL_DIR, { recursive: true });
  if (user) {
    ensureTraversable(user, LOCAL_DIR);
    ensureTraversable(user, bin);
  }
  const dataVersion = existsSync(path.join(DATA_DIR, "PG_VERSION"))
    ? Number(readFileSync(path.join(DATA_DIR, "PG_VERSION"), "utf8"))
    : null;
  if (dataVersion !== null && dataVersion !== pgMajor(bin)) {
    throw new Error(
      `the private cluster in ${
        path.relative(ROOT, DATA_DIR)
      } was created by PostgreSQL ${dataVersion}, and the server found is ` +
        `PostgreSQL ${pgMajor(bin)} (${bin}): remove ${
          path.relative(ROOT, DATA_DIR)
        } to create it anew (its data is lost), ` +
        `or name the binaries of version ${dataVersion} with PG_BIN (SUPASYNC_PG=system or embedded chooses between the two kinds)`,
    );
  }
  if (dataVersion === null) {
    log(`creating the private cluster in ${path.relative(ROOT, DATA_DIR)} (${bin})`);
    mkdirSync(DATA_DIR, { recursive: true, mode: 0o700 });
    const pwfile = path.join(LOCAL_DIR, "pwfile");
    writeFileSync(pwfile, DB_PASSWORD + "\n", { mode: 0o644 });
    if (user) {
      execFileSync("chown", ["-R", `${user}:`, DATA_DIR]);
    }
    check(
      asUser(user, path.join(bin, "initdb"), [
        "-D",
        DATA_DIR,
        "-U",
        "postgres",
        "--auth=scram-sha-256",
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C.UTF-8",
      ]),
      "initdb",
    );
    const conf = [
      "# written by scripts/lib/cluster.mjs",
      "listen_addresses = '127.0.0.1'",
      `port = ${DB_PORT}`,
      "unix_socket_directories = ''",
      "shared_preload_libraries = 'pg_stat_statements'",
      "max_connections = 200",
      "shared_buffers = '256MB'",
      "fsync = on",
      "log_min_messages = warning",
      "log_min_error_statement = panic",
      // One forgotten session must not freeze the pull fence (see README, Operations).
      "idle_in_transaction_session_timeout = '5min'",
    ].join("\n");
    const confPath = path.join(DATA_DIR, "postgresql.auto.conf");
    writeFileSync(confPath, readFileSync(confPath, "utf8") + "\n" + conf + "\n");
    if (user) execFileSync("chown", [`${user}:`, confPath]);
  }
  const logFile = path.join(DATA_DIR, "server.log");
  check(
    // The port asked for now, not the one written when the cluster was created: the log would
    // otherwise name a port nobody listens on.
    asUser(user, path.join(bin, "pg_ctl"), [
      "-D",
      DATA_DIR,
      "-l",
      logFile,
      "-o",
      `-p ${DB_PORT}`,
      "-w",
      "-t",
      "60",
      "start",
    ]),
    "pg_ctl start",
  );
  log(`private cluster started on 127.0.0.1:${DB_PORT}`);
  let stopped = false;
  return {
    url: localUrl(),
    startedHere: true,
    stop() {
      if (stopped) return;
      stopped = true;
      asUser(user, path.join(bin, "pg_ctl"), ["-D", DATA_DIR, "-m", "fast", "-w", "stop"]);
      log("private cluster stopped");
    },
  };
}

/** Restarts the running private cluster (fast shutdown, then start): a fault the simulation injects. */
export function restartCluster() {
  const bin = findPgBin();
  const user = runUser();
  check(
    asUser(user, path.join(bin, "pg_ctl"), [
      "-D",
      DATA_DIR,
      "-m",
      "fast",
      "-w",
      "-t",
      "60",
      "-l",
      path.join(DATA_DIR, "server.log"),
      "restart",
    ]),
    "pg_ctl restart",
  );
}

/**
 * The server to use: DATABASE_URL when set, else the private cluster.
 * @returns {Server}
 */
export function server() {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, stop() {}, startedHere: false, external: true };
  }
  return startCluster();
}

/** The same server URL pointing at another database name. */
/**
 * @param {string} url
 * @param {string} db
 */
export function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = "/" + db;
  if (!u.searchParams.has("sslmode") && ["127.0.0.1", "localhost"].includes(u.hostname)) {
    u.searchParams.set("sslmode", "disable");
  }
  return u.toString();
}

/**
 * A streaming standby of the private cluster (issue 18): a second private cluster made by
 * `pg_basebackup -R` from the running primary, started as a hot standby on the port after the
 * primary's, so that pulls can be tested against a real replica. Made anew on every call: a test
 * may promote it, after which it is no standby any more.
 * @typedef {object} Standby
 * @property {string} url the standby's server URL (database postgres)
 * @property {string} dataDir
 * @property {number} port
 * @property {() => void} stop stops it (its data directory stays, for a look after a failed run)
 */

/**
 * Starts a standby of the private cluster on `port`, or returns null with the reason when it cannot
 * (a server named by DATABASE_URL is not ours to back up; a primary whose settings do not allow
 * streaming would need a restart this process may not do).
 * @param {{ port?: number, name?: string }} [options]
 * @returns {{ standby: Standby | null, reason: string | null }}
 */
export function startStandby({ port = DB_PORT + 1, name = "pgdata-standby" } = {}) {
  if (process.env.DATABASE_URL) {
    return { standby: null, reason: "DATABASE_URL names the server, and only the private cluster is backed up" };
  }
  const bin = findPgBin();
  const user = runUser();
  if (!existsSync(path.join(bin, "pg_basebackup"))) {
    return { standby: null, reason: `no pg_basebackup next to the server binaries (${bin})` };
  }
  const psql = (/** @type {string} */ q) =>
    spawnSync(path.join(bin, "psql"), ["-XAtq", "-d", localUrl(), "-c", q], { encoding: "utf8" });
  const settings = psql("select current_setting('wal_level') || ',' || current_setting('max_wal_senders')");
  if (settings.status !== 0) return { standby: null, reason: `the primary did not answer: ${settings.stderr}` };
  const [walLevel, senders] = settings.stdout.trim().split(",");
  if (!["replica", "logical"].includes(walLevel) || Number(senders) < 2) {
    return {
      standby: null,
      reason: `the primary runs with wal_level=${walLevel}, max_wal_senders=${senders}; a standby needs ` +
        "wal_level=replica and max_wal_senders of at least 2 (restart the private cluster with them)",
    };
  }
  const dataDir = path.join(LOCAL_DIR, name);
  // A standby left by an earlier run (stopped or not) is thrown away: it may have been promoted.
  if (existsSync(path.join(dataDir, "postmaster.pid"))) {
    asUser(user, path.join(bin, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
  }
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user) execFileSync("chown", [`${user}:`, dataDir]);
  const backup = asUser(user, path.join(bin, "pg_basebackup"), [
    "-d",
    `host=127.0.0.1 port=${DB_PORT} user=postgres password=${DB_PASSWORD} sslmode=disable application_name=${name}`,
    "-D",
    dataDir,
    "-R",
    "-X",
    "stream",
    "-c",
    "fast",
  ]);
  if (backup.status !== 0) {
    return {
      standby: null,
      reason:
        `pg_basebackup failed (does pg_hba.conf of the primary allow replication from 127.0.0.1?): ${backup.stderr}`,
    };
  }
  // The copy's own settings: its port, and how long replay waits for a standby query in its way
  // before cancelling it (a recovery conflict, which the tests provoke), short so they wait little.
  const confPath = path.join(dataDir, "postgresql.auto.conf");
  writeFileSync(
    confPath,
    readFileSync(confPath, "utf8") +
      [
        "",
        "# written by scripts/lib/cluster.mjs (standby)",
        `port = ${port}`,
        "hot_standby = on",
        "max_standby_streaming_delay = '1s'",
        "",
      ].join("\n"),
  );
  if (user) execFileSync("chown", [`${user}:`, confPath]);
  rmSync(path.join(dataDir, "server.log"), { force: true });
  const started = asUser(user, path.join(bin, "pg_ctl"), [
    "-D",
    dataDir,
    "-l",
    path.join(dataDir, "server.log"),
    "-o",
    `-p ${port}`,
    "-w",
    "-t",
    "60",
    "start",
  ]);
  if (started.status !== 0) return { standby: null, reason: `the standby did not start: ${started.stderr}` };
  log(`streaming standby started on 127.0.0.1:${port} (${path.relative(ROOT, dataDir)})`);
  let stopped = false;
  return {
    reason: null,
    standby: {
      url: `postgresql://postgres:${DB_PASSWORD}@127.0.0.1:${port}/postgres?sslmode=disable`,
      dataDir,
      port,
      stop() {
        if (stopped) return;
        stopped = true;
        asUser(user, path.join(bin, "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "stop"]);
        log(`standby on port ${port} stopped`);
      },
    },
  };
}

/**
 * Promotes a standby started by startStandby to a primary of its own (a new timeline), waiting
 * until it takes writes.
 * @param {string} dataDir
 */
export function promoteStandby(dataDir) {
  const bin = findPgBin();
  check(asUser(runUser(), path.join(bin, "pg_ctl"), ["-D", dataDir, "-w", "-t", "60", "promote"]), "pg_ctl promote");
}

/**
 * Stops a standby started by startStandby (promoted or not), if it runs.
 * @param {string} dataDir
 */
export function stopStandby(dataDir) {
  if (!existsSync(path.join(dataDir, "postmaster.pid"))) return;
  asUser(runUser(), path.join(findPgBin(), "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "stop"]);
}
