// @ts-check
// A transaction pooler in front of a PostgreSQL server: Debian's PgBouncer in transaction mode, the
// mode of hosted Supabase's Supavisor on port 6543. Each transaction gets some server connection,
// and another client's next one may get it: no session state (prepared statements, session-level
// set_config, advisory locks, LISTEN) survives a transaction. The test runner puts the function
// behind one so that anything relying on a session breaks in `npm test` rather than in production.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { log, runUser } from "./cluster.mjs";

/** @returns {string | null} PgBouncer's binary, where the system has one */
export function findPgBouncer() {
  for (const p of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]) {
    if (spawnSync("test", ["-x", p]).status === 0) return p;
  }
  const res = spawnSync("sh", ["-c", "command -v pgbouncer"], { encoding: "utf8" });
  return res.status === 0 ? res.stdout.trim() : null;
}

/**
 * Installs Debian's pgbouncer where it is missing and this process may (root, apt-get); else says
 * how to. Returns the binary.
 */
export function ensurePgBouncer() {
  const found = findPgBouncer();
  if (found) return found;
  if (process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) {
    log("installing pgbouncer from Debian's packages");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["install", "-y", "-qq", "pgbouncer"], { stdio: "inherit", env });
    const installed = findPgBouncer();
    if (installed) return installed;
  }
  throw new Error("npm test runs the function behind PgBouncer: install it (Debian: sudo apt-get install pgbouncer)");
}

/**
 * @typedef {object} PoolerLimits
 * @property {number} [poolSize] server connections per database and user (default_pool_size)
 * @property {number} [maxClientConn] client connections it accepts in all; the next one is refused
 * @property {number} [queryWaitTimeout] seconds a client waits for a server connection before it is refused
 */

/**
 * @typedef {object} Pooler
 * @property {string} url the server URL with the pooler's host and port (same user, password and database)
 * @property {number} port
 * @property {() => Promise<void>} stop
 */

/**
 * Starts PgBouncer in transaction mode on `port` (loopback), in front of the server of `serverUrl`,
 * for that URL's user and password (SCRAM both ways: the password is in its auth file, so it can log
 * in to the server as the user). Any database name is passed through.
 * @param {{ serverUrl: string, port: number } & PoolerLimits} options
 * @returns {Promise<Pooler>}
 */
export async function startPooler({ serverUrl, port, poolSize = 20, maxClientConn = 200, queryWaitTimeout = 30 }) {
  const bin = ensurePgBouncer();
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  // PgBouncer refuses to run as root: it runs as the server's account, as the cluster does.
  const account = runUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), "supasync-pgbouncer-"));
  chmodSync(dir, 0o755);
  const quote = (/** @type {string} */ s) => `"${s.replaceAll('"', '""')}"`;
  writeFileSync(path.join(dir, "userlist.txt"), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, "pgbouncer.ini"),
    [
      "; written by scripts/lib/pooler.mjs",
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${path.join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      "min_pool_size = 0",
      "reserve_pool_size = 0",
      `max_client_conn = ${maxClientConn}`,
      `query_wait_timeout = ${queryWaitTimeout}`,
      "server_login_retry = 1",
      "log_connections = 0",
      "log_disconnections = 0",
      "log_pooler_errors = 1",
      // The server sees which client a backend serves now: "<application_name> - <host>:<port>".
      "application_name_add_host = 1",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  if (account) execFileSync("chown", ["-R", `${account}:`, dir]);
  const args = [path.join(dir, "pgbouncer.ini")];
  const child = account
    ? spawn("runuser", ["-u", account, "--", bin, ...args], { stdio: ["ignore", "ignore", "pipe"], detached: true })
    : spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderrTail = "";
  child.stderr?.on("data", (d) => (stderrTail = (stderrTail + d).slice(-4000)));
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGTERM");
    } catch { /* already gone */ }
  };
  process.once("exit", killGroup);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      killGroup();
      await exited;
    }
    process.removeListener("exit", killGroup);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 15000;
    for (;;) {
      if (/Address already in use/i.test(stderrTail)) {
        throw Object.assign(new Error(`pgbouncer: port ${port} is taken`), { code: "EADDRINUSE" });
      }
      if (child.exitCode !== null) throw new Error(`pgbouncer exited with code ${child.exitCode}:\n${stderrTail}`);
      if (await listening(port)) break;
      if (Date.now() > deadline) throw new Error(`pgbouncer did not start on port ${port}:\n${stderrTail}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const url = new URL(serverUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  log(`pgbouncer (transaction mode, pool ${poolSize}, ${maxClientConn} clients) on 127.0.0.1:${port}`);
  return { url: url.toString(), port, stop };
}

/**
 * The same database URL (user, password, database, options) through the pooler.
 * @param {string} dbUrl
 * @param {Pooler} pooler
 */
export function throughPooler(dbUrl, pooler) {
  const url = new URL(dbUrl);
  url.hostname = "127.0.0.1";
  url.port = String(pooler.port);
  return url.toString();
}

/** @param {number} port */
function listening(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
