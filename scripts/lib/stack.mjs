// @ts-check
// Building blocks of the local stack: databases prepared with the real Supabase CLI, local keys,
// and the API gateway that serves the sync function and the JWKS the way hosted Supabase does.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import postgres from "postgres";
import * as jose from "jose";
import { LOCAL_DIR, log, ROOT, withDatabase } from "./cluster.mjs";
import { onFreePorts } from "./ports.mjs";
import { localAuth } from "./local_auth.mjs";
import { startPooler, throughPooler } from "./pooler.mjs";

export const API_PORT = Number(process.env.SUPASYNC_API_PORT ?? 54321);
export const LOCAL_DB_NAME = "supasync";
// The well-known local-development secret of the Supabase CLI; never used outside a local stack.
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

/** @param {string} name */
const bin = (name) => path.join(ROOT, "node_modules", ".bin", name);

/**
 * @param {string} url
 * @param {postgres.Options<{}>} opts
 */
function sql(url, opts = {}) {
  return postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, ...opts });
}

/**
 * Creates (or with reset, re-creates) `dbName` on the server of `serverUrl`. Returns its URL.
 * @param {string} serverUrl
 * @param {string} dbName
 */
export async function createDatabase(serverUrl, dbName, { reset = false } = {}) {
  const admin = sql(withDatabase(serverUrl, "postgres"));
  try {
    const [{ exists }] = await admin`select exists (select 1 from pg_database where datname = ${dbName}) as exists`;
    if (exists && reset) {
      await admin.unsafe(`drop database ${quoteIdent(dbName)} with (force)`);
    }
    if (!exists || reset) {
      await admin.unsafe(`create database ${quoteIdent(dbName)}`);
      forgetAppliedMigrations(withDatabase(serverUrl, dbName));
      log(`created database ${dbName}`);
    }
  } finally {
    await admin.end();
  }
  return withDatabase(serverUrl, dbName);
}

/**
 * @param {string} serverUrl
 * @param {string} dbName
 */
export async function dropDatabase(serverUrl, dbName) {
  const admin = sql(withDatabase(serverUrl, "postgres"));
  try {
    await admin.unsafe(`drop database if exists ${quoteIdent(dbName)} with (force)`);
    forgetAppliedMigrations(withDatabase(serverUrl, dbName));
  } finally {
    await admin.end();
  }
}

/** @param {string} s */
const quoteIdent = (s) => '"' + s.replaceAll('"', '""') + '"';

/**
 * True where the database is a real Supabase one (hosted, or `supabase start`).
 * @param {string} dbUrl
 * @returns {Promise<boolean>}
 */
export async function isSupabaseDatabase(dbUrl) {
  const db = sql(dbUrl);
  try {
    const [{ yes }] = await db`select exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') as yes`;
    return yes;
  } finally {
    await db.end();
  }
}

/**
 * Brings a database to the project's schema: the Supabase-compatibility bootstrap where needed,
 * then `supabase db push` (history in supabase_migrations.schema_migrations), then the seed.
 * @param {string} dbUrl
 */
export async function migrate(dbUrl, { seed = true, workdir = ROOT } = {}) {
  if (!(await isSupabaseDatabase(dbUrl))) {
    const db = sql(dbUrl);
    try {
      await db.unsafe(readFileSync(path.join(ROOT, "scripts/sql/supabase-compat.sql"), "utf8"));
    } finally {
      await db.end();
    }
  }
  const args = ["db", "push", "--db-url", dbUrl, "--yes", "--workdir", workdir];
  if (seed) args.push("--include-seed");
  const res = spawnSync(bin("supabase"), args, { encoding: "utf8", cwd: ROOT });
  if (res.status !== 0) {
    throw new Error(`supabase db push failed:\n${res.stdout}\n${res.stderr}`);
  }
  const output = res.stdout + res.stderr;
  const applied = output.match(/Applying migration/g)?.length ?? 0;
  log(applied ? `applied ${applied} migration(s)` : "schema is up to date");
  // Another project directory (a release's, in the upgrade check) is not the checkout this remembers.
  if (workdir === ROOT) {
    checkAppliedMigrations(dbUrl, [...output.matchAll(/Applying migration (\S+?)\.\.\./g)].map((m) => m[1]));
  }
}

const APPLIED_MIGRATIONS_FILE = path.join(LOCAL_DIR, "applied-migrations.json");
/** @param {string} dbUrl */
const localDatabaseKey = (dbUrl) => `${new URL(dbUrl).pathname.slice(1)}@${new URL(dbUrl).host}`;

