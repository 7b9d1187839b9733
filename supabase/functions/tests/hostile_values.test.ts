// Hostile values per column type, generated from the catalog: every client-writable column of every
// registered table gets the values an attacker (or a buggy client) would send for its type, through
// the real function: numbers NaN, ±Infinity, exponents beyond what PostgreSQL holds, more decimals
// than the column keeps; dates and timestamps infinity, BC, five-digit years, the words PostgreSQL
// resolves (now, epoch, ...), years outside 1900 to 2200; text longer than any limit; and a number
// the database cannot hold in every column. Each is that op's rejected / invalid naming the column,
// never a 500, and the row is unchanged (an update) or not created (an insert). A table registered
// later is walked without touching this file.
import assert from "node:assert/strict";
import { call, sql, test, tokenFor, users, uuid } from "./_helpers.ts";

type Kind = "number" | "date" | "timestamp" | "text" | "other";
interface Column {
  table_name: string;
  column_name: string;
  base_type: string;
  scale: number | null;
}

// Client columns (sync.client_columns) with their base type (through a domain) and, for a numeric
// with a declared scale, the scale.
const columns: Column[] = [...await sql`
  select t.table_name, a.attname::text as column_name, b.typname::text as base_type,
         case when b.typname = 'numeric' and coalesce(nullif(ty.typtypmod, -1), a.atttypmod) <> -1
              then (((coalesce(nullif(ty.typtypmod, -1), a.atttypmod) - 4) & 2047) # 1024) - 1024
              when b.typname in ('int2', 'int4', 'int8') then 0 end as scale
    from sync.tables t
   cross join lateral unnest(sync.client_columns(t.table_name)) c (name)
    join pg_attribute a on a.attrelid = format('public.%I', t.table_name)::regclass and a.attname = c.name
    join pg_type ty on ty.oid = a.atttypid
    join pg_type b on b.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
   order by t.sync_order, a.attnum`] as unknown as Column[];

function kindOf(c: Column): Kind {
  if (["numeric", "float4", "float8", "int2", "int4", "int8"].includes(c.base_type)) return "number";
  if (c.base_type === "date") return "date";
  if (["timestamp", "timestamptz"].includes(c.base_type)) return "timestamp";
  if (["text", "varchar", "bpchar", "citext"].includes(c.base_type)) return "text";
  return "other";
}

// What the database cannot hold as a number, in any column.
const UNSTORABLE = ["1e400000", "-1e400000", "1e-400000"];
const WORDS = ['"now"', '"today"', '"tomorrow"', '"yesterday"', '"epoch"', '"infinity"', '"-infinity"'];

// The hostile values of a column as JSON text. `current` is the value the column holds in the row
// written: an over-long text keeps its shape (its first character repeated in front), so that
// only its length is wrong. text_limits.test.sql holds every text limit to at most 10 000
// characters, so 10 001 is over each.
function hostileValues(c: Column, current: unknown): string[] {
  switch (kindOf(c)) {
    case "number":
      return [
        '"NaN"', '"Infinity"', '"-Infinity"', ...UNSTORABLE,
        ...(c.scale !== null ? [`0.${"1".repeat(c.scale + 1)}`, "1e-20"] : []),
      ];
    case "date":
      return [...WORDS, '"2024-01-01 BC"', '"12345-01-01"', '"1899-12-31"', '"2201-01-01"', '"2026-01-31T10:00:00Z"', ...UNSTORABLE];
    case "timestamp":
      return [
        ...WORDS, '"allballs"', '"2024-01-01 00:00 BC"', '"12345-01-01T00:00:00Z"', '"1899-12-31T23:59:59Z"', '"2201-01-01T00:00:00Z"',
        '"2026-01-02 10:00:00"', ...UNSTORABLE,
      ];
    case "text": {
      const shape = typeof current === "string" && current.length > 0 ? current : "a";
      return [JSON.stringify(shape[0].repeat(10_001 - shape.length) + shape), ...UNSTORABLE];
    }
    default:
      return UNSTORABLE;
  }
}

// A push of one op whose data holds `field` as raw JSON text.
async function pushRaw(token: string, op: Record<string, unknown>, field: string, rawValue: string) {
  const body = JSON.stringify({ protocol: 2, client_id: uuid(), ops: [{ ...op, data: { ...(op.data as object), [field]: "__HOSTILE__" } }] });
  return await call("/push", undefined, { token, rawBody: body.replace('"__HOSTILE__"', rawValue) });
}

const firstLiveRow = async (table: string) =>
  (await sql`select to_jsonb(t) as row from ${sql(table)} t where t.deleted_at is null order by t.id limit 1`)[0]?.row;

test("the catalog walk covers every kind of column the CRM has", async () => {
  const kinds = new Set(columns.map(kindOf));
  for (const k of ["number", "date", "timestamp", "text", "other"] as Kind[]) assert.ok(kinds.has(k), `a ${k} column`);
});

test("every hostile value of every client column, as an update, is rejected as invalid naming the column, and the row is unchanged", async () => {
  const token = await tokenFor(users.admin);
  const failures: string[] = [];
  for (const table of [...new Set(columns.map((c) => c.table_name))]) {
    const before = await firstLiveRow(table);
    assert.ok(before, `${table} has a live row`);
    for (const c of columns.filter((x) => x.table_name === table)) {
      for (const value of hostileValues(c, before[c.column_name])) {
        const op = { op_id: uuid(), table, op: "update", id: before.id, base_version: before.version, data: {} };
        const res = await pushRaw(token, op, c.column_name, value);
        const r = res.body?.results?.[0];
        const what = `${table}.${c.column_name} = ${value.length > 40 ? `${value.slice(0, 20)}… (${value.length} characters)` : value}`;
        if (res.status !== 200 || r?.status !== "rejected" || r?.code !== "invalid" || r?.field !== c.column_name) {
          failures.push(`${what}: ${res.status} ${res.text.slice(0, 240)}`);
        }
      }
    }
    const after = await firstLiveRow(table);
    if (JSON.stringify(after) !== JSON.stringify(before)) failures.push(`the ${table} row changed (now version ${after.version})`);
  }
  assert.deepEqual(failures, [], `${failures.length} failures`);
});

test("every hostile value of every client column, as an insert, is rejected as invalid naming the column, and no row is created", async () => {
  const token = await tokenFor(users.admin);
  const failures: string[] = [];
  for (const table of [...new Set(columns.map((c) => c.table_name))]) {
    // A new row like the first live one, but for the hostile value.
    const template = await firstLiveRow(table);
    const tableColumns = columns.filter((x) => x.table_name === table);
    const data = Object.fromEntries(tableColumns.map((c) => [c.column_name, template[c.column_name]]));
    const ids: string[] = [];
    for (const c of tableColumns) {
      for (const value of hostileValues(c, template[c.column_name])) {
        const id = uuid();
        ids.push(id);
        const res = await pushRaw(token, { op_id: uuid(), table, op: "insert", id, data }, c.column_name, value);
        const r = res.body?.results?.[0];
        if (res.status !== 200 || r?.status !== "rejected" || r?.code !== "invalid" || r?.field !== c.column_name) {
          failures.push(`${table}.${c.column_name} = ${value.slice(0, 40)}: ${res.status} ${res.text.slice(0, 240)}`);
        }
      }
    }
    const [{ count }] = await sql`select count(*)::int from ${sql(table)} where id = any(${ids}::uuid[])`;
    if (count !== 0) failures.push(`${count} ${table} rows were created`);
  }
  assert.deepEqual(failures, [], `${failures.length} failures`);
});
