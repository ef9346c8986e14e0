// Loading models: errors, the Hub, resumed downloads, split files, embeddings, the cache's quota.

import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '../../../tools/serve.mjs';
import {
  WWW, MODELS, MODEL_FILE, MODEL_PATH, MODEL_REL, GOLDEN_TOKENS, EMBEDDINGS, embeddingError, check,
  sameIds, log, truncated, splits, resumeHits, hubHits, requests, launch, uiLoad, uiSend,
  goldenMessage, goldenIds,
} from '../harness.mjs';

export default [
  {
    name: 'load-errors: 404, not GGUF, truncated GGUF, dropped connection, an unreachable host and a host without CORS each show an error naming the URL, then a correct URL loads',
    async run({ page, base }) {
      // The model on another origin that sends no Access-Control-Allow-Origin.
      const noCors = await startServer({ routes: { '/models/': MODELS }, isolate: false });
      const blocked = `${noCors.url.replace('127.0.0.1', 'localhost')}models/${MODEL_FILE}`;
      const cases = [
        ['http://127.0.0.1:9/model.gguf', /network error: could not fetch http:\/\/127\.0\.0\.1:9\/model\.gguf \(.*server unreachable, or blocked by CORS\)/],
        [blocked, new RegExp(`network error: could not fetch ${blocked.replace(/[.?]/g, '\\$&')} \\(.*blocked by CORS\\)`)],
        ['models/no-such-model.gguf', /HTTP 404 Not Found for http:\/\/127\.0\.0\.1:\d+\/models\/no-such-model\.gguf/],
        ['test/not-a-model.gguf', /not a GGUF file/],
        ['test/truncated.gguf', /past the end of the file|truncated|never arrived/i],
        ['test/dropped.gguf', /network error while downloading .*dropped\.gguf after \d+ bytes/],
      ];
      for (const [url, re] of cases) {
        const s = await uiLoad(page, url, 'auto');
        log(`${url} -> ${JSON.stringify(s.error)}`);
        check(!s.loaded, `${url} loaded`);
        check(re.test(s.error), `${url}: error ${JSON.stringify(s.error)} does not match ${re}`);
        check(await page.isEnabled('#load'), 'the Load button stays usable');
      }
      await noCors.close();
      const cached = await page.evaluate(async () => (await (await caches.open('hearth-models-v1')).keys()).map((r) => r.url));
      check(!cached.some((u) => u.includes('/test/') || u.includes('no-such')), `a failed load was cached: ${cached}`);
      const ok = await uiLoad(page, MODEL_REL, 'cpu');
      check(ok.loaded && !ok.error, `correct URL after errors: ${ok.error}`);
      log(`then ${MODEL_REL} loaded (${ok.info.backend}), #error cleared`);
      const r = await uiSend(page, 'Hi!', { temperature: 0, maxTokens: 3 });
      check(!r.error && r.ids.length > 0, `reply after errors: ${r.error}`);
      void base;
    },
  },
  {
    name: 'hub: hf:owner/repo/file.gguf and a Hub page URL load through the Hub\'s redirect to its CDN; the model is cached under the download URL, not the CDN\'s signed one, and the page URL then loads from the cache; a malformed hf: URL is a TypeError (CPU backend)',
    async run({ page }) {
      const repo = `tiny-${Date.now().toString(36)}`;
      const before = { ...hubHits };
      const r = await page.evaluate(async ({ repo, message, max }) => {
        const { load, resolveModelUrl } = await import('/hearth.js');
        const hubEndpoint = location.origin + '/hub';
        const bad = await load('hf:owner-only/model.gguf', { hubEndpoint }).then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
        const first = await load(`hf:example/${repo}/model.gguf`, { backend: 'cpu', hubEndpoint });
        const out = await first.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        const info = first.info;
        await first.unload();
        const keys = (await (await caches.open('hearth-models-v1')).keys()).map((k) => k.url);
        const page = `${hubEndpoint}/example/${repo}/blob/main/model.gguf`;
        const again = await load(page, { backend: 'cpu', hubEndpoint });
        const info2 = again.info;
        await again.unload();
        return { bad, ids: out.hearth.tokenIds, url: info.url, fromCache: info.from_cache, keys, url2: info2.url, fromCache2: info2.from_cache, resolved: resolveModelUrl(page, { hubEndpoint }) };
      }, { repo, message: goldenMessage, max: GOLDEN_TOKENS });
      const canonical = `${new URL(page.url()).origin}/hub/example/${repo}/resolve/main/model.gguf`;
      log(`loaded ${r.url} (cached: ${JSON.stringify(r.keys.filter((k) => k.includes('/hub')))}); then ${r.url2} from the cache: ${r.fromCache2}; hub requests ${hubHits.resolve - before.resolve}, CDN ${hubHits.cdn - before.cdn}`);
      check(/^TypeError: a Hub model is hf:owner\/repo\/file\.gguf/.test(r.bad), `malformed hf: URL gave ${r.bad}`);
      check(r.url === canonical && !r.fromCache, `hf: loaded ${r.url} (from cache ${r.fromCache}), not ${canonical}`);
      check(r.keys.includes(canonical) && !r.keys.some((k) => k.includes('hub-cdn')), `cache keys ${JSON.stringify(r.keys)}`);
      check(r.resolved === canonical && r.url2 === canonical && r.fromCache2, `the page URL resolved to ${r.resolved}, loaded ${r.url2} (from cache ${r.fromCache2})`);
      check(hubHits.resolve - before.resolve === 1 && hubHits.cdn - before.cdn === 1, `the Hub saw ${hubHits.resolve - before.resolve} resolve and ${hubHits.cdn - before.cdn} CDN requests, not 1 and 1`);
      check(sameIds(r.ids, goldenIds(GOLDEN_TOKENS)), `greedy ids ${JSON.stringify(r.ids)} differ from the native engine's`);
    },
  },
  {
    name: 'resume: a download dropped twice continues with Range requests (If-Range on its ETag) and its progress never goes back; a server without range support starts over once; a Range answer for a different file is a clear error (CPU backend)',
    async run({ page }) {
      const tag = Date.now().toString(36);
      for (const k of Object.keys(resumeHits)) delete resumeHits[k];
      const r = await page.evaluate(async ({ tag, message, max }) => {
        const { load } = await import('/hearth.js');
        const progress = [];
        const engine = await load(`/test/resume-${tag}.gguf`, { backend: 'cpu', onProgress: (p) => progress.push(p.loaded) });
        const out = await engine.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        const info = engine.info;
        await engine.unload();
        const restarted = await load(`/test/norange-${tag}.gguf`, { backend: 'cpu' });
        const info2 = restarted.info;
        await restarted.unload();
        const changed = await load(`/test/changed-${tag}.gguf`, { backend: 'cpu' }).then(() => 'loaded', (e) => e.message);
        return { progress, ids: out.hearth.tokenIds, resumes: info.download_resumes, bytes: info.bytes, cached: info.cached, resumes2: info2.download_resumes, changed };
      }, { tag, message: goldenMessage, max: GOLDEN_TOKENS });
      const size = fs.statSync(MODEL_PATH).size;
      log(`resumed ${r.resumes} times, ${r.bytes} bytes, cached ${r.cached}; requests ${JSON.stringify(resumeHits)}; a changed file: ${r.changed}`);
      check(r.resumes === 2 && r.bytes === size && r.cached, `resume: ${r.resumes} resumes, ${r.bytes} bytes, cached ${r.cached}`);
      check(resumeHits.resume.full === 1 && resumeHits.resume.range === 2, `resume requests ${JSON.stringify(resumeHits.resume)}`);
      check(r.progress.every((v, i) => i === 0 || v >= r.progress[i - 1]) && r.progress.at(-1) === size, `progress went back or stopped short: ${JSON.stringify(r.progress.slice(-5))}`);
      check(sameIds(r.ids, goldenIds(GOLDEN_TOKENS)), `greedy ids ${JSON.stringify(r.ids)} differ from the native engine's`);
      check(r.resumes2 === 0 && resumeHits.norange.full === 3, `no range support: ${JSON.stringify(resumeHits.norange)} requests, ${r.resumes2} resumes`);
      check(/changed-\w+\.gguf at byte \d+ does not match the download: the file is now \d+ bytes/.test(r.changed), `a changed file gave ${r.changed}`);
    },
  },
  {
    name: 'split: a model split by gguf-split loads from its first part\'s URL (parts in order into one engine, progress over all of them) with the native greedy ids, is cached part by part and reloads from the cache; deleteCachedModel removes every part; a missing part and a part of another set are clear errors naming the part (CPU backend)',
    async run({ page }) {
      const tag = Date.now().toString(36);
      const r = await page.evaluate(async ({ tag, message, max }) => {
        const { load, deleteCachedModel, listCachedModels } = await import('/hearth.js');
        const first = `/test/split-${tag}/smol-00001-of-00003.gguf`;
        const progress = [];
        const engine = await load(first, { backend: 'cpu', onProgress: (p) => progress.push([p.loaded, p.total]) });
        const out = await engine.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        const info = engine.info;
        await engine.unload();
        const keys = (await listCachedModels()).map((m) => m.url).filter((u) => u.includes(`/split-${tag}/`));
        const again = await load(first, { backend: 'cpu', sha256: info.sha256 });
        const info2 = again.info;
        const out2 = await again.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        await again.unload();
        const deleted = await deleteCachedModel(first);
        const left = (await listCachedModels()).filter((m) => m.url.includes(`/split-${tag}/`)).length;
        const fail = (url, opts = {}) => load(url, { backend: 'cpu', ...opts }).then(() => 'loaded', (e) => `${e.code}: ${e.message}`);
        const oneSha = await fail(first, { sha256: info.sha256[0] });
        const missing = await fail(`/test/split-missing-${tag}/smol-00001-of-00003.gguf`);
        const foreign = await fail(`/test/split-foreign-${tag}/smol-00001-of-00003.gguf`);
        return { ids: out.hearth.tokenIds, ids2: out2.hearth.tokenIds, info, info2, progress, keys, deleted, left, oneSha, missing, foreign };
      }, { tag, message: goldenMessage, max: GOLDEN_TOKENS });
      const total = splits.three.reduce((n, p) => n + p.length, 0);
      log(`3 parts, ${r.info.bytes} bytes; cached ${r.keys.length} parts; reloaded from the cache: ${r.info2.from_cache}; deleted ${r.deleted}, ${r.left} left`);
      log(`missing part: ${r.missing}`);
      log(`part of another set: ${r.foreign}`);
      check(r.info.parts === 3 && r.info.bytes === total && Array.isArray(r.info.sha256) && r.info.sha256.length === 3 && r.info.cached, `info ${JSON.stringify(r.info)}`);
      check(r.progress.every(([l, t], i) => t === total && (i === 0 || l >= r.progress[i - 1][0])) && r.progress.at(-1)[0] === total, `progress ${JSON.stringify(r.progress.slice(-3))} (total ${total})`);
      check(sameIds(r.ids, goldenIds(GOLDEN_TOKENS)) && sameIds(r.ids2, r.ids), `greedy ids ${JSON.stringify(r.ids)} / from the cache ${JSON.stringify(r.ids2)} differ from the native engine's`);
      check(r.keys.length === 3 && r.info2.from_cache && r.info2.parts === 3, `cached parts ${JSON.stringify(r.keys)}, reload from cache ${r.info2.from_cache}`);
      check(r.deleted && r.left === 0, `deleteCachedModel: ${r.deleted}, ${r.left} parts left`);
      check(/^invalid_request: .*sha256: this model is split into 3 files; give an array of 3 hashes/.test(r.oneSha), `one sha256 for 3 parts gave ${r.oneSha}`);
      check(/^model_load_failed: HTTP 404 Not Found for part 3 of 3 \(http:\/\/[^)]+\/split-missing-\w+\/smol-00003-of-00003\.gguf\)$/.test(r.missing), `a missing part gave ${r.missing}`);
      check(/^model_load_failed: part 2 of 3 \(http:\/\/[^)]+\/split-foreign-\w+\/smol-00002-of-00003\.gguf\): .*part 2 of 3 belongs to another set: it is one of 4 parts/.test(r.foreign), `a part of another set gave ${r.foreign}`);
    },
  },
  {
    name: 'embeddings: engine.embeddings.create gives OpenAI-shaped unit vectors equal to the float64 reference (mean-pooled final normed states), base64 too; bad requests are TypeErrors (invalid_request); a signal aborts with an AbortError; the engine then replies with the native greedy ids (CPU backend)',
    async run({ page }) {
      const r = await page.evaluate(async ({ texts, message, max }) => {
        const { load } = await import('/hearth.js');
        const engine = await load('/models/SmolLM2-135M-Instruct.Q4_1.gguf', { backend: 'cpu' });
        const out = await engine.embeddings.create({ input: texts, model: 'ignored' });
        const one = await engine.embeddings.create({ input: texts[3], encoding_format: 'base64' });
        const bytes = Uint8Array.from(atob(one.data[0].embedding), (c) => c.charCodeAt(0));
        const decoded = Array.from(new Float32Array(bytes.buffer));
        const fail = (req, opts) => engine.embeddings.create(req, opts).then(() => 'resolved', (e) => `${e.name} ${e.code}: ${e.message}`);
        const bad = {
          empty: await fail({ input: [] }),
          blank: await fail({ input: '' }),
          ids: await fail({ input: [[1, 2, 49152]] }),
          mixed: await fail({ input: [1, 'two'] }),
          dims: await fail({ input: 'x', dimensions: 64 }),
          field: await fail({ input: 'x', truncate: true }),
          format: await fail({ input: 'x', encoding_format: 'int8' }),
        };
        const ctrl = new AbortController();
        const pending = fail({ input: Array(50).fill(texts[2]) }, { signal: ctrl.signal });
        setTimeout(() => ctrl.abort(), 50);
        const aborted = await pending;
        const chat = await engine.chat.completions.create({ messages: [{ role: 'user', content: message }], max_tokens: max, temperature: 0 });
        const info = engine.info;
        await engine.unload();
        return { out, decoded, bad, aborted, ids: chat.hearth.tokenIds, info: { embedding_length: info.embedding_length, pooling: info.pooling } };
      }, { texts: EMBEDDINGS.cases.map((c) => c.text), message: goldenMessage, max: GOLDEN_TOKENS });
      const errs = r.out.data.map((d, i) => embeddingError(d.embedding, EMBEDDINGS.cases[i].embedding));
      const tokens = EMBEDDINGS.cases.reduce((n, c) => n + c.ids.length, 0);
      log(`embeddings (wasm CPU): cosine ≥ ${Math.min(...errs.map((e) => e.cosine)).toFixed(7)}, max abs ≤ ${Math.max(...errs.map((e) => e.maxAbs)).toExponential(2)}; usage ${JSON.stringify(r.out.usage)}; aborted: ${r.aborted}`);
      for (const [k, v] of Object.entries(r.bad)) log(`${k}: ${v}`);
      check(r.out.object === 'list' && r.out.data.every((d, i) => d.object === 'embedding' && d.index === i && d.embedding.length === 576), `response shape ${JSON.stringify(r.out).slice(0, 200)}`);
      check(r.out.usage.prompt_tokens === tokens && r.out.usage.total_tokens === tokens, `usage ${JSON.stringify(r.out.usage)}, the reference's ids are ${tokens} tokens`);
      check(r.info.embedding_length === 576 && r.info.pooling === 'mean', `info ${JSON.stringify(r.info)}`);
      check(errs.every((e) => e.cosine >= 0.99998 && e.maxAbs <= 0.002), `wasm embeddings vs float64: ${JSON.stringify(errs)}`);
      check(r.decoded.length === 576 && r.decoded.every((x, i) => x === r.out.data[3].embedding[i]), 'base64 does not decode to the float embedding');
      check(Object.values(r.bad).every((v) => /^TypeError invalid_request: /.test(v)), `bad requests: ${JSON.stringify(r.bad)}`);
      check(/^AbortError aborted/.test(r.aborted), `abort gave ${r.aborted}`);
      check(sameIds(r.ids, goldenIds(GOLDEN_TOKENS)), `greedy ids after embeddings ${JSON.stringify(r.ids)} differ from the native engine's`);
    },
  },
  {
    name: 'storage: listCachedModels and deleteCachedModel manage the model cache; under a storage quota too small for it (navigator.storage.estimate stubbed in the worker) a model is refused before its download, naming the sizes, and cache: false loads it uncached (CPU backend)',
    async run({ page }) {
      const origin = new URL(page.url()).origin;
      const model = `/${MODEL_REL}`;
      const url = origin + model;
      const r = await page.evaluate(async (model) => {
        const { load, listCachedModels, deleteCachedModel } = await import('/hearth.js');
        const engine = await load(model, { backend: 'cpu' });
        const info = engine.info;
        const list = await engine.listCachedModels();
        await engine.unload();
        const deleted = await deleteCachedModel(model);
        const again = await deleteCachedModel(model);
        const after = (await listCachedModels()).map((m) => m.url);
        const bad = await load(model, { cache: 'yes' }).then(() => 'loaded', (e) => `${e.name}: ${e.message}`);
        await (await load(model, { backend: 'cpu' })).unload(); // cached again, for the tests after this one
        return { cached: info.cached, list, deleted, again, after, bad };
      }, model);
      const listed = r.list.find((m) => m.url === url);
      log(`cached models: ${JSON.stringify(r.list.map((m) => [m.url.slice(origin.length), m.bytes]))}`);
      check(r.cached && listed && listed.bytes === fs.statSync(MODEL_PATH).size, `${url} is not listed with its size: ${JSON.stringify(r.list)}`);
      check(r.deleted && !r.again && !r.after.includes(url), `delete: ${r.deleted}, again ${r.again}, then listed ${JSON.stringify(r.after)}`);
      check(/^TypeError: cache must be true or false/.test(r.bad), `cache: 'yes' gave ${r.bad}`);
      // A worker whose origin has 20 MB of quota, 5 MB of it used.
      const stub = 'Object.defineProperty(navigator.storage, "estimate", { value: async () => ({ usage: 5e6, quota: 20e6 }) });\n';
      const small = (req, res) => {
        if (new URL(req.url, 'http://x').pathname !== '/worker.js') return false;
        const body = stub + fs.readFileSync(path.join(WWW, 'worker.js'), 'utf8');
        res.writeHead(200, { 'content-type': 'text/javascript', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }).end(body);
        return true;
      };
      const server = await startServer({ routes: { '/': WWW, '/models/': MODELS }, extra: small });
      const b = await launch({ webgpu: false });
      try {
        await b.page.goto(server.url);
        const q = await b.page.evaluate(async (model) => {
          const { load, listCachedModels } = await import('/hearth.js');
          const refused = await load(model, { backend: 'cpu' }).then(() => 'loaded', (e) => e.message);
          const engine = await load(model, { backend: 'cpu', cache: false });
          const info = engine.info;
          await engine.unload();
          return { refused, cached: info.cached, list: await listCachedModels() };
        }, model);
        log(`under a 20 MB quota: ${q.refused}`);
        check(/SmolLM2-135M-Instruct\.Q4_1\.gguf \(98\.4 MB\) does not fit in this site's storage: 5\.0 MB of 20\.0 MB are used, 15\.0 MB free/.test(q.refused), `too little quota gave ${q.refused}`);
        check(!q.cached && q.list.length === 0, `cache: false stored the model (cached ${q.cached}, listed ${JSON.stringify(q.list)})`);
      } finally {
        await b.close();
        await server.close();
      }
    },
  },
];
