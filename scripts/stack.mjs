#!/usr/bin/env node
// @ts-check
// The local stack without Docker: `start`, `status`, `reset`, `token <email> [--expires-in S]`.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { DB_PORT, localUrl, log, ROOT, server } from "./lib/cluster.mjs";
import {
  API_PORT,
  createDatabase,
  findUser,
  isSupabaseDatabase,
  LOCAL_DB_NAME,
  localKeys,
  migrate,
  signAccessToken,
  startApi,
} from "./lib/stack.mjs";

const [command, ...rest] = process.argv.slice(2);
const apiUrl = `http://127.0.0.1:${API_PORT}`;

async function statusLines() {
  const keys = await localKeys();
  const dbUrl = process.env.DATABASE_URL ?? localUrl(LOCAL_DB_NAME);
  return [
    `API_URL=${apiUrl}`,
    `DB_URL=${dbUrl}`,
    `FUNCTIONS_URL=${apiUrl}/functions/v1`,
    `JWKS_URL=${apiUrl}/auth/v1/.well-known/jwks.json`,
    `ANON_KEY=${keys.anonKey}`,
    `SERVICE_ROLE_KEY=${keys.serviceRoleKey}`,
    `JWT_SECRET=${keys.jwtSecret}`,
  ];
}

/**
 * Whether the stack answers, like `supabase status`: the database (a query on DB_URL) and the API (the
 * function's health route, which queries the database in turn). Returns what does not answer, and why.
 */
async function probe() {
  /** @type {string[]} */
  const problems = [];
  const dbUrl = process.env.DATABASE_URL ?? localUrl(LOCAL_DB_NAME);
  const db = postgres(dbUrl, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await db`select 1`;
  } catch (e) {
    const err = /** @type {Error & { code?: string }} */ (e);
    const where = process.env.DATABASE_URL
      ? "the database named by DATABASE_URL"
      : `the database on 127.0.0.1:${DB_PORT}`;
    problems.push(`${where} does not answer (${err.code ?? err.message})`);
  } finally {
    await db.end({ timeout: 1 }).catch(() => {});
  }
  try {
    const res = await fetch(`${apiUrl}/functions/v1/sync/health`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    if (!res.ok) problems.push(`the API on ${apiUrl} answers ${res.status} to /functions/v1/sync/health`);
  } catch (e) {
    const err = /** @type {Error & { cause?: { code?: string } }} */ (e);
    problems.push(`the API on ${apiUrl} does not answer (${err.cause?.code ?? err.name ?? err.message})`);
  }
  return problems;
}

/** `npm run status`: the settings when the stack answers; otherwise what does not, and exit code 1. */
async function status() {
  const problems = await probe();
  if (problems.length) {
    for (const p of problems) log(p);
    log("the local stack is not running; start it with `npm start`");
    process.exit(1);
  }
  log("the local stack is running");
  console.log((await statusLines()).join("\n"));
}

/** @param {{ reset: boolean }} options */
async function start({ reset }) {
  const srv = server();
  /** @type {import("./lib/stack.mjs").Api | undefined} */
  let api;
  const shutdown = async (code = 0) => {
    try {
      await api?.stop();
    } finally {
      srv.stop();
      process.exit(code);
    }
  };
  process.on("SIGINT", () => shutdown(0));
  process.on("SIGTERM", () => shutdown(0));
  try {
    if (process.env.DATABASE_URL && reset && (await isSupabaseDatabase(process.env.DATABASE_URL))) {
      throw new Error("refusing to reset a Supabase database named by DATABASE_URL");
    }
    const dbUrl = process.env.DATABASE_URL
      ? (reset
        ? await createDatabase(process.env.DATABASE_URL, new URL(process.env.DATABASE_URL).pathname.slice(1), { reset })
        : process.env.DATABASE_URL)
      : await createDatabase(srv.url, LOCAL_DB_NAME, { reset });
    await migrate(dbUrl, { seed: true });
    const keys = await localKeys();
    // The app at /app/ runs the kit's build: build it from the checkout as it is now.
    const build = spawnSync(process.execPath, [
      path.join(ROOT, "node_modules/typescript/bin/tsc"),
      "-p",
      "client/tsconfig.json",
    ], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (build.status !== 0) throw new Error(`npm run client:build failed:\n${build.stdout}${build.stderr}`);
    api = await startApi({ dbUrl, keys });
    console.log("\nsupasync local stack is up. Ctrl-C stops it.\n");
    console.log((await statusLines()).join("\n"));
    console.log(`\nSeed users (password password123): admin@crm.test, bm.jakarta@crm.test, rm1.jakarta@crm.test, ...`);
    console.log(`A token: npm run token -- rm1.jakarta@crm.test (or supabase-js: auth.signInWithPassword)`);
    console.log(`The offline CRM app: ${api.apiUrl}/app/\n`);
  } catch (err) {
    log(err instanceof Error ? err.message : err);
    await shutdown(1);
  }
}

/** @param {string[]} args */
async function token(args) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { "expires-in": { type: "string", default: "3600" } },
  });
  const email = positionals[0];
  if (!email) {
    console.error("usage: npm run token -- <email> [--expires-in SECONDS]");
    process.exit(2);
  }
  const dbUrl = process.env.DATABASE_URL ?? localUrl(LOCAL_DB_NAME);
  const user = await findUser(dbUrl, email);
  if (!user) {
    console.error(`no user with email ${email} (seed users: admin@crm.test, rm1.jakarta@crm.test, ...)`);
    process.exit(1);
  }
  const keys = await localKeys();
  console.log(await signAccessToken(keys, apiUrl, user, { expiresIn: Number(values["expires-in"]) }));
}

switch (command) {
  case "start":
    await start({ reset: false });
    break;
  case "reset":
    await start({ reset: true });
    break;
  case "status":
    await status();
    break;
  case "token":
    await token(rest);
    break;
  default:
    console.error("usage: node scripts/stack.mjs start|reset|status|token <email>");
    process.exit(2);
}
