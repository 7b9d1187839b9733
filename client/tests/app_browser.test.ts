/// <reference lib="dom" />
// The offline CRM app (client/app) in a real Chromium (Debian's `chromium`, driven by puppeteer-core),
// against the function and database `npm test` started, served by the gateway at /app/. Each step
// leaves a screenshot under test-output/app/ (git-ignored). Without Chromium the tests are skipped,
// and say so, with what to install.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import puppeteer, { type Browser, type CDPSession, type Page } from "puppeteer-core";
import { deviceOf } from "./_server.ts";
import { type Api, localKeys, startApi } from "../../scripts/lib/stack.mjs";
import { onFreePorts } from "../../scripts/lib/ports.mjs";
import { env, seedCustomer, sql, type User, users } from "../../supabase/functions/tests/_helpers.ts";

const root = new URL("../../", import.meta.url).pathname;
const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const OUT = `${root}test-output/app`;
const appUrl = `${env.apiUrl}/app/`;

if (!haveChromium) {
  console.error(
    `\n*** SKIPPED: the browser tests of the app (client/tests/app_browser.test.ts) need Chromium at ${CHROMIUM}. ` +
      "Install it: apt-get install -y chromium (or set CHROMIUM_PATH). ***\n",
  );
}

function browserTest(name: string, fn: (b: Browser) => Promise<void>) {
  Deno.test({
    name: `app in Chromium: ${name}`,
    ignore: !haveChromium,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      await ready;
      const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--disable-dev-shm-usage"],
      });
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

// The app runs the kit's build: built once, from this checkout, before the first browser test.
const ready = haveChromium ? build() : Promise.resolve();
async function build() {
  const res = await new Deno.Command("node", {
    args: [`${root}node_modules/typescript/bin/tsc`, "-p", `${root}client/tsconfig.json`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(res.success, new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr));
  await Deno.mkdir(OUT, { recursive: true });
}

let shots = 0;
async function shot(page: Page, name: string) {
  const n = String(++shots).padStart(2, "0");
  await page.screenshot({ path: `${OUT}/${n}-${name}.png`, fullPage: true });
}

const workerSessions = new WeakMap<object, CDPSession>();

/** Offline or back online: the page's network and its Service Worker's. */
async function setOffline(browser: Browser, pages: Page[], offline: boolean) {
  for (const p of pages) await p.setOfflineMode(offline);
  for (const t of browser.targets().filter((t) => t.type() === "service_worker")) {
    // One session per worker: an emulation lasts as long as the session that set it, so going
    // back online must go through the session that went offline.
    let cdp = workerSessions.get(t);
    if (!cdp) {
      cdp = await t.createCDPSession();
      workerSessions.set(t, cdp);
      await cdp.send("Network.enable");
    }
    await cdp.send("Network.emulateNetworkConditions", {
      offline,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
  }
}

// deno-lint-ignore no-explicit-any
type AppGlobal = { app: { ready: Promise<void>; sync: any } };

/** Opens the app (the stack's, or the one at `url`) in a new tab of `browser`. */
async function open(browser: Browser, url = appUrl) {
  const page = await browser.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(url, { waitUntil: "load" });
  await started(page);
  return page;
}

/** Waits until the app's module has run and opened the session supabase-js holds, if any. */
async function started(page: Page) {
  // A boolean: a predicate that returns a promise is waited on for its value.
  await page.waitForFunction(() => Boolean((globalThis as unknown as Partial<AppGlobal>).app?.ready));
  await page.evaluate(() => (globalThis as unknown as AppGlobal).app.ready);
}

async function signIn(page: Page, user: User) {
  await page.waitForSelector("#sign-in:not([hidden])");
  await page.type("#sign-in [name=email]", user.email);
  await page.type("#sign-in [name=password]", "password123");
  await page.click("#sign-in button[type=submit]");
  await synced(page);
  // The Service Worker holds the shell before any test goes offline.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
}

/** Waits until the app's kit has nothing pending and its last sync has ended. */
async function synced(page: Page, timeout = 30000) {
  await page.waitForFunction(
    () => {
      const s = (globalThis as unknown as AppGlobal).app.sync?.state;
      return s && s.status === "idle" && s.pending === 0 && s.lastSyncedAt !== null;
    },
    { timeout },
  );
}

const text = (page: Page, sel: string) => page.$eval(sel, (el) => el.textContent ?? "");

/** Opens the customer `id` in the edit form and saves `city` in it. */
async function editCity(page: Page, id: string, city: string) {
  // In one step: the list is redrawn at each change of the kit's state, which can replace a found node.
  await page.waitForSelector(`#customers li[data-id="${id}"]`);
  await page.evaluate((id) => document.querySelector<HTMLElement>(`#customers li[data-id="${id}"]`)!.click(), id);
  await page.waitForSelector("#edit-pane:not([hidden])");
  await page.$eval("#edit [name=city]", (el, v) => ((el as HTMLInputElement).value = v as string), city);
  await page.click("#edit button[type=submit]");
  await savedLocally(page, id, "city", city);
}

/**
 * Waits until the app's kit holds `value` in `field` of customer `id`: the save happened. Not the
 * "Saved." message, which the sync the edit starts may replace at once (offline, with its error).
 */
async function savedLocally(page: Page, id: string, field: string, value: string, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const held = await page.evaluate(
      async (id, field) =>
        ((await (globalThis as unknown as AppGlobal).app.sync.get("customers", id)) as Record<string, unknown>)?.[
          field as string
        ],
      id,
      field,
    );
    if (held === value) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the app never saved ${field} = ${value} of ${id}; it holds ${JSON.stringify(held)}, and says: ${await text(
          page,
          "#message",
        )}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A customer of rm1 Jakarta's, from the seed. */
async function customerOf(user: User): Promise<string> {
  const [row] = await sql`select id::text from public.customers where assigned_rm_id = ${user.id}
                          and deleted_at is null order by id limit 1`;
  return row?.id ?? seedCustomer(1);
}

browserTest("an edit made offline survives a reload offline and reaches the server once online", async (browser) => {
  const user = users.rm1Jakarta;
  const page = await open(browser);
  await shot(page, "offline-edit-sign-in");
  await signIn(page, user);
  await shot(page, "offline-edit-signed-in");
  const id = await customerOf(user);
  const city = `Offline ${crypto.randomUUID().slice(0, 8)}`;

  await setOffline(browser, [page], true);
  await page.waitForFunction(() => !navigator.onLine);
  await editCity(page, id, city);
  assert.equal(await text(page, "#pending"), "1");
  await shot(page, "offline-edit-edited-offline");

  await page.reload({ waitUntil: "load" });
  await started(page);
  await page.waitForFunction(
    (id, city) => document.querySelector(`#customers li[data-id="${id}"]`)?.textContent?.includes(city as string),
    {},
    id,
    city,
  );
  assert.equal(await text(page, "#pending"), "1", "the edit is still pending after a reload without a network");
  assert.notEqual((await sql`select city from public.customers where id = ${id}`)[0].city, city);
  await shot(page, "offline-edit-reloaded-offline");

  await setOffline(browser, [page], false);
  await synced(page);
  assert.equal((await sql`select city from public.customers where id = ${id}`)[0].city, city);
  await page.waitForFunction(() => document.getElementById("message")?.textContent === "", { timeout: 5000 })
    .catch(async () => assert.fail(`the offline error still shows once synced: ${await text(page, "#message")}`));
  await shot(page, "offline-edit-back-online-synced");
});

/** Each tab's requests to the sync function, as [start, end] times. */
function syncSpans(page: Page) {
  const spans: { url: string; start: number; end: number }[] = [];
  const open = new Map<unknown, { url: string; start: number; end: number }>();
  page.on("request", (r) => {
    if (!r.url().includes("/functions/v1/sync/") || r.url().endsWith("/health")) return;
    const span = { url: r.url(), start: performance.now(), end: Infinity };
    open.set(r, span);
    spans.push(span);
  });
  const done = (r: unknown) => {
    const span = open.get(r);
    if (span) span.end = performance.now();
  };
  page.on("requestfinished", done);
  page.on("requestfailed", done);
  return spans;
}

browserTest("two tabs of one user: one syncs at a time, and the other shows the change", async (browser) => {
  const user = users.rm2Jakarta;
  const a = await open(browser);
  await signIn(a, user);
  // The second tab opens on the session the first one signed in with (same profile, same store).
  const b = await open(browser);
  await synced(b);
  await shot(a, "two-tabs-a-signed-in");
  await shot(b, "two-tabs-b-opened");

  const spansA = syncSpans(a);
  const spansB = syncSpans(b);
  for (let round = 0; round < 3; round++) {
    await Promise.all(
      [a, b].map((p) =>
        p.evaluate(async () => JSON.stringify(await (globalThis as unknown as AppGlobal).app.sync.sync()))
      ),
    );
  }
  assert.ok(spansA.length > 0 && spansB.length > 0, "both tabs synced");
  for (const x of spansA) {
    for (const y of spansB) {
      assert.ok(
        x.end <= y.start || y.end <= x.start,
        `tab A's ${x.url} and tab B's ${y.url} were under way at the same time`,
      );
    }
  }

  const id = await customerOf(user);
  const city = `Tab ${crypto.randomUUID().slice(0, 8)}`;
  await a.bringToFront();
  await editCity(a, id, city);
  // Polled on a timer: tab B is in the background now, where Chromium may hold back animation
  // frames, puppeteer's default polling, so the check would never run again.
  await b.waitForFunction(
    (id, city) => document.querySelector(`#customers li[data-id="${id}"]`)?.textContent?.includes(city as string),
    { timeout: 15000, polling: 100 },
    id,
    city,
  ).catch(async (err) => {
    const shown = await b.$eval(`#customers li[data-id="${id}"]`, (el) => el.textContent).catch(() => "(not listed)");
    throw new Error(`${err}; tab B lists the customer as ${shown}`);
  });
  await shot(a, "two-tabs-a-edited");
  await shot(b, "two-tabs-b-shows-the-edit");
  await synced(a);
  assert.equal((await sql`select city from public.customers where id = ${id}`)[0].city, city);
});

/**
 * A second gateway on the stack's database and key, whose Auth issues access tokens of `expiresIn`
 * seconds: the app loaded from it signs in, refreshes and syncs there, as on a hosted project with a
 * short JWT expiry.
 */
async function gatewayWithTokensOf(expiresIn: number): Promise<Api> {
  const keys = await localKeys();
  return await onFreePorts(2, ([apiPort, functionPort]: number[]) =>
    startApi({
      dbUrl: env.dbUrl,
      keys,
      apiPort,
      functionPort,
      quiet: true,
      env: { SYNC_LOG: "off", SUPASYNC_AUTH_EXPIRES_IN: String(expiresIn) },
    }));
}

/** The times at which `page` asked Auth to refresh its session. */
function refreshesOf(page: Page) {
  const at: number[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/auth/v1/token") && r.url().includes("grant_type=refresh_token")) at.push(Date.now());
  });
  return at;
}

browserTest(
  "an access token that expires offline is refreshed once back online, and the queue drains",
  async (browser) => {
    const LIFE = 8;
    const gateway = await gatewayWithTokensOf(LIFE);
    try {
      const user = users.bmJakarta;
      const page = await open(browser, `${gateway.apiUrl}/app/`);
      const refreshes = refreshesOf(page);
      await signIn(page, user);
      await shot(page, "token-expiry-signed-in");

      await setOffline(browser, [page], true);
      await page.waitForFunction(() => !navigator.onLine);
      const id = await customerOf(users.rm1Jakarta);
      const city = `Expired ${crypto.randomUUID().slice(0, 8)}`;
      await editCity(page, id, city);
      // Past the token's life: what supabase-js holds is expired, and Auth is out of reach.
      await new Promise((r) => setTimeout(r, (LIFE + 2) * 1000));
      const expired = await page.evaluate(() => {
        const raw = Object.entries(localStorage).find(([k]) => k.endsWith("-auth-token"))?.[1];
        return raw ? (JSON.parse(raw).expires_at as number) * 1000 < Date.now() : null;
      });
      assert.equal(expired, true, "the stored session's access token has expired");
      assert.equal(await text(page, "#pending"), "1");
      assert.notEqual((await sql`select city from public.customers where id = ${id}`)[0].city, city);
      await shot(page, "token-expiry-expired-offline");

      const online = Date.now();
      await setOffline(browser, [page], false);
      await synced(page, 60000).catch(async (err) => {
        const state = await page.evaluate(() => JSON.stringify((globalThis as unknown as AppGlobal).app.sync.state));
        throw new Error(
          `${err}; refreshes since online ${refreshes.filter((t) => t >= online).length}; state ${state}`,
        );
      });
      assert.ok(refreshes.some((t) => t >= online), "the session was refreshed once back online");
      assert.equal((await sql`select city from public.customers where id = ${id}`)[0].city, city);
      assert.equal(await page.$eval("#sign-in", (el) => (el as HTMLElement).hidden), true, "still signed in");
      await shot(page, "token-expiry-back-online-drained");
    } finally {
      await gateway.stop();
    }
  },
);

browserTest(
  "a change from another device that collides with an offline edit shows in the conflicts panel",
  async (browser) => {
    const user = users.rm1Surabaya;
    const page = await open(browser);
    await signIn(page, user);
    const id = await customerOf(user);
    await setOffline(browser, [page], true);
    const mine = `+62 31 ${Math.floor(Math.random() * 1e7)}`;
    // In one step: the list is redrawn at each change of the kit's state, which can replace a found node.
    await page.waitForSelector(`#customers li[data-id="${id}"]`);
    await page.evaluate((id) => document.querySelector<HTMLElement>(`#customers li[data-id="${id}"]`)!.click(), id);
    await page.waitForSelector("#edit-pane:not([hidden])");
    await page.$eval("#edit [name=phone]", (el, v) => ((el as HTMLInputElement).value = v as string), mine);
    await page.click("#edit button[type=submit]");
    await savedLocally(page, id, "phone", mine);
    await shot(page, "conflict-edited-offline");

    // The other device: the same user on the kit, with a store of its own, changes the same field first.
    const theirs = `+62 31 ${Math.floor(Math.random() * 1e7)}`;
    const { client: other } = await deviceOf(user);
    try {
      await other.sync();
      await other.update("customers", id, { phone: theirs });
      assert.equal((await other.sync()).status, "idle");
    } finally {
      other.close();
    }

    await setOffline(browser, [page], false);
    await synced(page);
    // As long as synced() may take: under load the push, the conflict and the pull that brings it
    // back are three round trips after the online event. A timeout says what the panel held.
    await page.waitForFunction(
      (id) => [...document.querySelectorAll("#conflicts li")].some((li) => li.textContent?.includes(id as string)),
      { timeout: 30000 },
      id,
    ).catch(async (err) => {
      throw new Error(`the conflicts panel never listed ${id}; it holds: ${await text(page, "#conflicts")}`, {
        cause: err,
      });
    });
    const panel = await text(page, "#conflicts");
    assert.match(panel, /client_wins/);
    assert.ok(panel.includes("phone"), panel);
    await page.waitForFunction(
      (mine, theirs) => {
        const t = document.getElementById("conflicts")?.textContent ?? "";
        return t.includes(mine as string) && t.includes(theirs as string);
      },
      { timeout: 30000 },
      mine,
      theirs,
    );
    await shot(page, "conflict-shown");
    assert.equal((await sql`select phone from public.customers where id = ${id}`)[0].phone, mine);
  },
);
