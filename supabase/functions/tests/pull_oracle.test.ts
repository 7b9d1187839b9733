// The oracle of pull completeness (see _pull_oracle.ts), short: a few seeded rounds. The soak run
// (`npm run soak`) runs it round after round. Replay a seed with ORACLE_SEED=<seed>, and make the run
// longer with ORACLE_ROUNDS and ORACLE_STEPS.
import { runPullOracle } from "./_pull_oracle.ts";
import assert from "node:assert/strict";
import { test } from "./_helpers.ts";

const seed = Number(Deno.env.get("ORACLE_SEED") ?? 1301);
const rounds = Number(Deno.env.get("ORACLE_ROUNDS") ?? 4);
const steps = Number(Deno.env.get("ORACLE_STEPS") ?? 80);

test(`pull oracle (seed ${seed}): after random edits, child inserts, deletes, reassignments, referrals made, accepted, declined and closed, and transactions committed out of order, every device built from pulls at limits 1 to 3 holds exactly what RLS shows its user, in bounded cycles of pages within their limits`, async () => {
  try {
    const stats = await runPullOracle(seed, { rounds, steps });
    // The referral moves change what a user reads without a row of theirs changing: the run must make some.
    assert.ok(stats.referralMoves > 0, `the run applied referral moves: ${JSON.stringify(stats)}`);
  } catch (err) {
    console.error(`pull oracle failed with ORACLE_SEED=${seed} ORACLE_ROUNDS=${rounds} ORACLE_STEPS=${steps}`);
    throw err;
  }
});
