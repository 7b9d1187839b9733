// The guide's outbox SQL (outbox.sql, push.sql) under SQLite, rule by rule: what the outbox holds
// after each sequence of local edits, what the app reads meanwhile, and how answers settle it.
import assert from "node:assert/strict";
import { LocalEditError, SqlOutbox } from "./_sql_outbox.ts";

const customer = "00000000-0000-4000-8100-0000000000c1";
const newId = () => crypto.randomUUID();
const applied = (op_id: string, row: Record<string, unknown>) => ({
  op_id,
  status: "applied" as const,
  row: row as never,
});

/** An outbox whose device holds `customer` at version 3, as a pull left it. */
function pulled() {
  const o = new SqlOutbox();
  o.receive("customers", { id: customer, version: 3, name: "PT Lama", phone: "1", city: "Jakarta", deleted_at: null });
  return o;
}
const queued = (o: SqlOutbox) => o.outbox().map(({ op: { op_id: _, ...rest } }) => rest);

Deno.test("create then update is one create with the merged data, a cleared field included", () => {
  const o = new SqlOutbox();
  const id = newId();
  o.edit({ op: "insert", table: "customers", id, data: { name: "PT Baru", phone: "1" } });
  o.edit({ op: "update", table: "customers", id, data: { phone: null, city: "Bogor" } });
  assert.deepEqual(queued(o), [
    { table: "customers", op: "insert", id, data: { city: "Bogor", name: "PT Baru", phone: null } },
  ]);
  assert.deepEqual(o.read("customers", id), { id, version: 0, name: "PT Baru", phone: null, city: "Bogor" });
});

Deno.test("create then delete leaves nothing to send, and the row is gone from the view", () => {
  const o = new SqlOutbox();
  const id = newId();
  o.edit({ op: "insert", table: "customers", id, data: { name: "PT Sebentar" } });
  o.edit({ op: "update", table: "customers", id, data: { phone: "2" } });
  o.edit({ op: "delete", table: "customers", id });
  assert.deepEqual(queued(o), []);
  assert.deepEqual(o.store.query("select count(*) as n from sync_outbox_values"), [{ n: 0 }]);
  assert.equal(o.read("customers", id), undefined);
  assert.deepEqual(o.pending(), []);
});

Deno.test("create then delete also drops the ops that depend on the create, in turn, and their rows leave the view", () => {
  const o = pulled();
  const [parent, child, grandchild, other] = [newId(), newId(), newId(), newId()];
  o.edit({ op: "insert", table: "customers", id: parent, data: { name: "PT Sebentar" } });
  o.edit({ op: "insert", table: "key_persons", id: child, data: { customer_id: parent, name: "Ibu Sari" } });
  o.edit({ op: "update", table: "key_persons", id: child, data: { position: "CEO" } });
  o.edit({ op: "insert", table: "activities", id: grandchild, data: { key_person_id: child, subject: "Halo" } });
  o.edit({ op: "update", table: "activities", id: grandchild, data: { subject: "Halo lagi" } });
  // An edit of a row the server holds that points at the new row: it goes too, the row shows as pulled.
  o.edit({ op: "update", table: "customers", id: customer, data: { notes: parent.toUpperCase() } });
  o.edit({ op: "insert", table: "customers", id: other, data: { name: "PT Tetap", notes: "tetap" } });
  o.edit({ op: "delete", table: "customers", id: parent });
  assert.deepEqual(queued(o), [{
    table: "customers",
    op: "insert",
    id: other,
    data: { name: "PT Tetap", notes: "tetap" },
  }]);
  assert.deepEqual(o.store.query("select count(*) as n from sync_outbox_values"), [{ n: 2 }]);
  for (const [table, id] of [["customers", parent], ["key_persons", child], ["activities", grandchild]]) {
    assert.equal(o.read(table, id), undefined, `${table} ${id} is gone from the view`);
  }
  assert.deepEqual(o.read("customers", customer), {
    id: customer,
    version: 3,
    name: "PT Lama",
    phone: "1",
    city: "Jakarta",
    deleted_at: null,
  });
  // The cancelled rows are absent again: an edit of one is refused as a row the device does not hold.
  assert.throws(
    () => o.edit({ op: "update", table: "key_persons", id: child, data: { position: "x" } }),
    (err: unknown) => err instanceof LocalEditError && err.code === "not_found",
  );
});

