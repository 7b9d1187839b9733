// `npm run seed` (scripts/seed.mjs, scripts/sql/seed_scale.sql) at a small scale: the same seed
// writes the same rows, another seed other rows; the rows have a bank's shape (a few rms with many
// customers, most with few; a varying number of rows under each customer); and they keep the app's
// rules, so that they sync: a device's full pull equals what row-level security shows its user.
import assert from "node:assert/strict";
import { env, pullAll, sql, test, tokenFor, type User } from "./_helpers.ts";
import { assertReplicaMatches, replicate } from "./_pull.ts";
import type { Row } from "./_pull.ts";

const BRANCHES = 2, RMS = 4, PER_RM = 25;
const TABLES = [
  "cadence_participants",
  "activities",
  "pipeline_referrals",
  "pipelines",
  "customer_hvc_links",
  "key_persons",
  "customers",
  "cadences",
  "profiles",
  "branches",
];

/** Every id of a seed's rows starts with the seed in hex. */
const prefixOf = (seed: number) => `${seed.toString(16).padStart(8, "0")}-%`;

async function seed(seedNumber: number) {
  const out = await new Deno.Command("node", {
    args: [
      "scripts/seed.mjs",
      "--branches",
      String(BRANCHES),
      "--rms-per-branch",
      String(RMS),
      "--customers-per-rm",
      String(PER_RM),
      "--seed",
      String(seedNumber),
    ],
    env: { DATABASE_URL: env.dbUrl },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** A digest of each table's rows of the seed, every column but the transaction that wrote them. */
async function digest(seedNumber: number) {
  const out: Record<string, string> = {};
  for (const t of [...TABLES, "auth.users"]) {
    const table = t.includes(".") ? t : `public.${t}`;
    const [r] = await sql.unsafe(
      `select count(*)::int as n, md5(coalesce(string_agg((to_jsonb(t) - 'change_xid')::text, ',' order by t.id), '')) as d
         from ${table} t where t.id::text like $1`,
      [prefixOf(seedNumber)],
    );
    out[t] = `${r.n}:${r.d}`;
  }
  return out;
}

/** Removes a seed's rows (as the seed wrote them: triggers off, so no tombstones are left). */
async function unseed(seedNumber: number) {
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    for (const t of [...TABLES, "auth.users"]) {
      await tx.unsafe(`delete from ${t.includes(".") ? t : `public.${t}`} where id::text like $1`, [
        prefixOf(seedNumber),
      ]);
    }
  });
}

test("npm run seed writes the same rows for a seed, other rows for another, with a bank's shape and the app's rules, and they sync", async () => {
  const [A, B] = [90001, 90002];
  await unseed(A);
  await unseed(B);
  try {
    await seed(A);
    const first = await digest(A);
    await seed(A);
    assert.deepEqual(await digest(A), first, "a second run of the same seed adds nothing and changes nothing");
    await unseed(A);
    await seed(A);
    assert.deepEqual(await digest(A), first, "the same seed writes the same rows again");
    await seed(B);
    const other = await digest(B);
    assert.notDeepEqual(
      Object.values(other).map((v) => v.split(":")[1]),
      Object.values(first).map((v) => v.split(":")[1]),
      "another seed writes other rows",
    );
    assert.deepEqual(await digest(A), first, "without touching the first seed's");

    const p = prefixOf(A);
    // Shape: the customers the arguments ask for, skewed over the rms, a varying number of rows under each.
    const perRm = (await sql`
      select count(c.id)::int as n from public.profiles r left join public.customers c on c.assigned_rm_id = r.id
       where r.id::text like ${p} and r.role = 'rm' group by r.id order by 1`).map((r) => r.n as number);
    assert.equal(perRm.length, BRANCHES * RMS, "every branch has its rms");
    assert.equal(perRm.reduce((a, b) => a + b, 0), BRANCHES * RMS * PER_RM, "the customers add up to what was asked");
    const median = perRm[Math.floor(perRm.length / 2)];
    assert.ok(perRm.at(-1)! >= 2 * median, `a few rms carry many customers, most few: ${perRm.join(" ")}`);
    assert.ok(perRm.filter((n) => n < PER_RM).length > perRm.length / 2, `most rms have fewer than the mean: ${perRm}`);
    const [varying] = await sql`
      select count(distinct (select count(*) from public.key_persons k where k.customer_id = c.id))::int as key_persons,
             count(distinct (select count(*) from public.pipelines x where x.customer_id = c.id))::int as pipelines,
             count(distinct (select count(*) from public.activities a where a.customer_id = c.id))::int as activities
        from public.customers c where c.id::text like ${p}`;
    assert.deepEqual(
      varying,
      { key_persons: 4, pipelines: 4, activities: 6 },
      "children per customer vary, none at all for some",
    );

    // The app's rules, which the seed writes around the triggers and keys, hold row by row.
    const [rules] = await sql`
      select
        (select count(*)::int from public.customers c where c.id::text like ${p}
           and not sync.app_valid_assignment(c.assigned_rm_id, c.branch_id)) as customers_of_another_branchs_rm,
        (select count(*)::int from public.pipelines x join public.customers c on c.id = x.customer_id where x.id::text like ${p}
           and (x.assigned_rm_id, x.branch_id) is distinct from (c.assigned_rm_id, c.branch_id)) as pipelines_not_their_customers,
        (select count(*)::int from public.activities a join public.pipelines x on x.id = a.pipeline_id where a.id::text like ${p}
           and x.customer_id <> a.customer_id) as activities_of_another_customers_pipeline,
        (select count(*)::int from public.pipeline_referrals f join public.pipelines x on x.id = f.pipeline_id
           join public.profiles r on r.id = f.referred_rm_id where f.id::text like ${p}
           and (r.role <> 'rm' or r.branch_id <> x.branch_id or r.id = x.assigned_rm_id)) as referrals_outside_the_branch,
        (select count(*)::int from public.pipelines x left join public.profiles m on m.id = x.approved_by where x.id::text like ${p}
           and (x.approval_status = 'approved') <> (m.role = 'bm' and m.branch_id = x.branch_id)) as approvals_not_by_the_bm,
        (select count(*)::int from public.cadence_participants e join public.cadences d on d.id = e.cadence_id
           join public.customers c on c.id = e.customer_id where e.id::text like ${p} and d.branch_id <> c.branch_id)
          as enrolments_in_another_branch`;
    assert.deepEqual(Object.values(rules), [0, 0, 0, 0, 0, 0], JSON.stringify(rules));
    // Every foreign key of the syncable tables has its row.
    const keys = await sql`
      select c.conrelid::regclass::text as child, a.attname as col, c.confrelid::regclass::text as parent, f.attname as pcol
        from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        join pg_attribute f on f.attrelid = c.confrelid and f.attnum = c.confkey[1]
       where c.contype = 'f' and cardinality(c.conkey) = 1
         and c.conrelid in (select ('public.' || quote_ident(r.table_name))::regclass from sync.tables r)`;
    assert.ok(keys.length >= 10, "fixture: the public tables' foreign keys");
    for (const k of keys) {
      const [{ n }] = await sql.unsafe(
        `select count(*)::int as n from ${k.child} t where t.id::text like $1 and t."${k.col}" is not null
            and not exists (select 1 from ${k.parent} r where r."${k.pcol}" = t."${k.col}")`,
        [p],
      );
      assert.equal(n, 0, `${k.child}.${k.col} names rows of ${k.parent} that exist`);
    }

    // They sync: the busiest rm's and a bm's devices hold, after a full pull, exactly what RLS shows them.
    const [busiest] = await sql`
      select r.id::text, r.email from public.profiles r join public.customers c on c.assigned_rm_id = r.id
       where r.id::text like ${p} group by r.id order by count(*) desc, r.id limit 1`;
    const [bm] =
      await sql`select id::text, email from public.profiles where id::text like ${p} and role = 'bm' order by id limit 1`;
    for (const user of [busiest, bm] as unknown as User[]) {
      const { changes } = await pullAll(await tokenFor(user), null, { limit: 200 });
      await assertReplicaMatches(user, replicate(new Map<string, Row>(), changes));
    }
  } finally {
    await unseed(A);
    await unseed(B);
  }
});
