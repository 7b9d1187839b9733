// @ts-check
// The habits `npm test` enforces, one counted test each: the TypeScript and the Node scripts are
// formatted as deno.json says and lint clean, every TypeScript file type-checks under Deno, the Node
// scripts type-check under tsc (`// @ts-check` in each, scripts/tsconfig.json), and the import maps
// (deno.json, supabase/functions/sync/deno.json) pin the versions package.json pins, the released
// migrations are unchanged, and no file points outside the repository. A failing test
// prints the problems it found.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freezeProblems, RELEASES_FILE } from "./releases.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Files whose problems are printed but not counted, while another branch rewrites them: each entry
 * goes once its file is fixed; a path ending in "/" covers a directory. Empty since the branches of
 * issue 14 merged.
 * @type {string[]}
 */
export const PENDING = [];

/** @param {string} file a path relative to the repository */
const isPending = (file) => PENDING.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p));

/** @typedef {{ file: string, text: string }} Problem */
/** @typedef {{ name: string, problems: Problem[], pending: Problem[] }} Verdict */

/**
 * @param {string} cmd
 * @param {string[]} args
 */
function run(cmd, args) {
  const res = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, NO_COLOR: "1", RUST_BACKTRACE: "0" },
  });
  if (res.error) throw res.error;
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

const deno = path.join(ROOT, "node_modules", ".bin", "deno");

/** @param {string} fileOrUrl an absolute path or a file: URL */
const relative = (fileOrUrl) =>
  path.relative(ROOT, fileOrUrl.startsWith("file://") ? fileURLToPath(fileOrUrl) : fileOrUrl);

/** Every file under the repository whose name ends with one of `suffixes`, outside what no one edits. */
function filesEndingWith(/** @type {string[]} */ suffixes) {
  // client/dist is the kit's build (git-ignored), which the app's browser tests make: its .d.ts import .ts names.
  const skip = new Set(["node_modules", ".git", ".local", "dist"]);
  /** @type {string[]} */
  const out = [];
  /** @param {string} dir */
  const walk = (dir) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!skip.has(entry.name)) walk(rel);
      } else if (suffixes.some((s) => entry.name.endsWith(s))) out.push(rel);
    }
  };
  walk(".");
  return out.sort();
}

/**
 * @param {string} name
 * @param {Problem[]} all
 * @returns {Verdict}
 */
function verdict(name, all) {
  return { name, problems: all.filter((p) => !isPending(p.file)), pending: all.filter((p) => isPending(p.file)) };
}

/** `deno fmt --check` over what deno.json's fmt includes: one problem per unformatted file, with its diff. */
function fmt() {
  const { status, out } = run(deno, ["fmt", "--check"]);
  /** @type {Problem[]} */
  const problems = [];
  for (const block of out.split(/\n(?=from \/)/)) {
    const m = block.match(/^from (\/.*?):\n/);
    if (m) {
      const diff = block.slice(m[0].length).replace(/\n\s*(error: Found .*|Stack backtrace:[\s\S]*)$/, "").trimEnd();
      const lines = diff.split("\n");
      const shown = lines.length > 30 ? [...lines.slice(0, 30), `… (${lines.length - 30} more lines)`] : lines;
      problems.push({ file: relative(m[1]), text: `${relative(m[1])} is not formatted:\n${shown.join("\n")}` });
    }
  }
  if (status !== 0 && !problems.length) problems.push({ file: "deno.json", text: out.trim() });
  return verdict("deno fmt --check: the TypeScript and the Node scripts are formatted (npx deno fmt)", problems);
}

/** `deno lint` over what deno.json's lint includes. */
function lint() {
  const { status, out } = run(deno, ["lint", "--json"]);
  /** @type {Problem[]} */
  const problems = [];
  /** @type {{ diagnostics: { filename: string, range: { start: { line: number, col: number } }, code: string, message: string }[], errors: { file_path: string, message: string }[] }} */
  let report;
  try {
    report = JSON.parse(out.slice(out.indexOf("{")));
  } catch {
    return verdict("deno lint: no problems", [{ file: "deno.json", text: out.trim() }]);
  }
  for (const d of report.diagnostics) {
    const file = relative(d.filename);
    problems.push({ file, text: `${file}:${d.range.start.line}:${d.range.start.col + 1} ${d.code}: ${d.message}` });
  }
  for (const e of report.errors) problems.push({ file: relative(e.file_path), text: `${e.file_path}: ${e.message}` });
  if (status !== 0 && !problems.length) problems.push({ file: "deno.json", text: out.trim() });
  return verdict("deno lint: no problems", problems);
}

/** `deno check` of every TypeScript file of the repository. */
function check() {
  const files = filesEndingWith([".ts", ".mts", ".tsx"]);
  const { status, out } = run(deno, ["check", ...files]);
  /** @type {Problem[]} */
  const problems = [];
  for (const block of out.split(/\n(?=TS\d+ \[ERROR\]|error: )/)) {
    if (!/^(TS\d+ \[ERROR\]|error: )/.test(block)) continue;
    const at = block.match(/at (file:\/\/\S+?):(\d+):(\d+)/);
    const text = block.replace(/\n\s*(Found \d+ errors?\.|error: Type checking failed\.)[\s\S]*$/, "").trim();
    if (/^error: Type checking failed/.test(text)) continue;
    problems.push({ file: at ? relative(at[1]) : "", text });
  }
  if (status !== 0 && !problems.length) problems.push({ file: "", text: out.trim() });
  return verdict(`deno check: every TypeScript file type-checks (${files.length} files)`, problems);
}

