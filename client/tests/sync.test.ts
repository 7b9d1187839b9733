// How the client drives a sync against answers it cannot control (scripted here): backoff with full
// jitter and the server's Retry-After, permanent errors not retried, a 413 halved down to the op at
// fault, the triggers of an automatic sync.
import assert from "node:assert/strict";
import type { SyncClient } from "../client.ts";
import { MemoryStorage } from "../memory.ts";
import { offlineClient, test } from "./_kit.ts";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  Promise.resolve(
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } }),
  );

/** The function's answer to a push body: every op applied, each row at version 1. */
const applied = (init?: RequestInit) => {
  const ops = JSON.parse(String(init?.body)).ops as { op_id: string; id: string }[];
  return json(200, {
    server_time: "2026-01-01T00:00:00Z",
    results: ops.map((o) => ({ op_id: o.op_id, status: "applied", retryable: false, row: { id: o.id, version: 1 } })),
  });
};

/** How far off the retry each of five syncs in a row schedules, each ending in `status`. */
async function retryWaits(client: SyncClient, status: string): Promise<number[]> {
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    assert.equal((await client.sync()).status, status);
    waits.push(client.state.retryAt! - before);
  }
  return waits;
}

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
      return applied(init);
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
      return applied(init);
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

const failedAnswer = (init?: RequestInit) => {
  const ops = JSON.parse(String(init?.body)).ops as { op_id: string }[];
  return json(200, {
    server_time: "2026-01-01T00:00:00Z",
    results: ops.map((o) => ({ op_id: o.op_id, status: "failed", code: "busy", message: "busy", retryable: true })),
  });
};

test("an op the server keeps failing is tried again ever later, not within the first backoff step each time", async () => {
  const client = await offlineClient(new MemoryStorage(), {
    backoff: { baseMs: 100, maxMs: 100_000 },
    random: () => 0.999,
    fetch: (input, init) => String(input).endsWith("/pull") ? json(200, emptyPull) : failedAnswer(init),
  });
  await client.insert("customers", { name: "PT Selalu Sibuk" });
  const waits = await retryWaits(client, "idle");
  assert.ok(waits[4] >= 1500, `the fifth wait is about 0.999 * 100 ms * 2^4: ${waits}`);
  assert.equal(client.state.pending, 1, "the edit is kept");
});

test("before the server's Retry-After is due, neither local edits nor the interval send a request", async () => {
  let calls = 0;
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 5,
    debounceMs: 1,
    fetch: () => (calls++, json(503, { error: "internal", message: "busy" }, { "retry-after": "30" })),
  });
  for (let i = 0; i < 50 && client.state.status !== "offline"; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(client.state.status, "offline");
  const before = calls;
  await client.insert("customers", { name: "PT Sabar" });
  await new Promise((r) => setTimeout(r, 60));
  client.close();
  assert.equal(calls, before, "no request before the Retry-After");
  assert.equal(client.state.pending, 1);
});

test("an explicit sync() still goes at once during a Retry-After wait", async () => {
  let calls = 0;
  const client = await offlineClient(new MemoryStorage(), {
    fetch: () => (calls++, json(503, { error: "internal", message: "busy" }, { "retry-after": "30" })),
  });
  await client.sync();
  await client.sync();
  assert.equal(calls, 2);
});

test("an answer that is not the function's (a captive portal's page) counts as offline, is retried, and holds no op aside", async () => {
  for (const status of [200, 400]) {
    const client = await offlineClient(new MemoryStorage(), {
      fetch: () =>
        Promise.resolve(
          new Response("<html>Sign in to the hotel Wi-Fi</html>", { status, headers: { "content-type": "text/html" } }),
        ),
    });
    await client.insert("customers", { name: "PT Hotel" });
    assert.equal((await client.sync()).status, "offline", `status ${status}`);
    assert.notEqual(client.state.retryAt, null, `a retry is scheduled (${status})`);
    assert.deepEqual(client.state.quarantined, [], `nothing held aside (${status})`);
    assert.equal(client.state.pending, 1);
  }
});

test("a change heard from another tab while this tab's store fails leaves no promise rejected unhandled", async () => {
  const name = `tabs-${crypto.randomUUID()}`;
  const failing = new MemoryStorage(name);
  const tab = await offlineClient(failing);
  const other = await offlineClient(new MemoryStorage(name));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled.push(e.reason);
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    (failing as { transaction: unknown }).transaction = () =>
      Promise.reject(new DOMException("the database connection is closing", "InvalidStateError"));
    await other.insert("customers", { name: "PT Tab Lain" });
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    tab.close();
    other.close();
  }
  assert.deepEqual(unhandled, []);
  assert.equal(tab.state.status, "error");
  assert.equal(tab.state.error?.code, "InvalidStateError");
});

