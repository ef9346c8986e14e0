// hearth service worker: keeps the app shell available offline. Network first (so a rebuilt
// wasm package is picked up whenever the server is reachable), the cache when it is not.
// It handles only the shell's own paths: model files are left to the network and to the
// worker's own model cache (Cache Storage 'hearth-models-v1').

const SHELL_CACHE = 'hearth-shell-v1';
const SHELL = [
  'index.html',
  'app.js',
  'style.css',
  'hearth.js',
  'worker.js',
  'hearth-chat.js',
  'pkg/hearth.js',
  'pkg/hearth_bg.wasm',
];

const scope = new URL(self.registration.scope);
const shellUrls = new Set(SHELL.map((p) => new URL(p, scope).href));
const indexUrl = new URL('index.html', scope).href;

// The cache key of a request this worker handles, or null to leave it alone.
function shellKey(request) {
  if (request.method !== 'GET') return null;
  const url = new URL(request.url);
  if (url.origin !== scope.origin) return null;
  url.search = '';
  url.hash = '';
  if (url.href === scope.href) return indexUrl; // the page at the scope's root
  return shellUrls.has(url.href) ? url.href : null;
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // One by one, so that a missing optional file does not stop the install.
      await Promise.all(
        [...shellUrls].map(async (url) => {
          try {
            const res = await fetch(url, { cache: 'no-cache' });
            if (res.ok) await cache.put(url, res);
          } catch {
            /* offline or missing: cached on its next successful fetch */
          }
        }),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('hearth-shell-') && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const key = shellKey(event.request);
  if (!key) return; // not ours: the browser fetches it as usual
  event.respondWith(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      try {
        const res = await fetch(event.request, { cache: 'no-cache' });
        if (res.ok) {
          const copy = res.clone();
          event.waitUntil(cache.put(key, copy).catch(() => {}));
        }
        return res;
      } catch (e) {
        const hit = await cache.match(key);
        if (hit) return hit;
        throw e;
      }
    })(),
  );
});