Deno.test("a delete of a row whose create was sent is an op behind it, and leaves the ops that depend on the row", () => {
  const o = new SqlOutbox();
  const [parent, child] = [newId(), newId()];
  o.edit({ op: "insert", table: "customers", id: parent, data: { name: "PT Terkirim" } });
  o.pending();
  o.edit({ op: "insert", table: "key_persons", id: child, data: { customer_id: parent, name: "Ibu Sari" } });
  o.edit({ op: "delete", table: "customers", id: parent });
  assert.deepEqual(queued(o).map((op) => [op.op, op.id]), [["insert", parent], ["insert", child], ["delete", parent]]);
  assert.ok(o.read("key_persons", child), "the child still shows");
});

Deno.test("update then delete queues the delete behind a child created since, so the child is not created under a deleted row", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  const child = newId();
  o.edit({ op: "insert", table: "key_persons", id: child, data: { customer_id: customer, name: "Ibu Sari" } });
  o.edit({ op: "delete", table: "customers", id: customer });
  assert.deepEqual(queued(o).map((op) => [op.op, op.id, op.base_version]), [
    ["update", customer, 3],
    ["insert", child, undefined],
    ["delete", customer, 3],
  ]);
  assert.equal(o.read("customers", customer), undefined);
  assert.ok(o.read("key_persons", child), "the child still shows");
});

Deno.test("update then update is one update on the first base_version, each column keeping its first base value", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "3", city: "Bandung" } });
  assert.deepEqual(queued(o), [{
    table: "customers",
    op: "update",
    id: customer,
    base_version: 3,
    data: { city: "Bandung", phone: "3" },
    base: { city: "Jakarta", phone: "1" },
  }]);
  assert.deepEqual(o.read("customers", customer), {
    id: customer,
    version: 3,
    name: "PT Lama",
    phone: "3",
    city: "Bandung",
    deleted_at: null,
  });
});

Deno.test("update then delete is a delete on the first base_version, without data", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  o.edit({ op: "delete", table: "customers", id: customer });
  assert.deepEqual(queued(o), [{ table: "customers", op: "delete", id: customer, base_version: 3 }]);
  assert.equal(o.read("customers", customer), undefined);
});

Deno.test("an edit of a deleted row is refused locally, and so are edits of absent rows, second creates and server columns", () => {
  const o = pulled();
  o.edit({ op: "delete", table: "customers", id: customer });
  const refused = (e: Parameters<SqlOutbox["edit"]>[0], code: string) =>
    assert.throws(() => o.edit(e), (err: unknown) => err instanceof LocalEditError && err.code === code);
  refused({ op: "update", table: "customers", id: customer, data: { phone: "9" } }, "deleted");
  refused({ op: "delete", table: "customers", id: customer }, "deleted");
  refused({ op: "update", table: "customers", id: newId(), data: { phone: "9" } }, "not_found");
  refused({ op: "insert", table: "customers", id: customer, data: { name: "x" } }, "already_exists");
  refused({ op: "insert", table: "customers", id: newId(), data: { name: "x", version: 7 } }, "invalid");
  refused({ op: "insert", table: "customers", id: newId(), data: ["not", "an", "object"] as never }, "invalid");
  assert.deepEqual(queued(o), [{ table: "customers", op: "delete", id: customer, base_version: 3 }]);

  const tombstoned = pulled();
  tombstoned.receive("customers", { id: customer, version: 4, deleted_at: "2026-01-01T00:00:00Z" });
  assert.throws(
    () => tombstoned.edit({ op: "update", table: "customers", id: customer, data: { phone: "9" } }),
    (err: unknown) => err instanceof LocalEditError && err.code === "deleted",
  );
  assert.deepEqual(queued(tombstoned), []);
  assert.equal(tombstoned.store.query("select count(*) as n from sync_edits")[0].n, 0, "no edit stays behind");
});

Deno.test("an op once sent is never merged into: the next edit queues behind it and takes its base_version from the answer", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  const [sent] = o.pending();
  o.edit({ op: "update", table: "customers", id: customer, data: { city: "Medan" } });
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "4" } });
  assert.deepEqual(o.outbox().map((x) => [x.state, x.op.data, x.op.base_version, x.op.base]), [
    ["sent", { phone: "2" }, 3, { phone: "1" }],
    ["queued", { city: "Medan", phone: "4" }, 3, { city: "Jakarta", phone: "2" }],
  ], "the second op starts from the first one's values");
  assert.equal(o.read("customers", customer)?.phone, "4");
  assert.deepEqual(o.pending().map((x) => x.op_id), [sent.op_id], "only the row's head op goes");
  o.ack([
    applied(sent.op_id, { id: customer, version: 4, name: "PT Lama", phone: "2", city: "Jakarta", deleted_at: null }),
  ]);
  assert.deepEqual(o.outbox().map((x) => [x.state, x.op.base_version]), [["queued", 4]]);
  assert.deepEqual(o.read("customers", customer), {
    id: customer,
    version: 4,
    name: "PT Lama",
    phone: "4",
    city: "Medan",
    deleted_at: null,
  });
});