test("a Retry-After of 0 (or in the past) does not retry at once forever: the backoff still grows", async () => {
  const client = await offlineClient(new MemoryStorage(), {
    backoff: { baseMs: 100, maxMs: 100_000 },
    random: () => 0.999,
    fetch: () => json(503, { error: "internal", message: "busy" }, { "retry-after": "0" }),
  });
  await client.insert("customers", { name: "PT Nol Detik" });
  const waits = await retryWaits(client, "offline");
  assert.ok(waits[4] >= 1500, `the fifth wait is about 0.999 * 100 ms * 2^4: ${waits}`);
});

test("an access token that cannot be had (the session's store unreachable) leaves the client offline, and sync() resolves", async () => {
  const client = await offlineClient(new MemoryStorage(), {
    accessToken: () => Promise.reject(new TypeError("the session could not be read")),
  });
  await client.insert("customers", { name: "PT Sesi Hilang" });
  const report = await client.sync();
  assert.equal(report.status, "offline");
  assert.notEqual(client.state.retryAt, null, "a retry is scheduled");
  assert.equal(client.state.pending, 1);
});

test("a batch stays within maxBatchBytes counted in UTF-8 bytes, the envelope included", async () => {
  const bodies: string[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    maxBatchBytes: 2000,
    fetch: (input, init) => {
      if (String(input).endsWith("/pull")) return json(200, emptyPull);
      bodies.push(String(init?.body));
      return applied(init);
    },
  });
  for (let i = 0; i < 12; i++) {
    await client.insert("customers", { name: `Toko Kue 蛋糕店 ${i}`, notes: "🎂".repeat(60) });
  }
  assert.equal((await client.sync()).status, "idle");
  const sizes = bodies.map((b) => new TextEncoder().encode(b).length);
  assert.ok(sizes.length > 1, `several batches: ${sizes}`);
  assert.ok(sizes.every((n) => n <= 2000), `every body within 2000 bytes: ${sizes}`);
});

test("a 400 that names the body, not an op, stops the sync as an error and holds no op aside", async () => {
  let pushes = 0;
  const client = await offlineClient(new MemoryStorage(), {
    fetch: (input) => {
      if (String(input).endsWith("/pull")) return json(200, emptyPull);
      pushes++;
      return json(400, {
        error: "invalid_request",
        message: "the request does not match the schema",
        details: [{ path: ["client_id"], message: "expected a uuid" }],
      });
    },
  });
  for (const name of ["PT Satu", "PT Dua", "PT Tiga", "PT Empat"]) await client.insert("customers", { name });
  assert.equal((await client.sync()).status, "error");
  assert.deepEqual(client.state.error, { code: "invalid_request", message: "the request does not match the schema" });
  assert.deepEqual(client.state.quarantined, [], "no op is at fault");
  assert.equal(client.state.pending, 4);
  assert.equal(pushes, 1, "one request, not one per op");
});

test("a sync asked for while the client is waiting on /sync/health leaves one retry chain, not two", async () => {
  const healths: ((err: Error) => void)[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 0,
    backoff: { baseMs: 5, maxMs: 5 },
    random: () => 0.999,
    fetch: (input) =>
      String(input).endsWith("/health")
        ? new Promise<Response>((_, reject) => healths.push(reject))
        : Promise.reject(new TypeError("network down")),
  });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    await until(() => healths.length === 1);
    assert.equal(healths.length, 1, "the first retry waits on /sync/health");
    assert.equal((await client.sync()).status, "offline");
    await new Promise((r) => setTimeout(r, 40));
    for (const fail of healths.splice(0)) fail(new TypeError("network down"));
    await until(() => healths.length >= 1);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(healths.length, 1, "one /sync/health at a time");
  } finally {
    client.close();
    for (const fail of healths.splice(0)) fail(new TypeError("closed"));
  }
});

