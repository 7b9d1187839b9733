// The part of sql.js's API the tests use (the package ships no types of its own).
export type SqlValue = number | string | Uint8Array | null;
export interface Statement {
  bind(values: SqlValue[] | Record<string, SqlValue>): boolean;
  step(): boolean;
  getAsObject(): Record<string, SqlValue>;
  free(): boolean;
}
export interface Database {
  exec(sql: string): { columns: string[]; values: SqlValue[][] }[];
  prepare(sql: string): Statement;
  getRowsModified(): number;
  close(): void;
}
export interface SqlJsStatic {
  Database: new () => Database;
}
export default function initSqlJs(config?: Record<string, unknown>): Promise<SqlJsStatic>;