/**
 * The CLI applies a migration by its version once, so a migration file edited after it was applied
 * to a local database leaves that database on the old definitions without a word. This remembers,
 * per local database (in .local/, never in the database), the digest of each file as it was applied
 * and says which ones changed since.
 * @param {string} dbUrl
 * @param {string[]} justApplied
 */
function checkAppliedMigrations(dbUrl, justApplied) {
  const file = APPLIED_MIGRATIONS_FILE;
  const key = localDatabaseKey(dbUrl);
  const all = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
  const known = all[key] ?? {};
  const dir = path.join(ROOT, "supabase/migrations");
  const changed = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const digest = createHash("sha256").update(readFileSync(path.join(dir, name))).digest("hex");
    if (justApplied.includes(name) || !(name in known)) known[name] = digest;
    else if (known[name] !== digest) changed.push(name);
  }
  mkdirSync(LOCAL_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify({ ...all, [key]: known }, null, 2));
  if (changed.length) {
    log(
      `these migrations changed after they were applied to this database, which still runs the old ones: ${
        changed.join(", ")
      }. Run \`npm run db:reset\`.`,
    );
  }
}

/**
 * Forgets what checkAppliedMigrations remembered of a database that was dropped or re-created.
 * @param {string} dbUrl
 */
function forgetAppliedMigrations(dbUrl) {
  const file = APPLIED_MIGRATIONS_FILE;
  if (!existsSync(file)) return;
  const all = JSON.parse(readFileSync(file, "utf8"));
  delete all[localDatabaseKey(dbUrl)];
  writeFileSync(file, JSON.stringify(all, null, 2));
}

/**
 * @typedef {object} LocalKeys
 * @property {string} jwtSecret
 * @property {string} anonKey
 * @property {string} serviceRoleKey
 * @property {jose.JWK & { kid: string }} privateJwk
 * @property {jose.JWK} publicJwk
 */

/**
 * Local signing material, created once per checkout and kept in .local/ (git-ignored).
 * @returns {Promise<LocalKeys>}
 */
export async function localKeys() {
  mkdirSync(LOCAL_DIR, { recursive: true });
  const file = path.join(LOCAL_DIR, "keys.json");
  if (!existsSync(file)) {
    const { privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
    const privateJwk = await jose.exportJWK(privateKey);
    const kid = (await jose.calculateJwkThumbprint(privateJwk)).slice(0, 16);
    writeFileSync(file, JSON.stringify({ es256: { ...privateJwk, kid, alg: "ES256", use: "sig" } }, null, 2), {
      mode: 0o600,
    });
  }
  const { es256 } = JSON.parse(readFileSync(file, "utf8"));
  const { d: _d, ...publicJwk } = es256;
  const secret = new TextEncoder().encode(LOCAL_JWT_SECRET);
  // Fixed iat/exp like the Supabase CLI's demo keys, so the values are stable across runs.
  /** @param {string} role */
  const apiKey = (role) =>
    new jose.SignJWT({ role, iss: "supabase-demo" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt(1641769200)
      .setExpirationTime(1799535600)
      .sign(secret);
  return {
    jwtSecret: LOCAL_JWT_SECRET,
    anonKey: await apiKey("anon"),
    serviceRoleKey: await apiKey("service_role"),
    privateJwk: es256,
    publicJwk,
  };
}

/**
 * A Supabase-Auth-shaped access token for `user`, signed with the local ES256 key.
 * @param {LocalKeys} keys
 * @param {string} apiUrl
 * @param {{ id: string, email: string }} user
 * @param {{ expiresIn?: number, claims?: Record<string, unknown> }} [opts]
 */
export async function signAccessToken(keys, apiUrl, user, { expiresIn = 3600, claims = {} } = {}) {
  const key = await jose.importJWK(keys.privateJwk, "ES256");
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({
    aud: "authenticated",
    role: "authenticated",
    email: user.email,
    phone: "",
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
    aal: "aal1",
    amr: [{ method: "password", timestamp: now }],
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    ...claims,
  })
    .setProtectedHeader({ alg: "ES256", kid: keys.privateJwk.kid, typ: "JWT" })
    .setSubject(user.id)
    .setIssuer(`${apiUrl}/auth/v1`)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(key);
}

/**
 * @param {string} dbUrl
 * @param {string} email
 * @returns {Promise<{ id: string, email: string } | null>}
 */
export async function findUser(dbUrl, email) {
  const db = sql(dbUrl);
  try {
    const [user] = await db`select id, email from auth.users where lower(email) = lower(${email})`;
    return user ? { id: user.id, email: user.email } : null;
  } finally {
    await db.end();
  }
}

/**
 * @param {string} url
 * @param {import("node:child_process").ChildProcess} child
 * @param {() => Error | null} failed why the start has failed already, if it has
 */
function waitForPort(url, child, failed, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  return /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
    const attempt = async () => {
      const failure = failed();
      if (failure) return reject(failure);
      if (child.exitCode !== null) {
        // Its last words (all of its stderr, read once its pipes close) may say why.
        const closed = child.stdio.every((p) => !p || p.destroyed)
          ? Promise.resolve()
          : new Promise((r) => child.once("close", r));
        return closed.then(() => reject(failed() ?? new Error(`sync function exited with code ${child.exitCode}`)));
      }
      try {
        // Bounded: a port held by something that is not the function may never answer.
        await fetch(url, { signal: AbortSignal.timeout(2000) });
        return resolve();
      } catch {
        if (Date.now() > deadline) return reject(new Error(`sync function did not start on ${url}`));
        setTimeout(attempt, 200);
      }
    };
    attempt();
  }));
}

