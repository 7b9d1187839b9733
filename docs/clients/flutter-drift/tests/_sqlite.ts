// The guide's SQL under SQLite compiled to WebAssembly (sql.js): each file's schema part (what comes
// before its first `-- name:`) is run as it is, and its named statements are run by name with the
// same named parameters the Dart code binds. Nothing here restates a rule: the tests run the files.
// @ts-types="./sql_js.d.ts"
import initSqlJs from "sql.js";
import type { Database, SqlValue } from "./sql_js.d.ts";

const DIR = new URL("../", import.meta.url);
/** The guide's SQL files, in the order a database applies them. */
export const FILES = ["schema.sql", "outbox.sql", "push.sql", "pull.sql", "legacy.sql"];

export function readSqlFile(file: string): string {
  return Deno.readTextFileSync(new URL(file, DIR));
}

/** A file split at its `-- name: x` lines: the schema part before the first, then each statement by name. */
export function splitSql(text: string): { schema: string; statements: Map<string, string> } {
  const parts = text.split(/^-- name: (\w+)\n/m);
  const statements = new Map<string, string>();
  for (let i = 1; i < parts.length; i += 2) {
    if (statements.has(parts[i])) throw new Error(`the statement ${parts[i]} is named twice`);
    statements.set(parts[i], parts[i + 1].trim());
  }
  return { schema: parts[0], statements };
}

const SQL = await initSqlJs();

export type Params = Record<string, SqlValue | undefined>;
export type Row = Record<string, SqlValue>;

/** A database with the guide's schema, its statements by name, and the transactions the Dart code opens. */
export class LocalStore {
  readonly db: Database;
  readonly statements = new Map<string, string>();

  constructor(files = FILES, edit: (file: string, text: string) => string = (_, t) => t) {
    this.db = new SQL.Database();
    this.db.exec("PRAGMA foreign_keys = ON");
    for (const file of files) {
      const { schema, statements } = splitSql(edit(file, readSqlFile(file)));
      this.db.exec(schema);
      for (const [name, text] of statements) this.statements.set(name, text);
    }
  }

  /** Runs a named statement and returns its rows (an empty list for a statement without). */
  all(name: string, params: Params = {}): Row[] {
    const text = this.statements.get(name);
    if (!text) throw new Error(`no statement named ${name}`);
    const stmt = this.db.prepare(text);
    try {
      const bound: Record<string, SqlValue> = {};
      const code = text.replace(/--[^\n]*/g, "").replace(/'[^']*'/g, "''");
      for (const m of code.matchAll(/:(\w+)/g)) {
        if (!(m[1] in params)) throw new Error(`${name}: no value for :${m[1]}`);
        bound[`:${m[1]}`] = params[m[1]] ?? null;
      }
      stmt.bind(bound);
      const rows: Row[] = [];
      while (stmt.step()) rows.push(stmt.getAsObject());
      return rows;
    } finally {
      stmt.free();
    }
  }

  run(name: string, params: Params = {}): number {
    this.all(name, params);
    return this.db.getRowsModified();
  }

  /** Plain SQL, for what a test looks at rather than what the guide does. */
  query(sql: string, params: SqlValue[] = []): Row[] {
    const stmt = this.db.prepare(sql);
    try {
      stmt.bind(params);
      const rows: Row[] = [];
      while (stmt.step()) rows.push(stmt.getAsObject());
      return rows;
    } finally {
      stmt.free();
    }
  }

  /** One transaction, as Drift's `transaction(() async { ... })`: all of it commits, or none. */
  transaction<T>(fn: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      this.db.exec("ROLLBACK");
      throw err;
    }
  }

  close() {
    this.db.close();
  }
}