test("a listener that throws neither fails the edit it hears of nor stops the sync; its error is reported", async () => {
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const client = await offlineClient(new MemoryStorage());
    client.subscribe((s) => {
      if (s.pending > 0) throw new Error("the UI broke");
    });
    const id = await client.insert("customers", { name: "PT UI Rusak" });
    assert.equal((await client.get("customers", id))?.name, "PT UI Rusak");
    assert.equal((await client.sync()).status, "offline");
    assert.equal(client.state.status, "offline", "the sync ended and says so");
    assert.ok(reported.length > 0 && reported.every((e) => (e as Error).message === "the UI broke"));
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

test("an onResult that throws does not stop the sync after its answer was settled", async () => {
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const client = await offlineClient(new MemoryStorage(), {
      onResult: () => {
        throw new Error("the log broke");
      },
      fetch: (input, init) => {
        if (String(input).endsWith("/pull")) return json(200, emptyPull);
        return applied(init);
      },
    });
    await client.insert("customers", { name: "PT Log Rusak" });
    assert.equal((await client.sync()).status, "idle");
    assert.equal(client.state.pending, 0);
    assert.equal(client.state.lastSyncedAt, "2026-01-01T00:00:00Z", "the pull ran too");
    assert.equal(reported.length, 1);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

test("with autoSync, an imported legacy queue starts a sync after the debounce, as a local edit does", async () => {
  const pushed: unknown[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 0,
    debounceMs: 5,
    fetch: (input, init) => {
      if (String(input).endsWith("/pull")) return json(200, emptyPull);
      const items = JSON.parse(String(init?.body)).items as { id: number }[];
      pushed.push(...items);
      return json(200, {
        server_time: "2026-01-01T00:00:00Z",
        results: items.map(() => ({ op_id: crypto.randomUUID(), status: "applied", retryable: false })),
      });
    },
  });
  await new Promise((r) => setTimeout(r, 20));
  const id = crypto.randomUUID();
  await client.importLegacyQueue(crypto.randomUUID(), [{
    id: 1,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: { id, name: "PT Antrian Lama" },
    createdAt: "2026-01-02T09:00:00.000Z",
  }], () => "customers");
  for (let i = 0; i < 40 && client.state.pending; i++) await new Promise((r) => setTimeout(r, 5));
  client.close();
  assert.equal(pushed.length, 1, "the old queue went without waiting for the interval");
  assert.equal(client.state.pending, 0);
});

test("an automatic client syncs at its interval with no edit to prompt it, and no longer once closed", async () => {
  const pulls: number[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 20,
    fetch: (input) => (String(input).endsWith("/pull") && pulls.push(Date.now()), json(200, emptyPull)),
  });
  for (let i = 0; i < 100 && pulls.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  client.close();
  assert.ok(pulls.length >= 4, `the opening sync and at least three at the interval: ${pulls.length}`);
  const after = pulls.length;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(pulls.length, after, "closed, it sends nothing more");
});

test("the browser's online event starts a sync at once, without waiting for the interval or a backoff", async () => {
  let up = false;
  const sent: string[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    autoSync: true,
    intervalMs: 60_000,
    backoff: { baseMs: 60_000, maxMs: 60_000 },
    // The longest wait full jitter can draw: a random draw under 1/6 would put the retry within
    // the 10 s the test holds to be far off.
    random: () => 0.999,
    fetch: (input) => {
      if (!up) return Promise.reject(new TypeError("network down"));
      sent.push(new URL(String(input)).pathname.split("/").pop()!);
      return json(503, { error: "internal", message: "busy" });
    },
  });
  await client.insert("customers", { name: "PT Kembali" });
  for (let i = 0; i < 50 && client.state.status !== "offline"; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(client.state.status, "offline");
  assert.ok(client.state.retryAt! - Date.now() > 10_000, "the next retry is far off");
  up = true;
  globalThis.dispatchEvent(new Event("online"));
  for (let i = 0; i < 100 && !sent.includes("push"); i++) await new Promise((r) => setTimeout(r, 10));
  client.close();
  assert.ok(sent.includes("push"), `the queued edit was sent at once: ${sent.join(", ")}`);
});

test("after a push that answers commit_lsn, the client's pulls carry it as min_lsn; before any push, none", async () => {
  const pulls: Record<string, unknown>[] = [];
  const client = await offlineClient(new MemoryStorage(), {
    fetch: async (input, init) => {
      if (String(input).endsWith("/pull")) {
        pulls.push(JSON.parse(String(init?.body)));
        return await json(200, emptyPull);
      }
      const answer = await (await applied(init)).json();
      return await json(200, { ...answer, commit_lsn: "0/3000148" });
    },
  });
  assert.equal((await client.sync()).status, "idle");
  assert.equal("min_lsn" in pulls[0], false, "nothing pushed yet: no position to ask for");
  await client.insert("customers", { name: "PT Read Own Write" });
  assert.equal((await client.sync()).status, "idle");
  assert.equal(pulls.at(-1)?.min_lsn, "0/3000148", "the pull after the push asks for the push's state");
  client.close();
});
