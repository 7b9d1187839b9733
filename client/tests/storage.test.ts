// The local store, on both adapters: a transaction commits whole or not at all, so a pull page, its
// cursor and what follows from it land together; a schema upgrade in another tab closes this
// connection and is reported; queue formats of older kits are upgraded on open, newer ones kept.
import assert from "node:assert/strict";
import { IDBKeyRange, indexedDB } from "fake-indexeddb";
import { IndexedDbStorage, SCHEMA_VERSION, StorageOutdatedError } from "../indexeddb.ts";
import { SyncClient } from "../mod.ts";
import type { Storage, Tx } from "../store.ts";
import { adapters, offlineClient, outbox, test } from "./_kit.ts";

/** A store whose transactions fail, as a crash would end them, once `crash` is set and they write a row. */
function crashing(storage: Storage) {
  const state = { crash: false };
  const wrapped: Storage = {
    name: storage.name,
    persist: () => storage.persist(),
    close: () => storage.close(),
    transaction: (mode, fn) =>
      storage.transaction(mode, (tx) => {
        const t: Tx = {
          ...tx,
          put: (store, value) => {
            if (state.crash && store === "rows") {
              throw new Error("the app was killed");
            }
            return tx.put(store, value);
          },
        };
        return fn(t);
      }),
  };
  return { storage: wrapped, state };
}

/** A function that answers pulls from a list of pages, and pushes with "applied". */
function server(pages: Record<string, unknown>[]): typeof fetch {
  return (input, init) => {
    const url = String(input);
    if (url.endsWith("/pull")) {
      const page = pages.shift() ?? { changes: [], cursor: "end", has_more: false, resync_required: false };
      return Promise.resolve(Response.json({ server_time: "2026-01-01T00:00:00Z", resync_required: false, ...page }));
    }
    const body = JSON.parse(String(init?.body));
    return Promise.resolve(Response.json({
      server_time: "2026-01-01T00:00:00Z",
      results: body.ops.map((o: { op_id: string; id: string }) => ({
        op_id: o.op_id,
        status: "applied",
        retryable: false,
        row: { id: o.id, version: 1 },
      })),
    }));
  };
}

const row = (n: number) => ({ id: `00000000-0000-4000-8100-00000000000${n}`, version: 1, name: `PT ${n}` });

