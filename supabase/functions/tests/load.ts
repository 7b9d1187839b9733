// `npm run load -- --devices N --seconds S`: N devices edit, push and pull at once for S seconds
// against the running function (no injected faults), then sync until quiet and are checked like
// the simulation: zero errors, zero lost ops. Prints throughput and latency percentiles.
import { parseArgs } from "node:util";
import { check, type Device, manyDevices, type Stats } from "./_simulation.ts";
import { sql } from "./_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "20" },
    seconds: { type: "string", default: "30" },
    seed: { type: "string", default: "7" },
  },
});
const devices = manyDevices(Number(values.seed), Number(values.devices));
const stats: Stats = {
  outcomes: {},
  faults: { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expiredSeen: 0, restartServer: 0 },
  serverErrors: 0,
};
const calm = { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expireToken: 0 };
const latencies: number[] = [];
let requests = 0;
let errors = 0;

async function timed(work: () => Promise<void>) {
  const t = performance.now();
  try {
    await work();
  } catch (err) {
    errors++;
    console.error(String(err).slice(0, 300));
  }
  latencies.push(performance.now() - t);
  requests++;
}

for (const d of devices) await d.pull(stats);
const deadline = Date.now() + Number(values.seconds) * 1000;
const started = performance.now();
await Promise.all(devices.map(async (d: Device) => {
  while (Date.now() < deadline) {
    for (let i = 0; i < 5; i++) d.edit();
    await timed(() => d.push(calm, stats));
    await timed(() => d.pull(stats));
  }
}));
const elapsed = (performance.now() - started) / 1000;
for (let round = 0; round < 10 && devices.some((d) => d.queue.length); round++) {
  for (const d of devices) {
    await d.push(calm, stats);
    await d.pull(stats);
  }
}
for (const d of devices) await d.pull(stats);
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
console.log(JSON.stringify({
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
}));
await sql.end();
Deno.exit(errors + stats.serverErrors === 0 && lost === "none" ? 0 : 1);
