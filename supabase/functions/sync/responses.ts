// The answers of the function, as zod schemas: what docs/openapi.json describes to client code
// generators. The function sends the database's JSON text as it is and never parses it with these;
// openapi.test.ts holds real answers, of every kind, to them.
import { z } from "zod";
import { PROTOCOLS } from "./contract.ts";
import { OP_RESULT_CODES, OP_STATUSES, REQUEST_ERRORS } from "./error_codes.ts";
import { uuid } from "./schemas.ts";

/** An enum of a registry's keys, its description listing what each means. */
function registryEnum<T extends Record<string, { meaning: string }>>(registry: T, what: string) {
  const keys = Object.keys(registry) as [Extract<keyof T, string>, ...Extract<keyof T, string>[]];
  return z.enum(keys).meta({
    description: `${what}:\n${keys.map((k) => `- \`${k}\`: ${registry[k].meaning}`).join("\n")}`,
  });
}

const timestamp = z.iso.datetime({ offset: true }).meta({ description: "The database clock (ISO 8601)." });

export const issue = z.strictObject({
  path: z.array(z.union([z.string(), z.int()])).meta({ description: "Where in the body, as keys and indexes." }),
  message: z.string(),
});

export const errorResponse = z.strictObject({
  error: registryEnum(REQUEST_ERRORS, "The request-level error (docs/protocol.md, Request-level errors)"),
  message: z.string().meta({ description: "For people; its wording may change." }),
  details: z.array(issue).optional().meta({ description: "With invalid_request: each problem found (at most 50)." }),
  supported: z.array(z.literal(PROTOCOLS)).optional().meta({
    description: "With unsupported_protocol: the protocols served.",
  }),
  allow: z.string().optional().meta({ description: "With method_not_allowed: the route's method." }),
}).meta({ description: "A refused request." });

/** A row as the server holds it: every column the caller may read, server columns included. */
const row = z.looseObject({ id: uuid }).meta({
  description: "A row as the server holds it: its columns by name, server columns (version, updated_at, ...) included.",
});

export const conflict = z.looseObject({
  id: uuid.meta({ description: "The conflict's audit entry." }),
  resolution: z.enum(["client_wins", "server_wins", "merged", "manual_pending", "manual_resolved"]),
  fields: z.array(z.string()).meta({ description: "The columns in conflict." }),
}).meta({ description: "The conflict an op met, as audited (docs/protocol.md, Conflicts)." });

export const opResult = z.strictObject({
  op_id: uuid,
  status: registryEnum(OP_STATUSES, "The outcome"),
  code: registryEnum(OP_RESULT_CODES, "Why the op was not applied").optional(),
  retryable: z.boolean().meta({ description: "True exactly for failed: the op may be sent again." }),
  message: z.string().optional(),
  field: z.string().optional().meta({ description: "The column, when the problem is one column." }),
  conflict: conflict.optional(),
  row: row.optional().meta({ description: "The row as it is now, as the caller may see it." }),
  original_status: registryEnum(OP_STATUSES, "A duplicate's original outcome").optional(),
}).meta({ description: "The result of one op, in the order sent." });

export const pushResponse = z.strictObject({
  server_time: timestamp,
  results: z.array(opResult),
  commit_lsn: z.string().optional().meta({
    description:
      "The primary's WAL position after the push committed (pg_current_wal_flush_lsn()); send it as the next " +
      "pull's `min_lsn`, so that a read replica serves that pull only once it shows this push.",
  }),
}).meta({ description: "The results of a push, one per op (per legacy item for protocol 1)." });

export const upsertChange = z.strictObject({
  table: z.string(),
  op: z.literal("upsert"),
  row,
}).meta({ description: "A row to store (the table `conflicts` carries audit entries)." });
export const deleteChange = z.strictObject({
  table: z.string(),
  op: z.literal("delete"),
  id: uuid,
  version: z.int(),
}).meta({ description: "A tombstone: the row was deleted at this version." });
export const evictChange = z.strictObject({
  table: z.string(),
  op: z.literal("evict"),
  id: uuid,
}).meta({ description: "The row left the caller's scope: drop it and its child rows locally." });

export const change = z.discriminatedUnion("op", [upsertChange, deleteChange, evictChange]);

export const pullResponse = z.strictObject({
  server_time: timestamp,
  changes: z.array(change),
  cursor: z.string().nullable().meta({ description: "Where the next pull starts; null with resync_required." }),
  has_more: z.boolean(),
  resync_required: z.boolean().meta({
    description: "Discard the cursor (keep pending ops) and pull again from null.",
  }),
}).meta({ description: "A page of changes since the cursor." });

export const healthResponse = z.strictObject({
  status: z.literal("ok"),
  server_time: timestamp,
  protocols: z.array(z.literal(PROTOCOLS)),
  oldest_write_xact_seconds: z.number().meta({
    description: "Age of the oldest open writing transaction in the database.",
  }),
  replica: z.strictObject({
    replay_lsn: z.string().nullable().meta({ description: "What the replica has replayed (null: not a standby)." }),
    lag_bytes: z.number().nullable().meta({
      description: "Bytes of WAL the primary has written and the replica not replayed.",
    }),
    replay_paused: z.boolean().nullable().meta({ description: "Whether replay is paused (null: not reachable)." }),
    reachable: z.boolean().meta({
      description: "Whether the function reached the replica now; when not, pulls go to the primary.",
    }),
  }).optional().meta({ description: "The read replica pulls run on (SYNC_READ_DB_URL), when one is configured." }),
});
