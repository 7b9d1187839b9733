#!/usr/bin/env node
// @ts-check
// `npm run release -- <version>`: records a release in supabase/releases.json, the SHA-256 of every
// migration and of the seed as they are now. From then on those migrations are frozen (the habit
// check in `npm test` fails when one changes) and the upgrade check builds a database at this
// release and upgrades it to HEAD. Write the CHANGELOG entry and tag the commit `v<version>`.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { freezeProblems, migrationFiles, readReleases, RELEASES_FILE, ROOT, sha256 } from "./lib/releases.mjs";

const version = process.argv[2];
if (!version || !/^\d+\.\d+\.\d+$/.test(version)) {
  console.error("usage: npm run release -- <major.minor.patch>");
  process.exit(2);
}
const releases = readReleases();
if (releases.some((r) => r.version === version)) {
  console.error(`${version} is already released`);
  process.exit(1);
}
const problems = freezeProblems();
if (problems.length) {
  console.error(`the released migrations must be restored first:\n${problems.join("\n")}`);
  process.exit(1);
}
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
if (pkg.version !== version) {
  console.error(`package.json says ${pkg.version}: set its version to ${version} first`);
  process.exit(1);
}
/** @type {Record<string, string>} */
const migrations = {};
for (const name of migrationFiles()) {
  migrations[name] = sha256(readFileSync(path.join(ROOT, "supabase/migrations", name)));
}
const release = {
  version,
  date: new Date().toISOString().slice(0, 10),
  migrations,
  seed: sha256(readFileSync(path.join(ROOT, "supabase/seed.sql"))),
};
const note = "Each release's migrations and seed, by SHA-256. Written by `npm run release`; never edited by hand: " +
  "a released migration is frozen (scripts/lib/releases.mjs).";
writeFileSync(
  path.join(ROOT, RELEASES_FILE),
  JSON.stringify({ $comment: note, releases: [...releases, release] }, null, 2) + "\n",
);
console.log(
  `${RELEASES_FILE}: ${version} with ${Object.keys(migrations).length} migrations. ` +
    `Now: the CHANGELOG entry, a commit, and \`git tag v${version}\`.`,
);
