// A seeded, reproducible simulation of devices that work offline and sync through the real function:
// each holds a replica and a durable, coalescing queue as the sync contract describes, and the
// network and the server misbehave at random. Used by convergence.test.ts (short) and the soak run.
import assert from "node:assert/strict";
import { call, type Op, type OpResult, sql, tokenFor, type User, users } from "./_helpers.ts";

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

type QueuedOp = Op;

/** A row as a device holds it: as the server sent it, or as the device wrote it offline (version 0). */
type LocalRow = { id: string; version: number; deleted_at?: string | null; [column: string]: unknown };

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

export class Device {
  replica = new Map<string, LocalRow>(); // "table/id" -> row
  queue: QueuedOp[] = [];
  cursor: string | null = null;
  ledger = new Map<string, Outcome>(); // op_id -> first permanent outcome
  queued = new Set<string>(); // every op id ever queued
  sent = new Set<string>(); // op ids sent at least once: their content is fixed (the server may have applied them)
  token = "";
  tokenExpired = false;
  readonly clientId: string;

  constructor(readonly name: string, readonly user: User, readonly role: "rm" | "bm" | "admin", private r: Rng) {
    this.clientId = r.uuid();
  }

  private rows(table: string) {
    return [...this.replica.entries()].filter(([k, v]) => k.startsWith(table + "/") && !v.deleted_at).map(([, v]) => v);
  }

  private enqueue(op: Omit<QueuedOp, "op_id">) {
    // Coalesce as the research on the old queue says it must: create+update stays a create,
    // create+delete vanishes, update+update merges, update+delete becomes the delete. Only into an
    // op never sent: one whose response was lost may have been applied, and the same op_id with
    // other content is another op (op_id_reused), so the edit is queued as an op of its own.
    const pending = this.queue.find((q) => q.table === op.table && q.id === op.id && !this.sent.has(q.op_id));
    if (pending) {
      if (pending.op === "insert" && op.op === "update") return void Object.assign(pending.data!, op.data);
      if (pending.op === "insert" && op.op === "delete") {
        this.queue = this.queue.filter((q) => q !== pending);
        this.queued.delete(pending.op_id);
        return;
      }
      if (pending.op === "update" && op.op === "update") return void Object.assign(pending.data!, op.data);
      if (pending.op === "update" && op.op === "delete") {
        pending.op = "delete";
        delete pending.data;
        return;
      }
    }
    const queued = { op_id: this.r.uuid(), ...op };
    this.queue.push(queued);
    this.queued.add(queued.op_id);
  }

  /** One random offline edit within what this user may do. */
  edit() {
    const r = this.r;
    const customers = this.rows("customers");
    const action = r.next();
    if (this.role === "bm" && action < 0.3 && customers.length) {
      // Reassign a customer of the branch to the other rm of the branch.
      const c = r.pick(customers);
      const to = c.assigned_rm_id === users.rm1Jakarta.id ? users.rm2Jakarta.id : users.rm1Jakarta.id;
      this.enqueue({
        table: "customers",
        op: "update",
        id: c.id,
        base_version: c.version,
        data: { assigned_rm_id: to },
      });
      c.assigned_rm_id = to;
    } else if (action < 0.45 || !customers.length) {
      const id = r.uuid();
      const data: Record<string, unknown> = { name: `PT Sim ${this.name} ${r.int(1e6)}`, phone: `+62 ${r.int(1e8)}` };
      if (this.role !== "rm") {
        Object.assign(data, { assigned_rm_id: r.pick([users.rm1Jakarta.id, users.rm2Jakarta.id]), branch_id: jakarta });
      }
      if (this.role === "admin") data.branch_id = jakarta;
      this.enqueue({ table: "customers", op: "insert", id, data });
      this.replica.set(`customers/${id}`, { id, version: 0, ...data });
    } else if (action < 0.65) {
      const c = r.pick(customers);
      const id = r.uuid();
      const data = { customer_id: c.id, name: `Contact ${r.int(1e6)}`, position: r.pick(["CEO", "CFO", "Buyer"]) };
      this.enqueue({ table: "key_persons", op: "insert", id, data });
      this.replica.set(`key_persons/${id}`, { id, version: 0, ...data });
    } else if (action < 0.9) {
      const pool = [
        ...customers.map((row) => ["customers", row] as const),
        ...this.rows("key_persons").map((row) => ["key_persons", row] as const),
      ];
      const [table, row] = r.pick(pool);
      const data = table === "customers"
        ? { [r.pick(["phone", "notes", "city"])]: `v${r.int(1e6)}` }
        : { position: `P${r.int(1e3)}` };
      this.enqueue({ table, op: "update", id: row.id, base_version: row.version, data });
      Object.assign(row, data);
    } else {
      const pool = this.rows("key_persons");
      if (!pool.length) return;
      const row = r.pick(pool);
      this.enqueue({ table: "key_persons", op: "delete", id: row.id, base_version: row.version });
      this.replica.delete(`key_persons/${row.id}`);
    }
  }

