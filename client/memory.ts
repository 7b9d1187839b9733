// The in-memory adapter: for tests and scripts. Transactions run one at a time; a readwrite one
// writes into a journal that is applied when its callback resolves and dropped when it throws.
import {
  type Key,
  KEY_PATHS,
  type Records,
  type Slice,
  type Storage,
  STORE_NAMES,
  type StoreName,
  type Tx,
} from "./store.ts";

const DELETED = Symbol("deleted");

export class MemoryStorage implements Storage {
  private data = new Map<StoreName, Map<Key, unknown>>(STORE_NAMES.map((s) => [s, new Map()]));
  private queue: Promise<unknown> = Promise.resolve();
  onVersionChange?: () => void;
  /** Called before each readwrite transaction commits; a test throws from it to stand for a crash. */
  beforeCommit?: () => void;

  constructor(readonly name = `memory-${crypto.randomUUID()}`) {}

  transaction<T>(mode: "readonly" | "readwrite", fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = async () => {
      const journal = new Map<StoreName, Map<Key, unknown>>(STORE_NAMES.map((s) => [s, new Map()]));
      const cleared = new Set<StoreName>();
      const writable = () => {
        if (mode !== "readwrite") throw new Error("a readonly transaction cannot write");
      };
      const read = (store: StoreName, key: Key): unknown => {
        const j = journal.get(store)!;
        if (j.has(key)) return j.get(key);
        return cleared.has(store) ? undefined : this.data.get(store)!.get(key);
      };
      const tx: Tx = {
        get: <S extends StoreName>(store: S, key: Key) => {
          const v = read(store, key);
          return Promise.resolve(v === undefined || v === DELETED ? undefined : structuredClone(v) as Records[S]);
        },
        getAll: <S extends StoreName>(store: S, prefix?: string, slice: Slice = {}) => {
          const keys = new Set<Key>([
            ...(cleared.has(store) ? [] : this.data.get(store)!.keys()),
            ...journal.get(store)!.keys(),
          ]);
          const out = [...keys]
            .filter((k) => prefix === undefined || (typeof k === "string" && k.startsWith(prefix)))
            .filter((k) => slice.after === undefined || k > slice.after)
            .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
            .map((k) => read(store, k))
            .filter((v) => v !== undefined && v !== DELETED)
            .slice(0, slice.limit)
            .map((v) => structuredClone(v) as Records[S]);
          return Promise.resolve(out);
        },
        put: <S extends StoreName>(store: S, value: Records[S]) => {
          writable();
          journal.get(store)!.set(value[KEY_PATHS[store]] as Key, structuredClone(value));
          return Promise.resolve();
        },
        delete: (store, key) => {
          writable();
          journal.get(store)!.set(key, DELETED);
          return Promise.resolve();
        },
        clear: (store) => {
          writable();
          cleared.add(store);
          journal.get(store)!.clear();
          return Promise.resolve();
        },
      };
      const result = await fn(tx);
      if (mode === "readwrite") {
        this.beforeCommit?.();
        for (const store of STORE_NAMES) {
          const target = this.data.get(store)!;
          if (cleared.has(store)) target.clear();
          for (const [k, v] of journal.get(store)!) {
            if (v === DELETED) target.delete(k);
            else target.set(k, v);
          }
        }
      }
      return result;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => {});
    return next;
  }

  persist(): Promise<boolean> {
    return Promise.resolve(false);
  }

  close(): void {}
}
