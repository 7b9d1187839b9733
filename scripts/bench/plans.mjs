// @ts-check
// Phase 7, plans: EXPLAIN (ANALYZE, BUFFERS) of the engine's hot statements as the user, rolled back,
// at the database size the run ends with.
import { randomUUID } from "node:crypto";
import { log } from "../lib/cluster.mjs";
import { check } from "./checks.mjs";
import { changedRowsQuery, changeProbeQuery, explainAs, planSummary } from "./explain.mjs";

/** @param {import("./setup.mjs").Bench} b */
export async function runPlans(b) {
  const { P, sql, U, clientId, results } = b;
  log("plans: EXPLAIN (ANALYZE, BUFFERS) as the user, rolled back");
  const planUser = P.scale.length ? U.rm1s : U.rm2j;
  const [{ snap }] = await sql`select pg_current_snapshot()::text as snap`;
  const [{ customers: customersNow }] = await sql`select count(*)::int as customers from public.customers`;
  const sampleCustomer = (await b.customersOf(planUser))[0];
  const [sampleRow] = await sql`select id::text, version::int from public.customers where id = ${sampleCustomer}::uuid`;
  const newId = randomUUID();
  // The engine's own write statements for customers, as sync.refresh_bulk_writer wrote them into
  // sync.bulk_write_customers, with literal arrays for its parameters.
  const [{ writer: customersWriter }] = await sql`select prosrc as writer from pg_catalog.pg_proc
    where oid = 'sync.bulk_write_customers(text[], text, uuid[], integer[], jsonb[], jsonb[], bigint[], boolean[], uuid)'::regprocedure`;
  /**
   * @param {string} kind
   * @param {Record<string, string>} values
   */
  const writeStatement = (kind, values) => {
    const m = customersWriter.match(new RegExp(`with w as \\(\\s*${kind}[\\s\\S]*?\\) x;`));
    if (!m) {
      throw new Error(
        `could not find the ${kind} of customers in sync.bulk_write_customers(); update writeStatement in scripts/bench/plans.mjs`,
      );
    }
    return m[0]
      .replace(/\binto o_written, o_ords, o_results\b/, "")
      .replace(/;$/, "")
      .replace(
        /\bp_(ids|datas|ords|ops|versions|deletes|uid)\b/g,
        (/** @type {string} */ _, /** @type {string} */ k) => values[k],
      );
  };
  const insertData = JSON.stringify({
    name: "PT Explain",
    customer_type: "company",
    industry: "retail",
    email: "x@explain.test",
    phone: "+62 21 1",
    city: "Surabaya",
    notes: "explain",
  });
  /** @type {Record<string, string>} */
  const plans = {
    "pull page, customers, first pull (sync.changed_page)": await explainAs(
      sql,
      planUser,
      await changedRowsQuery(sql, "customers", { lo: null, hi: snap, limit: P.page, user: planUser }),
    ),
    "pull page, customers, delta from the current snapshot (sync.changed_page)": await explainAs(
      sql,
      planUser,
      await changedRowsQuery(sql, "customers", { lo: snap, hi: snap, limit: P.page, user: planUser }),
    ),
    "pull page, activities, first pull (sync.changed_page, child RLS)": await explainAs(
      sql,
      planUser,
      await changedRowsQuery(sql, "activities", { lo: null, hi: snap, limit: P.page, user: planUser }),
    ),
    "pull page, activities, delta from the current snapshot (sync.changed_page, child RLS)": await explainAs(
      sql,
      planUser,
      await changedRowsQuery(sql, "activities", { lo: snap, hi: snap, limit: P.page, user: planUser }),
    ),
    "empty delta: the change probe (sync.visible_changes_exist, every registered table)": await explainAs(
      sql,
      planUser,
      await changeProbeQuery(sql, { lo: snap, hi: snap, user: planUser }),
    ),
    // Every write since the beginning is in this window, nearly all of them other users': the
    // caller's own are found from (updated_by, change_xid) all the same.
    "pull: the caller's own writes in a window (sync.own_writes, security definer)": await explainAs(
      sql,
      planUser,
      `select t.id from public.customers t where t.updated_by = '${planUser.id}'::uuid and sync.changed_between(t.change_xid, null, '${snap}')`,
      { asUser: false },
    ),
    // The bulk engine's statements, as sync.apply_ops_in_bulk builds them for one table.
    "push: current rows of a batch (sync.rows_by_key)": await explainAs(
      sql,
      planUser,
      `select coalesce(jsonb_object_agg(k, v), '{}') from (select 'customers/' || t.id, to_jsonb(t) from public.customers t
          where t.id = any (array(select x.id from unnest(array['customers', 'customers'], array['${sampleRow.id}', '${newId}']::uuid[]) x (tbl, id)
                                   where x.tbl = 'customers'))) r (k, v)`,
    ),
    "push: insert of a batch (sync.bulk_write)": await explainAs(
      sql,
      planUser,
      writeStatement("insert", {
        ids: `array['${newId}']::uuid[]`,
        datas: `array['${insertData}']::jsonb[]`,
        ords: "array[1]",
        ops: `array['{"op_id": "op"}']::jsonb[]`,
      }),
    ),
    "push: update of a batch, guarded by each op's version (sync.bulk_write)": await explainAs(
      sql,
      planUser,
      writeStatement("update", {
        ids: `array['${sampleRow.id}']::uuid[]`,
        versions: `array[${sampleRow.version}]::bigint[]`,
        datas: `array['{"notes": "explained"}']::jsonb[]`,
        deletes: "array[false]",
        ords: "array[1]",
        ops: `array['{"op_id": "op"}']::jsonb[]`,
        uid: `'${planUser.id}'::uuid`,
      }),
    ),
    "push: outcomes of earlier pushes (sync.claim_ops, security definer)": await explainAs(
      sql,
      planUser,
      `select coalesce(jsonb_object_agg(a.op_id::text, a.outcome), '{}') from sync.applied_ops a
          where a.user_id = '${planUser.id}'::uuid
            and a.op_id = any (array(select gen_random_uuid() from generate_series(1, ${P.batch})))`,
      { asUser: false },
    ),
    "push: outcomes recorded (sync.record_outcomes, security definer)": await explainAs(
      sql,
      planUser,
      `insert into sync.applied_ops (user_id, op_id, client_id, table_name, row_id, outcome)
         select '${planUser.id}'::uuid, gen_random_uuid(), '${clientId}'::uuid, 'customers', gen_random_uuid(), '{"status": "applied"}'::jsonb
           from generate_series(1, ${P.batch})
         on conflict on constraint applied_ops_pkey do nothing`,
      { asUser: false },
    ),
  };
  results.plans = {
    user: planUser.email,
    customers: customersNow,
    plans: Object.fromEntries(Object.entries(plans).map(([k, v]) => [k, { plan: v, summary: planSummary(v) }])),
  };
  const failedPlans = Object.entries(plans).filter(([, v]) => v.startsWith("EXPLAIN failed")).map(([k, v]) =>
    `${k}: ${v}`
  );
  check("plans: every EXPLAIN ran", failedPlans.length === 0, failedPlans.join("; "));
}
