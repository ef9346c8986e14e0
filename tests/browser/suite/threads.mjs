// The CPU path: greedy ids, threads where the page is isolated, the service worker's isolation.

import path from 'node:path';
import { startServer } from '../../../tools/serve.mjs';
import {
  WWW, MODELS, MODEL_REL, GOLDEN_TOKENS, check, sameIds, log, launch, state, uiLoad, uiSend,
  golden, goldenMessage, goldenIds, greedyGolden,
} from '../harness.mjs';

export default [
  {
    name: 'cpu-golden: CPU backend, greedy chat equals the native ids',
    async run({ page }) {
      await greedyGolden(page, 'cpu');
    },
  },
  {
    name: 'threads: where the page is not cross-origin isolated the CPU path runs the single-threaded package and says why; where it is, threads: 2 runs two; both give the native greedy ids; a bad thread count is a TypeError',
    async run() {
      const want = goldenIds(GOLDEN_TOKENS);
      const blank = (isolate) => (req, res) => {
        if (req.url !== '/blank.html') return false;
        const coi = isolate ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
        res.writeHead(200, { 'content-type': 'text/html', ...coi }).end('<!doctype html><title>blank</title>');
        return true;
      };
      const run = (page, threads) => page.evaluate(async ({ model, threads, message, max }) => {
        const { load } = await import('/hearth.js');
        const bad = await load(model, { backend: 'cpu', threads: -1 }).then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
        const engine = await load(model, { backend: 'cpu', threads });
        const out = await engine.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        const info = engine.info;
        await engine.unload();
        return { info, ids: out.hearth.tokenIds, isolated: self.crossOriginIsolated, bad };
      }, { model: `/${MODEL_REL}`, threads, message: goldenMessage, max: GOLDEN_TOKENS });
      for (const isolate of [false, true]) {
        const server = await startServer({ routes: { '/': WWW, '/models/': MODELS }, extra: blank(isolate), isolate });
        const b = await launch({ webgpu: false });
        try {
          await b.page.goto(server.url + 'blank.html');
          const r = await run(b.page, isolate ? 2 : 0);
          log(`isolated ${r.isolated}: ${r.info.threads} thread(s)${r.info.threads_note ? ` (${r.info.threads_note})` : ''}; ids ${JSON.stringify(r.ids)}`);
          check(r.isolated === isolate, `crossOriginIsolated ${r.isolated}`);
          check(/TypeError: threads must be an integer/.test(r.bad), `threads: -1 gave ${r.bad}`);
          if (isolate) check(r.info.threads === 2 && !r.info.threads_note, `threads: 2 gave ${r.info.threads} (${r.info.threads_note})`);
          else check(r.info.threads === 1 && /cross-origin isolated/.test(r.info.threads_note || ''), `not isolated: ${r.info.threads} threads, note ${r.info.threads_note}`);
          check(sameIds(r.ids, want), `greedy ids ${JSON.stringify(r.ids)} differ from the native engine's ${JSON.stringify(want)}`);
        } finally {
          await b.close();
          await server.close();
        }
      }
    },
  },
  {
    name: 'coi-sw: on a host that sends no COOP/COEP headers the service worker supplies them: the page reloads once, is cross-origin isolated, and the CPU path runs one thread per core with the native greedy ids',
    async run() {
      const server = await startServer({ routes: { '/': WWW, '/models/': MODELS }, isolate: false });
      const b = await launch({ webgpu: false });
      try {
        await b.page.goto(server.url, { waitUntil: 'load' });
        // The page reloads itself once the service worker controls it; poll across that reload.
        const deadline = Date.now() + 60_000;
        let state = null;
        while (Date.now() < deadline) {
          state = await b.page
            .evaluate(() => ({ isolated: self.crossOriginIsolated, controlled: !!navigator.serviceWorker.controller, ready: window.hearthPage !== undefined }))
            .catch(() => null);
          if (state?.isolated && state.ready) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        check(state?.isolated && state.controlled, `not cross-origin isolated through the service worker: ${JSON.stringify(state)}`);
        const s = await uiLoad(b.page, MODEL_REL, 'cpu');
        check(s.loaded, `load failed: ${s.error}`);
        const cores = await b.page.evaluate(() => navigator.hardwareConcurrency);
        const r = await uiSend(b.page, goldenMessage, { temperature: 0, maxTokens: GOLDEN_TOKENS });
        log(`isolated by the service worker; ${s.info.threads} CPU threads on ${cores} cores; ids ${JSON.stringify(r.ids)}`);
        check(s.info.threads === Math.min(cores, 8), `info.threads ${s.info.threads} (${s.info.threads_note || 'no note'})`);
        check(sameIds(r.ids, goldenIds(GOLDEN_TOKENS)), `greedy ids ${JSON.stringify(r.ids)} differ from the native engine's`);
      } finally {
        await b.close();
        await server.close();
      }
    },
  },
];
