// The kit's outbox under the project's outbox property (supabase/functions/tests/_outbox_property.ts),
// the one the Flutter guide's SQL outbox is held to: its edits interleave with unanswered batches and
// lost answers, customers are deleted with their key persons still on the device, and the rows the
// app reads must end as the server holds them. The property drives the kit's outbox functions on a
// memory store directly, without the SyncClient's sync loop. FC_SEED and FC_RUNS change the seed and
// the number of cases. And the property is not a formality: the kit with a wrong rule fails it.
import assert from "node:assert/strict";
import {
  assertHolds,
  checkOutboxProperty,
  type OutboxUnderTest,
  RUNS,
  type WireOp,
} from "../../supabase/functions/tests/_outbox_property.ts";
import { MemoryStorage } from "../memory.ts";
import { applyOps, type Edit, putServerRow, queueEdit, settle, takeBatch, visible, wireOf } from "../outbox.ts";
import type { OpResult, ServerRow } from "../protocol.ts";
import { type OutboxRecord, rowKey } from "../store.ts";
import { test } from "./_kit.ts";

class KitOutbox implements OutboxUnderTest {
  storage = new MemoryStorage();
  #batch: OutboxRecord[] = [];

  receive(table: string, row: Record<string, unknown>) {
    return this.storage.transaction("readwrite", (tx) => putServerRow(tx, table, row as ServerRow, 0));
  }

  async edit(e: Edit) {
    await this.storage.transaction("readwrite", (tx) => queueEdit(tx, e, () => crypto.randomUUID()));
  }

  async pending() {
    this.#batch = await this.storage.transaction("readwrite", (tx) => takeBatch(tx, { ops: 500, bytes: 1 << 20 }));
    return this.#batch.map(wireOf) as WireOp[];
  }

  async ack(results: unknown[]) {
    const batch = this.#batch;
    await this.storage.transaction("readwrite", async (tx) => {
      for (const [i, op] of batch.entries()) await settle(tx, op, results[i] as OpResult, new Date().toISOString());
    });
  }

  read(table: string, id: string) {
    return this.storage.transaction("readonly", async (tx) => {
      const ops = (await tx.getAll("outbox")).filter((o) => o.table === table && o.id === id);
      return visible(applyOps(await tx.get("rows", rowKey(table, id)), ops));
    });
  }
}

test("the kit's outbox holds to the outbox property: interleaved with unanswered and lost batches, it leaves the server as pushing one by one", async () => {
  assertHolds(await checkOutboxProperty(() => new KitOutbox()));
});

/** The kit with one rule changed around its outbox functions, to show the property catches it. */
const MUTANTS: [string, () => OutboxUnderTest][] = [
  [
    "edits merged into an op already sent",
    () =>
      new class extends KitOutbox {
        override async pending() {
          const ops = await super.pending();
          await this.storage.transaction("readwrite", async (tx) => {
            for (const op of await tx.getAll("outbox")) await tx.put("outbox", { ...op, sent: false });
          });
          return ops;
        }
      }(),
  ],
  [
    "a cancelled create that leaves the ops depending on it",
    () =>
      new class extends KitOutbox {
        override async edit(e: Edit) {
          await this.storage.transaction("readwrite", async (tx) => {
            const before = await tx.getAll("outbox");
            const dropped = await queueEdit(tx, e, () => crypto.randomUUID());
            for (const op of before) if (dropped.slice(1).includes(op.op_id)) await tx.put("outbox", op);
          });
        }
      }(),
  ],
  [
    "an answer that does not move the ops queued behind it to the version it made",
    () =>
      new class extends KitOutbox {
        override async ack(results: unknown[]) {
          await super.ack((results as OpResult[]).map((r) => ({ ...r, status: r.status, row: undefined })));
        }
      }(),
  ],
];

for (const [name, make] of MUTANTS) {
  test(`the property fails the kit's outbox with a wrong rule: ${name}`, async () => {
    const verdict = await checkOutboxProperty(make, { runs: Math.max(RUNS, 50), mutant: true });
    // SHOW_MUTANTS=1 prints why the property failed each mutant.
    if (Deno.env.get("SHOW_MUTANTS")) console.log(String(verdict.errorInstance).slice(0, 600));
    assert.ok(verdict.failed, `the property passed ${verdict.numRuns} runs of the kit with ${name}`);
  });
}
