// A cycle's upper snapshot may come from a standby, which counts every xid below its xmin as
// committed, and a standby may show a commit before the primary's backend has finished making it
// visible there. A later page of that cycle read by the primary meanwhile would read the rows' older
// versions and never send the change: the pull waits for the commit instead (busy, which the function
// retries a few times before answering 503 with Retry-After). The primary's own snapshots never
// count an open transaction as committed, so only such a window meets this.
import assert from "node:assert/strict";
import { REQUEST_ERRORS } from "../sync/error_codes.ts";
import { pull, pullAll, sql, test, users, uuid } from "./_helpers.ts";
import { asUser, openTransaction, rm1 } from "./_pull.ts";

/** The cursor of a cycle under way, its upper snapshot `upper`, from a cursor between cycles. */
async function withinCycle(cursor: string, upper: string): Promise<string> {
  const [{ c }] = await sql`
    with p as (
      select (convert_from(sync.b64url_decode(split_part(${cursor}, '.', 1)), 'UTF8'))::sync.pull_position as p
    )
    select sync.sign_cursor(row((p).user_id, (p).schema_epoch, (p).tables_key, (p).scope_key, (p).since_snapshot,
             ${upper}::pg_snapshot, 'rows', 'customers', '0', '00000000-0000-0000-0000-000000000000',
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
