// The guide's pull-apply SQL (pull.sql, and sync_put_server_row of push.sql) under SQLite: a page's
// upserts, deletes and evictions applied by version, with the cursor written in the same
// transaction; resync_required; the outbox untouched throughout.
import assert from "node:assert/strict";
import { SqlOutbox } from "./_sql_outbox.ts";
import type { Change } from "../../../../supabase/functions/tests/_helpers.ts";

const a = "00000000-0000-4000-8100-0000000000a1";
const b = "00000000-0000-4000-8100-0000000000b1";
const c = "00000000-0000-4000-8100-0000000000c1";
const row = (id: string, version: number, name: string) => ({
  id,
  version,
  name,
  deleted_at: null,
  created_at: "",
  updated_at: "",
  created_by: null,
  updated_by: null,
});
const page = (changes: Change[], cursor: string, has_more = false) => ({ changes, cursor, has_more });
const rows = (o: SqlOutbox) =>
  o.store.query("select tbl, id, version, deleted, json_extract(data, '$.name') as name from sync_rows order by id");
const cursor = (o: SqlOutbox) => o.store.all("sync_cursor")[0]?.cursor ?? null;

Deno.test("a page's upserts, deletes and evictions apply by version, and its cursor is written with them", () => {
  const o = new SqlOutbox();
  o.applyPage(
    page([
      { table: "customers", op: "upsert", row: row(a, 3, "A3") },
      { table: "customers", op: "upsert", row: row(b, 2, "B2") },
      { table: "customers", op: "upsert", row: row(c, 1, "C1") },
    ], "cursor-1"),
    true,
  );
  o.applyPage(
    page([
      { table: "customers", op: "upsert", row: row(a, 2, "A2") }, // arrives late: older than what is held
      { table: "customers", op: "upsert", row: row(a, 3, "A3 again") }, // arrives twice: same version
      { table: "customers", op: "delete", id: b, version: 3 },
      { table: "customers", op: "evict", id: c },
      { table: "customers", op: "delete", id: "00000000-0000-4000-8100-0000000000d1", version: 4 },
    ], "cursor-2"),
    false,
  );
  assert.deepEqual(rows(o), [
    { tbl: "customers", id: a, version: 3, deleted: 0, name: "A3" },
    { tbl: "customers", id: b, version: 3, deleted: 1, name: null },
    { tbl: "customers", id: "00000000-0000-4000-8100-0000000000d1", version: 4, deleted: 1, name: null },
  ]);
  assert.equal(cursor(o), "cursor-2");
});

Deno.test("a page that fails half-way leaves neither its rows nor its cursor", () => {
  const o = new SqlOutbox();
  o.applyPage(page([{ table: "customers", op: "upsert", row: row(a, 1, "A1") }], "cursor-1"), true);
  assert.throws(() =>
    o.applyPage(
      page([
        { table: "customers", op: "upsert", row: row(a, 2, "A2") },
        { table: "customers", op: "upsert", row: { version: 3 } as never }, // no id: the insert fails
      ], "cursor-2"),
      false,
    )
  );
  assert.deepEqual(rows(o).map((r) => [r.version, r.name]), [[1, "A1"]]);
  assert.equal(cursor(o), "cursor-1", "the cursor never runs ahead of the rows");
});

Deno.test("an evicted row goes from the device with its conflicts' data, and its queued edits stay queued", () => {
  const o = new SqlOutbox();
  o.applyPage(
    page([
      { table: "customers", op: "upsert", row: row(a, 1, "A1") },
      {
        table: "conflicts",
        op: "upsert",
        row: {
          ...row("c0000000-0000-4000-8000-000000000001", 1, ""),
          table_name: "customers",
          row_id: a,
          resolution: "merged",
          fields: ["phone"],
          client_data: { phone: "1" },
        },
      },
    ], "cursor-1"),
    true,
  );
  o.edit({ op: "update", table: "customers", id: a, data: { name: "A mine" } });
  o.applyPage(page([{ table: "customers", op: "evict", id: a }], "cursor-2"), false);
  assert.equal(o.read("customers", a), undefined);
  assert.deepEqual(o.store.query("select row_id, resolution, entry from sync_conflicts"), [
    { row_id: a, resolution: "merged", entry: null },
  ]);
  assert.equal(o.outbox().length, 1, "an eviction is not a delete: the edit is the server's to answer");
});

Deno.test("resync_required: the cursor goes, the outbox stays, and the full pull drops the rows it did not deliver", () => {
  const o = new SqlOutbox();
  o.store.run("sync_start_full_pull");
  o.applyPage(
    page([
      { table: "customers", op: "upsert", row: row(a, 1, "A1") },
      { table: "customers", op: "upsert", row: row(b, 1, "B1") },
    ], "cursor-1"),
    true,
  );
  o.applyPage(page([{ table: "customers", op: "delete", id: c, version: 2 }], "cursor-2"), false);
  o.edit({ op: "update", table: "customers", id: a, data: { name: "A mine" } });
  o.store.transaction(() => o.store.run("sync_resync"));
  assert.equal(cursor(o), null);
  o.store.run("sync_start_full_pull");
  o.applyPage(page([{ table: "customers", op: "upsert", row: row(a, 4, "A4") }], "cursor-3", true), true);
  assert.equal(rows(o).length, 3, "nothing goes before the cycle's last page");
  o.applyPage(page([], "cursor-4"), true);
  assert.deepEqual(
    rows(o).map((r) => [r.id, r.version, r.deleted]),
    [[a, 4, 0], [c, 2, 1]],
    "b was not delivered again: it is no longer the caller's",
  );
  assert.deepEqual(o.read("customers", a)?.name, "A mine", "the pending edit shows on the new row");
  assert.deepEqual(o.pending().map((x) => [x.op, x.base_version]), [["update", 1]], "and goes as it was queued");
  assert.equal(cursor(o), "cursor-4");
});
