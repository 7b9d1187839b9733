// The oracle of pull completeness: seeded rounds of edits, child inserts, deletes, reassignments
// (into the branch's pool, where no rm sees a customer, and out of it), moves and referrals (made,
// accepted, declined, closed, deleted: what a user sees changes without a row of theirs changing)
// by the rms of a branch and its bm, some through the function, some in transactions held open
// across pull pages and committed out of order, with each user paging through pulls at limits of 1
// to 3 in between. A device's replica is built only from pull answers (upsert by version, delete,
// evict; conflicts as one more table). After each round every device must hold exactly what RLS
// shows its user (ids and versions of live rows, table by table) and the conflicts its user was
// involved in, with row data only where the user may read the row. Every pull cycle must end within
// ceil(changes / limit) + tables + 2 pages, repeat no cursor, and keep every page within its limit
// of changes and of bytes. Used by pull_oracle.test.ts (short) and the soak run (long).
import assert from "node:assert/strict";
import type postgres from "postgres";
import {
  call,
  type Change,
  insert,
  type Op,
  pullsFromReplica,
  remove,
  replicaCaughtUp,
  type Row,
  sql,
  standbySettled,
  tokenFor,
  update,
  type User,
  users,
} from "./_helpers.ts";
import { rng } from "./_simulation.ts";

type Rng = ReturnType<typeof rng>;
type Tx = postgres.TransactionSql;

/** The page byte limit the database applies by default (sync.settings.max_pull_bytes). */
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;
/** The data a conflict carries about its row, withheld when the caller may not read the row. */
const CONFLICT_DATA = ["client_data", "base_data", "server_row", "resolution_data"] as const;

const claimsOf = (user: User) =>
  JSON.stringify({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });

async function asUser<T>(user: User, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    return await fn(tx);
  }) as T;
}

/** A transaction of `user` on its own connection, open between statements until commit(). */
function openTransaction(user: User) {
  type Command = {
    kind: "run";
    fn: (tx: Tx) => Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  } | {
    kind: "commit";
  };
  const inbox: Command[] = [];
  let wake: (() => void) | null = null;
  const send = (c: Command) => (inbox.push(c), wake?.());
  const receive = async (): Promise<Command> => {
    while (!inbox.length) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  const done = sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${
      claimsOf(user)
    }, true)`;
    for (;;) {
      const c = await receive();
      if (c.kind === "commit") return;
      try {
        c.resolve(await c.fn(tx));
      } catch (err) {
        c.reject(err);
        throw err;
      }
    }
  });
  done.catch(() => {});
  return {
    user,
    run: <T>(fn: (tx: Tx) => Promise<T>) =>
      new Promise<T>((resolve, reject) => send({ kind: "run", fn, resolve: (v) => resolve(v as T), reject })),
    commit: async () => (send({ kind: "commit" }), await done),
  };
}
type OpenTransaction = ReturnType<typeof openTransaction> & { rows: Set<string> };

/** Fails instead of hanging when a write waits for a lock of a transaction this run holds open. */
async function bounded<T>(what: string, p: Promise<T>, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish in ${ms} ms (a lock held by an open transaction?)`)),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Cycle {
  limit: number;
  pages: number;
  changes: number;
  cursors: Set<string | null>;
}

interface Device {
  name: string;
  user: User;
  token: string;
  rows: Map<string, Row>; // `table/id` -> row as last delivered
  conflicts: Map<string, Row>; // conflict id -> conflict as last delivered
  cursor: string | null;
  cycle: Cycle | null;
}

const keyOf = (table: string, id: string) => `${table}/${id}`;

/** What a client does with a change: upsert by version, delete, evict; an evict withdraws the row's conflict data. */
function apply(device: Device, c: Change) {
  if (c.table === "conflicts") {
    assert.equal(c.op, "upsert", `a conflict travels as an upsert: ${JSON.stringify(c)}`);
    device.conflicts.set(c.row.id, c.row);
    return;
  }
  if (c.op === "upsert") {
    const key = keyOf(c.table, c.row.id);
    const held = device.rows.get(key);
    if (!held || held.version <= c.row.version) device.rows.set(key, c.row);
  } else if (c.op === "delete" || c.op === "evict") {
    device.rows.delete(keyOf(c.table, c.id));
    if (c.op === "evict") {
      for (const [id, conflict] of device.conflicts) {
        if (conflict.table_name === c.table && conflict.row_id === c.id) {
          device.conflicts.set(id, {
            ...conflict,
            ...Object.fromEntries(CONFLICT_DATA.map((f) => [f, null])),
            redacted: true,
          });
        }
      }
    }
  } else assert.fail(`unknown change ${JSON.stringify(c)}`);
}

