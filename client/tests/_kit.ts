// Shared by the client kit's tests: clients on a memory or IndexedDB store, and a fetch that the
// tests can hold, drop or watch. The tests that talk to the real function import _helpers.ts from
// the function's tests (tokens, the database, the seed users) through _server.ts.
import { SyncClient, type SyncClientOptions } from "../mod.ts";
import { MemoryStorage } from "../memory.ts";
import { IndexedDbStorage } from "../indexeddb.ts";
import type { OutboxRecord, Storage } from "../store.ts";
import { IDBKeyRange, indexedDB } from "fake-indexeddb";

/** The two adapters, each a fresh store per call; IndexedDB is fake-indexeddb's, as in Node. */
export const adapters: { name: string; open: (name?: string) => Storage }[] = [
  { name: "memory", open: (name?: string) => new MemoryStorage(name) },
  {
    name: "indexeddb",
    open: (name = `test-${crypto.randomUUID()}`) => new IndexedDbStorage(name, { indexedDB, IDBKeyRange }),
  },
];

/** Deno's sanitizers would flag the shared database pool and the clients' channels; the tests share them on purpose. */
export function test(name: string, fn: () => void | Promise<void>) {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** A fetch that fails every call: for tests that never reach a server. */
export const noNetwork: typeof fetch = () => Promise.reject(new TypeError("no network in this test"));

/** A client that syncs only when told to, on `storage` (a fresh memory store by default). */
export async function offlineClient(
  storage: Storage = new MemoryStorage(),
  options: Partial<SyncClientOptions> = {},
): Promise<SyncClient> {
  return await SyncClient.open({
    url: "http://127.0.0.1:9/functions/v1/sync",
    storage,
    accessToken: () => Promise.resolve("no token"),
    fetch: noNetwork,
    autoSync: false,
    ...options,
  });
}

/** The outbox as stored, in send order. */
export async function outbox(storage: Storage): Promise<OutboxRecord[]> {
  return await storage.transaction("readonly", (tx) => tx.getAll("outbox"));
}

/** The outbox as the wire would carry it, without the bookkeeping. */
export async function queued(storage: Storage) {
  return (await outbox(storage)).map((o) => ({
    op: o.op,
    table: o.table,
    id: o.id,
    ...(o.base_version !== undefined ? { base_version: o.base_version } : {}),
    ...(o.data ? { data: o.data } : {}),
    ...(o.base ? { base: o.base } : {}),
  }));
}
