// The sync client: local edits into the outbox, one sync at a time (push, then pull) against the
// sync function, the local view, and the state a UI shows.
import { type LocalCode, REQUEST_ERRORS, type RequestErrorCode, SIGNED_OUT_CODES } from "./codes.ts";
import { importLegacy, upgradeOutbox } from "./legacy.ts";
import { withLock } from "./lock.ts";
import {
  applyOps,
  type Edit,
  type LocalRow,
  queueEdit,
  rejectDependants,
  serverRowRecord,
  settle,
  takeBatch,
  visible,
  wireOf,
} from "./outbox.ts";
import type { ErrorBody, LegacyItem, OpResult, PullAnswer, PushAnswer, ServerRow, Values } from "./protocol.ts";
import {
  type ConflictRecord,
  getMeta,
  type OpIssue,
  type OpProblem,
  OUTBOX_FORMAT,
  type OutboxRecord,
  type RejectedRecord,
  rowKey,
  type RowRecord,
  setMeta,
  type Storage,
  type Tx,
} from "./store.ts";

export type SyncStatus = "idle" | "syncing" | "offline" | "error" | "signed_out";

export type { OpIssue } from "./store.ts";

export interface SyncState {
  status: SyncStatus;
  /** Ops not yet settled by the server (held-aside ones included). */
  pending: number;
  /** When the last sync that pushed and pulled everything ended, by the server's clock. */
  lastSyncedAt: string | null;
  /** The request-level error that stopped the last sync, if one did. */
  error: { code: string; message: string } | null;
  /** Ops rejected for good (by the server, or locally as dependants of a rejected create). */
  rejected: OpIssue[];
  /** Ops the server refused as a request, held aside for the app to retry or discard. */
  quarantined: OpIssue[];
  /** Ops that failed for a passing reason and will be sent again. */
  failing: OpIssue[];
  conflicts: ConflictRecord[];
  /** During a first (or full) pull: the rows received so far. */
  progress: { received: number } | null;
  /** When the next automatic try is due, after a failure. */
  retryAt: number | null;
}

export interface SyncClientOptions {
  /** The function's base URL: `<SUPABASE_URL>/functions/v1/sync`. */
  url: string;
  storage: Storage;
  /** The user's current access token (with supabase-js: the session's `access_token`); null when signed out. */
  accessToken: () => Promise<string | null>;
  /**
   * Called once when the server answers `token_expired`: refresh the session and return the new
   * token (with supabase-js, `auth.refreshSession()`, which serialises refreshes across tabs).
   * Without it, `accessToken` is asked again.
   */
  refreshToken?: () => Promise<string | null>;
  /** Sent as the `apikey` header (the project's anon key), which Supabase's gateway wants. */
  apikey?: string;
  fetch?: typeof fetch;
  /** The tables to pull (default: every table the user may sync). */
  tables?: string[];
  pullLimit?: number;
  /** A push's batch limits, within the server's (`SYNC_MAX_OPS`, `SYNC_MAX_BODY_BYTES`). */
  maxBatchOps?: number;
  maxBatchBytes?: number;
  /** Sync on its own: after local edits (debounced), on reconnection and at an interval. Default true. */
  autoSync?: boolean;
  debounceMs?: number;
  intervalMs?: number;
  /** Exponential backoff with full jitter: a try after `n` failures waits random() * min(max, base * 2^n). */
  backoff?: { baseMs?: number; maxMs?: number };
  random?: () => number;
  /** Called with each op's result as it is settled (for logs and tests). */
  onResult?: (op: OutboxRecord, result: OpResult) => void;
}

/** What one sync did. */
export interface SyncReport {
  pushed: number;
  pulled: number;
  status: SyncStatus;
}

type Failure =
  | { kind: "offline"; message: string; retryAfterMs?: number }
  | { kind: "signed_out"; code: string; message: string }
  | { kind: "permanent"; code: string; message: string }
  | { kind: "bad_request"; code: string; message: string; body: ErrorBody };

class SyncFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

const nowIso = () => new Date().toISOString();

