// A seeded, reproducible simulation of devices that work offline and sync through the real function:
// each is the client kit (client/) with its own store and outbox, and the network and the server
// misbehave at random. Used by convergence.test.ts (short), the soak run and the load run.
import assert from "node:assert/strict";
import { env, sql, syncUrl, tokenFor, type User, users } from "./_helpers.ts";
import { MemoryStorage, type OpResult, type OutboxRecord, SyncClient } from "../../../client/mod.ts";

/** mulberry32: small, fast, reproducible. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
    uuid: () => {
      const h = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    },
  };
}
type Rng = ReturnType<typeof rng>;

/** An op's first permanent outcome, as its device heard it. */
type Outcome = {
  status: string;
  code?: string;
  conflict?: { id: string; resolution: string };
  version?: number;
  op?: string;
  table?: string;
  row_id?: string;
  base_version?: number | null;
};

export interface Faults {
  restartServer?: number; // the PostgreSQL server restarts while a push is under way
  drop: number; // the request never reaches the server
  lostResponse: number; // the server commits, the device never hears back
  duplicate: number; // the same request delivered twice at once
  killConnection: number; // the function's database connections are killed during the push
  expireToken: number; // the device's token expires while it is offline
}

export const defaultFaults: Faults = {
  restartServer: 0.01,
  drop: 0.1,
  lostResponse: 0.1,
  duplicate: 0.1,
  killConnection: 0.05,
  expireToken: 0.1,
};

export const calm: Faults = { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expireToken: 0 };

// How the run restarts the server (set by npm test and npm run soak for the private cluster only).
const RESTART = Deno.env.get("SIM_PG_RESTART");

