// The kit's copy of the codes is the registry's: the function's error_codes.ts is the one source,
// and a code added there fails here until the kit knows it.
import assert from "node:assert/strict";
import * as registry from "../../supabase/functions/sync/error_codes.ts";
import { LOCAL_CODES, OP_RESULT_CODES, OP_STATUSES, REQUEST_ERRORS, SIGNED_OUT_CODES } from "../codes.ts";
import { test } from "./_kit.ts";

const pick = <T extends Record<string, object>, K extends string>(o: T, keys: K[]) =>
  Object.fromEntries(
    Object.entries(o).map((
      [code, e],
    ) => [code, Object.fromEntries(keys.map((k) => [k, (e as Record<K, unknown>)[k]]))]),
  );

test("the kit's request errors are the registry's, with the same status and retryable", () => {
  assert.deepEqual(REQUEST_ERRORS, pick(registry.REQUEST_ERRORS, ["status", "retryable"]));
});

test("the kit's op statuses and result codes are the registry's", () => {
  assert.deepEqual(OP_STATUSES, pick(registry.OP_STATUSES, ["retryable"]));
  assert.deepEqual(
    OP_RESULT_CODES,
    Object.fromEntries(Object.entries(registry.OP_RESULT_CODES).map(([code, e]) => [code, e.status])),
  );
});

test("the kit's own codes name none of the registry's, and signing out follows only refusals of the user", () => {
  for (const code of Object.keys(LOCAL_CODES)) {
    assert.ok(!(code in registry.REQUEST_ERRORS) && !(code in registry.OP_RESULT_CODES), code);
  }
  for (const code of SIGNED_OUT_CODES) {
    const e = registry.REQUEST_ERRORS[code];
    assert.ok([401, 403].includes(e.status) && !e.retryable, code);
  }
});
