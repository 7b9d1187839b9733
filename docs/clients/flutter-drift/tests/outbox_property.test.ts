// The outbox property (supabase/functions/tests/_outbox_property.ts), the one the TypeScript kit's
// outbox meets too, over the guide's SQL under sql.js, against the real function: coalesced and
// pushed with the interruptions of a real device, customers deleted with their key persons still on
// the device, the edits leave the server as pushing them one by one does, and the local view shows
// what the server holds. And the property is not a formality: an outbox with a wrong rule fails it.
import assert from "node:assert/strict";
import { assertHolds, checkOutboxProperty, RUNS } from "../../../../supabase/functions/tests/_outbox_property.ts";
import { test } from "../../../../supabase/functions/tests/_helpers.ts";
import { SqlOutbox } from "./_sql_outbox.ts";
import { FILES, LocalStore } from "./_sqlite.ts";

test("coalesced by the guide's SQL and pushed, any sequence of edits leaves the server as pushing them one by one", async () => {
  assertHolds(await checkOutboxProperty(() => new SqlOutbox()));
});

/** The guide's SQL with one rule changed, to show the property catches it. */
function mutant(from: string, to: string) {
  return () =>
    new SqlOutbox(
      new LocalStore(FILES, (file, text) => {
        if (file !== "outbox.sql") return text;
        assert.ok(text.includes(from), `outbox.sql still has: ${from}`);
        return text.replace(from, to);
      }),
    );
}

/** Each mutant: its name, the text it changes and what it changes it to, and the runs that find it. */
const MUTANTS: [string, string, string, number?][] = [
  [
    "an update that replaces the queued update's data, as the legacy queue did",
    "  -- Update then update:",
    "  DELETE FROM sync_outbox_values\n" +
    "   WHERE seq = (SELECT open_seq FROM sync_edits WHERE rowid = NEW.rowid AND open_op = 'update')\n" +
    "     AND NEW.op = 'update';\n  -- Update then update:",
  ],
  [
    "edits merged into an op already sent",
    "AND o.state = 'queued' AND o.format = 1),\n         open_op",
    "AND o.format = 1),\n         open_op",
  ],
  [
    "a create followed by an update that loses the update",
    "   WHERE e.rowid = NEW.rowid AND e.open_op = 'insert' AND NEW.op = 'update'",
    "   WHERE e.rowid = NEW.rowid AND e.open_op = 'insert' AND NEW.op = 'update' AND 0",
  ],
  [
    "a delete merged into an update queued before a child created under the row",
    "   WHERE rowid = NEW.rowid AND open_op = 'update' AND NEW.op = 'delete'\n     AND EXISTS",
    "   WHERE rowid = NEW.rowid AND open_op = 'update' AND NEW.op = 'delete'\n     AND 0 AND EXISTS",
    // An update, a child created under the row and its delete, with no send between: a rare sequence.
    200,
  ],
  [
    "a cancelled create that leaves the ops depending on it",
    "                  WHERE o.id = g.id\n                     OR EXISTS",
    "                  WHERE o.id = NEW.id\n                     OR 0 AND EXISTS",
  ],
];

for (const [name, from, to, runs = 50] of MUTANTS) {
  test(`the property fails an outbox with a wrong rule: ${name}`, async () => {
    const verdict = await checkOutboxProperty(mutant(from, to), { runs: Math.max(RUNS, runs), mutant: true });
    // SHOW_MUTANTS=1 prints why the property failed each mutant.
    if (Deno.env.get("SHOW_MUTANTS")) console.log(String(verdict.errorInstance).slice(0, 600));
    assert.ok(verdict.failed, `the property passed ${verdict.numRuns} runs of an outbox with ${name}`);
  });
}