  async ensureToken() {
    if (!this.token || this.tokenExpired) {
      this.token = await tokenFor(this.user);
      this.tokenExpired = false;
    }
  }

  private record(op: QueuedOp, result: OpResult, stats: Stats) {
    const status = result.status === "duplicate" ? result.original_status : result.status;
    assert.ok(status, `${this.name}: op ${op.op_id}'s duplicate names its original status`);
    const outcome: Outcome = { status, code: result.code, conflict: result.conflict, version: result.row?.version };
    if (outcome.status === "failed") return false; // stays queued, retried later
    assert.notEqual(outcome.code, "op_id_reused", `${this.name}: op ${op.op_id} was only ever sent with one content`);
    outcome.op = op.op;
    outcome.table = op.table;
    outcome.row_id = op.id;
    outcome.base_version = op.base_version;
    if (!this.ledger.has(op.op_id)) this.ledger.set(op.op_id, outcome);
    stats.outcomes[outcome.status] = (stats.outcomes[outcome.status] ?? 0) + 1;
    if (result.row && !result.row.deleted_at) this.replica.set(`${op.table}/${result.row.id}`, result.row);
    if (result.row?.deleted_at) this.replica.delete(`${op.table}/${result.row.id}`);
    if (outcome.status === "rejected" && outcome.code !== "deleted" && op.op === "insert") {
      this.replica.delete(`${op.table}/${op.id}`);
    }
    return true;
  }

