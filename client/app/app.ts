/// <reference lib="dom" />
// The offline CRM app: sign in with supabase-js, then read and edit customers and their key persons
// through the client kit, which keeps the edits in IndexedDB and syncs them when it can. No framework:
// the page is index.html, and render() redraws what the kit's state says after each change.
import type { createClient as CreateClient, Session } from "@supabase/supabase-js";
import { IndexedDbStorage, LocalEditError, type SyncClient as SyncClientType, type SyncState } from "../mod.ts";
import { SyncClient } from "../mod.ts";

declare global {
  // supabase-js's UMD bundle (vendor/supabase.js) defines it.
  var supabase: { createClient: typeof CreateClient };
}

type Row = { id: string; version: number; [column: string]: unknown };
interface Config {
  url: string;
  anonKey: string;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const CUSTOMER_FIELDS = ["name", "industry", "email", "phone", "city", "tax_id"] as const;
const PERSON_FIELDS = ["name", "position", "phone", "email"] as const;

// The configuration is fetched (and cached by the Service Worker with the shell), so one build serves any stack.
const config: Config = await (await fetch("config.json")).json();
const client = globalThis.supabase.createClient(config.url, config.anonKey);
let sync: SyncClientType | null = null;
let editing: string | null = null;
let firstSync = false;
let shownSyncMessage: string | null = null;

/** For the browser tests and the console: the parts of the app they look at. */
const app = {
  client,
  get sync() {
    return sync;
  },
  ready: null as Promise<void> | null,
};
Object.assign(globalThis, { app });

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch((err) => console.warn("service worker:", err));
}

function message(text: string) {
  $("message").textContent = text;
}

/** Online as far as both the browser and the kit's last try can tell. */
function showNetwork() {
  const online = navigator.onLine && sync?.state.status !== "offline";
  const el = $("network");
  el.textContent = online ? "online" : "offline";
  el.className = `badge ${online ? "online" : "offline"}`;
}
addEventListener("online", showNetwork);
addEventListener("offline", showNetwork);
showNetwork();

async function start(session: Session) {
  $("sign-in").hidden = true;
  $("main").hidden = false;
  $("sign-out").hidden = false;
  $("sync-now").hidden = false;
  $("user").textContent = session.user.email ?? session.user.id;
  sync?.close();
  sync = await SyncClient.open({
    url: `${config.url}/functions/v1/sync`,
    apikey: config.anonKey,
    // One store per user: one user's pending edits never go out under another's token.
    storage: new IndexedDbStorage(`supasync:${session.user.id}`),
    accessToken: async () => tokenOf(await client.auth.getSession()),
    refreshToken: async () => tokenOf(await client.auth.refreshSession()),
  });
  await sync.persist().catch(() => false);
  firstSync = sync.state.lastSyncedAt === null;
  sync.subscribe(() => void render());
  await render();
  if (navigator.onLine) void sync.sync();
}

/**
 * The access token of a supabase-js answer. A session that could not be refreshed because Auth was
 * out of reach (an expired token while offline) is thrown, which the kit takes as offline and tries
 * again later; only a session that really ended is null, which stops syncing as signed out.
 */
function tokenOf({ data, error }: { data: { session: Session | null }; error: { name: string } | null }) {
  if (error?.name === "AuthRetryableFetchError") throw error;
  return data.session?.access_token ?? null;
}

function stop() {
  sync?.close();
  sync = null;
  editing = null;
  $("main").hidden = true;
  $("sign-out").hidden = true;
  $("sync-now").hidden = true;
  $("sign-in").hidden = false;
  $("user").textContent = "";
}

let rendering: Promise<void> = Promise.resolve();
/** Redraws from the kit's state; one redraw at a time, in the order asked. */
function render(): Promise<void> {
  rendering = rendering.then(draw, draw);
  return rendering;
}

