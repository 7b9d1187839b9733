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

// A purge with no retention empties the whole database's history, not only this file's: every
// tombstone, scope change and version record. The other test files run before or after this one
// (their order is not part of the specification) and read that history, the simulation's check
// that no version was skipped among them. So what a test here purges of the rows that were there
// before it is put back afterwards, as it was, with the horizon of purged changes: only the test's
// own rows stay purged.
async function restoringOthers(fn: () => Promise<void>) {
  const tables = (await sql`select table_name from sync.tables`).map((t) => String(t.table_name));
  await sql.begin(async (tx) => {
    await tx`drop schema if exists retention_kept cascade`;
    await tx`create schema retention_kept`;
    await tx`create table retention_kept.row_versions as select * from sync.row_versions`;
    await tx`create table retention_kept.scope_changes as select * from sync.scope_changes`;
    await tx`create table retention_kept.settings as select purged_through_xid from sync.settings`;
    for (const t of tables) {
      await tx.unsafe(`create table retention_kept.${t} as select * from public.${t} where deleted_at is not null`);
    }
  });
  try {
    await fn();
  } finally {
    await sql.begin(async (tx) => {
      // As they were: no trigger stamps a new version or records a change of them.
      await tx`set local session_replication_role = replica`;
      await tx`insert into sync.row_versions select k.* from retention_kept.row_versions k
                where not exists (select 1 from sync.row_versions v
                                   where (v.table_name, v.row_id, v.version) = (k.table_name, k.row_id, k.version))`;
      await tx`insert into sync.scope_changes overriding system value select k.* from retention_kept.scope_changes k
                where not exists (select 1 from sync.scope_changes s where s.id = k.id)`;
      for (const t of tables) {
        await tx.unsafe(`insert into public.${t} select k.* from retention_kept.${t} k
                          where not exists (select 1 from public.${t} r where r.id = k.id)`);
      }
      await tx`update sync.settings set purged_through_xid = (select purged_through_xid from retention_kept.settings)`;
      await tx`drop schema retention_kept cascade`;
    });
  }
}

test("retention: once a tombstone newer than a cursor is purged, that cursor gets resync_required and a fresh full pull works", () =>
  restoringOthers(async () => {
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
  }));

test("retention: the purge keeps tombstones that live rows still point at, and purges the others", () =>
  restoringOthers(async () => {
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
  }));

test("retention: what the purge took of the rows that were there before a test is back after it", async () => {
  const count = async () => {
    const [c] = await sql`select (select count(*) from sync.row_versions)::int as versions,
                                 (select count(*) from sync.scope_changes)::int as scope_changes,
                                 (select count(*) from public.customers where deleted_at is not null)::int as customer_tombstones,
                                 (select purged_through_xid::text from sync.settings) as horizon`;
    return { ...c };
  };
  // History of its own, so that there is something to purge whatever ran before.
  const token = await rm1();
  const id = uuid();
  const res = await push(token, [insert("customers", id, { name: "PT Old History" }), remove("customers", id, 1)]);
  assert.ok(res.body.results.every((r: { status: string }) => r.status === "applied"), res.text);
  const before = await count();
  let during = before;
  await restoringOthers(async () => {
    await withRetention("0 seconds", async () => {
      await sql`select sync.purge_expired()`;
    });
    during = await count();
  });
  assert.notDeepEqual(during, before, "the purge took something");
  assert.deepEqual(await count(), before);
});
