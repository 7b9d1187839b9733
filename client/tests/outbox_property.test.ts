// The kit's outbox under the project's shared outbox property (supabase/functions/tests/_outbox_property.ts),
// the one the Flutter guide's SQL outbox is held to: its edits interleave with unanswered batches and
// lost answers, and the rows the app reads must end as the server holds them. Here the property drives
// the kit's outbox functions on a memory store directly, without the SyncClient's sync loop.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkOutboxProperty,
  type OutboxUnderTest,
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

test("the kit's outbox holds to the shared outbox property: interleaved with unanswered and lost batches, it leaves the server as pushing one by one", async () => {
  const verdict = await checkOutboxProperty(() => new KitOutbox());
  assert.ok(!verdict.failed, fc.defaultReportMessage(verdict));
});
