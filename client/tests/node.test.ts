// The kit runs on Node 20 as built JavaScript (`npm run client:build`): built into a temporary
// directory, imported by node, it queues and coalesces edits on the memory store and on IndexedDB
// (fake-indexeddb, as a Node app or test would use it), with the in-process lock standing in for
// Web Locks, which Node lacks.
import assert from "node:assert/strict";
import { test } from "./_kit.ts";

const root = new URL("../../", import.meta.url).pathname;

test("the built kit runs on Node: edits coalesce on the memory store and on IndexedDB", async () => {
  const out = await Deno.makeTempDir({ prefix: "supasync-client-" });
  try {
    const build = await new Deno.Command("node", {
      args: [`${root}node_modules/typescript/bin/tsc`, "-p", `${root}client/tsconfig.json`, "--outDir", out],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(build.success, new TextDecoder().decode(build.stdout) + new TextDecoder().decode(build.stderr));
    await Deno.writeTextFile(`${out}/package.json`, JSON.stringify({ type: "module" }));
    const script = `
      import { IDBKeyRange, indexedDB } from "fake-indexeddb";
      import { IndexedDbStorage, MemoryStorage, SyncClient } from "${out}/mod.js";
      const out = {};
      for (const [name, storage] of [
        ["memory", new MemoryStorage()],
        ["indexeddb", new IndexedDbStorage("node-test", { indexedDB, IDBKeyRange })],
      ]) {
        const client = await SyncClient.open({
          url: "http://127.0.0.1:9/functions/v1/sync", storage, autoSync: false,
          accessToken: async () => "t", fetch: async () => { throw new TypeError("offline"); },
        });
        const id = await client.insert("customers", { name: "PT Node" });
        await client.update("customers", id, { city: "Medan" });
        const report = await client.sync();
        out[name] = { pending: client.state.pending, status: report.status, row: await client.get("customers", id) };
        client.close();
      }
      console.log(JSON.stringify({ node: process.versions.node, ...out }));
    `;
    const run = await new Deno.Command("node", {
      args: ["--input-type=module", "-e", script],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(run.success, new TextDecoder().decode(run.stderr));
    const result = JSON.parse(new TextDecoder().decode(run.stdout));
    assert.match(result.node, /^2\d\./);
    for (const name of ["memory", "indexeddb"]) {
      assert.equal(result[name].pending, 1, `${name}: one op for the create and its edit`);
      assert.equal(result[name].status, "offline");
      assert.equal(result[name].row.city, "Medan");
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