for (const adapter of adapters) {
  test(`a crash while a pull page is written leaves neither its rows nor its cursor (${adapter.name})`, async () => {
    const { storage, state } = crashing(adapter.open());
    const pages = [
      { changes: [{ table: "customers", op: "upsert", row: row(1) }], cursor: "c1", has_more: true },
      { changes: [{ table: "customers", op: "upsert", row: row(2) }], cursor: "c2", has_more: false },
    ];
    let pulls = 0;
    const answer = server(pages);
    const client = await offlineClient(storage, {
      fetch: (input, init) => {
        if (String(input).endsWith("/pull") && ++pulls === 2) state.crash = true;
        return answer(input, init);
      },
    });
    await assert.rejects(client.sync(), /the app was killed/);
    assert.deepEqual((await client.list("customers")).map((r) => r.name), ["PT 1"], "the first page is in");
    const cursor = await storage.transaction("readonly", (tx) => tx.get("meta", "cursor"));
    assert.equal(cursor?.value, "c1", "the cursor is the first page's: the second page comes again");
  });

  test(`a store is read in slices: the keys after one, at most so many, within a prefix or not (${adapter.name})`, async () => {
    const storage = adapter.open();
    const keys = ["a/1", "a/2", "a/3", "b/1", "b/2", "c/1"];
    await storage.transaction("readwrite", async (tx) => {
      for (const key of keys) await tx.put("meta", { key, value: key });
    });
    const read = (prefix?: string, slice?: { after?: string; limit?: number }) =>
      storage.transaction("readonly", async (tx) => (await tx.getAll("meta", prefix, slice)).map((r) => r.key));
    assert.deepEqual(await read(), keys);
    assert.deepEqual(await read(undefined, { limit: 2 }), ["a/1", "a/2"]);
    assert.deepEqual(await read(undefined, { after: "a/2", limit: 2 }), ["a/3", "b/1"]);
    assert.deepEqual(await read(undefined, { after: "c/1" }), []);
    assert.deepEqual(await read("b/", { after: "a/2" }), ["b/1", "b/2"], "an after below the prefix is the prefix");
    assert.deepEqual(await read("b/", { after: "b/1" }), ["b/2"]);
    assert.deepEqual(await read("a/", { after: "b/1" }), [], "an after past the prefix leaves nothing");
    assert.deepEqual(await read("a/", { limit: 1 }), ["a/1"]);
  });

  test(`a full pull over rows from before removes, slice after slice, every row it did not bring (${adapter.name})`, async () => {
    const storage = adapter.open();
    const ids = Array.from({ length: 1203 }, (_, i) => `00000000-0000-4000-8100-${String(i).padStart(12, "0")}`);
    const upsert = (id: string) => ({ table: "customers", op: "upsert", row: { id, version: 1, name: id } });
    const client = await offlineClient(storage, {
      fetch: server([
        { changes: ids.map(upsert), cursor: "c1", has_more: false },
        // The next sync: the server has lost the cursor's place; the full pull brings every third row.
        { changes: [], cursor: null, has_more: false, resync_required: true },
        { changes: ids.filter((_, i) => i % 3 === 0).map(upsert), cursor: "c2", has_more: false },
      ]),
    });
    await client.sync();
    assert.equal((await client.list("customers")).length, ids.length);
    await client.sync();
    const left = (await client.list("customers")).map((r) => r.id);
    assert.deepEqual(left, ids.filter((_, i) => i % 3 === 0));
  });

  test(`a page that names a row twice is applied in its order (${adapter.name})`, async () => {
    const storage = adapter.open();
    const id = "00000000-0000-4000-8100-0000000000b1";
    const other = "00000000-0000-4000-8100-0000000000b2";
    const client = await offlineClient(storage, {
      fetch: server([
        {
          changes: [
            { table: "customers", op: "upsert", row: { id, version: 3, name: "three" } },
            { table: "customers", op: "upsert", row: { id, version: 2, name: "two" } },
            { table: "customers", op: "upsert", row: { id: other, version: 1, name: "kept" } },
            { table: "customers", op: "evict", id: other },
            { table: "customers", op: "upsert", row: { id: other, version: 1, name: "back" } },
          ],
          cursor: "c1",
          has_more: false,
        },
      ]),
    });
    await client.sync();
    assert.equal((await client.get("customers", id))?.name, "three", "an older version after a newer one is ignored");
    assert.equal((await client.get("customers", other))?.name, "back", "a row sent after its eviction is kept");
  });

  test(`a readwrite transaction that throws writes nothing (${adapter.name})`, async () => {
    const storage = adapter.open();
    await assert.rejects(
      storage.transaction("readwrite", async (tx) => {
        await tx.put("meta", { key: "a", value: 1 });
        throw new Error("stop");
      }),
      /stop/,
    );
    assert.equal(await storage.transaction("readonly", (tx) => tx.get("meta", "a")), undefined);
  });

  test(`outbox records of an older format are upgraded on open, those of a newer one are kept and reported (${adapter.name})`, async () => {
    const storage = adapter.open();
    const id = "00000000-0000-4000-8100-0000000000a1";
    await storage.transaction("readwrite", async (tx) => {
      // Format 0: the kit before formats were recorded, with no format, protocol or sent.
      await tx.put(
        "outbox",
        {
          seq: 1,
          op_id: crypto.randomUUID(),
          table: "customers",
          op: "insert",
          id,
          data: { name: "PT Lama" },
        } as never,
      );
      await tx.put("outbox", {
        seq: 2,
        format: 99,
        op_id: "00000000-0000-4000-8200-000000000099",
        table: "customers",
        op: "update",
        id: "00000000-0000-4000-8100-0000000000a2",
        protocol: 2,
        sent: false,
      });
    });
    const client = await offlineClient(storage);
    const [old, future] = await outbox(storage);
    assert.deepEqual([old.format, old.protocol, old.sent], [1, 2, true], "upgraded, and never coalesced into");
    assert.equal(future.format, 99, "untouched");
    assert.deepEqual(client.state.quarantined.map((q) => [q.id, q.code]), [[future.id, "unreadable_format"]]);
    await client.update("customers", id, { phone: "2" });
    assert.equal((await outbox(storage)).length, 3, "the edit is queued behind the upgraded op");
    assert.equal((await client.get("customers", id))?.phone, "2");
  });
}

test("another tab's schema upgrade closes this connection, reports it, and an older kit cannot reopen", async () => {
  const name = `tabs-${crypto.randomUUID()}`;
  const storage = new IndexedDbStorage(name, { indexedDB, IDBKeyRange });
  const client = await SyncClient.open({
    url: "http://127.0.0.1:9/sync",
    storage,
    accessToken: () => Promise.resolve(null),
    autoSync: false,
  });
  await client.insert("customers", { name: "PT Sebelum" });
  const upgraded = await new Promise<{ close(): void }>((resolve, reject) => {
    const req = indexedDB.open(name, SCHEMA_VERSION + 1);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error("blocked: the old connection did not close"));
  });
  assert.equal(client.state.status, "error");
  assert.equal(client.state.error?.code, "store_upgraded");
  upgraded.close();
  await assert.rejects(client.list("customers"), StorageOutdatedError);
  client.close();
});

test("two tabs on one store: their syncs run one at a time, and each sees the other's edits", async () => {
  const storage = adapters[1].open();
  let running = 0, overlap = 0;
  const answer = server([]);
  const slow: typeof fetch = async (input, init) => {
    running++;
    overlap = Math.max(overlap, running);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    return await answer(input, init);
  };
  const a = await offlineClient(storage, { fetch: slow });
  const b = await offlineClient(storage, { fetch: slow });
  const seen: number[] = [];
  b.subscribe((s) => seen.push(s.pending));
  await a.insert("customers", { name: "PT Dari Tab A" });
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(seen.includes(1), `tab b saw the pending edit: ${seen}`);
  assert.equal((await b.list("customers"))[0]?.name, "PT Dari Tab A");
  await Promise.all([a.sync(), b.sync(), a.sync()]);
  assert.equal(overlap, 1, "never two requests at once");
  a.close();
  b.close();
});