async function draw() {
  if (!sync) return;
  const s: SyncState = sync.state;
  showNetwork();
  const status = $("status");
  status.textContent = s.status;
  status.className = `badge ${s.status}`;
  $("pending").textContent = String(s.pending);
  $("last-sync").textContent = s.lastSyncedAt ? new Date(s.lastSyncedAt).toLocaleString() : "never";
  const progress = $<HTMLProgressElement>("progress");
  // The bar shows during the first full pull: the rows received so far (the total is not known).
  progress.hidden = !(s.progress && firstSync);
  if (s.progress) progress.textContent = `${s.progress.received} rows`;
  if (s.status === "idle" && s.lastSyncedAt) firstSync = false;
  // A sync's error shows until a sync ends without one; a message of the user's own action stays.
  const syncMessage = s.status === "signed_out"
    ? "Your session has ended: sign in again. Your pending edits are kept."
    : s.error
    ? `${s.error.code}: ${s.error.message}`
    : null;
  if (syncMessage) message(syncMessage);
  else if (shownSyncMessage !== null && $("message").textContent === shownSyncMessage) message("");
  shownSyncMessage = syncMessage;
  await drawList();
  drawConflicts(s);
  drawIssues(s);
}

async function drawList() {
  if (!sync) return;
  const q = $<HTMLInputElement>("search").value.trim().toLowerCase();
  const rows = (await sync.list("customers")) as Row[];
  const shown = rows
    .filter((r) => !q || CUSTOMER_FIELDS.some((f) => String(r[f] ?? "").toLowerCase().includes(q)))
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
  $("count").textContent = String(shown.length);
  const ul = $("customers");
  ul.replaceChildren(
    ...shown.slice(0, 300).map((r) => {
      const li = document.createElement("li");
      li.dataset.id = r.id;
      li.textContent = `${r.name}${r.city ? ` — ${r.city}` : ""}`;
      li.addEventListener("click", () => void openEdit(r.id));
      return li;
    }),
  );
}

function drawConflicts(s: SyncState) {
  $("conflicts").replaceChildren(
    ...s.conflicts.map((c) => {
      const li = document.createElement("li");
      li.dataset.id = c.id;
      const entry = c.entry ?? {};
      const mine = (entry.client_data ?? {}) as Record<string, unknown>;
      const theirs = (entry.server_row ?? {}) as Record<string, unknown>;
      const lines = [`${c.table} ${c.row_id}: ${c.resolution}`];
      for (const f of c.fields) {
        lines.push(`  ${f}: yours ${JSON.stringify(mine[f] ?? null)}, server ${JSON.stringify(theirs[f] ?? null)}`);
      }
      const pre = document.createElement("pre");
      pre.textContent = lines.join("\n");
      li.append(pre);
      return li;
    }),
  );
}

function drawIssues(s: SyncState) {
  $("quarantined").replaceChildren(
    ...s.quarantined.map((op) => {
      const li = document.createElement("li");
      li.dataset.opId = op.op_id;
      li.textContent = `${op.op} ${op.table} ${op.id}: ${op.code}${op.field ? ` (${op.field})` : ""} ${op.message} `;
      const retry = document.createElement("button");
      retry.textContent = "Retry";
      retry.className = "retry";
      retry.addEventListener("click", () => void sync?.retry(op.op_id).then(() => sync?.sync()));
      const discard = document.createElement("button");
      discard.textContent = "Discard";
      discard.className = "discard";
      discard.addEventListener("click", () => void sync?.discard(op.op_id));
      li.append(retry, discard);
      return li;
    }),
  );
  $("rejected").replaceChildren(
    ...s.rejected.map((op) => {
      const li = document.createElement("li");
      li.textContent = `${op.op} ${op.table} ${op.id}: ${op.code}${op.field ? ` (${op.field})` : ""} ${op.message} `;
      const dismiss = document.createElement("button");
      dismiss.textContent = "Dismiss";
      dismiss.addEventListener("click", () => void sync?.dismiss(op.op_id));
      li.append(dismiss);
      return li;
    }),
  );
}

async function openEdit(id: string | null) {
  if (!sync) return;
  editing = id;
  const form = $<HTMLFormElement>("edit");
  const row = id ? ((await sync.get("customers", id)) as Row | undefined) : undefined;
  for (const f of CUSTOMER_FIELDS) {
    (form.elements.namedItem(f) as HTMLInputElement).value = String(row?.[f] ?? "");
  }
  const persons = id ? ((await sync.list("key_persons")) as Row[]).filter((p) => p.customer_id === id) : [];
  $("key-persons").querySelector("tbody")!.replaceChildren(...persons.map(personRow));
  $("delete-customer").hidden = !id;
  $("edit-pane").hidden = false;
}