export interface OracleStats {
  seed: number;
  rounds: number;
  steps: number;
  pages: number;
  changes: number;
  pushes: number;
  heldOpen: number;
  conflicts: number;
  redacted: number;
  evictions: number;
  /** Referral moves the server applied (made, answered, closed, deleted, an activity logged by the referred rm). */
  referralMoves: number;
}

export interface OracleOptions {
  rounds: number;
  steps: number;
  pageBytes?: number;
  log?: (line: string) => void;
}

/** Runs the oracle for one seed; throws an AssertionError naming the seed on the first violation. */
export async function runPullOracle(seed: number, opts: OracleOptions): Promise<OracleStats> {
  try {
    return await oracle(seed, opts);
  } catch (err) {
    if (err instanceof Error) err.message = `pull oracle, seed ${seed} (replay: ORACLE_SEED=${seed}): ${err.message}`;
    throw err;
  }
}

async function oracle(seed: number, opts: OracleOptions): Promise<OracleStats> {
  const r: Rng = rng(seed);
  const pageBytes = opts.pageBytes ?? DEFAULT_PAGE_BYTES;
  const stats: OracleStats = {
    seed,
    rounds: 0,
    steps: 0,
    pages: 0,
    changes: 0,
    pushes: 0,
    heldOpen: 0,
    conflicts: 0,
    redacted: 0,
    evictions: 0,
    referralMoves: 0,
  };
  const tables = [...await sql`select table_name from sync.tables order by sync_order`].map((t) =>
    t.table_name as string
  );
  const tableCount = tables.length + 1; // and conflicts
  const preexisting = new Set([...await sql`select id::text from sync.conflicts`].map((c) => c.id as string));

  const rm1 = users.rm1Jakarta, rm2 = users.rm2Jakarta, bm = users.bmJakarta;
  const tokens = new Map<string, string>();
  // The regional manager and the auditor (roles an app's migration added) only pull: their
  // replicas must follow their scopes through everything the others do.
  const regional = users.regional, auditor = users.auditor;
  for (const u of [rm1, rm2, bm, regional, auditor]) tokens.set(u.id, await tokenFor(u, { expiresIn: 4 * 3600 }));
  const tokenOf = (u: User) => tokens.get(u.id)!;

  const pushAs = async (user: User, ops: Op[]) => {
    stats.pushes++;
    const res = await bounded(
      `push by ${user.email}`,
      call("/push", { protocol: 2, client_id: crypto.randomUUID(), ops }, { token: tokenOf(user) }),
    );
    assert.equal(res.status, 200, `push by ${user.email}: ${res.status} ${res.text}`);
    return res.body.results;
  };

  // The working set: customers of this run, each with a key person, a pipeline and an activity.
  const customers: string[] = [];
  const children = new Map<string, { table: string; customer: string }>(); // child id -> where it hangs
  const setup: Op[] = [];
  for (let i = 0; i < 4; i++) {
    const c = r.uuid();
    customers.push(c);
    setup.push(insert("customers", c, { name: `PT Oracle ${seed}-${i}`, assigned_rm_id: (i % 2 ? rm2 : rm1).id }));
    for (
      const [table, data] of [
        ["key_persons", { customer_id: c, name: `Contact ${i}` }],
        ["pipelines", { customer_id: c, title: `Deal ${i}`, potential_value: 1000 }],
        ["activities", { customer_id: c, activity_type: "call", subject: `Call ${i}` }],
      ] as const
    ) {
      const id = r.uuid();
      children.set(id, { table, customer: c });
      setup.push(insert(table, id, data));
    }
  }
  const made = await pushAs(bm, setup);
  assert.ok(
    made.every((x) => x.status === "applied"),
    `the working set is created: ${JSON.stringify(made.filter((x) => x.status !== "applied"))}`,
  );

  const devices: Device[] = [
    { name: "rm1", user: rm1, token: tokenOf(rm1), rows: new Map(), conflicts: new Map(), cursor: null, cycle: null },
    { name: "rm2", user: rm2, token: tokenOf(rm2), rows: new Map(), conflicts: new Map(), cursor: null, cycle: null },
    { name: "bm", user: bm, token: tokenOf(bm), rows: new Map(), conflicts: new Map(), cursor: null, cycle: null },
    {
      name: "regional",
      user: regional,
      token: tokenOf(regional),
      rows: new Map(),
      conflicts: new Map(),
      cursor: null,
      cycle: null,
    },
    {
      name: "auditor",
      user: auditor,
      token: tokenOf(auditor),
      rows: new Map(),
      conflicts: new Map(),
      cursor: null,
      cycle: null,
    },
  ];

  /** One page of the device's current cycle (starting one when none is under way). */
  const pullPage = async (d: Device, limit?: number) => {
    if (!d.cycle) {
      d.cycle = { limit: limit ?? 1 + r.int(3), pages: 0, changes: 0, cursors: new Set() };
    }
    const cycle = d.cycle;
    // Outside the bound: waiting for the standby is not waiting for a lock (call() waits again, at once).
    if (pullsFromReplica) await replicaCaughtUp();
    const res = await bounded(
      `pull by ${d.name}`,
      call("/pull", { protocol: 2, cursor: d.cursor, limit: cycle.limit }, { token: d.token }),
    );
    assert.equal(res.status, 200, `pull by ${d.name}: ${res.status} ${res.text}`);
    const page = res.body;
    assert.equal(page.resync_required, false, `${d.name}: no resync is needed`);
    cycle.pages++;
    stats.pages++;
    const what = `${d.name}'s page ${cycle.pages} (limit ${cycle.limit})`;
    assert.ok(
      page.changes.length <= cycle.limit,
      `${what} holds ${page.changes.length} changes: ${JSON.stringify(page.changes).slice(0, 600)}`,
    );
    const bytes = page.changes.reduce((n, c) => n + new TextEncoder().encode(JSON.stringify(c)).length, 0);
    assert.ok(page.changes.length <= 1 || bytes <= pageBytes, `${what} holds ${bytes} bytes of changes`);
    // An up-to-date device may get its own cursor back (nothing committed since); within a cycle
    // every page moves on.
    assert.ok(!cycle.cursors.has(page.cursor), `${what} repeats a cursor of its cycle (has_more ${page.has_more})`);
    assert.ok(
      !(page.has_more && page.cursor === d.cursor),
      `${what} hands back the cursor it was given, with has_more`,
    );
    cycle.cursors.add(page.cursor);
    cycle.changes += page.changes.length;
    stats.changes += page.changes.length;
    for (const c of page.changes) {
      if (c.op === "evict") stats.evictions++;
      if (c.op === "upsert" && c.table === "conflicts" && c.row.redacted) stats.redacted++;
      apply(d, c);
    }
    d.cursor = page.cursor;
    const bound = Math.ceil(cycle.changes / cycle.limit) + tableCount + 2;
    assert.ok(
      cycle.pages <= bound,
      `${d.name}'s cycle takes ${cycle.pages} pages for ${cycle.changes} changes at limit ${cycle.limit} (at most ${bound})`,
    );
    if (!page.has_more) d.cycle = null;
  };
  const finishCycle = async (d: Device, limit?: number) => {
    do await pullPage(d, limit); while (d.cycle);
  };

  // Every device starts from a full pull (pages of 1 to 3 would take thousands of requests for the bm).
  for (const d of devices) await finishCycle(d, 2000);

  const open: OpenTransaction[] = [];
  const lockedRows = () => new Set(open.flatMap((t) => [...t.rows]));
  // The working-set rows a device holds, as [table, row].
  const held = (d: Device) => {
    const out: [string, Row][] = [];
    for (const [key, row] of d.rows) {
      const [table, id] = key.split("/");
      if (customers.includes(id) || children.has(id)) out.push([table, row]);
    }
    return out.sort((a, b) => (a[0] + a[1].id).localeCompare(b[0] + b[1].id));
  };
  const editData = (table: string): Record<string, unknown> => {
    const n = r.int(1_000_000);
    switch (table) {
      case "customers":
        return r.chance(0.5) ? { notes: `note ${n}` } : { phone: `+62 21 ${n}` };
      case "key_persons":
        return r.chance(0.5) ? { phone: `+62 812 ${n}`, notes: `kp ${n}` } : { position: `Role ${n % 100}` };
      case "pipelines":
        return r.chance(0.5) ? { potential_value: n } : { notes: `deal ${n}` };
      default:
        return { subject: `Subject ${n}` };
    }
  };
  // A customer out of the branch's pool goes to rm1.
  const otherRm = async (customer: string) => {
    const [row] = await sql`select assigned_rm_id::text as rm from public.customers where id = ${customer}`;
    return row.rm === rm1.id ? rm2 : rm1;
  };
  // A customer's pipelines follow it (their rm and branch are its own): reassigning it writes them
  // too, so it waits for a transaction that holds one of them, and one that holds it holds them.
  const pipelinesOf = (customer: string) =>
    [...children].filter(([, ch]) => ch.table === "pipelines" && ch.customer === customer).map(([id]) => id);
  const reassignable = (customer: string, locked: Set<string>) =>
    !locked.has(customer) && pipelinesOf(customer).every((p) => !locked.has(p));

  // Referrals of the working set's pipelines, by id (not among `children`: the edits above are not theirs).
  const referrals = new Set<string>();
  const pipelineIds = () => [...children].filter(([, ch]) => ch.table === "pipelines").map(([id]) => id);
  const rmById = (id: string) => (id === rm1.id ? rm1 : rm2);
  const countApplied = (results: { status: string }[]) => {
    stats.referralMoves += results.filter((x) => x.status === "applied").length;
  };
  /** Referrals of the working set in one of these statuses, with their pipeline's customer and its rm. */
  const referralsIn = async (statuses: string[]) =>
    [
      ...await sql`select r.id::text, r.referred_rm_id::text as referred, p.id::text as pipeline,
                          p.customer_id::text as customer, c.assigned_rm_id::text as owner
                     from public.pipeline_referrals r join public.pipelines p on p.id = r.pipeline_id
                     join public.customers c on c.id = p.customer_id
                    where r.id = any(${[
        ...referrals,
      ]}::uuid[]) and r.deleted_at is null and r.status = any(${statuses})`,
    ].filter((x) => !lockedRows().has(x.customer) && !lockedRows().has(x.pipeline));

  const writers = devices.filter((d) => d.user !== auditor); // the auditor's role writes nothing
  const actions: [number, () => Promise<void>][] = [
    // A page of some device's pull.
    [30, async () => await pullPage(r.pick(devices))],
    // An edit of a row the device holds, based on the version it holds (or an older one: a device
    // that edited offline long ago), through the function.
    [14, async () => {
      const d = r.pick(writers);
      const candidates = held(d).filter(([, row]) => !lockedRows().has(row.id));
      if (!candidates.length) return;
      const [table, row] = r.pick(candidates);
      const base = r.chance(0.35) ? Math.max(1, row.version - 1 - r.int(2)) : r.chance(0.1) ? null : row.version;
      await pushAs(d.user, [update(table, row.id, base, editData(table))]);
    }],
    // A child row inserted under a customer the device holds.
    [8, async () => {
      const d = r.pick(writers);
      const heldCustomers = held(d).filter(([t]) => t === "customers");
      if (!heldCustomers.length) return;
      const [, customer] = r.pick(heldCustomers);
      const id = r.uuid();
      const table = r.chance(0.5) ? "key_persons" : "activities";
      children.set(id, { table, customer: customer.id });
      await pushAs(d.user, [
        insert(
          table,
          id,
          table === "key_persons"
            ? { customer_id: customer.id, name: `New ${id.slice(0, 4)}` }
            : { customer_id: customer.id, activity_type: "meeting", subject: `Meet ${id.slice(0, 4)}` },
        ),
      ]);
    }],
    // A delete of a child row the device holds.
    [4, async () => {
      const d = r.pick(writers);
      const candidates = held(d).filter(([t, row]) => t !== "customers" && !lockedRows().has(row.id));
      if (!candidates.length) return;
      const [table, row] = r.pick(candidates);
      await pushAs(d.user, [remove(table, row.id, row.version)]);
    }],
    // The bm reassigns a customer to the other rm (and so, another time, back; one in the pool to rm1).
    [8, async () => {
      const locked = lockedRows();
      const candidates = customers.filter((c) => reassignable(c, locked));
      if (!candidates.length) return;
      const c = r.pick(candidates);
      await pushAs(bm, [update("customers", c, null, { assigned_rm_id: (await otherRm(c)).id })]);
    }],
    // The bm takes a customer back into the branch's pool: no rm sees it until it is assigned again.
    [2, async () => {
      const locked = lockedRows();
      const candidates = customers.filter((c) => reassignable(c, locked));
      if (!candidates.length) return;
      await pushAs(bm, [update("customers", r.pick(candidates), null, { assigned_rm_id: null })]);
    }],
    // The bm moves a key person to another customer of the working set.
    [3, async () => {
      const kps = [...children].filter(([id, ch]) => ch.table === "key_persons" && !lockedRows().has(id));
      if (!kps.length) return;
      const [id, ch] = r.pick(kps);
      const target = r.pick(customers.filter((c) => c !== ch.customer));
      const [res] = await pushAs(bm, [update("key_persons", id, null, { customer_id: target })]);
      if (res.status === "applied") ch.customer = target;
    }],
    // A writing transaction opened and held: a slow request, a job that has not committed yet.
    [8, async () => {
      if (open.length >= 3) return;
      const user = r.pick([rm1, rm2, bm]);
      const t = Object.assign(openTransaction(user), { rows: new Set<string>() });
      open.push(t);
      stats.heldOpen++;
      const locked = lockedRows();
      const visible = [
        ...await t.run((tx) =>
          // The customers the user writes: those they read in scope, not only through a grant.
          tx`select id::text from public.customers where id = any(${customers}::uuid[]) and deleted_at is null
                and id <> all(sync.granted_row_ids('customers'))`
        ),
      ]
        .map((x) => x.id as string);
      const kind = r.int(3);
      if (kind === 0 && visible.length) {
        // A child row written into a customer (which may be reassigned before this commits).
        const id = r.uuid();
        const customer = r.pick(visible);
        children.set(id, { table: "key_persons", customer });
        t.rows.add(id);
        await t.run((tx) =>
          tx`insert into public.key_persons (id, customer_id, name) values (${id}, ${customer}, ${
            "Held " + id.slice(0, 4)
          })`
        );
      } else if (kind === 1 && user === bm) {
        const candidates = customers.filter((c) => reassignable(c, locked));
        if (!candidates.length) return;
        const c = r.pick(candidates);
        t.rows.add(c);
        for (const p of pipelinesOf(c)) t.rows.add(p);
        const to = await otherRm(c);
        await t.run((tx) => tx`update public.customers set assigned_rm_id = ${to.id} where id = ${c}`);
      } else {
        const rows = [
          ...await t.run((tx) =>
            tx`select 'key_persons' as t, id::text, customer_id::text from public.key_persons where customer_id = any(${customers}::uuid[]) and deleted_at is null
             union all select 'pipelines', id::text, customer_id::text from public.pipelines where customer_id = any(${customers}::uuid[]) and deleted_at is null`
          ),
        ]
          .filter((x) => !locked.has(x.id) && !(x.t === "pipelines" && locked.has(x.customer_id)));
        if (!rows.length) return;
        const row = r.pick(rows);
        t.rows.add(row.id);
        // A held pipeline holds its customer's reassignment back (the pipeline would follow it).
        if (row.t === "pipelines") t.rows.add(row.customer_id);
        const n = r.int(1_000_000);
        await t.run((tx) =>
          row.t === "key_persons"
            ? tx`update public.key_persons set phone = ${"+62 813 " + n} where id = ${row.id}`
            : tx`update public.pipelines set notes = ${"held " + n} where id = ${row.id}`
        );
      }
    }],
    // A held transaction commits, in any order.
    [7, async () => {
      if (!open.length) return;
      const t = open.splice(r.int(open.length), 1)[0];
      await bounded("commit", t.commit());
    }],
    // An rm refers a pipeline of one of their customers to the other rm.
    [4, async () => {
      const from = r.pick([rm1, rm2]);
      const candidates = [
        ...await sql`select p.id::text from public.pipelines p join public.customers c on c.id = p.customer_id
                      where p.id = any(${pipelineIds()}::uuid[]) and p.deleted_at is null and c.assigned_rm_id = ${from.id}`,
      ].map((x) => x.id as string).filter((id) => !lockedRows().has(id));
      if (!candidates.length) return;
      const id = r.uuid();
      referrals.add(id);
      countApplied(
        await pushAs(from, [
          insert("pipeline_referrals", id, {
            pipeline_id: r.pick(candidates),
            referred_rm_id: (from === rm1 ? rm2 : rm1).id,
            notes: `Referral ${id.slice(0, 4)}`,
          }),
        ]),
      );
    }],
    // The referred rm accepts or declines an open referral.
    [4, async () => {
      const open = await referralsIn(["open"]);
      if (!open.length) return;
      const x = r.pick(open);
      const status = r.chance(0.65) ? "accepted" : "declined";
      countApplied(await pushAs(rmById(x.referred), [update("pipeline_referrals", x.id, null, { status })]));
    }],
    // The referring side (the customer's rm, or the bm) closes a referral.
    [3, async () => {
      const live = await referralsIn(["open", "accepted", "declined"]);
      if (!live.length) return;
      const x = r.pick(live);
      const by = r.chance(0.3) || x.owner === x.referred ? bm : rmById(x.owner);
      countApplied(await pushAs(by, [update("pipeline_referrals", x.id, null, { status: "closed" })]));
    }],
    // The rm of an accepted referral logs an activity on its pipeline.
    [2, async () => {
      const accepted = await referralsIn(["accepted"]);
      if (!accepted.length) return;
      const x = r.pick(accepted);
      const id = r.uuid();
      children.set(id, { table: "activities", customer: x.customer });
      countApplied(
        await pushAs(rmById(x.referred), [
          insert("activities", id, {
            customer_id: x.customer,
            pipeline_id: x.pipeline,
            activity_type: "visit",
            subject: `Referred visit ${id.slice(0, 4)}`,
          }),
        ]),
      );
    }],
    // The bm deletes a referral (its rm keeps the tombstone, and loses what it gave).
    [1, async () => {
      const live = await referralsIn(["open", "accepted", "declined", "closed"]);
      if (!live.length) return;
      const x = r.pick(live);
      const [row] = await sql`select version from public.pipeline_referrals where id = ${x.id}`;
      countApplied(await pushAs(bm, [remove("pipeline_referrals", x.id, Number(row.version))]));
    }],
    // The bm settles a pending conflict of the working set, keeping the server's value.
    [2, async () => {
      const pending = [
        ...await sql`select id::text, row_id::text from sync.conflicts
                                     where resolution = 'manual_pending' and row_id = any(${[
          ...customers,
          ...children.keys(),
        ]}::uuid[])`,
      ];
      if (!pending.length) return;
      const c = r.pick(pending);
      if (lockedRows().has(c.row_id)) return;
      await bounded(
        "resolve_conflict",
        asUser(bm, (tx) => tx`select public.resolve_conflict(${c.id}::uuid, 'server')`),
      );
    }],
  ];
  const total = actions.reduce((n, [w]) => n + w, 0);
  const step = async () => {
    let x = r.int(total);
    for (const [w, fn] of actions) {
      if ((x -= w) < 0) return await fn();
    }
  };

  try {
    await rounds();
  } finally {
    // Nothing of this run may hold locks or wait for a person once it ends, pass or fail.
    while (open.length) await open.pop()!.commit().catch(() => {});
    await settlePending([...customers, ...children.keys()]);
  }
  return stats;

  async function rounds() {
    for (let round = 1; round <= opts.rounds; round++) {
      for (let s = 0; s < opts.steps; s++) {
        await step();
        stats.steps++;
      }
      // The round ends: what is held open commits (in random order), and every device syncs to the end.
      while (open.length) await bounded("commit", open.splice(r.int(open.length), 1)[0].commit());
      // A standby delivers a commit once no older transaction is open anywhere in the cluster (the
      // standby snapshot rule): any other one (autovacuum's analyze, say) would hold it for a cycle.
      if (pullsFromReplica) await standbySettled();
      for (const d of devices) {
        if (d.cycle) await finishCycle(d);
        await finishCycle(d);
      }
      for (const d of devices) await assertReplica(d, tables, preexisting);
      stats.rounds++;
      stats.conflicts =
        (await sql`select count(*)::int as n from sync.conflicts where not (id::text = any(${[...preexisting]}))`)[0].n;
      opts.log?.(JSON.stringify({ round, ...stats }));
    }
  }
}

