// A pull page is bounded by bytes as well as by changes: the changes of a page add up to at most
// sync.settings.max_pull_bytes bytes of JSON (4 MiB by default), and a single larger change travels
// alone, so every page makes progress.
import assert from "node:assert/strict";
import { pull, pullAll, seedCustomer, sql, test, tokenFor, users } from "./_helpers.ts";

const bytesOf = (changes: unknown[]) =>
  changes.reduce((n: number, c) => n + new TextEncoder().encode(JSON.stringify(c)).length, 0);

/** rm1's new key persons under one of their customers, `count` of them with `notes` of `size` characters. */
async function bulkyKeyPersons(count: number, size: number): Promise<string[]> {
  const rows = await sql`insert into public.key_persons (customer_id, name, notes)
                         select ${seedCustomer(4)}, 'Bulky ' || n, repeat(chr(97 + n % 26), ${size})
                           from generate_series(1, ${count}) n returning id::text`;
  return rows.map((r) => r.id as string);
}

/** Pages through from `cursor`, checking each page against the byte bound; returns the ids received. */
async function pageThrough(token: string, cursor: string | null, limit: number, maxBytes: number) {
  const ids = new Set<string>();
  const sizes: number[] = [];
  for (;;) {
    const res = await pull(token, cursor, { limit });
    assert.equal(res.status, 200, res.text);
    const bytes = bytesOf(res.body.changes);
    sizes.push(res.body.changes.length);
    assert.ok(
      bytes <= maxBytes || res.body.changes.length === 1,
      `page ${sizes.length}: ${res.body.changes.length} changes, ${bytes} bytes; at most ${maxBytes} unless alone`,
    );
    assert.ok(res.body.changes.length >= 1 || !res.body.has_more, "a page that says more follows carries something");
    for (const c of res.body.changes) ids.add(c.op === "upsert" ? c.row.id : c.id);
    cursor = res.body.cursor;
    if (!res.body.has_more) return { ids, sizes };
    assert.ok(sizes.length < 5000, "the pull comes to an end");
  }
}

test("by default a page carries at most 4 MiB of changes, whatever the limit: 500 rows of 9 KB come in two pages or more", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const { cursor } = await pullAll(token, null);
  const ids = await bulkyKeyPersons(500, 9000);
  try {
    const { ids: got, sizes } = await pageThrough(token, cursor, 2000, 4 * 1024 * 1024);
    assert.ok(sizes.length >= 2, `pages of ${sizes}`);
    assert.ok(ids.every((id) => got.has(id)), "every row arrives");
  } finally {
    await sql`update public.key_persons set notes = null where id = any(${ids}::uuid[])`;
    await sql`delete from public.key_persons where id = any(${ids}::uuid[])`;
  }
});

test("the byte bound is the DBA's setting, and a change larger than it travels alone on its page", async () => {
  const token = await tokenFor(users.rm1Jakarta);
  const { cursor } = await pullAll(token, null);
  const small = await bulkyKeyPersons(12, 900);
  const big = await bulkyKeyPersons(3, 9000);
  const [{ max_pull_bytes }] = await sql`select max_pull_bytes from sync.settings`;
  try {
    await sql`update sync.settings set max_pull_bytes = 4000`;
    const { ids: got, sizes } = await pageThrough(token, cursor, 100, 4000);
    assert.ok([...small, ...big].every((id) => got.has(id)), "every row arrives");
    assert.ok(sizes.filter((n) => n === 1).length >= big.length, `each 9 KB row on its own page: ${sizes}`);
    assert.ok(sizes.some((n) => n > 1), `the small rows share pages: ${sizes}`);
  } finally {
    await sql`update sync.settings set max_pull_bytes = ${max_pull_bytes}`;
    const all = [...small, ...big];
    await sql`update public.key_persons set notes = null where id = any(${all}::uuid[])`;
    await sql`delete from public.key_persons where id = any(${all}::uuid[])`;
  }
});
