// What sync.register_table writes out for the bulk push engine, kept as readable files under
// supabase/tests/snapshots: one writer per registered table (sync.bulk_write_<table>) and the
// dispatcher (sync.bulk_write). A change to the generator, or to a table, shows here as a diff to
// review. After a deliberate change, write the files again:
//   UPDATE_SNAPSHOTS=1 npm test -- --deno supabase/functions/tests/bulk_writer_snapshots.test.ts
import assert from "node:assert/strict";
import { sql, test } from "./_helpers.ts";

const dir = new URL("../../tests/snapshots/", import.meta.url);
const update = Deno.env.get("UPDATE_SNAPSHOTS") === "1";

async function generated(): Promise<Map<string, string>> {
  const rows = await sql<{ name: string; def: string }[]>`
    select p.proname::text as name, pg_catalog.pg_get_functiondef(p.oid) as def
      from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'sync' and (p.proname = 'bulk_write' or p.proname like 'bulk\\_write\\_%')
     order by 1`;
  return new Map(rows.map((r) => [`${r.name}.sql`, r.def]));
}

test("the bulk push engine's generated writers are the ones under supabase/tests/snapshots", async () => {
  const now = await generated();
  const registered = await sql<{ table_name: string }[]>`select table_name from sync.tables order by sync_order`;
  assert.deepEqual(
    [...now.keys()].filter((k) => k !== "bulk_write.sql").sort(),
    registered.map((t) => `bulk_write_${t.table_name}.sql`).sort(),
    "one writer per registered table",
  );
  if (update) {
    Deno.mkdirSync(dir, { recursive: true });
    for (const [file, def] of now) Deno.writeTextFileSync(new URL(file, dir), def);
  }
  const kept = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql")).sort();
  assert.deepEqual(kept, [...now.keys()].sort(), "a snapshot for each generated writer, and none for another");
  for (const [file, def] of now) {
    assert.equal(def, Deno.readTextFileSync(new URL(file, dir)), `${file} is what the generator writes now`);
  }
});
