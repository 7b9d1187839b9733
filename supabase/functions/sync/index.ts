Deno.serve({ port: Number(Deno.env.get("SYNC_FUNCTION_PORT") ?? 8000) }, () => new Response("{}"));
