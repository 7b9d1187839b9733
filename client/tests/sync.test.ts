// How the client drives a sync against answers it cannot control (scripted here): backoff with full
// jitter and the server's Retry-After, permanent errors not retried, a 413 halved down to the op at
// fault, the triggers of an automatic sync.
import assert from "node:assert/strict";
import { MemoryStorage } from "../memory.ts";
import { offlineClient, test } from "./_kit.ts";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Promise.resolve(
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } }),
  );

const emptyPull = {
  server_time: "2026-01-01T00:00:00Z",
  changes: [],
  cursor: "c",
  has_more: false,
  resync_required: false,
};

test("the backoff is full jitter over a capped exponential, and the server's Retry-After wins", async () => {
  const client = await offlineClient(new MemoryStorage(), { backoff: { baseMs: 100, maxMs: 1000 }, random: () => 0.5 });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => client.backoffDelay(n)), [50, 100, 200, 400, 500, 500]);
  const top = await offlineClient(new MemoryStorage(), { backoff: { baseMs: 100, maxMs: 1000 }, random: () => 0.999 });
  assert.ok(top.backoffDelay(10) < 1000);
  assert.equal(client.backoffDelay(0, 7000), 1000, "capped too");
  assert.equal(client.backoffDelay(0, 300), 300);
  let calls = 0;
  const busy = await offlineClient(new MemoryStorage(), {
    backoff: { baseMs: 100, maxMs: 60_000 },
    fetch: () => (calls++, json(503, { error: "internal", message: "busy" }, { "retry-after": "7" })),
  });
  const before = Date.now();
  assert.equal((await busy.sync()).status, "offline");
  const wait = busy.state.retryAt! - before;
  assert.ok(wait >= 7000 && wait < 8000, `the retry is due after Retry-After's 7 s: ${wait}`);
  assert.equal(calls, 1);
});

test("a permanent error stops the sync as an error, and schedules no retry", async () => {
  const client = await offlineClient(new MemoryStorage(), {
    fetch: () => json(426, { error: "unsupported_protocol", message: "protocol 2 is not served", supported: [3] }),
  });
  await client.insert("customers", { name: "PT Masa Depan" });
  assert.equal((await client.sync()).status, "error");
  assert.deepEqual(client.state.error, { code: "unsupported_protocol", message: "protocol 2 is not served" });
  assert.equal(client.state.retryAt, null);
  assert.equal(client.state.pending, 1, "the edit is kept");
});

test("a refresh that cannot reach the server leaves the client offline, not signed out", async () => {
  const client = await offlineClient(new MemoryStorage(), {
    fetch: () => json(401, { error: "token_expired", message: "expired" }),
    refreshToken: () => Promise.reject(new TypeError("network down")),
  });
  await client.insert("customers", { name: "PT Tanpa Sinyal" });
  assert.equal((await client.sync()).status, "offline");
});

test("a 413 halves the batch until the op at fault is alone, holds it aside, and sends the rest", async () => {
  const sizes: number[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    fetch: (input, init) => {
      if (String(input).endsWith("/pull")) return json(200, emptyPull);
      const ops = JSON.parse(String(init?.body)).ops as { op_id: string; id: string; data: { name: string } }[];
      sizes.push(ops.length);
      if (ops.some((o) => o.data.name === "PT Besar")) return json(413, { error: "too_large", message: "too big" });
      return json(200, {
        server_time: "2026-01-01T00:00:00Z",
        results: ops.map((o) => ({
          op_id: o.op_id,
          status: "applied",
          retryable: false,
          row: { id: o.id, version: 1 },
        })),
      });
    },
  });
  for (const name of ["PT A", "PT B", "PT Besar", "PT C", "PT D"]) await client.insert("customers", { name });
  assert.equal((await client.sync()).status, "idle");
  assert.deepEqual(client.state.quarantined.map((q) => q.code), ["too_large"]);
  assert.equal(client.state.pending, 1);
  assert.equal(sizes[0], 5);
  assert.ok(sizes.includes(1), `halved down to one: ${sizes}`);
});

test("with autoSync, local edits start a sync after the debounce, once for a burst", async () => {
  let pushes = 0;
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 0,
    debounceMs: 30,
    fetch: (input, init) => {
      if (String(input).endsWith("/pull")) return json(200, emptyPull);
      pushes++;
      const ops = JSON.parse(String(init?.body)).ops as { op_id: string; id: string }[];
      return json(200, {
        server_time: "2026-01-01T00:00:00Z",
        results: ops.map((o) => ({
          op_id: o.op_id,
          status: "applied",
          retryable: false,
          row: { id: o.id, version: 1 },
        })),
      });
    },
  });
  await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < 5; i++) await client.insert("customers", { name: `PT ${i}` });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(pushes, 1);
  assert.equal(client.state.pending, 0);
  client.close();
});

test("after a network failure the client asks /sync/health, and syncs on its own once it answers", async () => {
  let down = true;
  const routes: string[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 0,
    debounceMs: 1,
    backoff: { baseMs: 5, maxMs: 20 },
    fetch: (input, init) => {
      const route = String(input).replace(/^.*\/sync/, "");
      routes.push(route);
      if (down) return Promise.reject(new TypeError("network down"));
      if (route === "/health") {
        return json(200, { status: "ok", server_time: "2026-01-01T00:00:00Z", protocols: [1, 2] });
      }
      if (route === "/pull") return json(200, emptyPull);
      const ops = JSON.parse(String(init?.body)).ops as { op_id: string; id: string }[];
      return json(200, {
        server_time: "2026-01-01T00:00:00Z",
        results: ops.map((o) => ({
          op_id: o.op_id,
          status: "applied",
          retryable: false,
          row: { id: o.id, version: 1 },
        })),
      });
    },
  });
  await client.insert("customers", { name: "PT Sinyal" });
  for (let i = 0; i < 50 && !routes.includes("/health"); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(client.state.status, "offline");
  assert.ok(routes.includes("/health"), `health was asked: ${routes}`);
  down = false;
  for (let i = 0; i < 100 && client.state.pending; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(client.state.pending, 0);
  assert.equal(client.state.status, "idle");
  const firstPushAfter = routes.lastIndexOf("/health");
  assert.ok(routes.indexOf("/push", firstPushAfter) > firstPushAfter, "the push followed a health answer");
  client.close();
});
