// docs/openapi.json: the OpenAPI 3.1 description of the sync function, generated from its zod
// schemas (requests: supabase/functions/sync/schemas.ts, answers: responses.ts) and the registry of
// codes (error_codes.ts), for client code generators. `npm run openapi` writes it;
// `npm run openapi -- --check` exits non-zero when the checked-in file is not what it would write
// (openapi.test.ts checks the same in npm test).
import { z } from "zod"; // the function's own zod, the one its schemas are made with
import { PROTOCOLS } from "../supabase/functions/sync/contract.ts";
import { REQUEST_ERRORS, type RequestErrorCode } from "../supabase/functions/sync/error_codes.ts";
import { legacyItem, pull, pushOp, pushV1, pushV2 } from "../supabase/functions/sync/schemas.ts";
import {
  change,
  conflict,
  deleteChange,
  errorResponse,
  evictChange,
  healthResponse,
  issue,
  opResult,
  pullResponse,
  pushResponse,
  upsertChange,
} from "../supabase/functions/sync/responses.ts";

export const OPENAPI_PATH = new URL("../docs/openapi.json", import.meta.url);

const components: Record<string, z.ZodType> = {
  PushRequestV2: pushV2,
  PushOp: pushOp,
  PushRequestV1: pushV1,
  LegacyQueueItem: legacyItem,
  PullRequest: pull,
  PushResponse: pushResponse,
  OpResult: opResult,
  Conflict: conflict,
  PullResponse: pullResponse,
  Change: change,
  ChangeUpsert: upsertChange,
  ChangeDelete: deleteChange,
  ChangeEvict: evictChange,
  HealthResponse: healthResponse,
  Error: errorResponse,
  Issue: issue,
};

// The request errors each route can answer (every route also answers not_found for a path it
// does not know, which belongs to no route).
const ROUTE_ERRORS: Record<string, RequestErrorCode[]> = {
  health: ["method_not_allowed", "unavailable", "internal"],
  push: [
    "invalid_request",
    "missing_token",
    "invalid_token",
    "token_expired",
    "not_staff",
    "account_inactive",
    "method_not_allowed",
    "too_large",
    "unsupported_protocol",
    "unavailable",
    "internal",
  ],
  pull: [
    "invalid_request",
    "invalid_cursor",
    "missing_token",
    "invalid_token",
    "token_expired",
    "not_staff",
    "account_inactive",
    "method_not_allowed",
    "unsupported_protocol",
    "unavailable",
    "internal",
    "replica_behind",
    "busy",
  ],
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The error responses of a route, by status, each naming its codes and what they mean. */
function errorResponses(codes: RequestErrorCode[]) {
  const byStatus = new Map<number, RequestErrorCode[]>();
  for (const code of codes) {
    byStatus.set(REQUEST_ERRORS[code].status, [...byStatus.get(REQUEST_ERRORS[code].status) ?? [], code]);
  }
  return Object.fromEntries(
    [...byStatus].sort(([a], [b]) => a - b).map(([status, list]) => [String(status), {
      description: list.map((c) =>
        `\`${c}\`${REQUEST_ERRORS[c].retryable ? " (retryable)" : ""}: ${REQUEST_ERRORS[c].meaning}`
      )
        .join("\n\n"),
      ...(status === 405
        ? { headers: { Allow: { description: "The methods the route takes.", schema: { type: "string" } } } }
        : status === 503
        ? {
          headers: {
            "Retry-After": { description: "The seconds to wait before sending again.", schema: { type: "integer" } },
          },
        }
        : {}),
      content: { "application/json": { schema: ref("Error") } },
    }]),
  );
}

/** The OpenAPI 3.1 document, built anew from the schemas. */
export function openApiDocument(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: "draft-2020-12",
    io: "input",
    uri: (id) => `#/components/schemas/${id}`,
    // zod writes a literal number as a number; the protocol's are whole, which generators type as integers.
    override: ({ jsonSchema: s }) => {
      const values = s.const !== undefined ? [s.const] : s.enum;
      if (s.type === "number" && values?.every((v) => Number.isInteger(v))) s.type = "integer";
    },
  });
  // Generators build one type per kind of change from the discriminator.
  (schemas.Change as Record<string, unknown>).discriminator = {
    propertyName: "op",
    mapping: { upsert: ref("ChangeUpsert").$ref, delete: ref("ChangeDelete").$ref, evict: ref("ChangeEvict").$ref },
  };
  // Each component is a schema of the document's dialect (OpenAPI 3.1's default), not a resource
  // of its own: the references name it by its place in the document.
  for (const schema of Object.values(schemas) as Record<string, unknown>[]) {
    delete schema.$schema;
    delete schema.$id;
  }

  const json = (schema: unknown) => ({ "application/json": { schema } });
  return {
    openapi: "3.1.0",
    info: {
      title: "supasync sync function",
      version: "0.1.0",
      description: "Push queued edits and pull changes since a cursor (protocols " +
        `${PROTOCOLS.join(" and ")}). The wire contract, with what this description cannot say (the order ` +
        "of changes, idempotency, conflicts), is docs/protocol.md. Generated from the function's zod schemas " +
        "by `npm run openapi`; do not edit.",
      license: { name: "MIT", identifier: "MIT" },
    },
    servers: [{
      url: "{supabaseUrl}/functions/v1",
      description: "A Supabase project's Edge Functions.",
      variables: { supabaseUrl: { default: "http://127.0.0.1:54321", description: "The project's URL." } },
    }],
    security: [{ bearerAuth: [] }],
    paths: {
      "/sync/health": {
        get: {
          operationId: "health",
          summary: "Whether the service and its database answer; no token needed.",
          security: [],
          responses: {
            "200": { description: "Serving.", content: json(ref("HealthResponse")) },
            ...errorResponses(ROUTE_ERRORS.health),
          },
        },
      },
      "/sync/push": {
        post: {
          operationId: "push",
          summary: "Apply a batch of queued edits, idempotently, in order.",
          requestBody: {
            required: true,
            content: json({ oneOf: [ref("PushRequestV2"), ref("PushRequestV1")] }),
          },
          responses: {
            "200": { description: "One result per op.", content: json(ref("PushResponse")) },
            ...errorResponses(ROUTE_ERRORS.push),
          },
        },
      },
      "/sync/pull": {
        post: {
          operationId: "pull",
          summary: "The changes since a cursor, a page at a time.",
          requestBody: { required: true, content: json(ref("PullRequest")) },
          responses: {
            "200": { description: "A page of changes.", content: json(ref("PullResponse")) },
            ...errorResponses(ROUTE_ERRORS.pull),
          },
        },
      },
    },
    components: {
      schemas,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "The signed-in user's Supabase access token.",
        },
      },
    },
  };
}

/** The text of docs/openapi.json. */
export function openApiText(): string {
  return JSON.stringify(openApiDocument(), null, 2) + "\n";
}

if (import.meta.main) {
  const text = openApiText();
  if (Deno.args.includes("--check")) {
    const current = await Deno.readTextFile(OPENAPI_PATH).catch(() => "");
    if (current !== text) {
      console.error("docs/openapi.json is stale: run npm run openapi");
      Deno.exit(1);
    }
    console.log("docs/openapi.json is current");
  } else {
    await Deno.writeTextFile(OPENAPI_PATH, text);
    console.log("wrote docs/openapi.json");
  }
}
