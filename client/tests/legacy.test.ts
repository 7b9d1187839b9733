// An upgraded app drains the legacy app's queue (protocol 1 items of its sync_queue) first, through
// the kit, against the real function: an item the old app had sent already is a duplicate, never
// applied twice; the rest apply in their order; the kit's own edits go after them.
import assert from "node:assert/strict";
import { call, users } from "../../supabase/functions/tests/_helpers.ts";
import type { LegacyItem } from "../mod.ts";
import { deviceOf, serverRow, test, tokenFor } from "./_server.ts";

const TABLES: Record<string, string> = { customer: "customers", keyPerson: "key_persons" };

test("the legacy queue is imported once, sent first as protocol 1 under the old client id, and nothing applies twice", async () => {
  const oldClient = crypto.randomUUID();
  const customer = crypto.randomUUID(), kp = crypto.randomUUID();
  const at = (s: number) => new Date(Date.UTC(2026, 0, 2, 9, 0, s)).toISOString();
  const items: LegacyItem[] = [
    {
      id: 7,
      entityType: "customer",
      entityId: customer,
      operation: "create",
      payload: { id: customer, name: "PT Warisan", phone: "+62 1", isPendingSync: true },
      createdAt: at(1),
    },
    {
      id: 8,
      entityType: "keyPerson",
      entityId: kp,
      operation: "create",
      payload: { id: kp, customerId: customer, name: "Ibu Lama", isPrimary: true },
      createdAt: at(2),
      retryCount: 3,
    },
    {
      id: 9,
      entityType: "customer",
      entityId: customer,
      operation: "update",
      payload: { id: customer, name: "PT Warisan", phone: "+62 2" },
      createdAt: at(3),
    },
  ];
  // The old app sent its first item before the update; the answer never reached it.
  const first = await call("/push", { protocol: 1, client_id: oldClient, items: [items[0]] }, {
    token: await tokenFor(users.rm1Jakarta),
  });
  assert.equal(first.body.results[0].status, "applied");

  const { client, net } = await deviceOf(users.rm1Jakarta);
  assert.equal(await client.importLegacyQueue(oldClient, items, (t) => TABLES[t]), 3);
  assert.equal(await client.importLegacyQueue(oldClient, items, (t) => TABLES[t]), 0, "imported once");
  assert.equal((await client.get("customers", customer))?.phone, "+62 2", "the view shows the old queue's edits");
  await client.update("customers", customer, { city: "Solo" });
  await client.sync();

  const pushes = net.sent.filter((s) => s.route === "/push").map((s) => s.body!);
  assert.deepEqual(
    pushes.map((p) => [p.protocol, p.client_id, ((p.items ?? p.ops) as unknown[]).length]),
    [[1, oldClient, 2], [1, oldClient, 1], [2, client.clientId, 1]],
    "the old items first, each row's in order, under the old client id; then the kit's edit",
  );
  const results = net.sent.filter((s) => s.route === "/push").flatMap((s) =>
    (s.answer!.results as { status: string; original_status?: string }[]).map((r) => r.original_status ?? r.status)
  );
  assert.deepEqual(results, ["applied", "applied", "applied", "applied"]);
  const firstAnswer = net.sent.find((s) => s.route === "/push")!.answer!.results as { status: string }[];
  assert.deepEqual(firstAnswer.map((r) => r.status), ["duplicate", "applied"], "the item sent before is a duplicate");
  const row = await serverRow("customers", customer);
  assert.deepEqual([row?.phone, row?.city, row?.version], ["+62 2", "Solo", 3], "created once, then two edits");
  assert.equal((await serverRow("key_persons", kp))?.name, "Ibu Lama");
  assert.equal(client.state.pending, 0);
});

test("the legacy queue imported again after its items were settled adds nothing, sends nothing and brings no deleted row back", async () => {
  const oldClient = crypto.randomUUID();
  const customer = crypto.randomUUID();
  const items: LegacyItem[] = [{
    id: 1,
    entityType: "customer",
    entityId: customer,
    operation: "create",
    payload: { id: customer, name: "PT Sekali Saja", phone: "+62 1" },
    createdAt: new Date(Date.UTC(2026, 0, 3, 9, 0, 0)).toISOString(),
  }];
  const { client, net } = await deviceOf(users.rm1Jakarta);
  assert.equal(await client.importLegacyQueue(oldClient, items, (t) => TABLES[t]), 1);
  await client.sync();
  await client.delete("customers", customer);
  await client.sync();
  assert.equal(client.state.pending, 0);
  const pushes = net.sent.filter((s) => s.route === "/push").length;

  // The app starts again and, as the README invites, imports the old queue it still holds.
  assert.equal(await client.importLegacyQueue(oldClient, items, (t) => TABLES[t]), 0, "imported once, ever");
  assert.equal(await client.get("customers", customer), undefined, "the deleted row stays deleted");
  assert.equal(client.state.pending, 0);
  await client.sync();
  assert.equal(net.sent.filter((s) => s.route === "/push").length, pushes, "nothing is sent again");
});
