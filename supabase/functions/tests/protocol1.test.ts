import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  branches,
  call,
  insert,
  type Op,
  pullAll,
  push,
  seedPipeline,
  sql,
  test,
  tokenFor,
  update,
  upserted,
  users,
  uuid,
} from "./_helpers.ts";

// The legacy queue (protocol 1): items of the mobile app's old sync_queue table, as devices in the
// field still hold them. Payloads are whole entities in camelCase, with the app's local bookkeeping
// (isPendingSync, lastSyncAt) and server fields (id, createdAt, updatedAt) that the server ignores.

const rm1 = () => tokenFor(users.rm1Jakarta);
const hvc = (n: number) => `00000000-0000-4000-8001-${String(n).padStart(12, "0")}`;

interface Item {
  id: number | string;
  entityType: string;
  entityId: string;
  operation: "create" | "update" | "delete";
  payload?: Record<string, unknown> | null;
  createdAt: string;
  [extra: string]: unknown;
}

/** The op id the server derives for an item: md5('protocol1:' || client_id || ':' || item id || ':' || createdAt) as a uuid. */
function derivedOpId(clientId: string, item: Item): string {
  const hex = createHash("md5").update(`protocol1:${clientId}:${item.id}:${item.createdAt}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function pushQueue(token: string, clientId: string, items: Item[]) {
  return await call("/push", { protocol: 1, client_id: clientId, items }, { token });
}

let clock = Date.parse("2026-11-20T08:00:00.000Z");
/** Queue timestamps as the app wrote them: ISO-8601, one per item, increasing. */
const queuedAt = () => new Date(clock += 1500).toISOString();

/** The app's local row for an entity: camelCase, with its own bookkeeping beside the data. */
const local = (id: string, fields: Record<string, unknown>) => ({
  id,
  ...fields,
  isPendingSync: true,
  lastSyncAt: null,
  createdAt: "2026-11-20T07:59:00.000Z",
  updatedAt: queuedAt(),
});

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
/** A row as the app stored it after a pull (snake_case from the server, camelCase locally). */
const asLocal = (row: Record<string, unknown>) => ({
  ...Object.fromEntries(Object.entries(row).map(([k, v]) => [camel(k), v])),
  isPendingSync: false,
  lastSyncAt: queuedAt(),
});

async function countConflicts() {
  const [{ n }] = await sql`select count(*)::int as n from sync.conflicts`;
  return n as number;
}

/** A queue of one device: creates, a create followed by updates of the same entity, deletes, every entity type spelling. */
function sampleQueue() {
  const ids = {
    customer: uuid(),
    kp1: uuid(),
    kp2: uuid(),
    pipeline: uuid(),
    activity: uuid(),
    link1: uuid(),
    link2: uuid(),
  };
  const customer = {
    name: "PT Legacy Queue",
    customerType: "company",
    industry: "logistics",
    phone: "+62 21 100",
    taxId: "01.234.567.8-901.000",
    city: "Jakarta",
    assignedRmId: users.rm1Jakarta.id,
    branchId: branches.jakarta,
  };
  const kp2 = { customerId: ids.customer, name: "Pak Budi", position: "Finance", phone: "+62 811 1", isPrimary: false };
  const items: Item[] = [
    {
      id: 101,
      entityType: "customer",
      entityId: ids.customer,
      operation: "create",
      payload: local(ids.customer, customer),
      createdAt: queuedAt(),
      retryCount: 0,
    },
    {
      id: 102,
      entityType: "keyPerson",
      entityId: ids.kp1,
      operation: "create",
      payload: local(ids.kp1, { customerId: ids.customer, name: "Ibu Sari", position: "Director", isPrimary: true }),
      createdAt: queuedAt(),
    },
    {
      id: 103,
      entityType: "customer",
      entityId: ids.customer,
      operation: "update",
      payload: local(ids.customer, { ...customer, phone: "+62 21 200" }),
      createdAt: queuedAt(),
    },
    {
      id: 104,
      entityType: "pipeline",
      entityId: ids.pipeline,
      operation: "create",
      payload: local(ids.pipeline, {
        customerId: ids.customer,
        title: "Fleet cover",
        stage: "prospect",
        potentialValue: 150000000,
        currency: "IDR",
        approvalStatus: "draft",
        expectedCloseDate: "2027-01-31",
        assignedRmId: users.rm1Jakarta.id,
        branchId: branches.jakarta,
      }),
      createdAt: queuedAt(),
    },
    {
      id: 105,
      entityType: "activity",
      entityId: ids.activity,
      operation: "create",
      payload: local(ids.activity, {
        customerId: ids.customer,
        pipelineId: ids.pipeline,
        activityType: "visit",
        subject: "First visit",
        scheduledAt: "2026-12-01T02:00:00.000Z",
      }),
      createdAt: queuedAt(),
    },
    {
      id: 106,
      entityType: "customerHvcLink",
      entityId: ids.link1,
      operation: "create",
      payload: local(ids.link1, { customerId: ids.customer, hvcId: hvc(1), relationship: "member" }),
      createdAt: queuedAt(),
    },
    {
      id: 107,
      entityType: "customer_hvc_link",
      entityId: ids.link2,
      operation: "create",
      payload: local(ids.link2, { customerId: ids.customer, hvcId: hvc(2), relationship: "prospect" }),
      createdAt: queuedAt(),
    },
    {
      id: 108,
      entityType: "key_person",
      entityId: ids.kp2,
      operation: "create",
      payload: local(ids.kp2, kp2),
      createdAt: queuedAt(),
    },
    {
      id: 109,
      entityType: "customer",
      entityId: ids.customer,
      operation: "update",
      payload: local(ids.customer, { ...customer, phone: "+62 21 200", notes: "met the director" }),
      createdAt: queuedAt(),
    },
    {
      id: 110,
      entityType: "keyPerson",
      entityId: ids.kp2,
      operation: "update",
      payload: local(ids.kp2, { ...kp2, phone: "+62 811 2" }),
      createdAt: queuedAt(),
    },
    {
      id: 111,
      entityType: "activity",
      entityId: ids.activity,
      operation: "update",
      payload: local(ids.activity, {
        customerId: ids.customer,
        pipelineId: ids.pipeline,
        activityType: "visit",
        subject: "First visit",
        scheduledAt: "2026-12-01T02:00:00.000Z",
        completedAt: "2026-12-01T03:30:00.000Z",
        notes: "went well",
      }),
      createdAt: queuedAt(),
    },
    { id: 112, entityType: "keyPerson", entityId: ids.kp2, operation: "delete", payload: null, createdAt: queuedAt() },
    { id: 113, entityType: "customerHvcLink", entityId: ids.link2, operation: "delete", createdAt: queuedAt() },
  ];
  return { ids, items };
}

test("a legacy queue is applied item by item, in order: one result per item whose op_id is the id derived from (client_id, item id, createdAt)", async () => {
  const token = await rm1();
  const clientId = uuid();
  const { ids, items } = sampleQueue();
  const res = await pushQueue(token, clientId, items);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(
    Object.keys(res.body).sort(),
    ["commit_lsn", "results", "server_time"],
    "the protocol 2 push response",
  );
  assert.ok(!Number.isNaN(Date.parse(res.body.server_time)));
  assert.equal(res.body.results.length, items.length);
  assert.deepEqual(res.body.results.map((r) => r.op_id), items.map((i) => derivedOpId(clientId, i)));
  for (const [i, r] of res.body.results.entries()) {
    assert.equal(r.status, "applied", `item ${items[i].id}: ${JSON.stringify(r)}`);
    assert.equal(r.retryable, false);
    assert.equal(r.conflict, undefined, "the device's own writes never conflict with each other");
    assert.equal(r.row?.id, items[i].entityId);
    assert.equal(typeof r.row?.version, "number");
  }

  const [customer] =
    await sql`select name, phone, notes, tax_id, assigned_rm_id, branch_id, version, created_by, deleted_at
                                 from public.customers where id = ${ids.customer}`;
  assert.deepEqual({ ...customer }, {
    name: "PT Legacy Queue",
    phone: "+62 21 200",
    notes: "met the director",
    tax_id: "01.234.567.8-901.000",
    assigned_rm_id: users.rm1Jakarta.id,
    branch_id: branches.jakarta,
    version: "3",
    created_by: users.rm1Jakarta.id,
    deleted_at: null,
  }, "created, then updated twice: the last update wins and each counts once");
  const [kp1] = await sql`select customer_id, name, is_primary, version from public.key_persons where id = ${ids.kp1}`;
  assert.deepEqual({ ...kp1 }, { customer_id: ids.customer, name: "Ibu Sari", is_primary: true, version: "1" });
  const [kp2] =
    await sql`select phone, version, deleted_at is not null as deleted from public.key_persons where id = ${ids.kp2}`;
  assert.deepEqual(
    { ...kp2 },
    { phone: "+62 811 2", version: "3", deleted: true },
    "created, updated, deleted: a tombstone",
  );
  const [pipeline] =
    await sql`select title, potential_value::text, approval_status, expected_close_date::text, assigned_rm_id
                                 from public.pipelines where id = ${ids.pipeline}`;
  assert.deepEqual({ ...pipeline }, {
    title: "Fleet cover",
    potential_value: "150000000.00",
    approval_status: "draft",
    expected_close_date: "2027-01-31",
    assigned_rm_id: users.rm1Jakarta.id,
  });
  const [activity] =
    await sql`select pipeline_id, notes, completed_at is not null as done, version from public.activities where id = ${ids.activity}`;
  assert.deepEqual({ ...activity }, { pipeline_id: ids.pipeline, notes: "went well", done: true, version: "2" });
  const links = await sql`select id, hvc_id, deleted_at is not null as deleted from public.customer_hvc_links
                           where customer_id = ${ids.customer} order by relationship`;
  assert.deepEqual(links.map((l) => ({ ...l })), [
    { id: ids.link1, hvc_id: hvc(1), deleted: false },
    { id: ids.link2, hvc_id: hvc(2), deleted: true },
  ], "camelCase and snake_case entity types land in the same table");
});

test("the app's local fields and the server fields in a legacy payload are ignored, never applied", async () => {
  const token = await rm1();
  const id = uuid();
  const item: Item = {
    id: 1,
    entityType: "customer",
    entityId: id,
    operation: "create",
    createdAt: queuedAt(),
    payload: {
      id: uuid(),
      name: "PT Local Fields",
      isPendingSync: true,
      lastSyncAt: "2026-11-19T00:00:00.000Z",
      syncStatus: "pending",
      createdAt: "2001-01-01T00:00:00.000Z",
      updatedAt: "2001-01-01T00:00:00.000Z",
      version: 9,
      createdBy: users.admin.id,
      updatedBy: users.admin.id,
      deletedAt: "2001-01-01T00:00:00.000Z",
    },
  };
  const res = await pushQueue(token, uuid(), [item]);
  const [r] = res.body.results;
  assert.equal(r.status, "applied", JSON.stringify(r));
  assert.ok(r.row, JSON.stringify(r));
  assert.equal(r.row.id, id, "the row is the item's entityId, not the payload's id");
  assert.equal(r.row.version, 1);
  assert.equal(r.row.deleted_at, null);
  assert.equal(r.row.created_by, users.rm1Jakarta.id);
  assert.ok(new Date(r.row.created_at).getFullYear() >= 2026);
});

test("re-sending the same queue gives duplicate for every item and applies nothing twice", async () => {
  const token = await rm1();
  const clientId = uuid();
  const { ids, items } = sampleQueue();
  const first = await pushQueue(token, clientId, items);
  assert.ok(first.body.results.every((r) => r.status === "applied"), first.text);
  const state = async () =>
    (await sql`select 'customers' as t, id, version, deleted_at from public.customers where id = ${ids.customer}
               union all select 'key_persons', id, version, deleted_at from public.key_persons where customer_id = ${ids.customer}
               union all select 'pipelines', id, version, deleted_at from public.pipelines where customer_id = ${ids.customer}
               union all select 'activities', id, version, deleted_at from public.activities where customer_id = ${ids.customer}
               union all select 'links', id, version, deleted_at from public.customer_hvc_links where customer_id = ${ids.customer}
               order by 1, 2`).map((r) => ({ ...r }));
  const before = await state();
  const conflicts = await countConflicts();

  const again = await pushQueue(token, clientId, items);
  assert.equal(again.status, 200);
  assert.deepEqual(again.body.results.map((r) => r.op_id), items.map((i) => derivedOpId(clientId, i)));
  assert.deepEqual(again.body.results.map((r) => r.status), items.map(() => "duplicate"));
  assert.deepEqual(again.body.results.map((r) => r.original_status), items.map(() => "applied"));
  assert.deepEqual(await state(), before, "no version moved, nothing was re-created or re-deleted");
  assert.equal(await countConflicts(), conflicts, "and nothing was audited again");

  // The same item sent twice in one request is applied once as well.
  const id = uuid();
  const item: Item = {
    id: 7,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: local(id, { name: "PT Twice" }),
    createdAt: queuedAt(),
  };
  const twice = await pushQueue(token, clientId, [item, { ...item }]);
  assert.deepEqual(twice.body.results.map((r) => r.status), ["applied", "duplicate"]);
  assert.equal(twice.body.results[1].op_id, derivedOpId(clientId, item));
});

test("the derived op id depends on the device, the item id and its createdAt: the same item id from another device or time is a new op", async () => {
  const token = await rm1();
  const id = uuid();
  const createdAt = queuedAt();
  const clientId = uuid();
  const create: Item = {
    id: 5,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: local(id, { name: "PT Derived" }),
    createdAt,
  };
  const first = await pushQueue(token, clientId, [create]);
  assert.equal(first.body.results[0].status, "applied");
  // The app's queue ids restart after a reinstall: item 5 again, queued later, is another op.
  const later: Item = {
    id: 5,
    entityType: "customer",
    entityId: id,
    operation: "update",
    payload: local(id, { name: "PT Derived", city: "Bogor" }),
    createdAt: queuedAt(),
  };
  const second = await pushQueue(token, clientId, [later]);
  assert.equal(second.body.results[0].op_id, derivedOpId(clientId, later));
  assert.notEqual(second.body.results[0].op_id, first.body.results[0].op_id);
  assert.equal(second.body.results[0].status, "applied");
  // The same item from another device is not taken for this device's.
  const other = await pushQueue(token, uuid(), [create]);
  assert.equal(other.body.results[0].status, "rejected");
  assert.equal(other.body.results[0].code, "already_exists");
});

test("a legacy update of a row another user changed meanwhile is applied as an explicit last-write-wins, with an audit entry", async () => {
  const token = await rm1();
  const manager = await tokenFor(users.bmJakarta);
  const id = uuid();
  await pushQueue(token, uuid(), [{
    id: 1,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: local(id, { name: "PT Contested Legacy", phone: "+62 1", city: "Jakarta" }),
    createdAt: queuedAt(),
  }]);
  // The device pulled the row, then went offline and edited it.
  const pulled = upserted((await pullAll(token, null, { tables: ["customers"] })).changes, "customers", id);
  assert.ok(pulled, "the device pulled the row");
  const offlineEdit: Item = {
    id: 2,
    entityType: "customer",
    entityId: id,
    operation: "update",
    payload: { ...asLocal(pulled), notes: "edited offline", isPendingSync: true },
    createdAt: queuedAt(),
  };
  // Meanwhile the branch manager changed the phone.
  const bmEdit = await push(manager, [update("customers", id, 1, { phone: "+62 bm" })]);
  assert.equal(bmEdit.body.results[0].status, "applied");

  const clientId = uuid();
  const res = await pushQueue(token, clientId, [offlineEdit]);
  const r = res.body.results[0];
  assert.equal(r.status, "applied", JSON.stringify(r));
  assert.equal(r.op_id, derivedOpId(clientId, offlineEdit));
  assert.equal(r.conflict?.resolution, "client_wins");
  assert.deepEqual(
    r.conflict?.fields,
    ["notes", "phone"],
    "the whole entity was written: the bm's phone is overwritten, knowingly",
  );
  assert.equal(r.row?.version, 3);
  assert.equal(r.row?.phone, "+62 1");
  assert.equal(r.row?.notes, "edited offline");

  const [audit] =
    await sql`select table_name, row_id, op_id, user_id, client_id, server_user_id, base_version, server_version,
                                   resolution::text, fields, client_data ->> 'notes' as notes, server_row ->> 'phone' as server_phone
                              from sync.conflicts where id = ${r.conflict?.id}`;
  assert.deepEqual({ ...audit }, {
    table_name: "customers",
    row_id: id,
    op_id: r.op_id,
    user_id: users.rm1Jakarta.id,
    client_id: clientId,
    server_user_id: users.bmJakarta.id,
    base_version: null,
    server_version: "2",
    resolution: "client_wins",
    fields: ["notes", "phone"],
    notes: "edited offline",
    server_phone: "+62 bm",
  });
});

test("a legacy update carrying fields the rm may not write, which a bm changed meanwhile, keeps the bm's values and applies the rm's edit", async () => {
  const token = await rm1();
  const manager = await tokenFor(users.bmJakarta);
  const pipeline = seedPipeline(12); // of customer 12, rm1.jakarta's
  const pulled = upserted(
    (await pullAll(token, null, { tables: ["customers", "pipelines"] })).changes,
    "pipelines",
    pipeline,
  );
  assert.ok(pulled, "the device pulled the pipeline");
  const offlineEdit: Item = {
    id: 1,
    entityType: "pipeline",
    entityId: pipeline,
    operation: "update",
    payload: { ...asLocal(pulled), notes: "client asked for a discount", isPendingSync: true },
    createdAt: queuedAt(),
  };
  // The bm sets the approved value while the rm is offline.
  const approval = await push(manager, [update("pipelines", pipeline, pulled.version, { approved_value: 90000000 })]);
  assert.equal(approval.body.results[0].status, "applied", approval.text);

  const res = await pushQueue(token, uuid(), [offlineEdit]);
  const r = res.body.results[0];
  assert.equal(r.status, "applied", JSON.stringify(r));
  assert.equal(r.row?.notes, "client asked for a discount", "the rm's edit is not lost");
  assert.equal(r.row?.approved_value, 90000000, "the bm's value stands: the rm's queued copy of it was not an edit");
  assert.deepEqual(r.conflict?.fields, ["notes"], "the overwrite is logged for what was written");
});

test("a legacy update whose copy of approval_status a bm has moved since keeps the bm's move and applies the rm's edit", async () => {
  // An rm writes approval_status now (to submit and withdraw), but the old app never moved it: its
  // queued copy is what the device last saw (sync.legacy_kept_columns), not a move back.
  const token = await rm1();
  const manager = await tokenFor(users.bmJakarta);
  const customer = uuid(), pipeline = uuid();
  const made = await push(token, [
    insert("customers", customer, { name: "PT Legacy Approval" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Legacy cover", approval_status: "submitted" }),
  ]);
  const pulled = made.body.results[1].row!;
  const approval = await push(manager, [
    update("pipelines", pipeline, pulled.version, { approval_status: "approved" }),
  ]);
  assert.equal(approval.body.results[0].status, "applied", approval.text);
  const res = await pushQueue(token, uuid(), [{
    id: 1,
    entityType: "pipeline",
    entityId: pipeline,
    operation: "update",
    payload: { ...asLocal(pulled), notes: "queued before the approval", isPendingSync: true },
    createdAt: queuedAt(),
  }]);
  const r = res.body.results[0];
  assert.equal(r.status, "applied", JSON.stringify(r));
  assert.equal(r.row?.notes, "queued before the approval", "the rm's edit is not lost");
  assert.equal(r.row?.approval_status, "approved", "the bm's approval stands");
  const [row] = await sql`select approval_status, notes from public.pipelines where id = ${pipeline}`;
  assert.deepEqual({ ...row }, { approval_status: "approved", notes: "queued before the approval" });
});

test("an rm's protocol 2 op still moves approval_status by the transitions: the kept column is the legacy payload's alone", async () => {
  const token = await rm1();
  const customer = uuid(), pipeline = uuid();
  const made = await push(token, [
    insert("customers", customer, { name: "PT Submits" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Submitted now" }),
  ]);
  const row = made.body.results[1].row!;
  const submit = await push(token, [update("pipelines", pipeline, row.version, { approval_status: "submitted" })]);
  assert.equal(submit.body.results[0].status, "applied", submit.text);
  assert.equal(submit.body.results[0].row?.approval_status, "submitted");
});

test("a legacy update of the device's own latest write is not a conflict", async () => {
  const token = await rm1();
  const id = uuid();
  const clientId = uuid();
  await pushQueue(token, clientId, [{
    id: 1,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: local(id, { name: "PT Mine" }),
    createdAt: queuedAt(),
  }]);
  const res = await pushQueue(token, clientId, [{
    id: 2,
    entityType: "customer",
    entityId: id,
    operation: "update",
    payload: local(id, { name: "PT Mine", city: "Depok" }),
    createdAt: queuedAt(),
  }]);
  assert.equal(res.body.results[0].status, "applied");
  assert.equal(res.body.results[0].conflict, undefined);
  const [{ n }] = await sql`select count(*)::int as n from sync.conflicts where row_id = ${id}`;
  assert.equal(n, 0);
});

test("an unknown entityType is rejected/invalid for that item only; the other items are applied", async () => {
  const token = await rm1();
  const clientId = uuid();
  const before = uuid();
  const after = uuid();
  const items: Item[] = [
    {
      id: 1,
      entityType: "customer",
      entityId: before,
      operation: "create",
      payload: local(before, { name: "PT Before Unknown" }),
      createdAt: queuedAt(),
    },
    {
      id: 2,
      entityType: "invoice",
      entityId: uuid(),
      operation: "create",
      payload: { amount: 10 },
      createdAt: queuedAt(),
    },
    {
      id: 3,
      entityType: "customer",
      entityId: after,
      operation: "create",
      payload: local(after, { name: "PT After Unknown" }),
      createdAt: queuedAt(),
    },
  ];
  const res = await pushQueue(token, clientId, items);
  assert.equal(res.status, 200, res.text);
  const [a, bad, b] = res.body.results;
  assert.equal(a.status, "applied");
  assert.equal(b.status, "applied");
  assert.equal(bad.status, "rejected");
  assert.equal(bad.code, "invalid");
  assert.equal(bad.retryable, false);
  assert.equal(bad.op_id, derivedOpId(clientId, items[1]));
  assert.match(bad.message ?? "", /invoice/);
  const [{ n }] = await sql`select count(*)::int as n from public.customers where id in (${before}, ${after})`;
  assert.equal(n, 2);
  // Rejections are permanent: the re-sent queue reports the same outcome as a duplicate.
  const again = await pushQueue(token, clientId, items);
  assert.deepEqual(again.body.results.map((r) => [r.status, r.original_status]), [["duplicate", "applied"], [
    "duplicate",
    "rejected",
  ], ["duplicate", "applied"]]);
});

test("a legacy item the rules refuse is rejected naming the field, and later items on that entity are blocked", async () => {
  const token = await rm1();
  const id = uuid();
  const res = await pushQueue(token, uuid(), [
    {
      id: 1,
      entityType: "customer",
      entityId: id,
      operation: "create",
      payload: local(id, { name: "PT Bad Tax", taxId: "nope" }),
      createdAt: queuedAt(),
    },
    {
      id: 2,
      entityType: "customer",
      entityId: id,
      operation: "update",
      payload: local(id, { name: "PT Bad Tax", taxId: "nope", city: "Bekasi" }),
      createdAt: queuedAt(),
    },
  ]);
  const [bad, blocked] = res.body.results;
  assert.equal(bad.status, "rejected");
  assert.equal(bad.code, "invalid");
  assert.equal(bad.field, "tax_id");
  assert.equal(blocked.status, "failed");
  assert.equal(blocked.code, "blocked");
  assert.equal(blocked.retryable, true);
});

test("a malformed legacy queue is 400 invalid_request naming the item and field", async () => {
  const res = await call("/push", {
    protocol: 1,
    client_id: uuid(),
    items: [{
      id: 1,
      entityType: "customer",
      entityId: "not-a-uuid",
      operation: "upsert",
      payload: {},
      createdAt: queuedAt(),
    }],
  }, { token: await rm1() });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, "invalid_request");
  const paths = (res.body.details ?? []).map((d) => d.path.join("."));
  assert.ok(paths.includes("items.0.entityId"), paths.join(", "));
  assert.ok(paths.includes("items.0.operation"), paths.join(", "));
});

test("a legacy delete (which carries no data) tombstones the row, alone in its request too; so does a protocol 2 delete with data: null", async () => {
  const token = await rm1();
  const id = uuid();
  const clientId = uuid();
  await pushQueue(token, clientId, [{
    id: 1,
    entityType: "customer",
    entityId: id,
    operation: "create",
    payload: local(id, { name: "PT Deleted Later" }),
    createdAt: queuedAt(),
  }]);
  const res = await pushQueue(token, clientId, [{
    id: 2,
    entityType: "customer",
    entityId: id,
    operation: "delete",
    payload: null,
    createdAt: queuedAt(),
  }]);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.results[0].status, "applied");
  assert.ok(res.body.results[0].row?.deleted_at);

  const other = uuid();
  await push(token, [{ op_id: uuid(), table: "customers", op: "insert", id: other, data: { name: "PT Null Data" } }]);
  const v2 = await push(token, [
    { op_id: uuid(), table: "customers", op: "delete", id: other, base_version: 1, data: null } as unknown as Op,
  ]);
  assert.equal(v2.status, 200, v2.text);
  assert.equal(v2.body.results[0].status, "applied");
  assert.ok(v2.body.results[0].row?.deleted_at);
});