const APP_DIR = path.join(ROOT, "client/app");
const KIT_DIST = path.join(ROOT, "client/dist");
const SUPABASE_UMD = path.join(ROOT, "node_modules/@supabase/supabase-js/dist/umd/supabase.js");
/** @type {Record<string, string>} */
const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
};

/**
 * The files under `dir` (relative paths, "/"-separated) whose names end with `ext`.
 * @param {string} dir
 * @param {string} ext
 * @returns {string[]}
 */
function filesUnder(dir, ext) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(ext))
    .map((f) => f.split(path.sep).join("/"))
    .sort();
}

/**
 * The offline CRM app (client/app) at `/app/`: its page, style and Service Worker as they are, its
 * modules from the kit's build (client/dist, `npm run client:build`) under `kit/`, supabase-js's UMD
 * bundle as `vendor/supabase.js`, and two generated files: `config.json` (where the API is, and the
 * anon key) and `shell.json` (what the Service Worker keeps for offline use).
 * @param {string} rel the path after /app/
 * @param {http.ServerResponse} res
 * @param {{ url: string, anonKey: string }} config
 */
function serveApp(rel, res, config) {
  /** @param {number} status @param {string} type @param {string | Buffer} body */
  const send = (status, type, body) => {
    // Revalidated each time: the Service Worker, not the HTTP cache, is what keeps the shell offline.
    res.writeHead(status, { "content-type": type, "cache-control": "no-cache" });
    res.end(body);
  };
  if (rel === "config.json") return send(200, CONTENT_TYPES[".json"], JSON.stringify(config));
  if (rel === "shell.json") {
    const shell = [
      "./",
      "style.css",
      "config.json",
      "vendor/supabase.js",
      ...filesUnder(KIT_DIST, ".js").map((f) => `kit/${f}`),
    ];
    return send(200, CONTENT_TYPES[".json"], JSON.stringify(shell));
  }
  /** @type {string | null} */
  let file = null;
  if (rel === "" || rel === "index.html") file = path.join(APP_DIR, "index.html");
  else if (rel === "vendor/supabase.js") file = SUPABASE_UMD;
  else if (rel.startsWith("kit/") && rel.endsWith(".js")) file = path.join(KIT_DIST, rel.slice("kit/".length));
  else if (/^[a-z0-9_-]+\.(css|js)$/i.test(rel)) file = path.join(APP_DIR, rel);
  // Nothing outside the app's directories, whatever the path says.
  const inside = file && [APP_DIR, KIT_DIST].some((d) => file.startsWith(d + path.sep)) || file === SUPABASE_UMD;
  if (!file || !inside || !existsSync(file)) {
    const hint = rel.startsWith("kit/") && !existsSync(KIT_DIST) ? " (build the app: npm run client:build)" : "";
    return send(404, "text/plain; charset=utf-8", `not found: /app/${rel}${hint}`);
  }
  return send(200, CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream", readFileSync(file));
}

/**
 * @typedef {object} Api
 * @property {string} apiUrl
 * @property {number | undefined} functionPid the npm `deno` shim's process, parent of the real one
 *   (the first instance's, where there are several)
 * @property {(number | undefined)[]} functionPids each instance's
 * @property {() => Promise<void>} stop
 */

/**
 * Serves the API on `apiPort`: `/functions/v1/sync/*` (the Deno function, run as a child process),
 * `/auth/v1/.well-known/jwks.json`, the development-only Auth subset of scripts/lib/local_auth.mjs
 * (`/auth/v1/token`, `/user`, `/logout`), whose access tokens live SUPASYNC_AUTH_EXPIRES_IN seconds,
 * and the offline CRM app at `/app/`. With `functionPorts`, one instance of the function on each,
 * and the gateway hands each request to the next (round-robin), as hosted Supabase spreads requests
 * over a function's instances; `x-sync-instance` in the answer says which one served it.
 * @param {{ dbUrl: string, keys: LocalKeys, apiPort?: number, functionPort?: number,
 *   functionPorts?: number[], env?: Record<string, string>, quiet?: boolean }} options
 * @returns {Promise<Api>}
 */
export async function startApi(
  {
    dbUrl,
    keys,
    apiPort = API_PORT,
    functionPort = apiPort + 9,
    functionPorts = [functionPort],
    env = {},
    quiet = false,
  },
) {
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  /** @param {number} port */
  const spawnFunction = (port) => {
    const child = spawn(
      bin("deno"),
      [
        "run",
        "--allow-net",
        "--allow-env",
        "--allow-read",
        "--allow-sys",
        path.join(ROOT, "supabase/functions/sync/index.ts"),
      ],
      {
        cwd: ROOT,
        // Its own process group: the npm `deno` bin is a shim that starts the real binary, and both
        // must go when the stack stops.
        detached: true,
        // Its errors are passed on as they come, and kept to tell a port taken from other failures.
        stdio: ["ignore", quiet ? "ignore" : "inherit", "pipe"],
        env: {
          ...process.env,
          SUPABASE_URL: apiUrl,
          SUPABASE_DB_URL: dbUrl,
          SUPABASE_ANON_KEY: keys.anonKey,
          SUPABASE_JWT_SECRET: keys.jwtSecret,
          SYNC_FUNCTION_PORT: String(port),
          ...env,
        },
      },
    );
    const instance = { child, port, stderrTail: "", killGroup: () => {} };
    child.stderr?.on("data", (d) => {
      process.stderr.write(d);
      instance.stderrTail = (instance.stderrTail + d).slice(-4000);
    });
    instance.killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGTERM");
      } catch { /* already gone */ }
    };
    process.once("exit", instance.killGroup);
    return instance;
  };
  const instances = functionPorts.map(spawnFunction);
  let nextInstance = 0;
  const jwks = JSON.stringify({ keys: [keys.publicJwk] });
  const auth = localAuth({
    dbUrl,
    keys,
    apiUrl,
    expiresIn: Number(env.SUPASYNC_AUTH_EXPIRES_IN ?? process.env.SUPASYNC_AUTH_EXPIRES_IN ?? 3600),
    corsOrigin: env.SYNC_CORS_ORIGIN ?? process.env.SYNC_CORS_ORIGIN ?? "*",
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? "/", apiUrl);
      if (url.pathname === "/auth/v1/.well-known/jwks.json") {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=600" });
        return res.end(jwks);
      }
      if (await auth.handle(req, res, url)) return;
      if (url.pathname === "/functions/v1/sync" || url.pathname.startsWith("/functions/v1/sync/")) {
        // Streamed both ways, as a gateway does: buffering 500 KB pages here cost the bench (which
        // runs in this process) more than the function spent serving them.
        const index = nextInstance++ % instances.length;
        const { port } = instances[index];
        const headers = { ...req.headers, host: `127.0.0.1:${port}` };
        delete headers.connection;
        return await new Promise((resolve, reject) => {
          const upstream = http.request(
            {
              host: "127.0.0.1",
              port,
              method: req.method,
              path: url.pathname.slice("/functions/v1".length) + url.search,
              headers,
              agent,
            },
            (up) => {
              res.writeHead(up.statusCode ?? 502, { ...up.headers, "x-sync-instance": String(index) });
              up.pipe(res);
              up.once("end", resolve);
              up.once("error", reject);
            },
          );
          upstream.once("error", reject);
          req.pipe(upstream);
        });
      }
      if (url.pathname === "/app") {
        res.writeHead(301, { location: "/app/" });
        return res.end();
      }
      if (url.pathname.startsWith("/app/")) {
        // Same-origin: the app calls the API where it was loaded from, whatever host name the browser used.
        return serveApp(url.pathname.slice("/app/".length), res, {
          url: `http://${req.headers.host}`,
          anonKey: keys.anonKey,
        });
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not_found", message: `no route for ${url.pathname}` }));
    } catch (err) {
      if (res.headersSent) return res.destroy();
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "bad_gateway", message: err instanceof Error ? err.message : String(err) }));
    }
  });
  /** Stops the gateway, its connections, the Auth subset and the function's process group. */
  const stopAll = async () => {
    if (server.listening) server.close();
    agent.destroy();
    await auth.close();
    await Promise.all(instances.map(async ({ child, killGroup }) => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        killGroup();
        await exited;
      }
    }));
  };
  try {
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(apiPort, "127.0.0.1", () => resolve(undefined));
    });
    // The function could not bind its port (it logs the error and stays up): the same failure as
    // the gateway's EADDRINUSE, for onFreePorts (scripts/lib/ports.mjs) to retry on other ports.
    await Promise.all(instances.map(({ child, port }, i) =>
      waitForPort(
        `http://127.0.0.1:${port}/sync/health`,
        child,
        () =>
          /AddrInUse|address already in use/i.test(instances[i].stderrTail)
            ? Object.assign(new Error(`sync function: port ${port} is taken`), { code: "EADDRINUSE" })
            : null,
      )
    ));
  } catch (err) {
    // Nothing of a failed start is left running (a retry starts another).
    await stopAll();
    for (const { killGroup } of instances) process.removeListener("exit", killGroup);
    throw err;
  }
  return {
    apiUrl,
    functionPid: instances[0].child.pid,
    functionPids: instances.map(({ child }) => child.pid),
    async stop() {
      await stopAll();
    },
  };
}

