// Retention: sync.purge_expired() removes old tombstones (except those live rows still point at), and a
// cursor older than what was purged gets resync_required, after which a full pull works.
import assert from "node:assert/strict";
import { insert, pull, pullAll, push, remove, sql, test, uuid } from "./_helpers.ts";
import { rm1 } from "./_pull.ts";

async function withRetention(value: string, fn: () => Promise<void>) {
  const [{ tombstone_retention }] = await sql`select tombstone_retention::text from sync.settings`;
  try {
    await sql`update sync.settings set tombstone_retention = ${value}::interval`;
    await fn();
  } finally {
    await sql`update sync.settings set tombstone_retention = ${tombstone_retention}::interval`;
  }
}

test("retention: once a tombstone newer than a cursor is purged, that cursor gets resync_required and a fresh full pull works", async () => {
  const token = await rm1();
  const { cursor: old } = await pullAll(token, null);
  await withRetention("0 seconds", async () => {
    const id = uuid();
    const res = await push(token, [insert("customers", id, { name: "PT Short Lived" }), remove("customers", id, 1)]);
    assert.deepEqual(res.body.results.map((r: { status: string }) => r.status), ["applied", "applied"]);
    const [{ report }] = await sql`select sync.purge_expired() as report`;
    assert.ok(Number(report.customers) >= 1, JSON.stringify(report));
    const [{ count }] = await sql`select count(*)::int from public.customers where id = ${id}`;
    assert.equal(count, 0, "the tombstone is gone");

    const stale = await pull(token, old);
    assert.equal(stale.status, 200);
    assert.deepEqual(
      {
        changes: stale.body.changes,
        cursor: stale.body.cursor,
        has_more: stale.body.has_more,
        resync_required: stale.body.resync_required,
      },
      { changes: [], cursor: null, has_more: false, resync_required: true },
    );
    assert.ok(stale.body.server_time);

    const fresh = await pullAll(token, null);
    const next = await pull(token, fresh.cursor);
    assert.equal(next.body.resync_required, false, "a cursor issued after the purge is fine");
  });
});

test("retention: the purge keeps tombstones that live rows still point at, and purges the others", async () => {
  const token = await rm1();
  const customer = uuid();
  const pipeline = uuid();
  const loose = uuid();
  const res = await push(token, [
    insert("customers", customer, { name: "PT Keeps Its History" }),
    insert("pipelines", pipeline, { customer_id: customer, title: "Lost deal" }),
    insert("activities", uuid(), {
      customer_id: customer,
      pipeline_id: pipeline,
      activity_type: "call",
      subject: "About the lost deal",
    }),
    remove("pipelines", pipeline, 1),
    insert("customers", loose, { name: "PT Nothing Points Here" }),
    remove("customers", loose, 1),
  ]);
  assert.ok(res.body.results.every((r: { status: string }) => r.status === "applied"), res.text);
  await withRetention("0 seconds", async () => {
    const [{ report }] = await sql`select sync.purge_expired() as report`;
    assert.ok(report.purged_through_xid);
  });
  const [{ n: pipelines }] =
    await sql`select count(*)::int as n from public.pipelines where id = ${pipeline} and deleted_at is not null`;
  assert.equal(pipelines, 1, "the deleted pipeline an activity still names is kept (as a tombstone)");
  const [{ n: customers }] = await sql`select count(*)::int as n from public.customers where id = ${loose}`;
  assert.equal(customers, 0, "an unreferenced tombstone is purged");
});
