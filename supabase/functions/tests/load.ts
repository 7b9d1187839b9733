// `npm run load -- --devices N --seconds S`: N devices edit, push and pull at once for S seconds
// against the running function (no injected faults), then sync until quiet and are checked like
// the simulation: zero errors, zero lost ops. Prints throughput and latency percentiles.
import { parseArgs } from "node:util";
import { calm, check, type Device, manyDevices, newStats } from "./_simulation.ts";
import { sql } from "./_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "20" },
    seconds: { type: "string", default: "30" },
    seed: { type: "string", default: "7" },
  },
});
const devices = await manyDevices(Number(values.seed), Number(values.devices));
const stats = newStats();
let latencies: number[] = [];
let errors = 0;

for (const d of devices) await d.sync(calm, stats);
// Each request's duration, from the devices' network: the sync's pushes and pulls.
for (const d of devices) d.onRequest = (ms) => latencies.push(ms);
latencies = [];
const deadline = Date.now() + Number(values.seconds) * 1000;
const started = performance.now();
await Promise.all(devices.map(async (d: Device) => {
  while (Date.now() < deadline) {
    try {
      for (let i = 0; i < 5; i++) await d.edit();
      await d.sync(calm, stats);
    } catch (err) {
      errors++;
      console.error(String(err).slice(0, 300));
    }
  }
}));
const elapsed = (performance.now() - started) / 1000;
const requests = latencies.length;
for (const d of devices) d.onRequest = undefined;
for (let round = 0; round < 10 && devices.some((d) => d.pending); round++) {
  for (const d of devices) await d.sync(calm, stats);
}
for (const d of devices) await d.sync(calm, stats);
let lost = "none";
try {
  await check(devices);
} catch (err) {
  lost = String(err).slice(0, 500);
}
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] * 10) / 10;
const ops = Object.values(stats.outcomes).reduce((a, b) => a + b, 0);
const report = {
  devices: devices.length,
  seconds: Math.round(elapsed * 10) / 10,
  requests,
  requests_per_s: Math.round(requests / elapsed),
  ops,
  ops_per_s: Math.round(ops / elapsed),
  p50_ms: pct(0.5),
  p95_ms: pct(0.95),
  p99_ms: pct(0.99),
  errors: errors + stats.serverErrors,
  outcomes: stats.outcomes,
  lost,
};
console.log(JSON.stringify(report));
// For scripts/load.mjs, which compares runs.
const reportFile = Deno.env.get("LOAD_REPORT_FILE");
if (reportFile) await Deno.writeTextFile(reportFile, JSON.stringify(report));
await sql.end();
Deno.exit(errors + stats.serverErrors === 0 && lost === "none" ? 0 : 1);