/**
 * What the Deno tests and the soak run need to reach a running stack.
 * @param {{ api: Api, dbUrl: string, keys: LocalKeys }} stack
 */
export function clientEnv({ api, dbUrl, keys }) {
  return {
    API_URL: api.apiUrl,
    DB_URL: dbUrl,
    ANON_KEY: keys.anonKey,
    SERVICE_ROLE_KEY: keys.serviceRoleKey,
    JWT_SECRET: keys.jwtSecret,
    LOCAL_ES256_JWK: JSON.stringify(keys.privateJwk),
    FUNCTION_PID: String(api.functionPid),
  };
}

/**
 * Applies the migrations only tests use (supabase/tests/migrations), after the seed: an app's
 * additions the engine must take as they come (a regional manager and an auditor). For the test
 * runner and the runs that build a stack of their own (soak, load), never for `npm start`.
 * @param {string} dbUrl
 */
export async function applyTestMigrations(dbUrl) {
  const dir = path.join(ROOT, "supabase/tests/migrations");
  if (!existsSync(dir)) return;
  const db = postgres(dbUrl, { max: 1, onnotice: () => {} });
  try {
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
      await db.begin((tx) => tx.unsafe(readFileSync(path.join(dir, f), "utf8")));
    }
  } finally {
    await db.end();
  }
}