/** `tsc --noEmit` over the Node scripts (scripts/tsconfig.json), each of which asks for it with `// @ts-check`. */
function tsc() {
  const name = "tsc --noEmit: the Node scripts type-check";
  const compiler = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(compiler)) {
    return verdict(name, [{ file: "package.json", text: "node_modules/typescript is missing: run npm ci" }]);
  }
  const { status, out } = run(process.execPath, [
    compiler,
    "--noEmit",
    "--pretty",
    "false",
    "-p",
    "scripts/tsconfig.json",
  ]);
  /** @type {Problem[]} */
  const problems = [];
  for (const block of out.split(/\n(?=\S)/)) {
    const m = block.match(/^(.+?)\(\d+,\d+\): error TS\d+/);
    if (m) problems.push({ file: path.normalize(m[1]), text: block.trimEnd() });
    else if (block.trim()) problems.push({ file: "scripts/tsconfig.json", text: block.trimEnd() });
  }
  if (status !== 0 && !problems.length) problems.push({ file: "scripts/tsconfig.json", text: out.trim() });
  for (const file of filesEndingWith([".mjs", ".js", ".cjs"]).filter((f) => f.startsWith("scripts/"))) {
    const head = readFileSync(path.join(ROOT, file), "utf8").split("\n").slice(0, 3);
    if (!head.some((l) => l.trim() === "// @ts-check")) {
      problems.push({ file, text: `${file} does not start with // @ts-check` });
    }
  }
  return verdict(name, problems);
}

/** Reads a JSON file that may hold comments (deno.json does). */
function readJsonc(/** @type {string} */ file) {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  return JSON.parse(text.replace(/("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (_, str) => str ?? ""));
}

/**
 * The import maps: the repository's deno.json and the function's own, which `supabase functions
 * deploy sync` bundles instead.
 */
const IMPORT_MAPS = ["deno.json", "supabase/functions/sync/deno.json"];

/** Each npm package of every import map at the version package.json pins. */
function importMap() {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
  /** @type {Record<string, string>} */
  const pinned = { ...pkg.dependencies, ...pkg.devDependencies };
  /** @type {Problem[]} */
  const problems = [];
  for (const file of IMPORT_MAPS) {
    if (!existsSync(path.join(ROOT, file))) {
      problems.push({ file, text: `${file} is missing` });
      continue;
    }
    const denoJson = readJsonc(file);
    for (const [name, target] of Object.entries(/** @type {Record<string, string>} */ (denoJson.imports ?? {}))) {
      const m = target.match(/^npm:(@?[^@]+)@(.+)$/);
      if (!m) continue;
      if (pinned[m[1]] !== m[2]) {
        problems.push({
          file,
          text: `${file} maps ${name} to ${target}; package.json pins ${m[1]} ${pinned[m[1]] ?? "nowhere"}`,
        });
      }
    }
  }
  return verdict("deno.json and the function's deno.json pin the versions package.json pins", problems);
}

/** Released migrations unchanged, new ones after them (scripts/lib/releases.mjs). */
function frozenMigrations() {
  return verdict(
    `the migrations released in ${RELEASES_FILE} are unchanged and every later one sorts after them`,
    freezeProblems().map((text) => ({ file: RELEASES_FILE, text })),
  );
}

/**
 * The project stands alone: no file of it points at the notes its authors worked from, which live
 * outside the repository and are not shipped with it.
 */
function standsAlone() {
  /** @type {Problem[]} */
  const problems = [];
  const outside = /\.\.\/shared\b|\bshared\/(sync-protocol|pitfalls-research)\.md|pitfalls-research/;
  for (const file of filesEndingWith([".md", ".ts", ".mjs", ".js", ".sql", ".json", ".toml", ".yaml", ".yml"])) {
    if (file === "scripts/lib/habits.mjs" || file.endsWith("deno.lock") || file.endsWith("package-lock.json")) continue;
    readFileSync(path.join(ROOT, file), "utf8").split("\n").forEach((line, i) => {
      if (outside.test(line)) {
        problems.push({ file, text: `${file}:${i + 1} points outside the project: ${line.trim()}` });
      }
    });
  }
  return verdict("no file points at notes outside the repository", problems);
}

/**
 * Runs every habit check and prints one TAP-like line each (with the problems under a failure, and
 * what is left in pending files under any). Returns the counts.
 */
export function runHabits() {
  if (!existsSync(deno)) throw new Error("node_modules/.bin/deno is missing: run npm ci");
  let passed = 0, failed = 0;
  for (const habit of [fmt, lint, check, tsc, importMap, frozenMigrations, standsAlone]) {
    const v = habit();
    const ok = v.problems.length === 0;
    console.log(`${ok ? "ok" : "not ok"} - ${v.name}`);
    for (const p of v.problems) console.log(indent(p.text));
    if (v.pending.length) {
      const files = [...new Set(v.pending.map((p) => p.file))];
      console.log(
        indent(`# not counted: ${v.pending.length} problem(s) in files pending on other branches: ${files.join(", ")}`),
      );
    }
    if (ok) passed++;
    else failed++;
  }
  return { passed, failed };
}

/** @param {string} text */
const indent = (text) => text.split("\n").map((l) => `    ${l}`).join("\n");
