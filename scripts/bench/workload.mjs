// @ts-check
// Workload: mixed ops (70% insert, 25% update, 5% delete) over customers and their children.
// Updates and deletes target rows that exist before the batch (a preloaded pool, then the stream's own
// earlier inserts), so every id appears once per batch and the ceiling can write each batch as one
// multi-row upsert per table. Every op is expected to be `applied` with a predictable version.
import { randomUUID } from "node:crypto";
import { mulberry32 } from "./util.mjs";

/**
 * A seed user as the bench reads it.
 * @typedef {object} BenchUser
 * @property {string} id
 * @property {string} email
 * @property {string} role
 * @property {string} branch_id
 * @property {string} branchName
 */

/** @typedef {"customers" | "key_persons" | "pipelines" | "activities"} Table */
/** @typedef {Record<string, unknown>} Row */

/**
 * @typedef {object} Op
 * @property {string} op_id
 * @property {Table} table
 * @property {"insert" | "update" | "delete"} op
 * @property {string} id
 * @property {number} [base_version]
 * @property {Row} [data]
 */

/**
 * @typedef {object} Batch
 * @property {Op[]} ops
 * @property {number[]} expect the version each op's row must have once applied
 * @property {Record<Table, Row[]>} rows the same changes as rows, for the ceiling's upserts
 * @property {{ insert: number, update: number, delete: number }} kinds
 * @property {() => void} commit
 */

/** @typedef {{ table: Table, id: string, version: number, row: Row }} PoolEntry */

/** @type {Table[]} */
export const TABLES = ["customers", "key_persons", "pipelines", "activities"];
/** @type {[Table, number][]} */
const INSERT_MIX = [["customers", 0.25], ["key_persons", 0.25], ["pipelines", 0.15], ["activities", 0.35]];
// What the ceiling writes: the client columns the rows use, and the owner columns the function fills
// from their defaults (auth.uid(), the caller's branch).
/** @type {Record<Table, string[]>} */
export const CEILING_COLUMNS = {
  customers: [
    "id",
    "name",
    "customer_type",
    "industry",
    "email",
    "phone",
    "city",
    "notes",
    "assigned_rm_id",
    "branch_id",
    "deleted_at",
  ],
  key_persons: ["id", "customer_id", "name", "position", "email", "phone", "is_primary", "notes", "deleted_at"],
  pipelines: [
    "id",
    "customer_id",
    "title",
    "stage",
    "potential_value",
    "currency",
    "expected_close_date",
    "notes",
    "assigned_rm_id",
    "branch_id",
    "deleted_at",
  ],
  activities: ["id", "customer_id", "activity_type", "subject", "scheduled_at", "notes", "deleted_at"],
};

export class Stream {
  /**
   * @param {object} options
   * @param {string} options.name
   * @param {number} options.seed
   * @param {BenchUser} options.user the pushing user
   * @param {BenchUser | null} [options.assignTo] the rm a bm assigns new customers to
   * @param {string[]} [options.parents] live customer ids the user may attach children to
   */
  constructor({ name, seed, user, assignTo = null, parents = [] }) {
    this.name = name;
    this.rng = mulberry32(seed);
    this.user = user;
    this.assignTo = assignTo;
    this.parents = [...parents];
    /** @type {PoolEntry[]} */
    this.pool = [];
    this.seq = 0;
    this.slot = 0;
  }

  /**
   * @template T
   * @param {T[]} list
   * @returns {T}
   */
  pick(list) {
    return list[Math.floor(this.rng() * list.length)];
  }

  /** @returns {Table} */
  pickTable() {
    let x = this.rng();
    for (const [table, share] of INSERT_MIX) {
      if ((x -= share) < 0) return table;
    }
    return "activities";
  }

  /**
   * @param {Table} table
   * @param {string | null} parent
   * @returns {Row}
   */
  rowFor(table, parent) {
    const k = ++this.seq;
    const tag = `${this.name}-${k}`;
    switch (table) {
      case "customers":
        return {
          name: `PT Bench ${tag}`,
          customer_type: k % 5 ? "company" : "individual",
          industry: ["manufacturing", "retail", "logistics", "agriculture"][k % 4],
          email: `c${k}@${this.name}.bench.test`,
          phone: `+62 21 ${String(k).padStart(7, "0")}`,
          city: this.user.branchName,
          notes: `created by the bench (${tag})`,
          ...(this.assignTo ? { assigned_rm_id: this.assignTo.id } : {}),
        };
      case "key_persons":
        return {
          customer_id: parent,
          name: `Contact ${tag}`,
          position: k % 2 ? "Director" : "Finance Manager",
          email: `kp${k}@${this.name}.bench.test`,
          phone: `+62 813 ${String(k).padStart(7, "0")}`,
          is_primary: false,
          notes: `key person (${tag})`,
        };
      case "pipelines":
        return {
          customer_id: parent,
          title: `Fleet insurance ${tag}`,
          stage: "prospect",
          potential_value: 100_000_000 + k,
          currency: "IDR",
          expected_close_date: "2027-06-30",
          notes: `pipeline (${tag})`,
        };
      default:
        return {
          customer_id: parent,
          activity_type: ["call", "meeting", "visit", "email", "note"][k % 5],
          subject: `Follow-up ${tag}`,
          scheduled_at: new Date(Date.UTC(2027, 0, 1 + (k % 300), 9)).toISOString(),
          notes: `activity (${tag})`,
        };
    }
  }