/**
 * Runs a Deno script against a stack of its own: a fresh database (migrations and seed) on the
 * server, the function on ports the system picks, the script with clientEnv and `env`. Drops the database after.
 * `around` may observe the function process ({ before, after } hooks). Returns the script's exit code.
 * `instances` function instances share the gateway (round-robin); with `pooler`, they reach the
 * database through PgBouncer in transaction mode (scripts/lib/pooler.mjs).
 * @param {{ serverUrl: string, dbName: string, script: string, args?: string[],
 *   env?: Record<string, string>, around?: { before?: (api: Api) => void, after?: (api: Api) => void },
 *   instances?: number, pooler?: boolean }} options
 * @returns {Promise<number>}
 */
export async function runOwnStack(
  { serverUrl, dbName, script, args = [], env = {}, around = {}, instances = 1, pooler = false },
) {
  const dbUrl = await createDatabase(serverUrl, dbName, { reset: true });
  await migrate(dbUrl, { seed: true });
  await applyTestMigrations(dbUrl);
  const keys = await localKeys();
  const bouncer = pooler ? await onFreePorts(1, ([port]) => startPooler({ serverUrl: dbUrl, port })) : null;
  const api = await onFreePorts(
    1 + instances,
    ([apiPort, ...functionPorts]) =>
      startApi({
        dbUrl,
        keys,
        apiPort,
        functionPorts,
        quiet: true,
        env: { SYNC_LOG: "off", ...(bouncer ? { SYNC_DB_URL: throughPooler(dbUrl, bouncer) } : {}) },
      }),
  ).catch(async (err) => {
    await bouncer?.stop();
    throw err;
  });
  let code;
  try {
    around.before?.(api);
    code = await new Promise((resolve) => {
      const child = spawn(bin("deno"), ["run", "--allow-all", script, ...args], {
        cwd: ROOT,
        stdio: "inherit",
        env: { ...process.env, ...clientEnv({ api, dbUrl, keys }), ...env },
      });
      // A script killed by a signal has no exit code: it failed.
      child.on("close", (status) => resolve(status ?? 1));
    });
    around.after?.(api);
  } finally {
    await api.stop();
    await bouncer?.stop();
  }
  await dropDatabase(serverUrl, dbName);
  return code;
}
