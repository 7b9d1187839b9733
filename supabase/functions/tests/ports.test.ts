// The stacks the tools start (the test runner's, the bench's, soak's and load's) take the ports the
// system picks, and a start that loses a port between the pick and the bind is retried on others
// (scripts/lib/ports.mjs): a fixed port, or one found free by trying, collided with another stack.
import assert from "node:assert/strict";
import net from "node:net";
import { freePorts, onFreePorts } from "../../../scripts/lib/ports.mjs";
import { env } from "./_helpers.ts";

const ROOT = new URL("../../../", import.meta.url);

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
}
const close = (server: net.Server) => new Promise((resolve) => server.close(resolve));

Deno.test("freePorts: distinct ports, each free to bind when handed out", async () => {
  const ports = await freePorts(4);
  assert.equal(new Set(ports).size, 4, `${ports}`);
  for (const port of ports) {
    const s = net.createServer();
    await listen(s, port);
    await close(s);
  }
});

Deno.test("onFreePorts: a port taken between the pick and the bind is retried on others; any other failure is not", async () => {
  const picked: number[][] = [];
  const started = await onFreePorts(2, async (ports) => {
    picked.push(ports);
    const s = net.createServer();
    if (picked.length === 1) {
      // Someone else takes the port first.
      const thief = net.createServer();
      await listen(thief, ports[0]);
      try {
        await listen(s, ports[0]);
      } finally {
        await close(thief);
      }
    }
    await listen(s, ports[0]);
    return s;
  });
  await close(started);
  assert.equal(picked.length, 2, "the start ran again after losing its port");

  let runs = 0;
  await assert.rejects(
    onFreePorts(1, () => {
      runs++;
      return Promise.reject(new Error("the database is down"));
    }),
    /the database is down/,
  );
  assert.equal(runs, 1, "a failure that is not a taken port is not retried");
});

Deno.test("startApi: a function port someone else holds is reported as taken and the failed start lets go of its gateway port; onFreePorts then starts a stack that answers", async () => {
  const script = `
    import net from "node:net";
    import { localKeys, startApi } from "./scripts/lib/stack.mjs";
    import { freePorts, onFreePorts } from "./scripts/lib/ports.mjs";
    const keys = await localKeys();
    const [apiPort, functionPort] = await freePorts(2);
    // A listener that answers nothing: the function cannot bind the port, and its health check
    // cannot mistake the holder for the function.
    const holder = net.createServer((s) => s.destroy());
    await new Promise((r) => holder.listen(functionPort, "127.0.0.1", r));
    const out = {};
    try {
      await startApi({ dbUrl: process.env.DB_URL, keys, apiPort, functionPort, quiet: true });
      out.taken = "started";
    } catch (err) {
      out.taken = err.code ?? err.message;
    }
    holder.close();
    // The gateway's port is free again: the failed start closed it.
    const probe = net.createServer();
    out.gatewayFreed = await new Promise((r) => {
      probe.once("error", () => r(false));
      probe.listen(apiPort, "127.0.0.1", () => probe.close(() => r(true)));
    });
    const api = await onFreePorts(2, ([a, f]) => startApi({ dbUrl: process.env.DB_URL, keys, apiPort: a, functionPort: f, quiet: true }));
    out.health = (await fetch(api.apiUrl + "/functions/v1/sync/health")).status;
    await api.stop();
    console.log(JSON.stringify(out));
    process.exit(0);
  `;
  const res = await new Deno.Command("node", {
    args: ["--input-type=module", "-e", script],
    cwd: ROOT,
    env: { DB_URL: env.dbUrl },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(res.stdout);
  assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
  assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}"), {
    taken: "EADDRINUSE",
    gatewayFreed: true,
    health: 200,
  });
});
