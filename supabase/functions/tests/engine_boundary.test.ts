// The engine knows nothing of the CRM: no engine migration (sync_*) names a table the CRM's
// migrations (crm_*) create, or a role they add, and the engine's migrations all come first. A new
// table or role is the app's migration; the engine reads them as data (sync.tables, sync.roles)
// and asks the app's hooks (sync.app_caller, sync.app_valid_assignment) who the caller is.
import assert from "node:assert/strict";

const dir = new URL("../../migrations/", import.meta.url);
const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql")).sort();
const engine = files.filter((n) => /^\d+_sync_/.test(n));
const app = files.filter((n) => /^\d+_crm_/.test(n));
const read = (n: string) => Deno.readTextFileSync(new URL(n, dir));

// "branches" is the engine's word too (a role's reach, the partition a row belongs to).
const sharedWords = new Set(["branches"]);
const appTables = [
  ...new Set(app.flatMap((n) => [...read(n).matchAll(/create table public\.(\w+)/g)].map((m) => m[1]))),
]
  .filter((t) => !sharedWords.has(t));
const appRoles = [
  ...new Set(
    app.flatMap((n) =>
      [...read(n).matchAll(/insert into sync\.roles[^;]*?values([^;]*);/gs)].flatMap((m) =>
        [...m[1].matchAll(/\(\s*'([a-z_]+)'/g)].map((r) => r[1])
      )
    ),
  ),
];

// The first release built the engine before the app. A later change to either is a migration that
// sorts after every released one (supabase/releases.json), so from then on the two interleave.
const firstRelease = new Set(
  Object.keys(
    JSON.parse(Deno.readTextFileSync(new URL("../../releases.json", import.meta.url))).releases[0]?.migrations ?? {},
  ),
);
const built = files.filter((n) => firstRelease.size === 0 || firstRelease.has(n));

Deno.test("every migration is the engine's (sync_*) or the app's (crm_*), and the engine's came first", () => {
  assert.deepEqual(files.filter((n) => !engine.includes(n) && !app.includes(n)), []);
  const builtEngine = built.filter((n) => engine.includes(n));
  const builtApp = built.filter((n) => app.includes(n));
  assert.ok(builtEngine.length > 0 && builtApp.length > 0);
  assert.ok(
    builtEngine[builtEngine.length - 1] < builtApp[0],
    `${builtEngine[builtEngine.length - 1]} sorts before ${builtApp[0]}`,
  );
});

Deno.test("the app's migrations create tables and add roles (what the next test looks for is there)", () => {
  for (const t of ["customers", "key_persons", "pipelines", "activities", "profiles"]) {
    assert.ok(appTables.includes(t), t);
  }
  assert.deepEqual(appRoles.sort(), ["admin", "bm", "rm"]);
});

Deno.test("no engine migration names a table or a role of the app, not even in a comment", () => {
  const found: string[] = [];
  for (const n of engine) {
    const text = read(n);
    for (const word of [...appTables, ...appRoles]) {
      // the word itself, its singular and (for roles) its plural: a customer, the rms
      const forms = [
        word,
        word.replace(/s$/, ""),
        `${word}s`,
        word.replace(/_/g, " "),
        word.replace(/_/g, " ").replace(/s$/, ""),
      ];
      for (const form of new Set(forms)) {
        const re = new RegExp(`\\b${form}\\b`, "i");
        const m = text.split("\n").findIndex((line) => re.test(line));
        if (m >= 0) found.push(`${n}:${m + 1}: ${form}`);
      }
    }
  }
  assert.deepEqual(found, []);
});