async function restartServer() {
  const [cmd, ...args] = RESTART!.split(" ");
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(`restart failed: ${new TextDecoder().decode(out.stderr)}`);
  // The test's own pool lost its connections too: each fails once, then reconnects.
  for (let i = 0; i < 20; i++) {
    try {
      await sql`select 1`;
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const jakarta = "00000000-0000-4000-8000-0000000000b1";

/**
 * A device: the client kit (client/) on a memory store, whose fetch is the faulty network. The
 * kit keeps the queue, coalesces, retries and applies pulls; the device records each op's first
 * permanent outcome as the kit hears it, and which ops it ever sent.
 */
export class Device {
  client!: SyncClient;
  storage: MemoryStorage;
  ledger = new Map<string, Outcome>(); // op_id -> first permanent outcome
  sent = new Set<string>(); // op ids sent at least once (protocol 2)
  token = "";
  faults: Faults = calm;
  stats?: Stats;
  restartNext = false;
  requests = 0;
  /** Called with each request's duration, for the load run. */
  onRequest?: (ms: number) => void;

  constructor(readonly name: string, readonly user: User, readonly role: "rm" | "bm" | "admin", private r: Rng) {
    this.storage = new MemoryStorage(`sim-${name}-${r.uuid()}`);
  }

  async open(): Promise<this> {
    this.token = await tokenFor(this.user);
    this.client = await SyncClient.open({
      url: syncUrl,
      apikey: env.anonKey,
      storage: this.storage,
      accessToken: () => Promise.resolve(this.token),
      refreshToken: async () => {
        if (this.stats) this.stats.faults.expiredSeen++;
        return this.token = await tokenFor(this.user);
      },
      fetch: this.fetch,
      autoSync: false,
      pullLimit: 500,
      maxBatchOps: 200,
      onResult: (op, result) => this.record(op, result),
    });
    return this;
  }

  get pending(): number {
    return this.client.state.pending;
  }

  /** The network between this device and the function: each push meets the faults of the moment. */
  private fetch: typeof fetch = async (input, init) => {
    const started = performance.now();
    this.requests++;
    try {
      const route = String(input).replace(/^.*\/sync/, "");
      if (route !== "/push") return await fetch(input, init);
      const body = JSON.parse(String(init?.body));
      const r = this.r, f = this.faults, stats = this.stats!;
      if (r.chance(f.drop)) {
        stats.faults.drop++;
        throw new TypeError("dropped");
      }
      if (body.protocol === 2) { for (const op of body.ops) this.sent.add(op.op_id); }
      let res: Response;
      if (this.restartNext || (RESTART && r.chance(f.restartServer ?? 0))) {
        this.restartNext = false;
        stats.faults.restartServer++;
        const pushing = fetch(input, init);
        pushing.catch(() => {});
        await restartServer();
        res = await pushing;
      } else if (r.chance(f.duplicate)) {
        stats.faults.duplicate++;
        const [a, b] = await Promise.all([fetch(input, init), fetch(input, init)]);
        const [kept, other] = r.chance(0.5) ? [a, b] : [b, a];
        await other.body?.cancel();
        res = kept;
      } else if (r.chance(f.killConnection)) {
        stats.faults.killConnection++;
        const pushing = fetch(input, init);
        pushing.catch(() => {});
        // Behind a pooler the function's backends are named "sync-function - <host>:<port>".
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'sync-function%' and datname = current_database() and pid <> pg_backend_pid()`;
        res = await pushing;
      } else {
        res = await fetch(input, init);
      }
      if (res.status >= 500) stats.serverErrors++; // a killed connection: the request rolled back
      if (res.status === 200 && r.chance(f.lostResponse)) {
        stats.faults.lostResponse++;
        await res.body?.cancel();
        throw new TypeError("the answer was lost");
      }
      return res;
    } finally {
      this.onRequest?.(performance.now() - started);
    }
  };

  private record(op: OutboxRecord, result: OpResult) {
    const status = result.status === "duplicate" ? result.original_status : result.status;
    assert.ok(status, `${this.name}: op ${op.op_id}'s duplicate names its original status`);
    if (status === "failed") return;
    assert.notEqual(result.code, "op_id_reused", `${this.name}: op ${op.op_id} was only ever sent with one content`);
    if (this.ledger.has(op.op_id)) return;
    this.ledger.set(op.op_id, {
      status,
      code: result.code,
      conflict: result.conflict,
      version: result.row?.version,
      op: op.op,
      table: op.table,
      row_id: op.id,
      base_version: op.base_version,
    });
    if (this.stats) this.stats.outcomes[status] = (this.stats.outcomes[status] ?? 0) + 1;
  }

  /** One sync (push, then pull) through the faults given; whatever failed is retried at the next. */
  async sync(faults: Faults, stats: Stats) {
    this.faults = faults;
    this.stats = stats;
    if (this.pending && this.r.chance(faults.expireToken)) {
      this.token = await tokenFor(this.user, { expiresIn: -30 }); // it expired offline
    }
    const report = await this.client.sync();
    assert.notEqual(report.status, "signed_out", `${this.name}: ${JSON.stringify(this.client.state.error)}`);
    assert.notEqual(report.status, "error", `${this.name}: ${JSON.stringify(this.client.state.error)}`);
    this.faults = calm;
  }

  private rows(table: string) {
    return this.client.list(table);
  }

  /** One random offline edit within what this user may do, through the kit. */
  async edit() {
    const r = this.r;
    const customers = await this.rows("customers");
    const action = r.next();
    if (this.role === "bm" && action < 0.3 && customers.length) {
      // Reassign a customer of the branch to the other rm of the branch.
      const c = r.pick(customers);
      const to = c.assigned_rm_id === users.rm1Jakarta.id ? users.rm2Jakarta.id : users.rm1Jakarta.id;
      await this.client.update("customers", c.id, { assigned_rm_id: to });
    } else if (action < 0.45 || !customers.length) {
      const id = r.uuid();
      const data: Record<string, unknown> = { name: `PT Sim ${this.name} ${r.int(1e6)}`, phone: `+62 ${r.int(1e8)}` };
      if (this.role !== "rm") {
        Object.assign(data, { assigned_rm_id: r.pick([users.rm1Jakarta.id, users.rm2Jakarta.id]), branch_id: jakarta });
      }
      if (this.role === "admin") data.branch_id = jakarta;
      await this.client.insert("customers", data, id);
    } else if (action < 0.65) {
      const c = r.pick(customers);
      const data = { customer_id: c.id, name: `Contact ${r.int(1e6)}`, position: r.pick(["CEO", "CFO", "Buyer"]) };
      await this.client.insert("key_persons", data, r.uuid());
    } else if (action < 0.9) {
      const pool = [
        ...customers.map((row) => ["customers", row] as const),
        ...(await this.rows("key_persons")).map((row) => ["key_persons", row] as const),
      ];
      const [table, row] = r.pick(pool);
      const data = table === "customers"
        ? { [r.pick(["phone", "notes", "city"])]: `v${r.int(1e6)}` }
        : { position: `P${r.int(1e3)}` };
      await this.client.update(table, row.id, data);
    } else {
      const pool = await this.rows("key_persons");
      if (!pool.length) return;
      await this.client.delete("key_persons", r.pick(pool).id);
    }
  }
}

export interface Stats {
  outcomes: Record<string, number>;
  faults: {
    drop: number;
    lostResponse: number;
    duplicate: number;
    killConnection: number;
    expiredSeen: number;
    restartServer: number;
  };
  serverErrors: number;
}

export async function fleet(seed: number): Promise<{ devices: Device[]; r: Rng }> {
  const r = rng(seed);
  const devices = [
    new Device("rm1-phone", users.rm1Jakarta, "rm", r),
    new Device("rm1-tablet", users.rm1Jakarta, "rm", r),
    new Device("rm2-phone", users.rm2Jakarta, "rm", r),
    new Device("rm1sby-phone", users.rm1Surabaya, "rm", r),
    new Device("bm-phone", users.bmJakarta, "bm", r),
    new Device("admin-web", users.admin, "admin", r),
  ];
  for (const d of devices) await d.open();
  return { devices, r };
}

/** `n` devices over the same users (several devices per user), for the load run. */
export async function manyDevices(seed: number, n: number): Promise<Device[]> {
  const who: [User, "rm" | "bm" | "admin"][] = [
    [users.rm1Jakarta, "rm"],
    [users.rm2Jakarta, "rm"],
    [users.rm1Surabaya, "rm"],
    [users.bmJakarta, "bm"],
    [users.admin, "admin"],
  ];
  const devices = Array.from(
    { length: n },
    (_, i) => new Device(`device-${i}`, who[i % who.length][0], who[i % who.length][1], rng(seed + i)),
  );
  for (const d of devices) await d.open();
  return devices;
}

export function newStats(): Stats {
  return {
    outcomes: {},
    faults: { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expiredSeen: 0, restartServer: 0 },
    serverErrors: 0,
  };
}

/** Runs `steps` random steps, then lets every device sync until quiet with no faults, and checks. */
export async function simulate(seed: number, steps: number, faults: Faults = defaultFaults, deadline = Infinity) {
  const { devices, r } = await fleet(seed);
  const stats = newStats();
  for (const d of devices) await d.sync(calm, stats);
  for (let step = 0; step < steps && Date.now() < deadline; step++) {
    const d = r.pick(devices);
    if (
      RESTART && step === Math.floor(steps / 2) && stats.faults.restartServer === 0 && (faults.restartServer ?? 0) > 0
    ) {
      // Every run restarts the server at least once, in the middle of a device's push.
      await d.edit();
      d.restartNext = true;
      await d.sync(calm, stats);
      continue;
    }
    if (r.next() < 0.6) await d.edit();
    else await d.sync(faults, stats);
  }
  for (let round = 0; round < 10 && devices.some((d) => d.pending); round++) {
    for (const d of devices) await d.sync(calm, stats);
  }
  for (const d of devices) await d.sync(calm, stats);
  await check(devices);
  return stats;
}

async function visibleAs(user: User) {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      JSON.stringify({ sub: user.id, role: "authenticated" })
    }, true)`;
    const rows = await tx`select table_name, id, version from (
      select 'branches' as table_name, id, version, deleted_at from public.branches union all
      select 'profiles', id, version, deleted_at from public.profiles union all
      select 'hvcs', id, version, deleted_at from public.hvcs union all
      select 'brokers', id, version, deleted_at from public.brokers union all
      select 'customers', id, version, deleted_at from public.customers union all
      select 'key_persons', id, version, deleted_at from public.key_persons union all
      select 'customer_hvc_links', id, version, deleted_at from public.customer_hvc_links union all
      select 'pipelines', id, version, deleted_at from public.pipelines union all
      select 'pipeline_referrals', id, version, deleted_at from public.pipeline_referrals union all
      select 'activities', id, version, deleted_at from public.activities union all
      select 'cadences', id, version, deleted_at from public.cadences union all
      select 'cadence_participants', id, version, deleted_at from public.cadence_participants) v where deleted_at is null`;
    return new Map(rows.map((x) => [`${x.table_name}/${x.id}`, Number(x.version)]));
  });
}

export async function check(devices: Device[]) {
  for (const d of devices) {
    assert.equal(d.pending, 0, `${d.name} synced until quiet`);
    const state = d.client.state;
    // Ops the kit settled itself: dependants of a create the server rejected, never applied anywhere.
    const local = new Set(state.rejected.filter((x) => x.code === "parent_rejected").map((x) => x.op_id));
    // Every op ever sent is accounted for exactly once, and the server agrees.
    assert.deepEqual(
      [...d.sent].filter((id) => !d.ledger.has(id) && !local.has(id)),
      [],
      `${d.name}: every op sent has an outcome`,
    );
    const ids = [...d.sent];
    const server = ids.length
      ? await sql`select op_id, outcome from sync.applied_ops where user_id = ${d.user.id} and op_id = any(${ids}::uuid[])`
      : [];
    assert.equal(server.length, d.ledger.size, `${d.name}: the server recorded each settled op once`);
    for (const s of server) {
      const mine = d.ledger.get(s.op_id)!;
      assert.ok(mine, `${d.name}: op ${s.op_id} recorded by the server has an outcome on the device`);
      assert.equal(s.outcome.status, mine.status, `${d.name}: op ${s.op_id} has one outcome`);
      if (mine.conflict) {
        const [audit] = await sql`select id from sync.conflicts where id = ${mine.conflict.id}`;
        assert.ok(audit, `${d.name}: the conflict of op ${s.op_id} is audited`);
      }
      // An edit applied over versions its device never saw overwrote someone: it must say so.
      // (A stale op that changed nothing created no version and overwrote nothing.)
      if (
        mine.status === "applied" && mine.op !== "insert" && mine.base_version != null && mine.version != null &&
        mine.version > mine.base_version + 1
      ) {
        const [made] = await sql`select 1 from sync.row_versions where table_name = ${mine.table!} and row_id = ${mine
          .row_id!}
                                   and version = ${mine.version} and changed_by = ${d.user.id}`;
        if (made) {
          assert.ok(
            mine.conflict,
            `${d.name}: op ${s.op_id} applied over version ${mine.base_version} -> ${mine.version} reports its conflict`,
          );
        }
      }
    }
    // The replica (the server's rows as the kit holds them) equals the server's rows in the
    // user's scope, by id and version.
    const expected = await visibleAs(d.user);
    const held = await d.storage.transaction("readonly", (tx) => tx.getAll("rows"));
    const actual = new Map(held.filter((x) => !x.deleted).map((x) => [x.key, x.version]));
    const missing = [...expected.entries()].filter(([k, v]) => actual.get(k) !== v).slice(0, 5);
    const extra = [...actual.keys()].filter((k) => !expected.has(k)).slice(0, 5);
    assert.deepEqual(
      { missing, extra },
      { missing: [], extra: [] },
      `${d.name}'s replica equals the server in its scope`,
    );
  }
  // Version rises by exactly one per change: the recorded versions of every row are 2..version.
  const gaps = await sql`
    select v.table_name, v.row_id from sync.row_versions v
     group by v.table_name, v.row_id having count(*) <> max(v.version) - 1 or min(v.version) <> 2 limit 5`;
  assert.deepEqual([...gaps], [], "no version was skipped or applied twice");
}
