// The app's Service Worker: it keeps the app shell (the page, its script modules, supabase-js and the
// configuration) in a cache, so the app opens without a network, with the edits IndexedDB holds.
// Stale-while-revalidate: the cached copy answers at once and the network's, when there is one,
// replaces it for the next load. Requests outside /app/ (the sync function, Auth) are never cached.
/// <reference lib="webworker" />
const CACHE = "supasync-app-shell-v1";

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // shell.json: every file of the shell, as the server that serves this build lists them.
    const files = await (await fetch("shell.json", { cache: "no-store" })).json();
    await cache.addAll(files);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const scope = new URL(self.registration.scope);
  if (event.request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = url.pathname === scope.pathname ? scope.pathname : event.request;
    const cached = await cache.match(key, { ignoreSearch: true });
    const fresh = fetch(event.request).then(async (res) => {
      if (res.ok) await cache.put(key, res.clone());
      return res;
    });
    if (cached) {
      event.waitUntil(fresh.catch(() => {}));
      return cached;
    }
    return await fresh;
  })());
});
