import assert from "node:assert/strict";
import { type Answer, branches, call, insert, pull, push, sql, test, tokenFor, type User, uuid } from "./_helpers.ts";

// Sync serves staff. A valid token is not enough: its user must have a live staff profile and an
// account that is neither banned nor deleted. Everyone else is refused with a 403 of its own code
// on push and pull, before anything is written (an idempotency record included).

async function signedUpUser(): Promise<User> {
  const user: User = { id: uuid(), email: `signed.up.${uuid()}@example.com` };
  await sql`insert into auth.users (id, email) values (${user.id}, ${user.email})`;
  return user;
}

/** A new rm of Jakarta, whose profile is closed again once `fn` is done (other tests count the branch's staff). */
async function withStaff(fn: (user: User) => Promise<void>): Promise<void> {
  const user = await signedUpUser();
  await sql`insert into public.profiles (id, role, branch_id, full_name, email)
            values (${user.id}, 'rm', ${branches.jakarta}, 'Test Staff', ${user.email})`;
  try {
    await fn(user);
  } finally {
    await sql`update public.profiles set deleted_at = now() where id = ${user.id} and deleted_at is null`;
  }
}

async function recordsOf(user: User): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from sync.applied_ops where user_id = ${user.id}`;
  return n;
}

function assertRefused(res: Answer<{ error?: string; message?: string }>, code: string, what: string) {
  assert.equal(res.status, 403, `${what}: ${res.text}`);
  assert.equal(res.body.error, code, `${what}: ${res.text}`);
  assert.equal(typeof res.body.message, "string");
}

test("a signed-in user without a staff profile is refused 403 not_staff on push and pull, and nothing is written", async () => {
  const user = await signedUpUser();
  const token = await tokenFor(user);
  const ops = Array.from({ length: 20 }, () => insert("customers", uuid(), { name: "PT Not Staff" }));

  assertRefused(await push(token, ops), "not_staff", "protocol 2 push");
  assertRefused(
    await call("/push", {
      protocol: 1,
      client_id: uuid(),
      items: [{
        id: 1,
        entityType: "customer",
        entityId: uuid(),
        operation: "create",
        payload: { name: "PT" },
        createdAt: "2026-01-01T00:00:00Z",
      }],
    }, { token }),
    "not_staff",
    "protocol 1 push",
  );
  assertRefused(await pull(token, null), "not_staff", "pull");
  assert.equal(await recordsOf(user), 0, "no idempotency record");
  const [{ n }] = await sql`select count(*)::int as n from public.customers where id = any(${
    ops.map((o) => o.id)
  }::uuid[])`;
  assert.equal(n, 0, "no row");
});

test("staff who left (profile closed), banned users and deleted users are refused 403 account_inactive on push and pull", async () => {
  await withStaff((left) =>
    withStaff((banned) =>
      withStaff(async (deleted) => {
        await sql`update public.profiles set deleted_at = now() where id = ${left.id}`;
        await sql`update auth.users set banned_until = now() + interval '1 hour' where id = ${banned.id}`;
        await sql`update auth.users set deleted_at = now() where id = ${deleted.id}`;
        const gone: User = { id: uuid(), email: "gone@example.com" };

        for (
          const [who, user] of [["left", left], ["banned", banned], ["deleted", deleted], [
            "no longer exists",
            gone,
          ]] as const
        ) {
          const token = await tokenFor(user);
          assertRefused(
            await push(token, [insert("customers", uuid(), { name: "PT Inactive" })]),
            "account_inactive",
            `${who}: push`,
          );
          assertRefused(await pull(token, null), "account_inactive", `${who}: pull`);
          assert.equal(await recordsOf(user), 0, `${who}: no idempotency record`);
        }
      })
    )
  );
});

test("a user whose ban has expired syncs again", async () => {
  await withStaff(async (unbanned) => {
    await sql`update auth.users set banned_until = now() - interval '1 second' where id = ${unbanned.id}`;
    const token = await tokenFor(unbanned);
    const res = await push(token, [insert("customers", uuid(), { name: "PT Back" })]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.results[0].status, "applied", res.text);
    assert.equal((await pull(token, null, { limit: 1 })).status, 200);
  });
});

test("a protocol 1 push with more items than the function's limit is 413 too_large, even beside an empty ops list", async () => {
  // The database's own ceiling raised above the function's (1000 by default), so the answer is the function's.
  const [{ before }] = await sql`select max_push_ops as before from sync.settings`;
  await sql`update sync.settings set max_push_ops = 5000`;
  try {
    await withStaff(async (user) => {
      const token = await tokenFor(user);
      const items = Array.from({ length: 1001 }, (_, i) => ({
        id: i + 1,
        entityType: "no_such_entity",
        entityId: uuid(),
        operation: "create",
        payload: { name: "PT" },
        createdAt: "2026-01-01T00:00:00Z",
      }));
      const res = await call("/push", { protocol: 1, client_id: uuid(), ops: [], items }, { token });
      assert.equal(res.status, 413, res.text.slice(0, 300));
      assert.equal(res.body.error, "too_large");
      assert.equal(res.body.message, "a push carries at most 1000 ops; this one has 1001");
      assert.equal(await recordsOf(user), 0, "nothing recorded");
    });
  } finally {
    await sql`update sync.settings set max_push_ops = ${before}`;
  }
});
