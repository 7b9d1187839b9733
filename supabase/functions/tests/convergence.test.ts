import { defaultFaults, simulate } from "./_simulation.ts";
import { test } from "./_helpers.ts";

// The short profile of the multi-device simulation; `npm run soak -- --minutes N --seed S` runs it long.
const SEED = Number(Deno.env.get("SIM_SEED") ?? 4242);
const STEPS = Number(Deno.env.get("SIM_STEPS") ?? 250);

test(`devices that edit offline and sync through faults converge and lose nothing (seed ${SEED}, ${STEPS} steps)`, async () => {
  const stats = await simulate(SEED, STEPS, defaultFaults);
  console.log(JSON.stringify({ seed: SEED, ...stats }));
});
