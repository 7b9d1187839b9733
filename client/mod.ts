// supasync's client kit: an offline-first local store and outbox that syncs through the sync
// function (docs/protocol.md). See README.md beside this file.
export { SyncClient } from "./client.ts";
export type { OpIssue, SyncClientOptions, SyncReport, SyncState, SyncStatus } from "./client.ts";
export { LocalEditError } from "./outbox.ts";
export type { LocalRow } from "./outbox.ts";
export { MemoryStorage } from "./memory.ts";
export { IndexedDbStorage } from "./indexeddb.ts";
export type { ConflictRecord, OutboxRecord, Storage, Tx } from "./store.ts";
export { LOCAL_CODES, OP_RESULT_CODES, OP_STATUSES, REQUEST_ERRORS } from "./codes.ts";
export type { Change, LegacyItem, OpResult, ServerRow, Values } from "./protocol.ts";
