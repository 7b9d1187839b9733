/// <reference lib="dom" />
// What `npm run bench` runs in Chromium (scripts/bench/browser.mjs): pull pages applied into IndexedDB
// through the kit, the same rows written to IndexedDB directly in bulk with the same durability, and
// the heap while the kit syncs. The pages are made here, so the network is not measured: a fetch that
// answers the kit's pulls from them stands in for the function.
import { IndexedDbStorage, SyncClient } from "../mod.ts";

const BRANCH = "00000000-0000-4000-8000-0000000000b1";
const RM = "00000000-0000-4000-8000-0000000000c1";

/** Row `n` of the bench: a customer as the pull sends it, about 600 bytes of JSON. */
function customer(n: number) {
  const id = `00000000-0000-4000-8100-${n.toString(16).padStart(12, "0")}`;
  const at = new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString();
  return {
    id,
    name: `PT Nusantara Sejahtera ${n}`,
    customer_type: n % 4 === 0 ? "individual" : "company",
    industry: ["Manufacturing", "Retail", "Agriculture", "Logistics"][n % 4],
    email: `finance${n}@nusantara.example`,
    phone: `+62 21 ${String(5_000_000 + n)}`,
    address: `Jl. Jenderal Sudirman No. ${n % 300}, Jakarta Pusat`,
    city: ["Jakarta", "Surabaya", "Bandung", "Medan"][n % 4],
    tax_id: `01.234.567.8-${String(n % 1000).padStart(3, "0")}.000`,
    notes: `Met at the branch on ${at.slice(0, 10)}; follow up on the working-capital line.`,
    assigned_rm_id: RM,
    branch_id: BRANCH,
    version: 1 + (n % 3),
    created_at: at,
    updated_at: at,
    created_by: RM,
    updated_by: RM,
    deleted_at: null,
  };
}

/** Page `i` of `rows` rows in pages of `size`, as the function's pull answers it. */
function pageText(i: number, size: number, rows: number): string {
  const from = i * size;
  const to = Math.min(rows, from + size);
  const changes = [];
  for (let n = from; n < to; n++) changes.push({ table: "customers", op: "upsert", row: customer(n) });
  return JSON.stringify({
    changes,
    cursor: `page-${i + 1}`,
    has_more: to < rows,
    resync_required: false,
    server_time: new Date().toISOString(),
  });
}

/** The kit's pulls answered from `page(i)`: the cursor names the next page. */
function pullsFrom(page: (i: number) => string): typeof fetch {
  return (input, init) => {
    if (!String(input).endsWith("/pull")) return Promise.reject(new TypeError(`no ${input} in the bench`));
    const { cursor } = JSON.parse(String(init?.body)) as { cursor: string | null };
    const i = cursor === null ? 0 : Number(cursor.slice("page-".length));
    return Promise.resolve(new Response(page(i), { headers: { "content-type": "application/json" } }));
  };
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
}

/** The pages of a run, made before it starts: both sides parse the same text. */
let prepared: string[] = [];

/** Makes the pages of `rows` rows in pages of `size` (outside the timed part). */
function prepare(rows: number, size: number): number {
  prepared = Array.from({ length: Math.ceil(rows / size) }, (_, i) => pageText(i, size, rows));
  return prepared.length;
}

/**
 * Applies the prepared pages through the kit, from an empty store: a full pull (`sync()`), each page
 * written with its cursor in one strict transaction. Returns the time and the rows the store holds.
 */
async function kit(size: number): Promise<{ ms: number; rows: number }> {
  const name = `bench-kit-${crypto.randomUUID()}`;
  const storage = new IndexedDbStorage(name);
  const client = await SyncClient.open({
    url: "http://bench.invalid/functions/v1/sync",
    storage,
    accessToken: () => Promise.resolve("bench"),
    fetch: pullsFrom((i) => prepared[i]),
    autoSync: false,
    pullLimit: size,
  });
  const t = performance.now();
  const report = await client.sync();
  const ms = performance.now() - t;
  const rows = (await client.list("customers")).length;
  client.close();
  await deleteDatabase(name);
  if (report.status !== "idle") throw new Error(`the kit's sync ended ${report.status}`);
  return { ms, rows };
}

