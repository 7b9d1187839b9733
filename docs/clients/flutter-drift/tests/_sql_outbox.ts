// The guide's sync code, in TypeScript over the guide's SQL, step for step as its Dart does it
// (docs/clients/flutter-drift.md): queue an edit, take a batch, settle the answers, apply a pull
// page. It implements the outbox property's interface, so the property runs the SQL.
import type { Edit, OutboxUnderTest, WireOp } from "../../../../supabase/functions/tests/_outbox_property.ts";
import type { Change, OpResult } from "../../../../supabase/functions/tests/_helpers.ts";
import { LocalStore, type Row } from "./_sqlite.ts";

/** The server's limits the batch keeps to (docs/protocol.md: SYNC_MAX_OPS, SYNC_MAX_BODY_BYTES). */
export const LIMITS = { maxOps: 1000, maxBytes: 5 * 1024 * 1024 - 1024 };

/** A local refusal: `code` is the one the server would answer (the trigger's message starts with it). */
export class LocalEditError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "LocalEditError";
  }
}

export class SqlOutbox implements OutboxUnderTest {
  readonly store: LocalStore;
  /** The ops of the batch sent last, by position, to settle its answer. */
  private sent: WireOp[] = [];

  constructor(store = new LocalStore()) {
    this.store = store;
  }

  /** A row as a pull delivers it (an upsert). */
  receive(table: string, row: Record<string, unknown>): void {
    this.store.transaction(() => this.store.run("sync_put_server_row", { tbl: table, row: JSON.stringify(row) }));
  }

  edit(e: Edit): void {
    try {
      this.store.run("sync_queue_edit", {
        op_id: crypto.randomUUID(),
        tbl: e.table,
        id: e.id,
        op: e.op,
        data: e.op === "delete" ? null : JSON.stringify(e.data),
      });
    } catch (err) {
      const m = String((err as Error).message).match(/^(\w+): (.*)$/);
      if (m) throw new LocalEditError(m[1], m[2]);
      throw err;
    }
  }

  /** The next batch, marked sent in the same transaction that picks it. */
  pending(limits = LIMITS): WireOp[] {
    return this.store.transaction(() => {
      const [{ batch }] = this.store.all("sync_next_batch");
      this.store.run("sync_take_batch", { batch, max_ops: limits.maxOps, max_bytes: limits.maxBytes });
      this.sent = this.store.all("sync_batch_ops", { batch }).map((r) => JSON.parse(String(r.op)) as WireOp);
      return this.sent;
    });
  }

  /** Settles each op of the last batch by its result, all in one transaction. */
  ack(results: OpResult[]): void {
    const ops = this.sent;
    if (results.length !== ops.length) throw new Error(`${results.length} results for ${ops.length} ops`);
    this.store.transaction(() => {
      ops.forEach((op, i) => this.settle(op, results[i]));
    });
  }

  private settle(op: WireOp, result: OpResult) {
    const s = this.store;
    const status = result.status === "duplicate" ? (result.original_status ?? "applied") : result.status;
    const row = result.row ? JSON.stringify(result.row) : null;
    if (status === "failed") {
      s.run("sync_ack_failed", {
        op_id: op.op_id,
        code: result.code ?? null,
        field: result.field ?? null,
        message: result.message ?? null,
      });
      return;
    }
    if (row) s.run("sync_put_server_row", { tbl: op.table, row });
    if (status === "applied") {
      if (result.row) s.run("sync_ack_applied", { op_id: op.op_id, version: result.row.version });
      s.run("sync_drop_op", { op_id: op.op_id });
    } else if (status === "conflict") {
      s.run("sync_ack_conflict", {
        op_id: op.op_id,
        conflict: result.conflict ? JSON.stringify(result.conflict) : null,
      });
      s.run("sync_drop_op", { op_id: op.op_id });
    } else {
      s.run("sync_ack_rejected", {
        op_id: op.op_id,
        code: result.code ?? "rejected",
        field: result.field ?? null,
        message: result.message ?? null,
      });
      if (op.op === "insert") s.run("sync_reject_dependants", { op_id: op.op_id });
      s.run("sync_drop_rejected");
    }
  }

  /**
   * A request-level 400 for the last batch: the ops its `details` name (paths ["ops", i, ...]) are
   * held aside with the reason; the others stay sent and go again. Returns how many were held.
   */
  hold(details: { path: (string | number)[]; message: string }[]): number {
    const ops = this.sent;
    let held = 0;
    this.store.transaction(() => {
      for (const d of details) {
        const i = d.path[0] === "ops" && typeof d.path[1] === "number" ? d.path[1] : -1;
        if (!ops[i]) continue;
        held += this.store.run("sync_hold_op", {
          op_id: ops[i].op_id,
          code: "invalid_request",
          field: d.path.slice(2).join(".") || null,
          message: d.message,
        });
      }
    });
    return held;
  }

  /** One pull page, applied with its cursor in one transaction. */
  applyPage(page: { changes: Change[]; cursor: string | null; has_more: boolean }, fromNull: boolean): void {
    const s = this.store;
    s.transaction(() => {
      for (const c of page.changes) {
        if (c.op === "upsert" && c.table === "conflicts") s.run("sync_pull_conflict", { row: JSON.stringify(c.row) });
        else if (c.op === "upsert") s.run("sync_put_server_row", { tbl: c.table, row: JSON.stringify(c.row) });
        else if (c.op === "delete") s.run("sync_pull_delete", { tbl: c.table, id: c.id, version: c.version });
        else {
          s.run("sync_pull_evict", { tbl: c.table, id: c.id });
          s.run("sync_pull_evict_conflicts", { tbl: c.table, id: c.id });
        }
      }
      if (fromNull && !page.has_more) s.run("sync_end_full_pull");
      s.run("sync_save_cursor", { cursor: page.cursor });
    });
  }

  /** The live row as the app reads it, or undefined. */
  read(table: string, id: string): Record<string, unknown> | undefined {
    const [row] = this.store.all("sync_local_row", { tbl: table, id });
    return row ? { ...JSON.parse(String(row.data)), id: row.id, version: row.version } : undefined;
  }

  /** The outbox as stored, in edit order: each op as the wire would carry it, and its state. */
  outbox(): { op: WireOp; state: string; seq: number }[] {
    return this.store.query("select w.seq, w.state, w.op from sync_outbox_wire w order by w.seq").map((r: Row) => ({
      seq: Number(r.seq),
      state: String(r.state),
      op: JSON.parse(String(r.op)),
    }));
  }
}