  /**
   * @param {Table} table
   * @returns {Row}
   */
  editFor(table) {
    const k = ++this.seq;
    /** @type {Row} */
    const data = { notes: `edited by the bench (${this.name}-${k})` };
    if (table === "customers" && k % 2) data.phone = `+62 21 9${String(k).padStart(6, "0")}`;
    if (table === "key_persons" && k % 2) data.position = `Head of ${k}`;
    return data;
  }

  /**
   * @param {Table} table
   * @param {string} id
   * @param {Row} row
   * @param {boolean} deleted
   * @returns {Row}
   */
  ceilingRow(table, id, row, deleted) {
    /** @type {Row} */
    const out = { id, ...row, deleted_at: deleted ? new Date().toISOString() : null };
    if (table === "customers") {
      out.assigned_rm_id = row.assigned_rm_id ?? this.user.id;
      out.branch_id = this.user.branch_id;
    } else if (table === "pipelines") {
      out.assigned_rm_id = this.user.id;
      out.branch_id = this.user.branch_id;
    }
    return out;
  }

  /**
   * @param {Set<string>} touched
   * @returns {PoolEntry | null}
   */
  pickTarget(touched) {
    for (let tries = 0; tries < 12 && this.pool.length; tries++) {
      const e = this.pick(this.pool);
      if (!touched.has(e.id)) return e;
    }
    return null;
  }

  /**
   * The next `size` ops; call commit() once they were applied.
   * @param {number} size
   * @param {{ insertsOnly?: boolean }} [options]
   * @returns {Batch}
   */
  batch(size, { insertsOnly = false } = {}) {
    /** @type {Op[]} */
    const ops = [];
    /** @type {number[]} */
    const expect = [];
    /** @type {Record<Table, Row[]>} */
    const rows = { customers: [], key_persons: [], pipelines: [], activities: [] };
    /** @type {(() => void)[]} */
    const effects = [];
    /** @type {Set<string>} */
    const touched = new Set();
    const kinds = { insert: 0, update: 0, delete: 0 };
    for (let i = 0; i < size; i++) {
      const slot = this.slot++ % 20;
      /** @type {"insert" | "update" | "delete"} */
      let kind = insertsOnly ? "insert" : slot < 14 ? "insert" : slot < 19 ? "update" : "delete";
      const target = kind === "insert" ? null : this.pickTarget(touched);
      if (!target) kind = "insert";
      kinds[kind]++;
      if (kind === "insert" || !target) {
        let table = this.pickTable();
        if (table !== "customers" && !this.parents.length) table = "customers";
        const parent = table === "customers" ? null : this.pick(this.parents);
        const id = randomUUID();
        const row = this.rowFor(table, parent);
        ops.push({ op_id: randomUUID(), table, op: "insert", id, data: row });
        expect.push(1);
        rows[table].push(this.ceilingRow(table, id, row, false));
        const entry = { table, id, version: 1, row };
        effects.push(() => {
          this.pool.push(entry);
          if (table === "customers") this.parents.push(id);
        });
        touched.add(id);
      } else if (kind === "update") {
        const data = this.editFor(target.table);
        ops.push({
          op_id: randomUUID(),
          table: target.table,
          op: "update",
          id: target.id,
          base_version: target.version,
          data,
        });
        expect.push(target.version + 1);
        const next = { ...target.row, ...data };
        rows[target.table].push(this.ceilingRow(target.table, target.id, next, false));
        effects.push(() => {
          target.row = next;
          target.version += 1;
        });
        touched.add(target.id);
      } else {
        ops.push({
          op_id: randomUUID(),
          table: target.table,
          op: "delete",
          id: target.id,
          base_version: target.version,
        });
        expect.push(target.version + 1);
        rows[target.table].push(this.ceilingRow(target.table, target.id, target.row, true));
        // A deleted customer takes no new children from here on.
        if (target.table === "customers") this.parents = this.parents.filter((p) => p !== target.id);
        effects.push(() => {
          const i = this.pool.indexOf(target);
          if (i >= 0) this.pool.splice(i, 1);
        });
        touched.add(target.id);
      }
    }
    return { ops, expect, rows, kinds, commit: () => effects.forEach((f) => f()) };
  }
}

/**
 * Checks a push answer against the batch's predictions; returns the number of mismatches.
 * @param {import("./http.mjs").Answer} res
 * @param {{ ops: Op[], expect: number[] }} batch
 * @param {string[]} samples where the first few mismatches are described
 */
export function verifyPush(res, batch, samples) {
  if (res.status !== 200 || !Array.isArray(res.json?.results)) {
    samples.push(`HTTP ${res.status}: ${res.text.slice(0, 300)}`);
    return batch.ops.length;
  }
  let bad = 0;
  res.json.results.forEach((/** @type {any} */ r, /** @type {number} */ i) => {
    const ok = r.status === "applied" && r.op_id === batch.ops[i].op_id && Number(r.row?.version) === batch.expect[i];
    if (!ok) {
      bad++;
      if (samples.length < 5) {
        samples.push(
          `${batch.ops[i].op} ${batch.ops[i].table}: ${r.status}/${r.code ?? ""} ${
            r.message ?? ""
          } (version ${r.row?.version}, expected ${batch.expect[i]})`,
        );
      }
    }
  });
  if (res.json.results.length !== batch.ops.length) bad += Math.abs(res.json.results.length - batch.ops.length);
  return bad;
}
