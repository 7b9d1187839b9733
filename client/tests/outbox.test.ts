// The outbox's coalescing rules and local refusals, on the memory store, with no server: what the
// queue holds after each sequence of local edits, and what the app reads meanwhile.
import assert from "node:assert/strict";
import { LocalEditError } from "../mod.ts";
import { putServerRow } from "../outbox.ts";
import { adapters, offlineClient, outbox, queued, test as kitTest } from "./_kit.ts";

for (const adapter of adapters) {
  const test = (name: string, fn: () => Promise<void>) => kitTest(`${name} (${adapter.name})`, fn);
  const newStore = () => adapter.open();

  const customer = "00000000-0000-4000-8100-0000000000c1";

  /** A store that holds `customer` at version 3, as a pull left it. */
  const pulled = async () => {
    const storage = newStore();
    await storage.transaction(
      "readwrite",
      (tx) =>
        putServerRow(tx, "customers", { id: customer, version: 3, name: "PT Lama", phone: "1", city: "Jakarta" }, 0),
    );
    return storage;
  };

  test("create then update offline is one create with the merged data", async () => {
    const storage = newStore();
    const client = await offlineClient(storage);
    const id = await client.insert("customers", { name: "PT Baru", phone: "1" });
    await client.update("customers", id, { phone: "2", city: "Bogor" });
    assert.deepEqual(await queued(storage), [
      { op: "insert", table: "customers", id, data: { name: "PT Baru", phone: "2", city: "Bogor" } },
    ]);
    assert.deepEqual(await client.get("customers", id), { id, version: 0, name: "PT Baru", phone: "2", city: "Bogor" });
  });

  test("create then delete offline leaves nothing to send, and the ops that depend on the create go with it", async () => {
    const storage = newStore();
    const client = await offlineClient(storage);
    const id = await client.insert("customers", { name: "PT Sebentar" });
    const kp = await client.insert("key_persons", { customer_id: id, name: "Ibu Sari" });
    await client.insert("activities", { customer_id: id, activity_type: "call", subject: "Halo" });
    await client.update("key_persons", kp, { position: "CEO" });
    const other = await client.insert("customers", { name: "PT Tetap" });
    await client.delete("customers", id);
    assert.deepEqual((await queued(storage)).map((o) => [o.op, o.id]), [["insert", other]]);
    assert.equal(await client.get("customers", id), undefined);
    assert.deepEqual(await client.list("key_persons"), []);
    assert.equal(client.state.pending, 1);
  });

  test("update then update is one update on the first base_version, keeping the first base values", async () => {
    const storage = await pulled();
    const client = await offlineClient(storage);
    await client.update("customers", customer, { phone: "2" });
    await client.update("customers", customer, { phone: "3", city: "Bandung" });
    assert.deepEqual(await queued(storage), [
      {
        op: "update",
        table: "customers",
        id: customer,
        base_version: 3,
        data: { phone: "3", city: "Bandung" },
        base: { phone: "1", city: "Jakarta" },
      },
    ]);
    assert.deepEqual(await client.get("customers", customer), {
      id: customer,
      version: 3,
      name: "PT Lama",
      phone: "3",
      city: "Bandung",
    });
  });

  test("update then delete is a delete on the first base_version", async () => {
    const storage = await pulled();
    const client = await offlineClient(storage);
    await client.update("customers", customer, { phone: "2" });
    await client.delete("customers", customer);
    assert.deepEqual(await queued(storage), [{ op: "delete", table: "customers", id: customer, base_version: 3 }]);
    assert.equal(await client.get("customers", customer), undefined);
  });

  test("update then delete queues the delete behind a child created since, so the child is not created under a deleted row", async () => {
    const storage = await pulled();
    const client = await offlineClient(storage);
    await client.update("customers", customer, { phone: "2" });
    const kp = await client.insert("key_persons", { customer_id: customer, name: "Ibu Sari" });
    await client.delete("customers", customer);
    assert.deepEqual((await queued(storage)).map((o) => [o.op, o.id, o.base_version]), [
      ["update", customer, 3],
      ["insert", kp, undefined],
      ["delete", customer, 3],
    ]);
    assert.equal(await client.get("customers", customer), undefined);
  });

  test("an edit of a deleted row, of a row the device does not hold, or of a server column is refused locally", async () => {
    const storage = await pulled();
    const client = await offlineClient(storage);
    await client.delete("customers", customer);
    await assert.rejects(client.update("customers", customer, { phone: "9" }), {
      name: "LocalEditError",
      code: "deleted",
    });
    await assert.rejects(client.delete("customers", customer), { code: "deleted" });
    await assert.rejects(
      client.update("customers", "00000000-0000-4000-8100-0000000000ff", { phone: "9" }),
      (err: unknown) => err instanceof LocalEditError && err.code === "not_found",
    );
    await assert.rejects(client.insert("customers", { name: "x" }, customer), { code: "already_exists" });
    await assert.rejects(client.insert("customers", { name: "x", version: 7 }), { code: "invalid", field: "version" });
    const tombstoned = await pulled();
    await tombstoned.transaction(
      "readwrite",
      (tx) => putServerRow(tx, "customers", { id: customer, version: 4, deleted_at: "2026-01-01T00:00:00Z" }, 0),
    );
    const other = await offlineClient(tombstoned);
    await assert.rejects(other.update("customers", customer, { phone: "9" }), { code: "deleted" });
    assert.deepEqual(await queued(storage), [{ op: "delete", table: "customers", id: customer, base_version: 3 }]);
  });

  test("an op once sent is never changed: the next edit is queued behind it", async () => {
    const storage = await pulled();
    const client = await offlineClient(storage);
    await client.update("customers", customer, { phone: "2" });
    await storage.transaction("readwrite", async (tx) => {
      const [op] = await tx.getAll("outbox");
      await tx.put("outbox", { ...op, sent: true });
    });
    await client.update("customers", customer, { city: "Medan" });
    await client.update("customers", customer, { phone: "4" });
    const ops = await outbox(storage);
    assert.deepEqual(ops.map((o) => [o.sent, o.data, o.base_version]), [
      [true, { phone: "2" }, 3],
      [false, { city: "Medan", phone: "4" }, 3],
    ]);
    assert.deepEqual(ops[1].base, { city: "Jakarta", phone: "2" }, "the second op starts from the first one's values");
    assert.equal((await client.get("customers", customer))?.phone, "4");
  });
}
