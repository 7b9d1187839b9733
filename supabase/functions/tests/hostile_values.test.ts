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
const columns: Column[] = [
  ...await sql`
  select t.table_name, a.attname::text as column_name, b.typname::text as base_type,
         case when b.typname = 'numeric' and coalesce(nullif(ty.typtypmod, -1), a.atttypmod) <> -1
              then (((coalesce(nullif(ty.typtypmod, -1), a.atttypmod) - 4) & 2047) # 1024) - 1024
              when b.typname in ('int2', 'int4', 'int8') then 0 end as scale
    from sync.tables t
   cross join lateral unnest(sync.client_columns(t.table_name)) c (name)
    join pg_attribute a on a.attrelid = format('public.%I', t.table_name)::regclass and a.attname = c.name
    join pg_type ty on ty.oid = a.atttypid
    join pg_type b on b.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
   -- A column no role writes (the server sets it) is refused as forbidden before its value is looked at.
   where exists (select 1 from sync.field_rule_matrix m
                  where m.app_role = 'admin' and m.table_name = t.table_name and m.column_name = c.name and m.may_write)
   order by t.sync_order, a.attnum`,
] as unknown as Column[];

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
        '"NaN"',
        '"Infinity"',
        '"-Infinity"',
        ...UNSTORABLE,
        ...(c.scale !== null ? [`0.${"1".repeat(c.scale + 1)}`, "1e-20"] : []),
      ];
    case "date":
      return [
        ...WORDS,
        '"2024-01-01 BC"',
        '"12345-01-01"',
        '"1899-12-31"',
        '"2201-01-01"',
        '"2026-01-31T10:00:00Z"',
        ...UNSTORABLE,
      ];
    case "timestamp":
      return [
        ...WORDS,
        '"allballs"',
        '"2024-01-01 00:00 BC"',
        '"12345-01-01T00:00:00Z"',
        '"1899-12-31T23:59:59Z"',
        '"2201-01-01T00:00:00Z"',
        '"2026-01-02 10:00:00"',
        ...UNSTORABLE,
      ];
    case "text": {
      const shape = typeof current === "string" && current.length > 0 ? current : "a";
      return [JSON.stringify(shape[0].repeat(10_001 - shape.length) + shape), ...UNSTORABLE];
    }
    default:
      return UNSTORABLE;
  }
}

interface Case {
  table: string;
  column: string;
  value: string;
  op: Record<string, unknown>;
}

// One push of the cases' ops, each op's data holding its column's hostile value as raw JSON text
// (1e400000 has no JSON.stringify spelling). Returns a failure line for each case not answered as
// its column's invalid value.
async function pushCases(token: string, cases: Case[]): Promise<string[]> {
  const ops = cases.map((c, i) => ({ ...c.op, data: { ...(c.op.data as object), [c.column]: `__HOSTILE_${i}__` } }));
  const rawBody = JSON.stringify({ protocol: 2, client_id: uuid(), ops })
    .replace(/"__HOSTILE_(\d+)__"/g, (_, i) => cases[Number(i)].value);
  const res = await call("/push", undefined, { token, rawBody });
  return cases.flatMap((c, i) => {
    const r = res.body?.results?.[i];
    if (res.status === 200 && r?.status === "rejected" && r?.code === "invalid" && r?.field === c.column) return [];
    const value = c.value.length > 40 ? `${c.value.slice(0, 20)}… (${c.value.length} characters)` : c.value;
    return [
      `${c.op.op} ${c.table}.${c.column} = ${value}: ${res.status} ${JSON.stringify(r ?? res.body).slice(0, 240)}`,
    ];
  });
}

// Up to ten live rows of a table (by id), as the table holds them.
const liveRows = async (table: string) =>
  (await sql`select to_jsonb(t) as row from ${sql(table)} t where t.deleted_at is null order by t.id limit 10`).map((
    r,
  ) => r.row);

const tables = [...new Set(columns.map((c) => c.table_name))];

test("the catalog walk covers every kind of column the CRM has", () => {
  const kinds = new Set(columns.map(kindOf));
  for (const k of ["number", "date", "timestamp", "text", "other"] as Kind[]) assert.ok(kinds.has(k), `a ${k} column`);
});

test("every hostile value of every client column, as an update, is rejected as invalid naming the column, and the row is unchanged", async () => {
  const token = await tokenFor(users.admin);
  const failures: string[] = [];
  // Each case updates one of its table's rows, at most one op per row in a push (an op after a
  // refused one on the same row would be answered "blocked"): push k holds the k-th case of each
  // row. The numbers the database cannot hold go in pushes of their own, so that a push failing
  // whole on one of them hides no other verdict.
  const before = new Map<string, unknown[]>();
  const rounds: Case[][] = [];
  for (const table of tables) {
    const rows = await liveRows(table);
    assert.ok(rows.length > 0, `${table} has a live row`);
    before.set(table, rows);
    for (const group of [false, true]) {
      const first = rounds.length;
      let n = 0;
      for (const c of columns.filter((x) => x.table_name === table)) {
        for (const value of hostileValues(c, rows[0][c.column_name]).filter((v) => UNSTORABLE.includes(v) === group)) {
          const row = rows[n % rows.length];
          const round = first + Math.floor(n++ / rows.length);
          (rounds[round] ??= []).push({
            table,
            column: c.column_name,
            value,
            op: { op_id: uuid(), table, op: "update", id: row.id, base_version: row.version, data: {} },
          });
        }
      }
    }
  }
  for (const round of rounds.filter((r) => r)) failures.push(...await pushCases(token, round));
  for (const table of tables) {
    const after = await liveRows(table);
    if (JSON.stringify(after) !== JSON.stringify(before.get(table))) failures.push(`a ${table} row changed`);
  }
  assert.deepEqual(failures, [], `${failures.length} failures`);
});

test("every hostile value of every client column, as an insert, is rejected as invalid naming the column, and no row is created", async () => {
  const token = await tokenFor(users.admin);
  const failures: string[] = [];
  for (const table of tables) {
    // New rows like the first live one, but for the hostile value; one push per table, and one
    // for the numbers the database cannot hold.
    const [template] = await liveRows(table);
    const tableColumns = columns.filter((x) => x.table_name === table);
    const data = Object.fromEntries(tableColumns.map((c) => [c.column_name, template[c.column_name]]));
    const cases = tableColumns.flatMap((c) =>
      hostileValues(c, template[c.column_name]).map((value) => ({
        table,
        column: c.column_name,
        value,
        op: { op_id: uuid(), table, op: "insert", id: uuid(), data },
      }))
    );
    for (const group of [false, true]) {
      failures.push(...await pushCases(token, cases.filter((c) => UNSTORABLE.includes(c.value) === group)));
    }
    const ids = cases.map((c) => c.op.id as string);
    const [{ count }] = await sql`select count(*)::int from ${sql(table)} where id = any(${ids}::uuid[])`;
    if (count !== 0) failures.push(`${count} ${table} rows were created`);
  }
  assert.deepEqual(failures, [], `${failures.length} failures`);
});
