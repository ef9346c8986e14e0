// The cache, fallbacks, offline use, the module size, and (last) the network log.

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  WWW, MODEL_REL, MODEL_SHA256, check, sameIds, log, ms, requests, servedBySw, launch, openPage,
  uiLoad, uiSend, ensureLoaded, goldenMessage, goldenIds,
} from '../harness.mjs';

export default [
  {
    name: 'cache: a corrupt cached copy is replaced from the network; sha256 is checked',
    async run({ page, base }) {
      await ensureLoaded(page, 'cpu'); // the model is in the cache (when run alone too)
      const modelUrl = new URL(MODEL_REL, base).href;
      const r = await page.evaluate(
        async ({ modelUrl, sha }) => {
          const { load } = await import(new URL('hearth.js', location.href).href);
          const cache = await caches.open('hearth-models-v1');
          const good = await cache.match(modelUrl);
          const full = Number(good.headers.get('content-length'));
          const head = (await good.arrayBuffer()).slice(0, 1 << 20);
          await cache.put(modelUrl, new Response(head, { headers: { 'content-length': String(full) } }));
          const out = { full };
          const progress = [];
          const e1 = await load(modelUrl, { backend: 'cpu', sha256: sha, onProgress: (p) => progress.push(p.fromCache) });
          out.first = { info: e1.info, sawCache: progress.includes(true), sawNetwork: progress.includes(false) };
          await e1.unload();
          const again = await cache.match(modelUrl);
          out.cachedBytes = again ? (await again.arrayBuffer()).byteLength : 0;
          try {
            await load(modelUrl, { backend: 'cpu', sha256: '0'.repeat(64) });
            out.mismatch = 'no error';
          } catch (e) {
            out.mismatch = e.message;
          }
          out.afterMismatch = !!(await cache.match(modelUrl));
          const ctrl = new AbortController();
          const p = load(modelUrl, { backend: 'cpu', signal: ctrl.signal, onProgress: (x) => x.loaded > 0 && ctrl.abort() });
          try {
            await p;
            out.abort = 'no error';
          } catch (e) {
            out.abort = { name: e.name, message: e.message };
          }
          return out;
        },
        { modelUrl, sha: MODEL_SHA256 },
      );
      log(`corrupt entry -> reloaded from the network (from_cache ${r.first.info.from_cache}, cached ${r.first.info.cached}, ${r.cachedBytes} bytes cached)`);
      check(r.first.sawCache && r.first.sawNetwork && !r.first.info.from_cache && r.first.info.sha256 === MODEL_SHA256, `recovery: ${JSON.stringify(r.first)}`);
      check(r.cachedBytes === r.full, `cache holds ${r.cachedBytes} bytes, expected ${r.full}`);
      log(`wrong sha256 -> ${r.mismatch}`);
      check(r.mismatch === `sha256 mismatch: expected ${'0'.repeat(64)} got ${MODEL_SHA256}`, `mismatch: ${r.mismatch}`);
      check(!r.afterMismatch, 'the mismatching entry stayed in the cache');
      check(r.abort.message === 'aborted', `abort during load: ${JSON.stringify(r.abort)}`);
      log(`abort during load -> ${JSON.stringify(r.abort)}`);
      // Put the model back in the cache through the page (the offline test needs it there).
      const back = await uiLoad(page, MODEL_REL, 'cpu');
      check(back.loaded && back.info.cached, `reload: ${back.error}`);
    },
  },
  {
    name: 'fallback: with only a software WebGPU adapter (SwiftShader), or none, "auto" runs on the CPU and says why',
    async run({ page, base }) {
      const soft = await uiLoad(page, MODEL_REL, 'auto');
      log(`SwiftShader: ${soft.info?.backend}; ${soft.info?.notice}`);
      check(soft.loaded && soft.info.backend === 'cpu' && /software renderer/.test(soft.info.notice || ''), `auto on SwiftShader: ${JSON.stringify(soft.info)} ${soft.error}`);
      const b = await launch({ webgpu: false });
      try {
        await openPage(b.page, base);
        const hasAdapter = await b.page.evaluate(async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())));
        check(!hasAdapter, 'this browser still has a WebGPU adapter');
        const s = await uiLoad(b.page, MODEL_REL, 'auto');
        check(s.loaded, `load failed: ${s.error}`);
        log(`status: ${s.status}`);
        check(s.info.backend === 'cpu' && s.info.notice && /WebGPU/.test(s.info.notice), `backend ${s.info.backend}, notice ${s.info.notice}`);
        check(s.status.includes(s.info.notice), 'the notice is not shown in #status');
        const r = await uiSend(b.page, goldenMessage, { temperature: 0, maxTokens: 4 });
        check(sameIds(r.ids, goldenIds(4)), `ids ${JSON.stringify(r.ids)}`);
      } finally {
        await b.close();
      }
    },
  },
  {
    name: 'offline: with the server stopped, the page and the model come from the caches',
    async run({ page, stopServer }) {
      await ensureLoaded(page, 'cpu'); // the model is in the cache (when run alone too)
      const ready = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.ready;
        const shell = await caches.open('hearth-shell-v3');
        const names = ['index.html', 'app.js', 'hearth.js', 'worker.js', 'thread.js', 'parts.js', 'style.css', 'pkg/hearth.js', 'pkg/hearth_bg.wasm',
          'pkg-mt/hearth.js', 'pkg-mt/hearth_bg.wasm', 'pkg-grammar/hearth_grammar.js', 'pkg-grammar/hearth_grammar_bg.wasm'];
        const missing = [];
        for (const n of names) if (!(await shell.match(new URL(n, reg.scope).href))) missing.push(n);
        const models = (await (await caches.open('hearth-models-v1')).keys()).map((r) => r.url);
        return { active: !!reg.active, missing, models };
      });
      check(ready.active && ready.missing.length === 0, `service worker not ready: ${JSON.stringify(ready)}`);
      check(ready.models.some((u) => u.endsWith(MODEL_REL)), `model not in Cache Storage: ${ready.models}`);
      await stopServer();
      await page.reload({ waitUntil: 'load' });
      await page.waitForFunction(() => window.hearthPage !== undefined);
      const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
      const s = await uiLoad(page, MODEL_REL, 'auto');
      check(s.loaded, `offline load failed: ${s.error}`);
      check(s.info.from_cache, 'the model did not come from Cache Storage');
      const r = await uiSend(page, 'Hello!', { temperature: 0, maxTokens: 4 });
      check(!r.error && r.ids.length > 0, `offline reply: ${r.error}`);
      // The page reports the time from the start of the cached load to the first token.
      const first = await page.evaluate(() => ({ ms: window.hearthPage.firstTokenMs, who: [...document.querySelectorAll('#messages .assistant .who')].pop().textContent, isolated: self.crossOriginIsolated }));
      log(`controlled by the service worker: ${controlled} (cross-origin isolated: ${first.isolated}, threads ${s.info.threads}); model from cache in ${ms(s.info.load_ms)}; reply ${JSON.stringify(r.text)}; "${first.who}"`);
      check(controlled, 'the reloaded page is not controlled by the service worker');
      check(first.ms >= s.info.load_ms && /first token in [\d.]+ s \([\d.]+ s from the start of the cached load\)/.test(first.who), `first-token report: ${JSON.stringify(first)}`);
    },
  },
  {
    name: 'size: the engine module every page loads is at most 1.0 MB gzipped (single- and multi-threaded); the grammar module is separate',
    async run() {
      // Measured as build.sh reports it: GNU gzip -9 (node's zlib comes out ~2.5 % larger).
      for (const f of ['pkg/hearth_bg.wasm', 'pkg-mt/hearth_bg.wasm', 'pkg-grammar/hearth_grammar_bg.wasm']) {
        const bytes = fs.readFileSync(path.join(WWW, f));
        const gz = execFileSync('gzip', ['-9c', path.join(WWW, f)], { maxBuffer: 1 << 26 }).length;
        log(`${f}: ${bytes.length} bytes, ${gz} gzipped`);
        if (!f.startsWith('pkg-grammar')) check(gz <= 1_000_000, `${f} is ${gz} bytes gzipped, over the 1.0 MB budget`);
      }
    },
  },
  {
    name: 'network: every request of the run went to this machine (the test servers on 127.0.0.1, and on localhost where a test needs a second origin)',
    async run({ page }) {
      await ensureLoaded(page, 'cpu'); // a model fetch to observe (when run alone too)
      const urls = [...new Set(requests.map((r) => r.url))];
      const foreign = urls.filter((u) => !/^(data|blob|about|chrome-error):/.test(u) && !/^http:\/\/(127\.0\.0\.1|localhost):\d+\//.test(u));
      const sawModel = urls.some((u) => u.endsWith(MODEL_REL));
      log(`${requests.length} requests, ${urls.length} distinct URLs; the worker's model fetch seen: ${sawModel}`);
      check(sawModel, "the worker's requests were not observed");
      check(foreign.length === 0, `requests elsewhere: ${foreign.join(', ')}`);
      const swModel = [...servedBySw].filter((u) => u.endsWith('.gguf'));
      log(`served by the service worker: ${[...servedBySw].map((u) => new URL(u).pathname).join(' ') || 'nothing seen'}`);
      check(swModel.length === 0, `the service worker answered model requests: ${swModel}`);
    },
  },
];
