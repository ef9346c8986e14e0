// A static server for the chat page: `www/` at `/`, the model folder at `/models/`, on
// 127.0.0.1 only. Used by `./build.sh serve` and by the browser tests (`startServer`).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.ts': 'text/plain; charset=utf-8', '.gguf': 'application/octet-stream', '.txt': 'text/plain; charset=utf-8',
};

/** Starts serving; `routes` maps URL prefixes to folders (longest first). Resolves to {url, close}.
 * `isolate` (default true) sends COOP/COEP, making pages cross-origin isolated: the CPU path's
 * threads need it. `headers` go on every file served (e.g. CORS, to act as a CDN). */
export function startServer({ routes, port = 0, extra = () => false, isolate = true, headers = {} } = {}) {
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = http.createServer((req, res) => {
    if (extra(req, res)) return;
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    const prefix = prefixes.find((p) => pathname.startsWith(p));
    if (!prefix || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end('not found');
      return;
    }
    const root = path.resolve(routes[prefix]);
    let file = path.resolve(root, '.' + pathname.slice(prefix.length - 1));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        try { st = fs.statSync(file); } catch (e) { err = e; }
      }
      if (err || !st.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-cache',
        ...(isolate ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}),
        ...headers,
      });
      if (req.method === 'HEAD') res.end();
      else fs.createReadStream(file).pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      resolve({ url, server, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const port = Number(process.env.PORT || 8080);
  const { url } = await startServer({ routes: { '/': path.join(repo, 'www'), '/models/': path.join(repo, 'models') }, port });
  console.log(`hearth chat page: ${url}  (model at ${url}models/SmolLM2-135M-Instruct.Q4_1.gguf; Ctrl-C stops)`);
}