Deno.test("edits behind an unanswered create wait for it, then go on the version it made", () => {
  const o = new SqlOutbox();
  const id = newId();
  o.edit({ op: "insert", table: "customers", id, data: { name: "PT Baru" } });
  const [create] = o.pending();
  o.edit({ op: "update", table: "customers", id, data: { phone: "5" } });
  o.edit({ op: "delete", table: "customers", id });
  assert.deepEqual(o.outbox().map((x) => [x.op.op, x.op.base_version ?? null]), [["insert", null], ["delete", null]]);
  assert.deepEqual(
    o.pending().map((x) => x.op_id),
    [create.op_id],
    "the answer was lost: the create goes again, alone",
  );
  o.ack([{
    ...applied(create.op_id, { id, version: 1, name: "PT Baru", deleted_at: null }),
    status: "duplicate",
    original_status: "applied",
  }]);
  assert.deepEqual(o.pending().map((x) => [x.op, x.base_version]), [["delete", 1]]);
});

Deno.test("a pull that brings a newer server row keeps the pending edits on top of it", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  o.receive("customers", { id: customer, version: 5, name: "PT Baru", phone: "9", city: "Solo", deleted_at: null });
  assert.deepEqual(o.read("customers", customer), {
    id: customer,
    version: 5,
    name: "PT Baru",
    phone: "2",
    city: "Solo",
    deleted_at: null,
  });
  o.receive("customers", { id: customer, version: 4, name: "PT Tua", phone: "8", city: "Kediri", deleted_at: null });
  assert.equal(o.read("customers", customer)?.name, "PT Baru", "an older version never overwrites a newer one");
});

Deno.test("numbers keep every digit from the answer to the wire", () => {
  const o = new SqlOutbox();
  const pipeline = newId();
  o.store.transaction(() =>
    o.store.run("sync_put_server_row", {
      tbl: "pipelines",
      row: `{"id":"${pipeline}","version":2,"potential_value":1234567890123456.78,"deleted_at":null}`,
    })
  );
  o.store.run("sync_queue_edit", {
    op_id: newId(),
    tbl: "pipelines",
    id: pipeline,
    op: "update",
    data: '{"potential_value":98765432109876543.21}',
  });
  const [op] = o.store.query("select op from sync_outbox_wire");
  assert.equal(
    String(op.op),
    `{"op_id":${
      JSON.stringify(o.outbox()[0].op.op_id)
    },"table":"pipelines","op":"update","id":"${pipeline}","base_version":2,"data":{"potential_value":98765432109876543.21},"base":{"potential_value":1234567890123456.78}}`,
  );
});

Deno.test("a rejected create drops the ops that depend on it, each recorded as parent_rejected", () => {
  const o = new SqlOutbox();
  const c = newId(), kp = newId(), other = newId();
  o.edit({ op: "insert", table: "customers", id: c, data: { name: "PT Ditolak" } });
  const [create] = o.pending();
  o.edit({ op: "update", table: "customers", id: c, data: { phone: "1" } });
  o.edit({ op: "insert", table: "key_persons", id: kp, data: { customer_id: c, name: "Ibu Sari" } });
  o.edit({ op: "update", table: "key_persons", id: kp, data: { position: "CEO" } });
  o.edit({ op: "insert", table: "customers", id: other, data: { name: "PT Tetap" } });
  o.ack([{ op_id: create.op_id, status: "rejected", code: "forbidden", field: "branch_id", message: "no" }]);
  assert.deepEqual(queued(o).map((x) => [x.op, x.id]), [["insert", other]]);
  assert.deepEqual(
    o.store.query("select tbl, op, code, field from sync_rejected order by rowid"),
    [
      { tbl: "customers", op: "insert", code: "forbidden", field: "branch_id" },
      { tbl: "customers", op: "update", code: "parent_rejected", field: null },
      { tbl: "key_persons", op: "insert", code: "parent_rejected", field: null },
    ],
  );
  assert.equal(o.read("customers", c), undefined);
  assert.equal(o.read("key_persons", kp), undefined);
});