export class SyncClient {
  #o:
    & Required<Omit<SyncClientOptions, "refreshToken" | "apikey" | "tables" | "onResult" | "backoff">>
    & SyncClientOptions;
  #clientId = "";
  #state: SyncState = {
    status: "idle",
    pending: 0,
    lastSyncedAt: null,
    error: null,
    rejected: [],
    quarantined: [],
    failing: [],
    conflicts: [],
    progress: null,
    retryAt: null,
  };
  #listeners = new Set<(state: SyncState) => void>();
  #running: Promise<SyncReport> | null = null;
  #again = false;
  #failures = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #interval: ReturnType<typeof setInterval> | null = null;
  #debounce: ReturnType<typeof setTimeout> | null = null;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #reconnecting = false;
  #channel: BroadcastChannel | null = null;
  #batchOps: number;
  #closed = false;
  // The commit_lsn of this client's last push: its next pulls ask for at least that state, so a
  // deployment that reads from a replica never hands the device a state older than its own push.
  #commitLsn: string | null = null;
  #onOnline = () => void this.sync().catch(() => {});
  /** An automatic sync (debounce, interval): none before the retry that a failure scheduled is due. */
  #autoSync = () => {
    const due = this.#state.retryAt;
    if (this.#retry && due !== null && Date.now() < due) return;
    void this.sync().catch(() => {});
  };

  private constructor(options: SyncClientOptions) {
    this.#o = {
      fetch: globalThis.fetch.bind(globalThis),
      pullLimit: 500,
      maxBatchOps: 500,
      maxBatchBytes: 1024 * 1024,
      autoSync: true,
      debounceMs: 500,
      intervalMs: 60_000,
      random: Math.random,
      ...options,
    };
    this.#batchOps = this.#o.maxBatchOps;
  }

  /** Opens the store (upgrading older queue formats), and starts syncing unless `autoSync` is false. */
  static async open(options: SyncClientOptions): Promise<SyncClient> {
    const client = new SyncClient(options);
    await client.#init();
    return client;
  }

  get clientId(): string {
    return this.#clientId;
  }

  get state(): SyncState {
    return this.#state;
  }

  /** Calls `listener` with the state at every change (other tabs' changes included); returns the unsubscribe. */
  subscribe(listener: (state: SyncState) => void): () => void {
    this.#listeners.add(listener);
    notify(listener, this.#state);
    return () => this.#listeners.delete(listener);
  }

  async #init() {
    const storage = this.#o.storage;
    this.#clientId = await storage.transaction("readwrite", async (tx) => {
      await upgradeOutbox(tx);
      let id = await getMeta<string>(tx, "client_id");
      if (!id) {
        id = crypto.randomUUID();
        await setMeta(tx, "client_id", id);
      }
      return id;
    });
    storage.onVersionChange = () => {
      this.#setState({ status: "error", error: { code: "store_upgraded", message: "another tab upgraded the store" } });
    };
    if (typeof BroadcastChannel === "function") {
      try {
        this.#channel = new BroadcastChannel(`supasync:${storage.name}`);
        this.#channel.onmessage = () => void this.#refresh().catch((err) => this.#storeFailed(err));
      } catch {
        this.#channel = null;
      }
    }
    await this.#refresh();
    if (this.#o.autoSync) this.#startTriggers();
  }

  #startTriggers() {
    if (this.#o.intervalMs > 0) {
      this.#interval = setInterval(this.#autoSync, this.#o.intervalMs);
    }
    const target = globalThis as { addEventListener?: (type: string, fn: () => void) => void };
    target.addEventListener?.("online", this.#onOnline);
    void this.sync().catch(() => {});
  }

  /** Stops the triggers and the channel; the store stays as it is. */
  close(): void {
    this.#closed = true;
    if (this.#interval) clearInterval(this.#interval);
    if (this.#debounce) clearTimeout(this.#debounce);
    if (this.#retry) clearTimeout(this.#retry);
    for (const t of this.#timers) clearTimeout(t);
    const target = globalThis as { removeEventListener?: (type: string, fn: () => void) => void };
    target.removeEventListener?.("online", this.#onOnline);
    this.#channel?.close();
  }

  /** Asks the browser to keep the store under storage pressure (navigator.storage.persist()). */
  persist(): Promise<boolean> {
    return this.#o.storage.persist();
  }

  // ---- local edits and reads -------------------------------------------------------------------

  /** Queues the create of a row; returns its id (a new uuid unless `id` is given). */
  async insert(table: string, data: Values, id: string = crypto.randomUUID()): Promise<string> {
    await this.#edit({ op: "insert", table, id, data });
    return id;
  }

  /** Queues an edit of the row's `data` columns. */
  async update(table: string, id: string, data: Values): Promise<void> {
    await this.#edit({ op: "update", table, id, data });
  }

  /** Queues the row's delete. */
  async delete(table: string, id: string): Promise<void> {
    await this.#edit({ op: "delete", table, id });
  }

  async #edit(edit: Edit) {
    await this.#o.storage.transaction("readwrite", async (tx) => {
      // A create withdrawn by its delete takes the ops that depend on it along: none was ever sent.
      await queueEdit(tx, edit, () => crypto.randomUUID());
    });
    await this.#changed();
    this.#soon();
  }

  /** With autoSync: a sync after the debounce, for new ops to send. */
  #soon() {
    if (this.#o.autoSync && !this.#closed) {
      if (this.#debounce) clearTimeout(this.#debounce);
      this.#debounce = setTimeout(this.#autoSync, this.#o.debounceMs);
    }
  }

  /** The row as the app sees it: the server's with the pending edits on top; undefined when absent or deleted. */
  async get(table: string, id: string): Promise<LocalRow | undefined> {
    return await this.#o.storage.transaction("readonly", async (tx) => {
      const record = await tx.get("rows", rowKey(table, id));
      const ops = (await tx.getAll("outbox")).filter((o) => o.table === table && o.id === id);
      return visible(applyOps(record, ops));
    });
  }

  /** Every live row of `table` as the app sees it. */
  async list(table: string): Promise<LocalRow[]> {
    return await this.#o.storage.transaction("readonly", async (tx) => {
      const records = await tx.getAll("rows", `${table}/`);
      const ops = (await tx.getAll("outbox")).filter((o) => o.table === table);
      const ids = [...new Set([...records.map((r) => r.id), ...ops.map((o) => o.id)])];
      const byId = new Map(records.map((r) => [r.id, r]));
      return ids
        .map((id) => visible(applyOps(byId.get(id), ops.filter((o) => o.id === id))))
        .filter((r): r is LocalRow => r !== undefined);
    });
  }

  // ---- what the UI lists, and what it may do about it ------------------------------------------

  /** Sends a held-aside op again at the next sync. */
  async retry(opId: string): Promise<void> {
    await this.#o.storage.transaction("readwrite", async (tx) => {
      const op = (await tx.getAll("outbox")).find((o) => o.op_id === opId);
      if (!op?.quarantined) return;
      delete op.quarantined;
      await tx.put("outbox", op);
    });
    await this.#changed();
  }

  /** Drops a held-aside op (and, for a create, the ops that depend on it); the server's row shows again. */
  async discard(opId: string): Promise<void> {
    await this.#o.storage.transaction("readwrite", async (tx) => {
      const op = (await tx.getAll("outbox")).find((o) => o.op_id === opId);
      if (!op?.quarantined) return;
      await tx.delete("outbox", op.seq);
      if (op.op === "insert") await rejectDependants(tx, op, nowIso());
    });
    await this.#changed();
  }

  /** Removes a rejected op or a conflict from the lists once the user has seen it. */
  async dismiss(id: string): Promise<void> {
    await this.#o.storage.transaction("readwrite", async (tx) => {
      await tx.delete("rejected", id);
      await tx.delete("conflicts", id);
    });
    await this.#changed();
  }

  /**
   * Imports the legacy app's queued `sync_queue` items (protocol 1 shape), with the client id the
   * old app sent them under, so that they are sent first. `tableOf` maps an `entityType` to its
   * table, for the local view. Returns how many were added (0 when imported before).
   */
  async importLegacyQueue(
    clientId: string,
    items: LegacyItem[],
    tableOf: (entityType: string) => string,
  ): Promise<number> {
    const added = await this.#o.storage.transaction("readwrite", (tx) => importLegacy(tx, clientId, items, tableOf));
    await this.#changed();
    if (added) this.#soon();
    return added;
  }

  /** After the user signed in again: syncing resumes. */
  signedIn(): Promise<SyncReport> {
    this.#setState({ status: "idle", error: null });
    return this.sync();
  }

  // ---- sync ------------------------------------------------------------------------------------

  /**
   * Pushes, then pulls, holding the store's lock (one sync at a time across tabs). A call during a
   * sync runs one more after it. Resolves with what it did; the state says how it ended.
   */
  sync(): Promise<SyncReport> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    const run = async (): Promise<SyncReport> => {
      let report: SyncReport;
      do {
        this.#again = false;
        report = await withLock(`supasync:${this.#o.storage.name}`, () => this.#syncOnce());
      } while (this.#again && report.status === "idle" && !this.#closed);
      return report;
    };
    this.#running = run().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #syncOnce(): Promise<SyncReport> {
    if (this.#state.status === "signed_out") return { pushed: 0, pulled: 0, status: "signed_out" };
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#setState({ status: "syncing", retryAt: null });
    let pushed = 0, pulled = 0;
    try {
      const push = await this.#pushAll();
      pushed = push.settled;
      const pull = await this.#pullAll();
      pulled = pull.received;
      const complete = !push.retryLater;
      // Ops that keep failing back off further at each sync, as a failed request does.
      if (complete) this.#failures = 0;
      if (complete) {
        await this.#o.storage.transaction("readwrite", (tx) => setMeta(tx, "last_synced_at", pull.serverTime));
      }
      this.#setState({ status: "idle", error: null, progress: null });
      if (push.retryLater) this.#scheduleRetry();
      await this.#changed();
      return { pushed, pulled, status: "idle" };
    } catch (err) {
      if (!(err instanceof SyncFailure)) {
        // The store failed (another tab upgraded it, the disk is full): the sync stops and says so.
        this.#storeFailed(err);
        throw err;
      }
      const f = err.failure;
      if (f.kind === "signed_out") {
        this.#setState({ status: "signed_out", error: { code: f.code, message: f.message }, progress: null });
      } else if (f.kind === "offline") {
        this.#setState({ status: "offline", error: { code: "offline", message: f.message }, progress: null });
        this.#scheduleRetry(f.retryAfterMs);
      } else {
        this.#setState({ status: "error", error: { code: f.code, message: f.message }, progress: null });
      }
      await this.#changed();
      return { pushed, pulled, status: this.#state.status };
    }
  }

  /** The delay before the next try: full jitter over a capped exponential, or the server's Retry-After when longer. */
  backoffDelay(failures: number, retryAfterMs?: number): number {
    const base = this.#o.backoff?.baseMs ?? 1000;
    const max = this.#o.backoff?.maxMs ?? 60_000;
    const jitter = Math.floor(this.#o.random() * Math.min(max, base * 2 ** failures));
    // Retry-After is a floor, never a way around the backoff: a server answering "0" again and
    // again would otherwise be asked again at once, forever.
    if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, jitter), max);
    return jitter;
  }

  #scheduleRetry(retryAfterMs?: number) {
    if (this.#closed) return;
    const delay = this.backoffDelay(this.#failures++, retryAfterMs);
    this.#setState({ retryAt: Date.now() + delay });
    if (!this.#o.autoSync) return;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = setTimeout(() => void this.#reconnect(), delay);
  }

  /**
   * After a failure: when /sync/health answers, sync; else wait longer. One at a time: a sync that
   * failed meanwhile would otherwise start a second chain of retries beside this one, for good.
   */
  async #reconnect() {
    this.#retry = null;
    if (this.#closed || this.#reconnecting) return;
    this.#reconnecting = true;
    try {
      if (this.#state.status === "offline" && !(await this.health())) return this.#scheduleRetry();
    } finally {
      this.#reconnecting = false;
    }
    await this.sync().catch(() => {});
  }

  /** Whether the function answers `/sync/health`. */
  async health(): Promise<boolean> {
    try {
      const res = await this.#o.fetch(`${this.#o.url}/health`, { headers: this.#headers(null) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  #headers(token: string | null): Record<string, string> {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (this.#o.apikey) h.apikey = this.#o.apikey;
    if (token) h.authorization = `Bearer ${token}`;
    return h;
  }

  /** One POST; `token_expired` refreshes the token once and sends the same request again. */
  async #post<T>(route: "/push" | "/pull", body: unknown): Promise<T> {
    let token: string | null;
    try {
      token = await this.#o.accessToken();
    } catch (e) {
      // Like a refresh that cannot reach the server: a passing condition, never the end of syncing.
      throw new SyncFailure({ kind: "offline", message: `the access token could not be had: ${errorText(e)}` });
    }
    if (!token) throw new SyncFailure({ kind: "signed_out", code: "missing_token", message: "no access token" });
    const text = JSON.stringify(body);
    for (let attempt = 0;; attempt++) {
      let res: Response;
      try {
        res = await this.#o.fetch(`${this.#o.url}${route}`, {
          method: "POST",
          headers: this.#headers(token),
          body: text,
        });
      } catch (err) {
        throw new SyncFailure({ kind: "offline", message: `the function did not answer: ${errorText(err)}` });
      }
      const raw = await res.text();
      let parsed: unknown = null;
      try {
        parsed = raw ? JSON.parse(raw) : null;
      } catch {
        parsed = null;
      }
      if (res.status === 200 && isObject(parsed)) return parsed as T;
      const ownStatus = res.status === 401 || res.status === 403 || res.status === 413;
      if (!ownStatus && !(isObject(parsed) && typeof parsed.error === "string")) {
        // Not the function's answer (a captive portal's page, a proxy's error): the way to the
        // server is not there yet, so it is tried again later, and no op is held aside for it.
        throw new SyncFailure({
          kind: "offline",
          message: `an answer that is not the function's (HTTP ${res.status}): ${raw.slice(0, 200)}`,
          retryAfterMs: retryAfter(res),
        });
      }
      const err = (parsed ?? {}) as ErrorBody;
      const code = typeof err.error === "string" ? err.error : `http_${res.status}`;
      const message = err.message ?? (raw.slice(0, 200) || res.statusText);
      if (code === "token_expired" && attempt === 0) {
        try {
          token = await (this.#o.refreshToken ?? this.#o.accessToken)();
        } catch (e) {
          throw new SyncFailure({ kind: "offline", message: `the session could not be refreshed: ${errorText(e)}` });
        }
        if (!token) throw new SyncFailure({ kind: "signed_out", code: "token_expired", message: "the session ended" });
        continue;
      }
      if (code === "token_expired") {
        throw new SyncFailure({ kind: "signed_out", code, message: "the refreshed token has expired too" });
      }
      if ((SIGNED_OUT_CODES as string[]).includes(code)) throw new SyncFailure({ kind: "signed_out", code, message });
      const known = REQUEST_ERRORS[code as RequestErrorCode];
      if (res.status >= 500 || res.status === 429 || res.status === 408 || known?.retryable) {
        throw new SyncFailure({ kind: "offline", message: `${code}: ${message}`, retryAfterMs: retryAfter(res) });
      }
      if (res.status === 400 || res.status === 413) {
        throw new SyncFailure({ kind: "bad_request", code, message, body: err });
      }
      throw new SyncFailure({ kind: "permanent", code, message });
    }
  }

  /**
   * Pushes until every sendable op is settled or only retryable failures remain. A 400 that names
   * ops holds those ops aside and sends the rest; one that names only the body stops the sync as an
   * error; one that names nothing, or a 413, halves the batch until the op at fault is alone, and
   * holds it aside.
   */
  async #pushAll(): Promise<{ settled: number; retryLater: boolean }> {
    const storage = this.#o.storage;
    let settled = 0;
    for (let round = 0; round < 10_000; round++) {
      const limits = { ops: this.#batchOps, bytes: this.#o.maxBatchBytes };
      const batch = await storage.transaction("readwrite", (tx) => takeBatch(tx, limits));
      if (!batch.length) return { settled, retryLater: false };
      const legacy = batch[0].protocol === 1;
      const body = legacy
        ? { protocol: 1, client_id: batch[0].legacy!.client_id, items: batch.map(wireOf) }
        : { protocol: 2, client_id: this.#clientId, ops: batch.map(wireOf) };
      let answer: PushAnswer;
      try {
        answer = await this.#post<PushAnswer>("/push", body);
        if (typeof answer.commit_lsn === "string") this.#commitLsn = answer.commit_lsn;
      } catch (err) {
        if (!(err instanceof SyncFailure) || err.failure.kind !== "bad_request") throw err;
        await this.#refused(batch, err.failure, legacy ? "items" : "ops");
        continue;
      }
      this.#batchOps = this.#o.maxBatchOps;
      if (!Array.isArray(answer.results) || answer.results.length !== batch.length) {
        throw new SyncFailure({
          kind: "permanent",
          code: "invalid_answer",
          message: "the push answer has no result per op",
        });
      }
      let progress = false;
      const at = nowIso();
      await storage.transaction("readwrite", async (tx) => {
        for (const [i, op] of batch.entries()) {
          const s = await settle(tx, op, answer.results[i], at);
          if (s.kind === "done") {
            progress = true;
            settled++;
          }
        }
      });
      const onResult = this.#o.onResult;
      if (onResult) batch.forEach((op, i) => callback(() => onResult(op, answer.results[i])));
      await this.#changed();
      if (!progress) return { settled, retryLater: true };
    }
    return { settled, retryLater: true };
  }

  async #refused(batch: OutboxRecord[], f: Extract<Failure, { kind: "bad_request" }>, list: "ops" | "items") {
    const named = new Map<number, { path: (string | number)[]; message: string }>();
    for (const d of f.body.details ?? []) {
      if (d.path?.[0] === list && typeof d.path[1] === "number" && d.path[1] < batch.length && !named.has(d.path[1])) {
        named.set(d.path[1], d);
      }
    }
    let hold: Map<OutboxRecord, OpProblem>;
    const bodyAtFault = (f.body.details ?? []).some((d) => d.path?.[0] !== list || typeof d.path[1] !== "number");
    if (!named.size && bodyAtFault) {
      // The request itself (its client id, a key this server does not know), not an op: every op
      // would be refused alike, so none is held aside; the sync stops and says why.
      throw new SyncFailure({ kind: "permanent", code: f.code, message: f.message });
    }
    if (named.size) {
      hold = new Map([...named].map(([i, d]) => [batch[i], {
        code: f.code,
        message: `${d.message} (at ${d.path.slice(2).join(".") || "the op"})`,
        field: fieldOf(d.path),
      }]));
    } else if (batch.length > 1) {
      // Nothing named: halve the batch until the op at fault is alone.
      this.#batchOps = Math.max(1, Math.ceil(batch.length / 2));
      return;
    } else hold = new Map([[batch[0], { code: f.code, message: f.message }]]);
    await this.#o.storage.transaction("readwrite", async (tx) => {
      for (const [op, problem] of hold) {
        const held = await tx.get("outbox", op.seq);
        if (!held) continue;
        held.quarantined = problem;
        await tx.put("outbox", held);
      }
    });
    await this.#changed();
  }

  /**
   * Pulls until `has_more` is false. Each page is fetched first, then written with the cursor after
   * it in one transaction. `resync_required` drops the cursor and pulls from null; a full pull
   * (from null) ends by removing the rows it did not bring, and the pending edits stay on top.
   */
  async #pullAll(): Promise<{ received: number; serverTime: string }> {
    const storage = this.#o.storage;
    let received = 0;
    let serverTime = nowIso();
    let { cursor, full } = await storage.transaction("readonly", async (tx) => ({
      cursor: (await getMeta<string | null>(tx, "cursor")) ?? null,
      full: (await getMeta<boolean>(tx, "full_pull")) ?? false,
    }));
    if (cursor === null && !full) {
      await storage.transaction("readwrite", (tx) => startFullPull(tx));
      full = true;
    }
    let resyncs = 0;
    for (let page = 0; page < 100_000; page++) {
      const body: Record<string, unknown> = { protocol: 2, cursor, limit: this.#o.pullLimit };
      if (this.#o.tables) body.tables = this.#o.tables;
      if (this.#commitLsn) body.min_lsn = this.#commitLsn;
      let answer: PullAnswer;
      try {
        answer = await this.#post<PullAnswer>("/pull", body);
      } catch (err) {
        if (err instanceof SyncFailure && err.failure.kind === "bad_request" && err.failure.code === "invalid_cursor") {
          // A cursor the server does not take (another project, another user's) is a resync.
          answer = { changes: [], cursor: null, has_more: false, resync_required: true, server_time: nowIso() };
        } else throw err;
      }
      serverTime = answer.server_time;
      if (answer.resync_required) {
        if (++resyncs > 3) {
          throw new SyncFailure({
            kind: "permanent",
            code: "resync_loop",
            message: "the server asks to resync again and again",
          });
        }
        await storage.transaction("readwrite", (tx) => startFullPull(tx));
        cursor = null;
        full = true;
        continue;
      }
      received += answer.changes.length;
      await storage.transaction("readwrite", async (tx) => {
        await applyPage(tx, answer);
        await setMeta(tx, "cursor", answer.cursor);
        if (full && !answer.has_more) await endFullPull(tx);
      });
      cursor = answer.cursor;
      if (full) this.#setState({ progress: { received } });
      await this.#changed();
      if (!answer.has_more) return { received, serverTime };
    }
    throw new SyncFailure({ kind: "permanent", code: "pull_loop", message: "the pull did not end" });
  }

  // ---- state -----------------------------------------------------------------------------------

  #storeFailed(err: unknown) {
    const code = err instanceof Error ? err.name : "error";
    this.#setState({ status: "error", error: { code, message: errorText(err) }, progress: null });
  }

  #setState(patch: Partial<SyncState>) {
    this.#state = { ...this.#state, ...patch };
    for (const l of this.#listeners) notify(l, this.#state);
  }

  /** After a write: refresh the lists and tell the other tabs. */
  async #changed() {
    await this.#refresh();
    try {
      this.#channel?.postMessage("changed");
    } catch {
      // A closed channel: the other tabs refresh on their own next change.
    }
  }

  async #refresh() {
    const s = await this.#o.storage.transaction("readonly", async (tx) => ({
      outbox: await tx.getAll("outbox"),
      rejected: await tx.getAll("rejected"),
      conflicts: await tx.getAll("conflicts"),
      lastSyncedAt: (await getMeta<string>(tx, "last_synced_at")) ?? null,
    }));
    const issue = (o: OutboxRecord, p: OpProblem): OpIssue => ({
      op_id: o.op_id,
      table: o.table,
      id: o.id,
      op: o.op,
      code: p.code,
      message: p.message,
      ...(p.field ? { field: p.field } : {}),
    });
    const unreadable: LocalCode = "unreadable_format";
    this.#setState({
      pending: s.outbox.length,
      lastSyncedAt: s.lastSyncedAt,
      rejected: s.rejected.sort((a, b) => a.at.localeCompare(b.at)).map((r: RejectedRecord) => ({
        op_id: r.op_id,
        table: r.table,
        id: r.id,
        op: r.op,
        code: r.code,
        message: r.message,
        ...(r.field ? { field: r.field } : {}),
      })),
      quarantined: [
        ...s.outbox.filter((o) => o.quarantined).map((o) => issue(o, o.quarantined!)),
        ...s.outbox.filter((o) => o.format > OUTBOX_FORMAT).map((o) =>
          issue(o, {
            code: unreadable,
            message: `stored in queue format ${o.format}; this version reads ${OUTBOX_FORMAT}`,
          })
        ),
      ],
      failing: s.outbox.filter((o) => o.failed).map((o) => issue(o, o.failed!)),
      conflicts: s.conflicts,
    });
  }
}

