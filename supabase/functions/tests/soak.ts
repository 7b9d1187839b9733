// `npm run soak -- --minutes N --seed S`: the multi-device simulation and the pull oracle for a long
// time, one seeded round after another; a failing round prints its seed so it can be replayed
// (SIM_SEED for the simulation, ORACLE_SEED for the oracle). `--only sim` or `--only oracle` runs one.
import { parseArgs } from "node:util";
import { defaultFaults, simulate } from "./_simulation.ts";
import { runPullOracle } from "./_pull_oracle.ts";
import { sql } from "./_helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "5" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    steps: { type: "string", default: "400" },
    "oracle-rounds": { type: "string", default: "4" },
    "oracle-steps": { type: "string", default: "100" },
    only: { type: "string" },
  },
});
const runSim = values.only !== "oracle";
const runOracle = values.only !== "sim";
const deadline = Date.now() + Number(values.minutes) * 60_000;
let seed = Number(values.seed);
let rounds = 0;
let failed = 0;
while (Date.now() < deadline) {
  try {
    if (runSim) {
      const stats = await simulate(seed, Number(values.steps), defaultFaults, deadline);
      console.log(JSON.stringify({ round: ++rounds, seed, ...stats }));
    }
  } catch (err) {
    failed++;
    console.error(
      `FAILED seed ${seed}: replay with SIM_SEED=${seed} SIM_STEPS=${values.steps} npm test -- --deno\n${
        err instanceof Error ? err.stack : err
      }`,
    );
    break;
  }
  if (runOracle && Date.now() < deadline) {
    const [oracleRounds, oracleSteps] = [values["oracle-rounds"], values["oracle-steps"]];
    try {
      const stats = await runPullOracle(seed, { rounds: Number(oracleRounds), steps: Number(oracleSteps) });
      console.log(JSON.stringify({ round: ++rounds, oracle: true, ...stats }));
    } catch (err) {
      failed++;
      console.error(
        `FAILED pull oracle seed ${seed}: replay with ORACLE_SEED=${seed} ORACLE_ROUNDS=${oracleRounds} ORACLE_STEPS=${oracleSteps} npm test -- --deno supabase/functions/tests/pull_oracle.test.ts\n${
          err instanceof Error ? err.stack : err
        }`,
      );
      break;
    }
  }
  seed++;
}
await sql.end();
console.log(`${rounds} passed, ${failed} failed`);
Deno.exit(failed ? 1 : 0);
