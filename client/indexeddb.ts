// The IndexedDB adapter, for browsers (and, in Node or Deno, any IndexedDB implementation passed
// in, such as fake-indexeddb). Readwrite transactions ask for strict durability, so a committed
// edit is on disk, not in the OS's cache. When another tab opens the database at a newer schema
// version, this connection closes (so the upgrade can go on) and `onVersionChange` tells the kit.
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

/** The database schema's version: a change of stores or key paths is a new version with an upgrade step. */
export const SCHEMA_VERSION = 1;

/** The schema is newer than this code: another tab runs a newer version of the app; reload. */
export class StorageOutdatedError extends Error {
  constructor(name: string) {
    super(`the store ${name} was upgraded by a newer version of the app; reload`);
    this.name = "StorageOutdatedError";
  }
}

// The part of the IndexedDB API the adapter uses, typed here: Deno's and Node's libraries have none.
interface IDBRequest<T> {
  result: T;
  error: DOMException | null;
  onsuccess: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}
interface IDBOpenRequest extends IDBRequest<IDBDatabase> {
  onupgradeneeded: ((event: never) => void) | null;
  onblocked: ((event: never) => void) | null;
}
interface IDBObjectStore {
  get(key: Key): IDBRequest<unknown>;
  getAll(range?: unknown, count?: number): IDBRequest<unknown[]>;
  put(value: unknown): IDBRequest<unknown>;
  delete(key: Key): IDBRequest<unknown>;
  clear(): IDBRequest<unknown>;
}
interface IDBTransaction {
  objectStore(name: string): IDBObjectStore;
  abort(): void;
  commit?: () => void;
  error: DOMException | null;
  oncomplete: ((event: never) => void) | null;
  onabort: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}
interface IDBDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string, options: { keyPath: string }): unknown;
  transaction(
    stores: string[],
    mode: "readonly" | "readwrite",
    options?: { durability: "default" | "strict" | "relaxed" },
  ): IDBTransaction;
  close(): void;
  onversionchange: ((event: never) => void) | null;
}
export interface IDBFactory {
  open(name: string, version: number): IDBOpenRequest;
}
export interface IDBKeyRangeStatic {
  bound(lower: Key, upper: Key, lowerOpen?: boolean, upperOpen?: boolean): unknown;
  lowerBound(lower: Key, open?: boolean): unknown;
}

const promised = <T>(req: IDBRequest<T>) =>
  new Promise<T>((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

export class IndexedDbStorage implements Storage {
  #db: Promise<IDBDatabase> | null = null;
  #factory: IDBFactory;
  #range: IDBKeyRangeStatic;
  onVersionChange?: () => void;

  /** `name` is the database's name: one per user and project, say `supasync:<project>:<user id>`. */
  constructor(
    readonly name: string,
    options: { indexedDB?: IDBFactory; IDBKeyRange?: IDBKeyRangeStatic } = {},
  ) {
    const g = globalThis as { indexedDB?: IDBFactory; IDBKeyRange?: IDBKeyRangeStatic };
    const factory = options.indexedDB ?? g.indexedDB;
    const range = options.IDBKeyRange ?? g.IDBKeyRange;
    if (!factory || !range) {
      throw new Error("no IndexedDB here: pass options.indexedDB and IDBKeyRange, or use MemoryStorage");
    }
    this.#factory = factory;
    this.#range = range;
  }

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = this.#factory.open(this.name, SCHEMA_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        for (const store of STORE_NAMES) {
          if (!db.objectStoreNames.contains(store)) db.createObjectStore(store, { keyPath: KEY_PATHS[store] });
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => {
          db.close();
          this.#db = null;
          this.onVersionChange?.();
        };
        resolve(db);
      };
      req.onerror = () => {
        this.#db = null;
        reject(req.error?.name === "VersionError" ? new StorageOutdatedError(this.name) : req.error);
      };
      req.onblocked = () => {
        // Another tab holds an older version open; it closes on its versionchange, and this open goes on.
      };
    });
    return this.#db;
  }

  async transaction<T>(mode: "readonly" | "readwrite", fn: (tx: Tx) => Promise<T>): Promise<T> {
    const db = await this.#open();
    const t = mode === "readwrite"
      ? db.transaction(STORE_NAMES, mode, { durability: "strict" })
      : db.transaction(STORE_NAMES, mode);
    const done = new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onabort = () => reject(t.error ?? new Error("the transaction was aborted"));
      t.onerror = () => reject(t.error);
    });
    done.catch(() => {});
    const tx: Tx = {
      get: <S extends StoreName>(store: S, key: Key) =>
        promised(t.objectStore(store).get(key)) as Promise<Records[S] | undefined>,
      getAll: <S extends StoreName>(store: S, prefix?: string, slice: Slice = {}) => {
        const range = this.#keyRange(prefix, slice.after);
        if (range === null) return Promise.resolve([]);
        return promised(t.objectStore(store).getAll(range, slice.limit)) as Promise<Records[S][]>;
      },
      put: async <S extends StoreName>(store: S, value: Records[S]) => {
        await promised(t.objectStore(store).put(value));
      },
      delete: async (store, key) => {
        await promised(t.objectStore(store).delete(key));
      },
      clear: async (store) => {
        await promised(t.objectStore(store).clear());
      },
    };
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      try {
        t.abort();
      } catch {
        // Already finished: the error below is what matters.
      }
      throw err;
    }
    if (mode === "readwrite") t.commit?.();
    await done;
    return result;
  }

  /**
   * The keys that start with `prefix` (any, without it) and sort after `after` (any, without it);
   * null when none can.
   */
  #keyRange(prefix: string | undefined, after: Key | undefined): unknown {
    if (prefix === undefined) return after === undefined ? undefined : this.#range.lowerBound(after, true);
    const upper = `${prefix}\uffff`;
    if (after === undefined || after < prefix) return this.#range.bound(prefix, upper);
    return after < upper ? this.#range.bound(after, upper, true) : null;
  }

  async persist(): Promise<boolean> {
    const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
      ?.storage;
    return storage?.persist ? await storage.persist() : false;
  }

  close(): void {
    const db = this.#db;
    this.#db = null;
    db?.then((d) => d.close(), () => {});
  }
}
