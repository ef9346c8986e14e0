// hearth service worker: keeps the app shell available offline. Network first (so a rebuilt
// wasm package is picked up whenever the server is reachable), the cache when it is not.
// It also adds the headers that make the page cross-origin isolated (COOP + COEP), which the
// CPU path's threads need, for static hosts that cannot send them.
// It handles only the shell's own paths: model files are left to the network and to the
// worker's own model cache (Cache Storage 'hearth-models-v1').

const SHELL_CACHE = 'hearth-shell-v3';
const SHELL = [
  'index.html',
  'app.js',
  'style.css',
  'hearth.js',
  'worker.js',
  'hearth-chat.js',
  'thread.js',
  'parts.js',
  'pkg/hearth.js',
  'pkg/hearth_bg.wasm',
  'pkg-mt/hearth.js',
  'pkg-mt/hearth_bg.wasm',
  'pkg-grammar/hearth_grammar.js',
  'pkg-grammar/hearth_grammar_bg.wasm',
];

// Same-origin resources need no CORP header under require-corp; models on other hosts are
// fetched with CORS.
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

function isolated(res) {
  if (res.type === 'opaque' || res.type === 'opaqueredirect' || res.status === 0) return res;
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(ISOLATION)) if (!headers.has(k)) headers.set(k, v);
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

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
        return isolated(res);
      } catch (e) {
        const hit = await cache.match(key);
        if (hit) return isolated(hit);
        throw e;
      }
    })(),
  );
});
