// Sequences of local edits, for the property test of an outbox (outbox_property.test.ts) and for
// any other implementation of the same coalescing rules (a Drift/SQLite outbox, say), which can
// replay the same sequences through the same interface:
//
//   interface EditTarget {
//     insert(table, id, data): Promise<void>;  // a create of a new row
//     update(table, id, data): Promise<void>;  // an edit of some of its columns
//     delete(table, id): Promise<void>;
//     sync(): Promise<void>;                   // a point where the device may push (and pull)
//   }
//
// `editSteps()` is a fast-check arbitrary of steps that name rows by slot (0..2 of each table), so
// one sequence can be replayed on two sets of fresh ids; `replay(target, steps, idOf)` hands the
// target the steps that make sense in order (an edit of a row that exists and is not deleted, a
// create of a slot not used yet, a key person under a live customer, a customer deleted only when
// it has no live key person: the server does not cascade deletes, while an outbox that cancels a
// create also drops what was created under it) and returns them.
import fc from "fast-check";

export type Table = "customers" | "key_persons";
export type Values = Record<string, unknown>;

export type EditStep =
  | { kind: "insert"; table: "customers"; slot: number; data: Values }
  | { kind: "insert"; table: "key_persons"; slot: number; parent: number; data: Values }
  | { kind: "update"; table: Table; slot: number; data: Values }
  | { kind: "delete"; table: Table; slot: number }
  | { kind: "sync" };

export interface EditTarget {
  insert(table: Table, id: string, data: Values): Promise<void>;
  update(table: Table, id: string, data: Values): Promise<void>;
  delete(table: Table, id: string): Promise<void>;
  sync(): Promise<void>;
}

const slot = fc.integer({ min: 0, max: 2 });
const word = fc.constantFrom("a", "b", "c", "d");
const customerData = fc.record(
  { phone: word.map((w) => `+62 ${w}`), city: word, notes: word },
  { requiredKeys: [] },
);
const personData = fc.record({ position: word, phone: word.map((w) => `+62 ${w}`) }, { requiredKeys: [] });

export const editStep: fc.Arbitrary<EditStep> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    table: fc.constant("customers" as const),
    slot,
    data: customerData,
  })
    .map((s) => ({ ...s, data: { name: `PT ${s.slot}`, ...s.data } })),
  fc.record({
    kind: fc.constant("insert" as const),
    table: fc.constant("key_persons" as const),
    slot,
    parent: slot,
    data: personData,
  }).map((s) => ({ ...s, data: { name: `Person ${s.slot}`, ...s.data } })),
  fc.record({
    kind: fc.constant("update" as const),
    table: fc.constant("customers" as const),
    slot,
    data: customerData,
  })
    .filter((s) => Object.keys(s.data).length > 0),
  fc.record({
    kind: fc.constant("update" as const),
    table: fc.constant("key_persons" as const),
    slot,
    data: personData,
  })
    .filter((s) => Object.keys(s.data).length > 0),
  fc.record({ kind: fc.constant("delete" as const), table: fc.constantFrom<Table>("customers", "key_persons"), slot }),
  fc.constant({ kind: "sync" as const }),
);

export const editSteps = (maxLength = 14) => fc.array(editStep, { minLength: 1, maxLength });

type RowState = "live" | "deleted";

/** Replays the steps that make sense in order on `target`; returns them. */
export async function replay(
  target: EditTarget,
  steps: EditStep[],
  idOf: (table: Table, slot: number) => string,
): Promise<EditStep[]> {
  const rows = new Map<string, RowState>();
  const parents = new Map<number, number>(); // key person slot -> customer slot
  const key = (t: Table, s: number) => `${t}/${s}`;
  const done: EditStep[] = [];
  for (const step of steps) {
    if (step.kind === "sync") {
      await target.sync();
      done.push(step);
      continue;
    }
    const state = rows.get(key(step.table, step.slot));
    if (step.kind === "insert") {
      if (state) continue;
      if (step.table === "key_persons") {
        if (rows.get(key("customers", step.parent)) !== "live") continue;
        parents.set(step.slot, step.parent);
        await target.insert(step.table, idOf(step.table, step.slot), {
          ...step.data,
          customer_id: idOf("customers", step.parent),
        });
      } else await target.insert(step.table, idOf(step.table, step.slot), step.data);
      rows.set(key(step.table, step.slot), "live");
    } else if (step.kind === "update") {
      if (state !== "live") continue;
      await target.update(step.table, idOf(step.table, step.slot), step.data);
    } else {
      if (state !== "live") continue;
      if (
        step.table === "customers" &&
        [...parents].some(([kp, c]) => c === step.slot && rows.get(key("key_persons", kp)) === "live")
      ) continue;
      await target.delete(step.table, idOf(step.table, step.slot));
      rows.set(key(step.table, step.slot), "deleted");
    }
    done.push(step);
  }
  return done;
}
