// Embedding hearth in other pages: <hearth-chat>, the docs demo, the npm package from another origin.

import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '../../../tools/serve.mjs';
import { fileURLToPath } from 'node:url';
import {
  WWW, MODELS, MODEL_REL, ARTIFACTS, LOAD_TIMEOUT, REPLY_TIMEOUT, GOLDEN_TOKENS, check, sameIds,
  log, requests, launch, goldenMessage, goldenIds, packPackage, checkPackage, importByName,
} from '../harness.mjs';

export default [
  {
    name: 'component: <hearth-chat> loads a model and replies',
    async run({ page }) {
      const r = await page.evaluate(async (model) => {
        await import(new URL('hearth-chat.js', location.href).href);
        const el = document.createElement('hearth-chat');
        el.setAttribute('model', model);
        el.setAttribute('backend', 'cpu');
        el.setAttribute('temperature', '0');
        el.setAttribute('max-tokens', '4');
        const loaded = new Promise((resolve, reject) => {
          el.addEventListener('hearth-loaded', (e) => resolve(e.detail), { once: true });
          el.addEventListener('hearth-error', (e) => reject(new Error(e.detail.message)), { once: true });
        });
        document.body.append(el);
        const info = await loaded;
        const text = await el.send('What is the capital of France?');
        const shown = [...el.shadowRoot.querySelectorAll('.m.assistant')].map((m) => m.textContent);
        el.remove();
        return { backend: info.backend, text, shown };
      }, MODEL_REL);
      log(`<hearth-chat> on ${r.backend}: ${JSON.stringify(r.text)}`);
      check(r.text === 'The capital of France' && r.shown[0] === r.text, JSON.stringify(r));
    },
  },
  {
    name: 'demo: the docs demo page (one script tag) runs its inline <hearth-chat>: it loads and replies; the snippet it shows loads the npm package\'s current version from a CDN; nothing overflows at 1100 or 375 px (screenshots demo.png, demo-375.png)',
    async run({ base }) {
      const b = await launch({ webgpu: false });
      try {
        const p = b.page;
        await p.setViewportSize({ width: 1100, height: 800 });
        await p.goto(base + 'demo.html');
        const scripts = await p.evaluate(() => [...document.scripts].map((s) => s.getAttribute('src') ?? 'inline'));
        check(JSON.stringify(scripts) === '["hearth-chat.js"]', `the demo page's scripts: ${JSON.stringify(scripts)}`);
        const { name, version } = JSON.parse(fs.readFileSync(path.join(WWW, 'package.json'), 'utf8'));
        const tag = `<script type="module" src="https://cdn.jsdelivr.net/npm/${name}@${version}/hearth-chat.js"></script>`;
        const snippet = await p.evaluate(() => document.querySelector('pre')?.textContent ?? '');
        check(snippet.includes(tag), `the demo's snippet does not show ${tag}: ${JSON.stringify(snippet)}`);
        await p.waitForFunction(() => !document.querySelector('hearth-chat').shadowRoot.querySelector('button[type=submit]').disabled, null, { timeout: REPLY_TIMEOUT });
        const text = await p.evaluate(async () => {
          const el = document.querySelector('hearth-chat');
          el.setAttribute('temperature', '0');
          el.setAttribute('max-tokens', '8');
          return el.send('What is the capital of France?');
        });
        log(`the demo's chat replied ${JSON.stringify(text)}`);
        check(/Paris/.test(text), `demo reply ${JSON.stringify(text)}`);
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        const fits = () => p.evaluate(() => {
          const chat = document.querySelector('hearth-chat').getBoundingClientRect();
          const column = document.querySelector('article').getBoundingClientRect();
          return { overflow: document.documentElement.scrollWidth - window.innerWidth, inside: chat.left >= column.left - 0.5 && chat.right <= column.right + 0.5, height: chat.height };
        });
        const desktop = await fits();
        await p.screenshot({ path: path.join(ARTIFACTS, 'demo.png'), fullPage: true });
        await p.setViewportSize({ width: 375, height: 740 });
        const phone = await fits();
        await p.screenshot({ path: path.join(ARTIFACTS, 'demo-375.png'), fullPage: true });
        log(`wrote test-artifacts/demo.png and demo-375.png: ${JSON.stringify({ desktop, phone })}`);
        for (const [w, f] of [['1100', desktop], ['375', phone]]) {
          check(f.overflow <= 0 && f.inside && f.height > 100, `at ${w} px: ${JSON.stringify(f)}`);
        }
      } finally {
        await b.close();
      }
    },
  },
  {
    name: 'cross-origin: the npm package (npm pack of www/, no runtime dependencies, importable by name) served from a CDN origin with CORS: a page on another origin runs <hearth-chat> from it, the model on a third origin, and gets the native greedy ids; on a cross-origin isolated page threads: 2 runs two threads from the CDN; a CDN without CORS for worker.js gives an error naming it; no request goes elsewhere (CPU backend)',
    async run() {
      const pack = packPackage();
      const servers = [];
      let b = null;
      try {
        const manifest = checkPackage(pack);
        const byName = importByName(pack.tmp, pack.dir, manifest.name);
        log(`import from '${manifest.name}' in node: load is a ${byName.load}; ${manifest.name}/hearth-chat.js resolves to ${path.relative(pack.tmp, fileURLToPath(byName.chat))}`);
        check(byName.load === 'function' && byName.default === 'function' && byName.chat.endsWith(`node_modules/${manifest.name}/hearth-chat.js`), JSON.stringify(byName));
        const cors = { 'access-control-allow-origin': '*' };
        // The CDN (origin B) serves the unpacked tarball as jsDelivr does (/npm/<name>@<version>/…),
        // and under /nocors/ the same files with CORS on all but worker.js.
        const cdnPath = `/npm/${manifest.name}@${manifest.version}/`;
        const noCors = (req, res) => {
          const m = /^\/nocors\/([\w./-]+)$/.exec(new URL(req.url, 'http://x').pathname);
          const file = m && path.join(pack.dir, path.normalize(m[1]));
          if (!file || !file.startsWith(pack.dir + path.sep) || !fs.existsSync(file)) return false;
          const type = { '.js': 'text/javascript', '.wasm': 'application/wasm' }[path.extname(file)] || 'application/octet-stream';
          res.writeHead(200, { 'content-type': type, ...(m[1] === 'worker.js' ? {} : cors) }).end(fs.readFileSync(file));
          return true;
        };
        const cdnServer = await startServer({ routes: { [cdnPath]: pack.dir }, extra: noCors, headers: cors, isolate: false });
        // The model host (origin C), as the Hugging Face Hub's CDN: CORS, nothing else.
        const modelServer = await startServer({ routes: { '/models/': MODELS }, headers: cors, isolate: false });
        servers.push(cdnServer, modelServer);
        const local = (s) => s.url.replace('//127.0.0.1:', '//localhost:');
        const cdn = local(cdnServer) + cdnPath.slice(1);
        const model = `${local(modelServer)}${MODEL_REL}`;
        // The site (origin A): a page with the chat box, one script tag from the CDN; and a
        // cross-origin isolated page (COOP + COEP) for the threaded package.
        const chatPage = `<!doctype html><meta charset="utf-8"><title>chat</title>\n<script type="module" src="${cdn}hearth-chat.js"></script>\n<hearth-chat model="${model}" backend="cpu" temperature="0" max-tokens="${GOLDEN_TOKENS}"></hearth-chat>\n`;
        const site = (req, res) => {
          const isolated = req.url === '/isolated.html';
          if (req.url !== '/chat.html' && !isolated) return false;
          const coi = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...coi }).end(isolated ? '<!doctype html><title>isolated</title>' : chatPage);
          return true;
        };
        const siteServer = await startServer({ routes: {}, extra: site, isolate: false });
        servers.push(siteServer);
        const origins = [siteServer.url, local(cdnServer), local(modelServer)].map((u) => new URL(u).origin);
        log(`site ${origins[0]}, CDN ${cdn}, model ${model}`);

        b = await launch({ webgpu: false });
        const p = b.page;
        // This browser's requests (the page's and its workers'), apart from the run's others.
        const seen = [];
        b.context.on('request', (r) => seen.push(r.url()));
        p.on('request', (r) => seen.push(r.url()));
        await p.goto(siteServer.url + 'chat.html');
        await p.waitForFunction(() => {
          const el = document.querySelector('hearth-chat');
          return el?.engine || (el?.shadowRoot && !el.shadowRoot.querySelector('.err').hidden);
        }, null, { timeout: LOAD_TIMEOUT, polling: 200 });
        const error = await p.evaluate(() => document.querySelector('hearth-chat').shadowRoot.querySelector('.err').textContent);
        check(!error, `<hearth-chat> from the CDN: ${error}`);
        // The chat box's own UI: type the message, press Send, wait for the reply.
        await p.evaluate(() => {
          window.reply = new Promise((r) => document.querySelector('hearth-chat').addEventListener('hearth-reply', (e) => r(e.detail), { once: true }));
        });
        await p.fill('hearth-chat textarea', goldenMessage);
        await p.click('hearth-chat button[type=submit]');
        const chat = await p.evaluate(async ({ message, max }) => {
          const el = document.querySelector('hearth-chat');
          const reply = await window.reply;
          const shown = [...el.shadowRoot.querySelectorAll('.m.assistant')].map((m) => m.textContent);
          const out = await el.engine.chat.completions.create({ messages: [{ role: 'user', content: message }], temperature: 0, max_tokens: max });
          return { reply, shown, info: el.engine.info, ids: out.hearth.tokenIds, content: out.choices[0].message.content, isolated: self.crossOriginIsolated };
        }, { message: goldenMessage, max: GOLDEN_TOKENS });
        log(`<hearth-chat> from the CDN on ${chat.info.backend}, ${chat.info.threads} thread(s): ${JSON.stringify(chat.reply.content)}; ids ${JSON.stringify(chat.ids)}`);
        check(chat.info.backend === 'cpu' && chat.info.threads === 1 && !chat.isolated, `not isolated: ${JSON.stringify(chat.info)}`);
        check(chat.info.url === model, `the model came from ${chat.info.url}, not ${model}`);
        check(chat.reply.content === chat.content && chat.shown[0] === chat.content, `the chat box showed ${JSON.stringify(chat.shown)} / ${JSON.stringify(chat.reply.content)}, the API ${JSON.stringify(chat.content)}`);
        check(sameIds(chat.ids, goldenIds(GOLDEN_TOKENS)), `greedy ids ${JSON.stringify(chat.ids)} differ from the native engine's ${JSON.stringify(goldenIds(GOLDEN_TOKENS))}`);

        // Threads: the worker starts its thread workers (thread.js, on the CDN) the same way.
        await p.goto(siteServer.url + 'isolated.html');
        const threaded = await p.evaluate(async ({ cdn, model, message, max }) => {
          const { load } = await import(cdn + 'hearth.js');
          const engine = await load(model, { backend: 'cpu', threads: 2 });
          const out = await engine.chat.completions.create({ messages: [{ role: 'user', content: message }], temperature: 0, max_tokens: max });
          const info = engine.info;
          await engine.unload();
          return { info, ids: out.hearth.tokenIds, isolated: self.crossOriginIsolated };
        }, { cdn, model, message: goldenMessage, max: GOLDEN_TOKENS });
        log(`isolated page, hearth.js from the CDN: ${threaded.info.threads} threads${threaded.info.threads_note ? ` (${threaded.info.threads_note})` : ''}, model from the cache: ${threaded.info.from_cache}; ids ${JSON.stringify(threaded.ids)}`);
        check(threaded.isolated && threaded.info.threads === 2 && !threaded.info.threads_note, `threads: 2 gave ${threaded.info.threads} (${threaded.info.threads_note}), isolated ${threaded.isolated}`);
        check(sameIds(threaded.ids, goldenIds(GOLDEN_TOKENS)), `threaded greedy ids ${JSON.stringify(threaded.ids)} differ from the native engine's`);

        // A CDN that sends no CORS header for worker.js: the error names it and the cause.
        const broken = `${local(cdnServer)}nocors/`;
        const failed = await p.evaluate(async ({ broken, model }) => {
          const { load } = await import(broken + 'hearth.js');
          return load(model, { backend: 'cpu' }).then(() => 'loaded', (e) => e.message);
        }, { broken, model });
        log(`worker.js without CORS: ${failed}`);
        check(failed.includes(`${broken}worker.js`) && failed.includes('Access-Control-Allow-Origin'), `without CORS: ${failed}`);

        // Every request (page and workers) went to the three origins.
        const urls = [...new Set(seen)];
        const elsewhere = urls.filter((u) => !/^(blob|data|about):/.test(u) && !origins.includes(new URL(u).origin));
        const on = (origin) => urls.filter((u) => u.startsWith(origin + '/')).map((u) => new URL(u).pathname.replace(cdnPath, '')).join(' ');
        log(`requests: site ${on(origins[0])}; CDN ${on(origins[1])}; model host ${on(origins[2])}`);
        check(elsewhere.length === 0, `requests to other origins: ${elsewhere.join(', ')}`);
        for (const f of ['hearth-chat.js', 'hearth.js', 'worker.js', 'pkg/hearth.js', 'pkg/hearth_bg.wasm', 'pkg-mt/hearth.js', 'pkg-mt/hearth_bg.wasm', 'thread.js']) {
          check(urls.includes(cdn + f), `no request for ${cdn + f} was seen`);
        }
        check(urls.includes(model), `the model fetch (${model}) was not seen`);
      } finally {
        await b?.close();
        for (const s of servers) await s.close();
        fs.rmSync(pack.tmp, { recursive: true, force: true });
      }
    },
  },
];
