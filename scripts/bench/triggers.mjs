// @ts-check
// The sync triggers' cost per row (issue 18): inserts and updates into public.customers against an
// identical table without them, bench.plain_customers (`like public.customers including all`: the
// same columns, defaults, checks and indexes, the change_xid one included; the same foreign keys
// added), at one row per statement and at 500. Run by the superuser that owns the bench database
// (so RLS is not in it), with the claims of an rm set the way the function sets them (the triggers
// stamp the row with the user), in one session. Each side of a round is one transaction that is
// rolled back: commit is in neither figure, and nothing stays behind. Single-row statements run in
// a server-side loop, so client round trips are in neither figure either. The two tables alternate
// which goes first, round by round; every figure is a ratio per round, median and spread.
import { log } from "../lib/cluster.mjs";
import { claimsOf } from "./db.mjs";
import { fmt, now, spreadOf } from "./util.mjs";

const BULK = 500;

/**
 * @param {import("./setup.mjs").Bench} b
 */
export async function runTriggers(b) {
  const { P, sql, U, results } = b;
  const user = U.rm1j;
  log(
    `triggers: ${P.triggerRows} rows one per statement and ${P.triggerBulkRows} in statements of ${BULK}, customers vs a table without triggers, ${P.triggerRounds} rounds`,
  );
  await sql.unsafe(`
    create schema if not exists bench;
    drop table if exists bench.plain_customers;
    create table bench.plain_customers (like public.customers including all);
    alter table bench.plain_customers
      add foreign key (assigned_rm_id) references public.profiles (id),
      add foreign key (branch_id) references public.branches (id);
    insert into bench.plain_customers select * from public.customers`);
  await sql.unsafe("vacuum (analyze) bench.plain_customers, public.customers");
  const [{ triggers }] = await sql`
    select coalesce(string_agg(tgname, ', ' order by tgname), '') as triggers from pg_trigger
     where tgrelid = 'public.customers'::regclass and not tgisinternal`;
  const [{ plainTriggers }] = await sql`
    select count(*)::int as "plainTriggers" from pg_trigger
     where tgrelid = 'bench.plain_customers'::regclass and not tgisinternal`;
  if (plainTriggers !== 0) throw new Error("bench.plain_customers has triggers of its own");

  const conn = await sql.reserve();
  /**
   * One side of a round: the four writes in one transaction, rolled back; each write's time.
   * @param {string} table
   * @param {string} tag makes the round's ids its own
   */
  const side = async (table, tag) => {
    /** @type {Record<string, number>} */
    const ms = {};
    const id = (/** @type {string} */ kind) => `md5('${tag}-${kind}-' || i)::uuid`;
    const values = (/** @type {string} */ kind) =>
      `${id(kind)}, 'PT Trigger ' || i, 'retail', 'trigger' || i || '@bench.test', 'Jakarta', lpad(i::text, 15, '0'),
       'written by the bench', '${user.id}'::uuid, '${user.branch_id}'::uuid`;
    const cols = "id, name, industry, email, city, tax_id, notes, assigned_rm_id, branch_id";
    const chunks = Math.ceil(P.triggerBulkRows / BULK) - 1;
    const chunk = `generate_series(c * ${BULK} + 1, least((c + 1) * ${BULK}, ${P.triggerBulkRows})) i`;
    /** @param {string} name @param {string} body */
    const timed = async (name, body) => {
      const t0 = now();
      await conn.unsafe(body);
      ms[name] = now() - t0;
    };
    await conn.unsafe("begin");
    try {
      await conn`select set_config('request.jwt.claims', ${claimsOf(user)}, true)`;
      await timed(
        "insert_1",
        `do $$ begin for i in 1..${P.triggerRows} loop
           insert into ${table} (${cols}) select ${values("one")};
         end loop; end $$`,
      );
      await timed(
        "insert_500",
        `do $$ begin for c in 0..${chunks} loop
           insert into ${table} (${cols}) select ${values("bulk")} from ${chunk};
         end loop; end $$`,
      );
      await timed(
        "update_1",
        `do $$ begin for i in 1..${P.triggerRows} loop
           update ${table} set notes = 'edited ' || i, phone = '+62 21 ' || i where id = ${id("one")};
         end loop; end $$`,
      );
      await timed(
        "update_500",
        `do $$ begin for c in 0..${chunks} loop
           update ${table} set notes = 'edited ' || c, phone = '+62 21 ' || c
            where id in (select ${id("bulk")} from ${chunk});
         end loop; end $$`,
      );
    } finally {
      await conn.unsafe("rollback");
    }
    return {
      insert_1: ms.insert_1 / P.triggerRows,
      insert_500: ms.insert_500 / P.triggerBulkRows,
      update_1: ms.update_1 / P.triggerRows,
      update_500: ms.update_500 / P.triggerBulkRows,
    };
  };
  /** @type {{ synced: Awaited<ReturnType<typeof side>>, plain: Awaited<ReturnType<typeof side>> }[]} */
  const rounds = [];
  try {
    // One round apiece untimed: the triggers' PL/pgSQL is compiled and its plans cached in this session.
    await side("public.customers", "warm");
    await side("bench.plain_customers", "warm");
    for (let round = 0; round < P.triggerRounds; round++) {
      const tag = `r${round}`;
      if (round % 2) {
        const plain = await side("bench.plain_customers", tag);
        rounds.push({ synced: await side("public.customers", tag), plain });
      } else {
        const synced = await side("public.customers", tag);
        rounds.push({ synced, plain: await side("bench.plain_customers", tag) });
      }
    }
  } finally {
    conn.release();
  }
  /** @type {Record<string, any>} */
  const figures = {
    session: "the superuser that owns the bench database (no RLS), claims of an rm set",
    rows_single: P.triggerRows,
    rows_bulk: P.triggerBulkRows,
    bulk_statement_rows: BULK,
    rounds: rounds.length,
    customers_triggers: triggers,
  };
  for (const k of /** @type {const} */ (["insert_1", "insert_500", "update_1", "update_500"])) {
    figures[k] = {
      customers_ms_per_row: spreadOf(rounds.map((r) => r.synced[k]), 4),
      plain_ms_per_row: spreadOf(rounds.map((r) => r.plain[k]), 4),
      ratio: spreadOf(rounds.map((r) => r.synced[k] / r.plain[k]), 3),
    };
  }
  results.figures.triggers = figures;
  log(
    `triggers: customers vs plain per row: insert ${fmt(figures.insert_1.ratio.median, 2)}x / ${
      fmt(figures.insert_500.ratio.median, 2)
    }x, update ${fmt(figures.update_1.ratio.median, 2)}x / ${
      fmt(figures.update_500.ratio.median, 2)
    }x (1 / ${BULK} a statement)`,
  );
}