  async push(faults: Faults, stats: Stats) {
    if (!this.queue.length) return;
    const r = this.r;
    if (r.chance(faults.expireToken)) this.token = await tokenFor(this.user, { expiresIn: -30 }); // it expired offline
    await this.ensureToken();
    const batch = this.queue.slice(0, 200);
    const body = { protocol: 2, client_id: this.clientId, ops: batch };
    if (r.chance(faults.drop)) return void stats.faults.drop++;
    for (const op of batch) this.sent.add(op.op_id);
    let res;
    if (RESTART && r.chance(faults.restartServer ?? 0)) {
      stats.faults.restartServer++;
      const pushing = call("/push", body, { token: this.token });
      await restartServer();
      res = await pushing;
    } else if (r.chance(faults.duplicate)) {
      stats.faults.duplicate++;
      const [a, b] = await Promise.all([
        call("/push", body, { token: this.token }),
        call("/push", body, { token: this.token }),
      ]);
      res = r.chance(0.5) ? a : b;
    } else if (r.chance(faults.killConnection)) {
      stats.faults.killConnection++;
      const pushing = call("/push", body, { token: this.token });
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'sync-function' and datname = current_database() and pid <> pg_backend_pid()`;
      res = await pushing;
    } else {
      res = await call("/push", body, { token: this.token });
    }
    if (res.status === 401 && res.body?.error === "token_expired") {
      stats.faults.expiredSeen++;
      this.tokenExpired = true;
      return; // refresh and retry on the next sync; nothing is lost
    }
    if (res.status >= 500) return void stats.serverErrors++; // a killed connection: the request rolled back
    assert.equal(res.status, 200, `${this.name} push: ${res.status} ${res.text}`);
    if (r.chance(faults.lostResponse)) return void stats.faults.lostResponse++;
    assert.equal(res.body.results.length, batch.length);
    const done = new Set<string>();
    batch.forEach((op, i) => {
      assert.equal(res.body.results[i].op_id, op.op_id);
      if (this.record(op, res.body.results[i], stats)) done.add(op.op_id);
    });
    this.queue = this.queue.filter((q) => !done.has(q.op_id));
  }

  async pull(stats: Stats) {
    await this.ensureToken();
    for (let page = 0; page < 1000; page++) {
      const res = await call("/pull", { protocol: 2, cursor: this.cursor, limit: 500 }, {
        token: this.token,
      });
      if (res.status === 401) {
        this.tokenExpired = true;
        await this.ensureToken();
        continue;
      }
      if (res.status >= 500) return void stats.serverErrors++;
      assert.equal(res.status, 200, `${this.name} pull: ${res.text}`);
      if (res.body.resync_required) {
        this.cursor = null;
        this.replica.clear();
        continue;
      }
      for (const c of res.body.changes) {
        if (c.table === "conflicts") continue;
        const key = `${c.table}/${c.op === "upsert" ? c.row.id : c.id}`;
        if (c.op === "upsert") {
          const mine = this.replica.get(key);
          if (!mine || (mine.version ?? 0) <= c.row.version) this.replica.set(key, c.row);
        } else this.replica.delete(key);
      }
      this.cursor = res.body.cursor;
      if (!res.body.has_more) return;
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

export function fleet(seed: number): { devices: Device[]; r: Rng } {
  const r = rng(seed);
  const devices = [
    new Device("rm1-phone", users.rm1Jakarta, "rm", r),
    new Device("rm1-tablet", users.rm1Jakarta, "rm", r),
    new Device("rm2-phone", users.rm2Jakarta, "rm", r),
    new Device("rm1sby-phone", users.rm1Surabaya, "rm", r),
    new Device("bm-phone", users.bmJakarta, "bm", r),
    new Device("admin-web", users.admin, "admin", r),
  ];
  return { devices, r };
}

/** `n` devices over the same users (several devices per user), for the load run. */
export function manyDevices(seed: number, n: number): Device[] {
  const r = rng(seed);
  const who: [User, "rm" | "bm" | "admin"][] = [
    [users.rm1Jakarta, "rm"],
    [users.rm2Jakarta, "rm"],
    [users.rm1Surabaya, "rm"],
    [users.bmJakarta, "bm"],
    [users.admin, "admin"],
  ];
  return Array.from(
    { length: n },
    (_, i) => new Device(`device-${i}`, who[i % who.length][0], who[i % who.length][1], rng(seed + i)),
  )
    .map((d) => (r.next(), d));
}

/** Runs `steps` random steps, then lets every device sync until quiet with no faults, and checks. */
export async function simulate(seed: number, steps: number, faults: Faults = defaultFaults, deadline = Infinity) {
  const { devices, r } = fleet(seed);
  const stats: Stats = {
    outcomes: {},
    faults: { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expiredSeen: 0, restartServer: 0 },
    serverErrors: 0,
  };
  for (const d of devices) await d.pull(stats);
  for (let step = 0; step < steps && Date.now() < deadline; step++) {
    const d = r.pick(devices);
    if (
      RESTART && step === Math.floor(steps / 2) && stats.faults.restartServer === 0 && (faults.restartServer ?? 0) > 0
    ) {
      // Every run restarts the server at least once, in the middle of a device's push.
      stats.faults.restartServer++;
      d.edit();
      const pushing = d.push({
        ...faults,
        restartServer: 0,
        drop: 0,
        lostResponse: 0,
        duplicate: 0,
        killConnection: 0,
        expireToken: 0,
      }, stats);
      await restartServer();
      await pushing;
      continue;
    }
    const roll = r.next();
    if (roll < 0.6) d.edit();
    else if (roll < 0.85) await d.push(faults, stats);
    else await d.pull(stats);
  }
  const calm: Faults = { drop: 0, lostResponse: 0, duplicate: 0, killConnection: 0, expireToken: 0 };
  for (let round = 0; round < 10 && devices.some((d) => d.queue.length); round++) {
    for (const d of devices) {
      await d.push(calm, stats);
      await d.pull(stats);
    }
  }
  for (const d of devices) await d.pull(stats);
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
      select 'activities', id, version, deleted_at from public.activities) v where deleted_at is null`;
    return new Map(rows.map((x) => [`${x.table_name}/${x.id}`, Number(x.version)]));
  });
}

export async function check(devices: Device[]) {
  for (const d of devices) {
    assert.deepEqual(d.queue, [], `${d.name} synced until quiet`);
    // Every op ever queued is accounted for exactly once, and the server agrees.
    assert.deepEqual([...d.queued].filter((id) => !d.ledger.has(id)), [], `${d.name}: every queued op has an outcome`);
    const ids = [...d.queued];
    const server = ids.length
      ? await sql`select op_id, outcome from sync.applied_ops where user_id = ${d.user.id} and op_id = any(${ids}::uuid[])`
      : [];
    assert.equal(server.length, ids.length, `${d.name}: the server recorded each op once`);
    for (const s of server) {
      const mine = d.ledger.get(s.op_id)!;
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
    // The replica equals the server's rows in the user's scope, by id and version.
    const expected = await visibleAs(d.user);
    const actual = new Map(
      [...d.replica.entries()].filter(([, v]) => !v.deleted_at).map(([k, v]) => [k, Number(v.version)]),
    );
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