/** The bm keeps the server's value in every conflict of these rows still waiting for a person. */
async function settlePending(rows: string[]) {
  const pending =
    await sql`select id::text from sync.conflicts where resolution = 'manual_pending' and row_id = any(${rows}::uuid[])`;
  for (const c of pending) {
    await asUser(users.bmJakarta, (tx) => tx`select public.resolve_conflict(${c.id}::uuid, 'server')`);
  }
}

/** The device holds exactly the live rows its user may see, at their versions, and its conflicts. */
async function assertReplica(d: Device, tables: string[], preexisting: Set<string>) {
  const expected = new Map<string, number>();
  const readable = new Map<string, boolean>();
  const theirs = [
    ...await sql`select c.*, c.id::text as id, c.row_id::text as row_id from sync.conflicts c
                               where (c.user_id = ${d.user.id} or c.server_user_id = ${d.user.id})`,
  ]
    .filter((c) => !preexisting.has(c.id));
  await asUser(d.user, async (tx) => {
    for (const t of tables) {
      for (const row of await tx.unsafe(`select id::text as id, version from public."${t}" where deleted_at is null`)) {
        expected.set(keyOf(t, row.id), Number(row.version));
      }
    }
    for (const c of theirs) {
      const [x] = await tx.unsafe(`select exists (select 1 from public."${c.table_name}" where id = $1) as ok`, [
        c.row_id,
      ]);
      readable.set(c.id, x.ok);
    }
  });
  const missing: string[] = [], extra: string[] = [], stale: string[] = [];
  for (const [key, version] of expected) {
    const held = d.rows.get(key);
    if (!held) missing.push(key);
    else if (Number(held.version) !== version) stale.push(`${key} holds v${held.version}, RLS shows v${version}`);
  }
  for (const key of d.rows.keys()) if (!expected.has(key)) extra.push(key);
  assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10), stale: stale.slice(0, 10) }, {
    missing: [],
    extra: [],
    stale: [],
  }, `${d.name}'s replica equals what RLS shows ${d.user.email}`);

  const heldConflicts = [...d.conflicts.keys()].filter((id) => !preexisting.has(id)).sort();
  assert.deepEqual(
    heldConflicts,
    theirs.map((c) => c.id).sort(),
    `${d.name} holds exactly the conflicts its user was involved in`,
  );
  for (const c of theirs) {
    const got = d.conflicts.get(c.id);
    assert.ok(got, `${d.name} holds conflict ${c.id}`);
    assert.equal(got.resolution, c.resolution, `${d.name}: conflict ${c.id} is ${c.resolution}`);
    if (!readable.get(c.id)) {
      assert.deepEqual(
        Object.fromEntries([...CONFLICT_DATA, "redacted"].map((f) => [f, got[f]])),
        { ...Object.fromEntries(CONFLICT_DATA.map((f) => [f, null])), redacted: true },
        `${d.name} may not read ${c.table_name} ${c.row_id}, so its conflict ${c.id} carries none of the row's data`,
      );
    } else if (got.redacted !== true) {
      for (const f of CONFLICT_DATA) assert.deepEqual(got[f], c[f], `${d.name}: conflict ${c.id}'s ${f} as stored`);
    }
  }
}
