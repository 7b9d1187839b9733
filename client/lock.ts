// One sync at a time per store: across the tabs of a browser with Web Locks, and within one process
// (Node 20 has no navigator.locks) with a queue per lock name.
const held = new Map<string, Promise<unknown>>();

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

function webLocks(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks && typeof nav.locks.request === "function" ? nav.locks : undefined;
}

/** Runs `fn` while holding the lock `name`; the next holder starts when it settles. */
export function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = webLocks();
  if (locks) return locks.request(name, fn);
  const before = held.get(name) ?? Promise.resolve();
  const mine = before.then(fn, fn);
  const tail = mine.catch(() => {});
  held.set(name, tail);
  tail.then(() => {
    if (held.get(name) === tail) held.delete(name);
  });
  return mine;
}
