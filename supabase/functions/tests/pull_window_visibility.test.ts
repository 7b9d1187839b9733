// A cycle's upper snapshot may come from a standby, which counts every xid below its xmin as
// committed, and a standby may show a commit before the primary's backend has finished making it
// visible there. A later page of that cycle read by the primary meanwhile would read the rows' older
// versions and never send the change: the pull waits for the commit instead (busy, which the function
// retries a few times before answering 503 with Retry-After). So does a new cycle whose cursor's
// snapshot (the device's data) is such a standby's: its registrations would be misread. The primary's
// own snapshots never count an open transaction as committed, so only such cursors meet this.
import assert from "node:assert/strict";
import { REQUEST_ERRORS } from "../sync/error_codes.ts";
import { pull, pullAll, sql, test, users, uuid } from "./_helpers.ts";
import { asUser, openTransaction, rm1 } from "./_pull.ts";

/** The cursor of a cycle under way, its upper snapshot `upper`, from a cursor between cycles. */
async function withinCycle(cursor: string, upper: string): Promise<string> {
  return await forged(cursor, null, upper);
}

/** The cursor between cycles whose data is complete up to `since`. */
async function betweenCycles(cursor: string, since: string): Promise<string> {
  return await forged(cursor, since, null);
}

async function forged(cursor: string, since: string | null, upper: string | null): Promise<string> {
  const [{ c }] = await sql`
    with p as (
      select (convert_from(sync.b64url_decode(split_part(${cursor}, '.', 1)), 'UTF8'))::sync.pull_position as p
    )
    select sync.sign_cursor(row((p).user_id, (p).schema_epoch, (p).tables_key, (p).scope_key,
             coalesce(${since}::pg_snapshot, (p).since_snapshot), ${upper}::pg_snapshot,
             case when ${upper}::text is not null then 'rows' end, case when ${upper}::text is not null then 'customers' end,
             case when ${upper}::text is not null then '0'::xid8 end,
             case when ${upper}::text is not null then '00000000-0000-0000-0000-000000000000'::uuid end,
             null, null, null, null, (p).lineage, (p).wal_lsn)::sync.pull_position) as c
      from p`;
  return c;
}

test("a page whose window counts as committed a transaction still open on the server reading it waits: 503 busy with Retry-After, SYBZ1 at the RPC door, and the page once it has ended", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null, { tables: ["customers"] });
  const open = openTransaction(users.rm1Jakarta);
  const id = uuid();
  try {
    const [{ xid }] = await open.run((tx) =>
      tx`insert into public.customers (id, name) values (${id}, 'PT Still Ending') returning pg_current_xact_id()::text as xid`
    );
    // As a standby that has replayed the commit would see it: every xid up to this one is below xmin.
    const next = String(Number(xid) + 1);
    const ahead = await withinCycle(cursor!, `${next}:${next}:`);
    const res = await pull(token, ahead, { tables: ["customers"] });
    assert.equal(res.status, 503, res.text);
    assert.equal(res.body.error, "busy");
    assert.ok(Number(res.headers.get("retry-after")) > 0, "with Retry-After");
    await assert.rejects(
      asUser(
        users.rm1Jakarta,
        (tx) =>
          tx`select public.sync_pull(${
            JSON.stringify({ protocol: 2, cursor: ahead, tables: ["customers"] })
          }::text::jsonb)::text`,
      ),
      (err: { code?: string; message?: string }) => {
        assert.equal(err.code, REQUEST_ERRORS.busy.sqlstate);
        assert.equal(err.message, "a commit this pull's window counts as visible is not yet visible on this server");
        return true;
      },
    );
    await open.commit();
    const served = await pullAll(token, ahead, { tables: ["customers"] });
    assert.ok(
      served.changes.some((c) => c.op === "upsert" && c.row.id === id),
      "once it has ended, the page holds its row",
    );
  } finally {
    await open.close();
  }
});

test("so does a new cycle whose cursor says the device holds a transaction this server has not ended", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null, { tables: ["customers"] });
  const open = openTransaction(users.rm1Jakarta);
  try {
    const [{ xid }] = await open.run((tx) =>
      tx`insert into public.customers (id, name) values (${uuid()}, 'PT Still Ending Too') returning pg_current_xact_id()::text as xid`
    );
    const next = String(Number(xid) + 1);
    const res = await pull(token, await betweenCycles(cursor!, `${next}:${next}:`), { tables: ["customers"] });
    assert.equal(res.status, 503, res.text);
    assert.equal(res.body.error, "busy");
  } finally {
    await open.close();
  }
});

test("a cycle of the primary's own pages, with a transaction open inside its window and one begun after, is never busy", async () => {
  const token = await rm1();
  const { cursor } = await pullAll(token, null, { tables: ["customers"] });
  const inside = openTransaction(users.rm1Jakarta);
  const after = openTransaction(users.rm1Jakarta);
  try {
    await inside.run((tx) => tx`insert into public.customers (id, name) values (${uuid()}, 'PT Open Inside')`);
    for (let i = 0; i < 3; i++) {
      await asUser(
        users.rm1Jakarta,
        (tx) => tx`insert into public.customers (id, name) values (${uuid()}, 'PT Paged')`,
      );
    }
    let c: string | null = cursor;
    for (let page = 0;; page++) {
      const res = await pull(token, c, { tables: ["customers"], limit: 1 });
      assert.equal(res.status, 200, `page ${page}: ${res.text}`);
      if (page === 0) {
        await after.run((tx) => tx`insert into public.customers (id, name) values (${uuid()}, 'PT Open After')`);
      }
      c = res.body.cursor;
      if (!res.body.has_more) break;
    }
  } finally {
    await inside.close();
    await after.close();
  }
});
