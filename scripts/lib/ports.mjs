// @ts-check
// Loopback ports for the stacks the tools start (the test runner's, the bench's, soak's, load's).
// A fixed port, or one found free by trying ports from a number up, collides with another stack
// on the machine; so the system picks them, and a start that still loses its port (taken between
// the pick and the bind) is retried on new ones.
import net from "node:net";

/**
 * `count` distinct loopback ports the system says are free now: all held open together while
 * picked, so that none is handed out twice.
 * @param {number} count
 * @returns {Promise<number[]>}
 */
export async function freePorts(count) {
  /** @type {net.Server[]} */
  const probes = [];
  try {
    for (let i = 0; i < count; i++) {
      const probe = net.createServer();
      probes.push(probe);
      await new Promise((resolve, reject) => {
        probe.once("error", reject);
        probe.listen(0, "127.0.0.1", () => resolve(undefined));
      });
    }
    return probes.map((p) => /** @type {net.AddressInfo} */ (p.address()).port);
  } finally {
    await Promise.all(probes.map((p) => new Promise((resolve) => p.listening ? p.close(resolve) : resolve(undefined))));
  }
}

/**
 * Did a start fail because a port was taken? (Node's EADDRINUSE, or the function's AddrInUse as
 * startApi reports it.)
 * @param {unknown} err
 */
export function isPortTaken(err) {
  return typeof err === "object" && err !== null && /** @type {{ code?: unknown }} */ (err).code === "EADDRINUSE";
}

/**
 * Runs `start` on `count` free ports, and again on new ones while it fails because one was taken
 * meanwhile; any other failure, or the last attempt's, is thrown.
 * @template T
 * @param {number} count
 * @param {(ports: number[]) => Promise<T>} start
 * @param {{ attempts?: number }} [options]
 * @returns {Promise<T>}
 */
export async function onFreePorts(count, start, { attempts = 5 } = {}) {
  for (let attempt = 1;; attempt++) {
    const ports = await freePorts(count);
    try {
      return await start(ports);
    } catch (err) {
      if (attempt >= attempts || !isPortTaken(err)) throw err;
      console.error(`[supasync] port ${ports.join(" or ")} was taken meanwhile; retrying on others`);
    }
  }
}
