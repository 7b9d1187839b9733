// `npm run soak -- --minutes N --seed S`: the multi-device simulation for a long time, one seeded
// round after another; a failing round prints its seed so it can be replayed with SIM_SEED.
import { parseArgs } from "node:util";
import { defaultFaults, simulate } from "./_simulation.ts";
import { sql } from "./_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { minutes: { type: "string", default: "5" }, seed: { type: "string", default: String(Date.now() % 1_000_000) }, steps: { type: "string", default: "400" } },
});
const deadline = Date.now() + Number(values.minutes) * 60_000;
let seed = Number(values.seed);
let rounds = 0;
let failed = 0;
while (Date.now() < deadline) {
  try {
    const stats = await simulate(seed, Number(values.steps), defaultFaults, deadline);
    console.log(JSON.stringify({ round: ++rounds, seed, ...stats }));
  } catch (err) {
    failed++;
    console.error(`FAILED seed ${seed}: replay with SIM_SEED=${seed} SIM_STEPS=${values.steps} npm test -- --deno\n${err instanceof Error ? err.stack : err}`);
    break;
  }
  seed++;
}
await sql.end();
console.log(`${rounds} passed, ${failed} failed`);
Deno.exit(failed ? 1 : 0);
