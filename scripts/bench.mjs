#!/usr/bin/env node
// @ts-check
// `npm run bench` (issue 5): push and pull measured side by side, in one run, on the same rows, with
// the same triggers and RLS, against raw PostgreSQL (the ceiling) and the per-item pattern (the floor).
// Prints a Markdown table of figures and ratios with the targets beside them, and writes the
// figures as JSON to bench/results/<timestamp>.json. Targets are reported, never asserted: the exit
// code only says whether the correctness checks passed (every push applied, pulls complete, no errors
// and no deadlocks).
//
//   npm run bench                full run (10 000 ops, 100 000 rows, scale to 1 000 000; ~15 min)
//   npm run bench -- --quick     under two minutes: small sizes, scale at 10 000 only
//   npm run bench -- --smoke     the check `npm test` runs: a few hundred ops, no scale phase
//   options: --db NAME (default supasync_bench), --keep-db, --no-json, --page N, --push-ops N,
//            --pull-rows N, --devices N, --rounds N, --scale 10000,100000, --no-browser,
//            --browser-only, --help
//
// The database is dropped and re-created each run (migrations and seed, as `npm test` does); it is
// kept afterwards for inspection, except in --smoke mode. The function is started on loopback ports the
// system picks (scripts/lib/ports.mjs). Every loop is bounded in count and in time.
//
// One module per phase under scripts/bench/: setup, triggers, push, devices, pull, empty_delta,
// cold, statements, scale, plans, browser, in the order run.mjs runs them, then report. The helpers they share: options (the
// modes' sizes), workload (the op streams), http (requests to the function), db (the ceilings and
// bulk loads), pgss (pg_stat_statements), explain (plans of the engine's statements), checks, util.
import { run } from "./bench/run.mjs";

await run(process.argv.slice(2));
