// Cadences through the function: the branch's bm keeps them and its rms read them; an rm's device
// that edits one is refused naming the field; a customer is enrolled only in its own branch's
// cadences, and the refusal names cadence_id. (The same rules on direct writes and the RPC:
// supabase/tests/cadences.test.sql.)
import assert from "node:assert/strict";
import { insert, pullAll, push, seedCustomer, sql, test, tokenFor, update, users, uuid } from "./_helpers.ts";

const jakartaMonthly = "00000000-0000-4000-8700-000000000011";
const surabayaMonthly = "00000000-0000-4000-8700-000000000021";

test("a bm's device adds (naming its branch, the cadence's parent) and changes the branch's cadences; an rm's device is refused naming the field, and reads them", async () => {
  const id = uuid();
  const bm = await tokenFor(users.bmJakarta);
  try {
    const added = await push(bm, [
      insert("cadences", id, {
        branch_id: "00000000-0000-4000-8000-0000000000b1",
        name: "Bi-weekly visit",
        segment: "company",
        activity_type: "visit",
        interval_days: 14,
      }),
    ]);
    assert.equal(added.body.results[0].status, "applied", added.text);
    const theirs = await push(bm, [
      insert("cadences", uuid(), {
        branch_id: "00000000-0000-4000-8000-0000000000b2",
        name: "Not ours",
        segment: "company",
        activity_type: "call",
        interval_days: 7,
      }),
    ]);
    const r = theirs.body.results[0];
    assert.deepEqual([r.status, r.code, r.field], ["rejected", "forbidden", "branch_id"], "not in another branch");
    const changed = await push(bm, [update("cadences", id, 1, { interval_days: 10 })]);
    assert.equal(changed.body.results[0].status, "applied", changed.text);

    const rm = await tokenFor(users.rm1Jakarta);
    const refused = await push(rm, [update("cadences", id, 2, { interval_days: 3 })]);
    const { status, code, field } = refused.body.results[0];
    assert.deepEqual(
      { status, code, field },
      { status: "rejected", code: "forbidden", field: "interval_days" },
      refused.text,
    );

    const seen = (await pullAll(rm, null, { tables: ["cadences"] })).changes.map((c) =>
      c.op === "upsert" ? c.row : null
    );
    const mine = seen.find((r) => r?.id === id);
    assert.equal(mine?.interval_days, 10, "the rm's device reads the bm's cadence as the bm left it");
    assert.ok(seen.every((r) => r?.branch_id === "00000000-0000-4000-8000-0000000000b1"), "and no other branch's");
    assert.ok(!seen.some((r) => r?.id === surabayaMonthly));
  } finally {
    await sql`delete from public.cadences where id = ${id}`;
  }
});

test("an rm's device enrols its customer in the branch's cadence, and not in another branch's (rejected, naming cadence_id)", async () => {
  const rm = await tokenFor(users.rm1Jakarta);
  const [ok, wrong] = [uuid(), uuid()];
  try {
    const res = await push(rm, [
      insert("cadence_participants", ok, {
        customer_id: seedCustomer(4),
        cadence_id: jakartaMonthly,
        next_due_on: "2027-02-01",
      }),
      insert("cadence_participants", wrong, { customer_id: seedCustomer(8), cadence_id: surabayaMonthly }),
    ]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.results[0].status, "applied", res.text);
    const { status, code, field } = res.body.results[1];
    assert.deepEqual({ status, code, field }, { status: "rejected", code: "invalid", field: "cadence_id" }, res.text);
    const [{ n }] = await sql`select count(*)::int as n from public.cadence_participants where id = ${wrong}`;
    assert.equal(n, 0, "the refused enrolment was not written");
  } finally {
    await sql`delete from public.cadence_participants where id in (${ok}, ${wrong})`;
  }
});