Deno.test("a rejected edit is dropped and the server's row shows again; a conflict takes the server's row and keeps the conflict", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  let [op] = o.pending();
  o.ack([{ op_id: op.op_id, status: "rejected", code: "invalid", field: "phone", message: "too long" }]);
  assert.equal(o.read("customers", customer)?.phone, "1");
  assert.deepEqual(o.store.query("select code, field, data from sync_rejected"), [
    { code: "invalid", field: "phone", data: '{"phone":"2"}' },
  ]);
  o.edit({ op: "update", table: "customers", id: customer, data: { city: "Bogor" } });
  [op] = o.pending();
  const server = { id: customer, version: 6, name: "PT Lama", phone: "1", city: "Malang", deleted_at: null };
  o.ack([{
    op_id: op.op_id,
    status: "conflict",
    code: "stale",
    row: server as never,
    conflict: { id: "c0000000-0000-4000-8000-000000000001", resolution: "manual_pending", fields: ["city"] },
  }]);
  assert.deepEqual(queued(o), []);
  assert.equal(o.read("customers", customer)?.city, "Malang");
  assert.deepEqual(o.store.query("select tbl, row_id, resolution, fields from sync_conflicts"), [
    { tbl: "customers", row_id: customer, resolution: "manual_pending", fields: '["city"]' },
  ]);
});

Deno.test("a failed op is kept and goes again unchanged; later edits of its row queue behind it", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  const [first] = o.pending();
  o.ack([{ op_id: first.op_id, status: "failed", code: "busy", retryable: true }]);
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "3" } });
  assert.deepEqual(o.pending(), [first]);
  assert.deepEqual(o.store.query("select error_code, tries from sync_outbox order by seq"), [
    { error_code: "busy", tries: 2 },
    { error_code: null, tries: 0 },
  ]);
});

Deno.test("a request-level 400 holds the ops it names; the rest go again, and the held op's row waits", () => {
  const o = pulled();
  const id = newId();
  o.edit({ op: "insert", table: "customers", id, data: { name: "PT A" } });
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  const batch = o.pending();
  assert.equal(o.hold([{ path: ["ops", 0, "data", "name"], message: "bad" }]), 1);
  o.edit({ op: "update", table: "customers", id, data: { name: "PT B" } });
  assert.deepEqual(o.pending().map((x) => x.op_id), [batch[1].op_id]);
  assert.deepEqual(
    o.store.query("select state, error_code, error_field from sync_outbox where op_id = ?", [batch[0].op_id]),
    [
      { state: "held", error_code: "invalid_request", error_field: "data.name" },
    ],
  );
  o.store.run("sync_release_op", { op_id: batch[0].op_id });
  assert.deepEqual(o.pending().map((x) => x.op_id), [batch[0].op_id, batch[1].op_id]);
});

Deno.test("a batch keeps to the server's limits of ops and bytes, and always carries one op", () => {
  const o = new SqlOutbox();
  for (let i = 0; i < 5; i++) {
    o.edit({ op: "insert", table: "customers", id: newId(), data: { name: `PT ${i}`, notes: "x".repeat(200) } });
  }
  const two = o.pending({ maxOps: 2, maxBytes: 1 << 20 });
  assert.equal(two.length, 2);
  const size = JSON.stringify(two[0]).length + 1; // every op here has the same size
  assert.equal(o.pending({ maxOps: 100, maxBytes: 3 * size }).length, 3, "the two sent before, and what fits");
  assert.equal(o.pending({ maxOps: 100, maxBytes: 3 * size - 1 }).length, 2);
  assert.equal(o.pending({ maxOps: 100, maxBytes: 10 }).length, 1, "an op larger than the limit goes alone");
});

Deno.test("nothing of protocol 2 goes while the legacy queue holds items; they go first, as the old app stored them", () => {
  const o = new SqlOutbox();
  o.store.query(
    `insert into sync_queue (entity_type, entity_id, operation, payload, created_at)
     values ('customer', '00000000-0000-4000-8100-000000000001', 'update', '{"phone":"+62 1","potentialValue":12.50}', '2026-02-01T10:00:00.000')`,
  );
  o.edit({ op: "insert", table: "customers", id: newId(), data: { name: "PT Baru" } });
  assert.deepEqual(o.pending(), []);
  const items = o.store.all("sync_legacy_batch", { max_ops: 100 });
  assert.deepEqual(items.map((r) => String(r.item)), [
    `{"id":1,"entityType":"customer","entityId":"00000000-0000-4000-8100-000000000001","operation":"update","payload":{"phone":"+62 1","potentialValue":12.50},"createdAt":"2026-02-01T10:00:00.000"}`,
  ]);
  o.store.run("sync_legacy_done", { id: 1 });
  assert.equal(o.pending().length, 1);
});

Deno.test("an op of a queue format this code does not know is never sent, and holds its row", () => {
  const o = pulled();
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "2" } });
  o.store.query("update sync_outbox set format = 2");
  o.edit({ op: "update", table: "customers", id: customer, data: { phone: "3" } });
  assert.deepEqual(o.pending(), []);
  assert.equal(o.outbox().length, 2, "an edit after it is queued behind it, not merged into it");
});