/**
 * The same pages written straight to IndexedDB: each page parsed, its rows put in the kit's record
 * shape with one request each, not waited on one by one, in one strict transaction per page.
 */
async function raw(
  pages: { length: number; at: (i: number) => string } = { length: prepared.length, at: (i) => prepared[i] },
): Promise<{ ms: number; rows: number }> {
  const name = `bench-raw-${crypto.randomUUID()}`;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("rows", { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const t = performance.now();
  for (let i = 0; i < pages.length; i++) {
    const page = JSON.parse(pages.at(i)) as { changes: { table: string; row: { id: string; version: number } }[] };
    const tx = db.transaction(["rows"], "readwrite", { durability: "strict" });
    const store = tx.objectStore("rows");
    for (const c of page.changes) {
      store.put({
        key: `${c.table}/${c.row.id}`,
        table: c.table,
        id: c.row.id,
        version: c.row.version,
        deleted: false,
        row: c.row,
        gen: 1,
      });
    }
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = tx.onerror = () => reject(tx.error);
    });
  }
  const ms = performance.now() - t;
  const rows = await new Promise<number>((resolve, reject) => {
    const req = db.transaction(["rows"], "readonly").objectStore("rows").count();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  db.close();
  await deleteDatabase(name);
  return { ms, rows };
}

type Side = "kit" | "raw";

/** Writes `rows` rows made page by page as they are asked for, through the kit or raw; `onPage` before each. */
async function writeOnDemand(side: Side, rows: number, size: number, onPage: () => void): Promise<number> {
  const page = (i: number) => {
    onPage();
    return pageText(i, size, rows);
  };
  if (side === "raw") {
    const pages = Math.ceil(rows / size);
    return (await raw({ length: pages, at: page })).rows;
  }
  const name = `bench-heap-${crypto.randomUUID()}`;
  const client = await SyncClient.open({
    url: "http://bench.invalid/functions/v1/sync",
    storage: new IndexedDbStorage(name),
    accessToken: () => Promise.resolve("bench"),
    fetch: pullsFrom(page),
    autoSync: false,
    pullLimit: size,
  });
  client.subscribe(onPage);
  const report = await client.sync();
  onPage();
  const count = (await client.list("customers")).length;
  client.close();
  await deleteDatabase(name);
  if (report.status !== "idle") throw new Error(`the kit's sync ended ${report.status}`);
  return count;
}

/**
 * The JS heap while `rows` rows are written through the kit or raw, each page made when it is asked
 * for (nothing held but what the writer holds), after a warm-up write of `warm` rows (the code the JIT
 * compiles is not what is measured). `peak`: the used heap sampled at each page and every few ms,
 * garbage V8 has not collected yet included. `live`: the used heap right after a forced collection
 * before each page, what the writer really holds. Needs Chromium's --enable-precise-memory-info and
 * --js-flags=--expose-gc.
 */
async function heap(side: Side, rows: number, size: number, warm: number) {
  prepared = [];
  const used = () => (performance as unknown as { memory: { usedJSHeapSize: number } }).memory.usedJSHeapSize;
  const gc = () => (globalThis as { gc?: () => void }).gc?.();
  if (warm > 0) await writeOnDemand(side, warm, size, () => {});
  gc();
  const before = used();
  let peak = before;
  const sample = () => {
    peak = Math.max(peak, used());
  };
  const timer = setInterval(sample, 2);
  const count = await writeOnDemand(side, rows, size, sample);
  clearInterval(timer);
  gc();
  const after = used();
  let live = 0;
  await writeOnDemand(side, rows, size, () => {
    gc();
    live = Math.max(live, used());
  });
  return { before, peak, live, after, rows: count };
}

Object.assign(globalThis, { bench: { prepare, kit, raw: () => raw(), heap } });