/**
 * Starts a full pull: the cursor goes, and a new generation marks the rows this pull confirms. A
 * store with no rows yet has nothing the pull could leave unconfirmed, so its end sweeps nothing.
 */
async function startFullPull(tx: Tx) {
  await setMeta(tx, "cursor", null);
  await setMeta(tx, "full_pull", true);
  await setMeta(tx, "gen", ((await getMeta<number>(tx, "gen")) ?? 0) + 1);
  await setMeta(tx, "full_pull_sweep", (await tx.getAll("rows", undefined, { limit: 1 })).length > 0);
}

/** Rows read at a time by the sweep at the end of a full pull: the store is never held whole. */
const SWEEP_SLICE = 500;

/** Ends a full pull: the rows it did not confirm are no longer the user's. */
async function endFullPull(tx: Tx) {
  // Absent in a store whose full pull began before the flag existed: sweep, as then.
  if ((await getMeta<boolean>(tx, "full_pull_sweep")) !== false) {
    const gen = (await getMeta<number>(tx, "gen")) ?? 0;
    let after: string | undefined;
    for (;;) {
      const slice = await tx.getAll("rows", undefined, { after, limit: SWEEP_SLICE });
      await Promise.all(slice.filter((r) => r.gen !== gen).map((r) => tx.delete("rows", r.key)));
      if (slice.length < SWEEP_SLICE) break;
      after = slice[slice.length - 1].key;
    }
  }
  await setMeta(tx, "full_pull", false);
}