function personRow(p: Partial<Row>) {
  const tr = document.createElement("tr");
  if (p.id) tr.dataset.id = p.id;
  for (const f of PERSON_FIELDS) {
    const td = document.createElement("td");
    const input = document.createElement("input");
    input.name = `person-${f}`;
    input.value = String(p[f] ?? "");
    td.append(input);
    tr.append(td);
  }
  const td = document.createElement("td");
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.addEventListener("click", () => {
    if (tr.dataset.id) tr.dataset.removed = "true", tr.hidden = true;
    else tr.remove();
  });
  td.append(remove);
  tr.append(td);
  return tr;
}

/** The form's values as edits: only the fields that changed, empty text as null. */
function changes(before: Row | undefined, values: Record<string, string>) {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const value = v === "" ? null : v;
    if ((before?.[k] ?? null) !== value) out[k] = value;
  }
  return out;
}

async function save(event: SubmitEvent) {
  event.preventDefault();
  if (!sync) return;
  const form = $<HTMLFormElement>("edit");
  const values = Object.fromEntries(
    CUSTOMER_FIELDS.map((f) => [f, (form.elements.namedItem(f) as HTMLInputElement).value.trim()]),
  );
  try {
    let id = editing;
    if (id) {
      const patch = changes((await sync.get("customers", id)) as Row | undefined, values);
      if (Object.keys(patch).length) await sync.update("customers", id, patch);
    } else {
      id = await sync.insert("customers", changes(undefined, values));
      editing = id;
    }
    for (const tr of $("key-persons").querySelectorAll<HTMLTableRowElement>("tbody tr")) {
      const pid = tr.dataset.id;
      if (pid && tr.dataset.removed) {
        await sync.delete("key_persons", pid);
        continue;
      }
      const pv = Object.fromEntries(
        PERSON_FIELDS.map((f) => [f, tr.querySelector<HTMLInputElement>(`[name=person-${f}]`)!.value.trim()]),
      );
      if (pid) {
        const patch = changes((await sync.get("key_persons", pid)) as Row | undefined, pv);
        if (Object.keys(patch).length) await sync.update("key_persons", pid, patch);
      } else if (pv.name) {
        tr.dataset.id = await sync.insert("key_persons", { ...changes(undefined, pv), customer_id: id });
      }
    }
    message("Saved.");
    await openEdit(id);
  } catch (err) {
    message(err instanceof LocalEditError ? `Not saved: ${err.code} ${err.message}` : String(err));
  }
  await render();
}

$<HTMLFormElement>("edit").addEventListener("submit", (e) => void save(e as SubmitEvent));
$("add-key-person").addEventListener("click", () => $("key-persons").querySelector("tbody")!.append(personRow({})));
$("close-edit").addEventListener("click", () => {
  editing = null;
  $("edit-pane").hidden = true;
});
$("delete-customer").addEventListener("click", async () => {
  if (!sync || !editing) return;
  try {
    await sync.delete("customers", editing);
    editing = null;
    $("edit-pane").hidden = true;
  } catch (err) {
    message(String(err));
  }
  await render();
});
$("new-customer").addEventListener("click", () => void openEdit(null));
$("search").addEventListener("input", () => void render());
$("sync-now").addEventListener("click", () => void sync?.sync());
$("sign-out").addEventListener("click", async () => {
  await client.auth.signOut().catch(() => {});
  stop();
});
$<HTMLFormElement>("sign-in").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  const email = (form.elements.namedItem("email") as HTMLInputElement).value;
  const password = (form.elements.namedItem("password") as HTMLInputElement).value;
  const { data, error } = await client.auth.signInWithPassword({ email, password });
  if (error || !data.session) return message(`Sign-in failed: ${error?.message ?? "no session"}`);
  message("");
  await start(data.session);
  await sync?.signedIn();
});
client.auth.onAuthStateChange((event) => {
  if (event === "SIGNED_OUT") stop();
  // A refreshed session means Auth is in reach again: resume a kit stopped as signed out, and send
  // what waits (the kit's backoff may have put its next try far off while the token could not be had).
  if (event === "TOKEN_REFRESHED" && sync) {
    if (sync.state.status === "signed_out") void sync.signedIn();
    else if (sync.state.pending > 0) void sync.sync();
  }
});

// Offline, supabase-js still has the stored session: the app opens on it and syncs once back online.
app.ready = (async () => {
  const { data } = await client.auth.getSession();
  if (data.session) await start(data.session);
  else stop();
})();