/**
 * Applies one pull page: rows by version, tombstones, evictions (the row goes, not deleted), conflicts.
 * The page's rows are read at once and written at once (IndexedDB queues the requests of one
 * transaction, so none waits for the one before); the page order is kept by deciding each row's
 * final record in memory, in order, between the two.
 */
async function applyPage(tx: Tx, page: PullAnswer) {
  const gen = (await getMeta<number>(tx, "gen")) ?? 0;
  const keyOf = (c: PullAnswer["changes"][number]) => rowKey(c.table, c.op === "upsert" ? c.row.id : c.id);
  const rowChanges = page.changes.filter((c) => c.table !== "conflicts");
  const keys = [...new Set(rowChanges.map(keyOf))];
  const held = await Promise.all(keys.map((k) => tx.get("rows", k)));
  // A key's record as the page leaves it: null once evicted.
  const next = new Map<string, RowRecord | null | undefined>(keys.map((k, i) => [k, held[i]] as const));
  const changed = new Set<string>();
  const keep = (table: string, row: ServerRow) => {
    const key = rowKey(table, row.id);
    const current = next.get(key);
    if (current && current.version > row.version) return;
    next.set(key, serverRowRecord(table, row, gen));
    changed.add(key);
  };
  for (const c of page.changes) {
    if (c.table === "conflicts") {
      if (c.op !== "upsert") continue;
      const e = c.row as unknown as Values;
      const previous = await tx.get("conflicts", c.row.id);
      await tx.put("conflicts", {
        ...previous,
        id: c.row.id,
        table: String(e.table_name),
        row_id: String(e.row_id),
        resolution: String(e.resolution),
        fields: (e.fields as string[] | null) ?? [],
        entry: e,
      });
    } else if (c.op === "upsert") {
      keep(c.table, c.row);
    } else if (c.op === "delete") {
      keep(c.table, { id: c.id, version: c.version, deleted_at: page.server_time });
    } else {
      next.set(keyOf(c), null);
      changed.add(keyOf(c));
      // What the device held of the row goes, the conflicts' copies of its data included.
      for (const conflict of await tx.getAll("conflicts")) {
        if (conflict.table !== c.table || conflict.row_id !== c.id || !conflict.entry) continue;
        conflict.entry = {
          ...conflict.entry,
          client_data: null,
          base_data: null,
          server_row: null,
          resolution_data: null,
          redacted: true,
        };
        await tx.put("conflicts", conflict);
      }
    }
  }
  await Promise.all([...changed].map((key) => {
    const record = next.get(key);
    return record ? tx.put("rows", record) : tx.delete("rows", key);
  }));
}

function retryAfter(res: Response): number | undefined {
  const h = res.headers.get("retry-after");
  if (!h) return undefined;
  const seconds = Number(h);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(h);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** The column a request error's path names inside an op (`["ops", 3, "data", "phone"]` → phone). */
function fieldOf(path: (string | number)[]): string | undefined {
  const i = path.findIndex((p) => p === "data" || p === "payload" || p === "base");
  return i >= 0 && typeof path[i + 1] === "string"
    ? String(path[i + 1])
    : (typeof path[2] === "string" ? path[2] : undefined);
}

/**
 * Calls a listener. An app's listener that throws is its own defect: reported as an uncaught error
 * would be, it must not fail the edit it hears of (committed already: the app would make it again)
 * nor stop a sync half way, with the state left at `syncing`.
 */
function notify(listener: (state: SyncState) => void, state: SyncState) {
  callback(() => listener(state));
}

/** Runs an app's callback (a listener, onResult); what it throws is reported, never thrown into the kit. */
function callback(fn: () => void) {
  try {
    fn();
  } catch (err) {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (typeof report === "function") report(err);
    else console.error(err);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
