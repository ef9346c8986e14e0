// The browser tests' shared parts: paths and fixtures, the checks, the static server with its
// test routes, the browser, and helpers that drive the chat page and the native CLI.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { startServer } from '../../tools/serve.mjs';

// Service worker requests show up in context 'request' events only with this set.
process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = '1';
const { chromium } = await import('playwright-core');

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WWW = process.env.HEARTH_WWW ? path.resolve(process.env.HEARTH_WWW) : path.join(REPO, 'www');
export const MODELS = path.join(REPO, 'models');
export const MODEL_FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf';
export const MODEL_PATH = path.join(MODELS, MODEL_FILE);
export const MODEL_REL = `models/${MODEL_FILE}`;
export const FAMILIES = path.join(REPO, 'tests/fixtures/families');
// The families' synthetic models the engine runs, as fixture stems (see tests/families.rs).
export const FAMILY_STEMS = ['gpt2', 'gptneox', 'bloom', 'phi2', 'falcon', 'stablelm', 'starcoder2', 'phi3', 'glm4', 'chatglm'];
export const MODEL_SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53';
export const ARTIFACTS = path.join(REPO, 'test-artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const MIB = 1024 * 1024;
export const HEAP_LIMIT = 64 * MIB;
export const LOAD_TIMEOUT = 10 * 60_000;
export const REPLY_TIMEOUT = 10 * 60_000;
export const GOLDEN_TOKENS = 16;

export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan'];
export const BASE_ARGS = [
  '--headless',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

export function readGolden() {
  for (const rel of ['golden/chat_greedy.json', 'golden/smollm2-135m-instruct-q4_1/chat_greedy.json']) {
    const p = path.resolve(REPO, '..', 'shared', rel);
    if (fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8'));
  }
  throw new Error('chat_greedy.json not found under ../shared/golden');
}

// The float64 reference embeddings (tools/golden_embed.py) and how far a vector is from one.
export const EMBEDDINGS = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/embeddings/smollm2-135m-instruct-q4_1.json'), 'utf8'));
export function embeddingError(got, want) {
  const cosine = got.reduce((sum, x, i) => sum + x * want[i], 0) / Math.hypot(...got);
  const maxAbs = got.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i])), 0);
  return { cosine, maxAbs };
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

export function sameIds(got, want) {
  return got.length === want.length && got.every((x, i) => x === want[i]);
}

export const log = (...a) => console.log('   ', ...a);
export const ms = (x) => `${Math.round(x)} ms`;

// --- the static server -----------------------------------------------------------------------

export const NOT_GGUF = Buffer.from('<!doctype html><title>Not a model</title><p>This is a web page, not a GGUF file.</p>\n'.repeat(200));
export let truncated = null; // first 10 MB of the model, read on first use

// Where the parts of a GGUF file lie: each metadata pair's and tensor info's byte range, each
// tensor's name and data offset, and where the data section starts (alignment 32).
export function ggufLayout(b) {
  check(b.toString('latin1', 0, 4) === 'GGUF', 'not a GGUF file');
  let at = 8;
  const u64 = () => {
    const v = Number(b.readBigUInt64LE(at));
    at += 8;
    return v;
  };
  const u32 = () => {
    const v = b.readUInt32LE(at);
    at += 4;
    return v;
  };
  const skipValue = (type) => {
    const sizes = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    if (type === 8) {
      const len = u64(); // (read before `at` is: `at += u64()` would lose the 8 bytes)
      at += len;
    }
    else if (type === 9) {
      const elem = u32();
      const n = u64();
      for (let i = 0; i < n; i++) skipValue(elem);
    } else at += sizes[type];
  };
  const nTensors = u64();
  const nKv = u64();
  const kvs = [];
  for (let i = 0; i < nKv; i++) {
    const start = at;
    const key = b.toString('utf8', at + 8, at + 8 + Number(b.readBigUInt64LE(at)));
    at += 8 + Buffer.byteLength(key);
    skipValue(u32());
    check(key !== 'general.alignment', 'a file with its own alignment');
    kvs.push({ key, start, end: at });
  }
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const start = at;
    const name = b.toString('utf8', at + 8, at + 8 + Number(b.readBigUInt64LE(at)));
    at += 8 + Buffer.byteLength(name);
    const nDims = u32();
    at += 8 * nDims + 4; // dims, type
    const offsetAt = at;
    tensors.push({ name, start, offsetAt, end: at + 8, offset: u64() });
  }
  const align = (n) => Math.ceil(n / 32) * 32;
  return { kvs, tensors, headerEnd: at, dataStart: align(at), align };
}

// The default model with its chat template replaced (a GGUF rewritten: the header re-laid, the
// data section copied behind it at the file's alignment).
export function withChatTemplate(file, template) {
  const b = fs.readFileSync(file);
  const { kvs, headerEnd, dataStart, align } = ggufLayout(b);
  const old = kvs.find((kv) => kv.key === 'tokenizer.chat_template');
  check(old, `${file} has no chat template`);
  const key = Buffer.from('tokenizer.chat_template');
  const value = Buffer.from(template);
  const kv = Buffer.alloc(8 + key.length + 4 + 8 + value.length);
  kv.writeBigUInt64LE(BigInt(key.length), 0);
  key.copy(kv, 8);
  kv.writeUInt32LE(8, 8 + key.length);
  kv.writeBigUInt64LE(BigInt(value.length), 12 + key.length);
  value.copy(kv, 20 + key.length);
  const header = Buffer.concat([b.subarray(0, old.start), kv, b.subarray(old.end, headerEnd)]);
  return Buffer.concat([header, Buffer.alloc(align(header.length) - header.length), b.subarray(dataStart)]);
}

// The file split as llama.cpp's gguf-split writes it: parts of at most `maxTensors` tensors in
// file order, each a GGUF file with split.no (u16, from 0), split.count (u16) and
// split.tensors.count (i32); the first keeps every other key, the rest carry only these.
export function splitGguf(b, maxTensors) {
  const { kvs, tensors, dataStart, align } = ggufLayout(b);
  const n = Math.ceil(tensors.length / maxTensors);
  const num = (bytes, write, v) => {
    const x = Buffer.alloc(bytes);
    x[write](v);
    return x;
  };
  const kv = (key, type, value) => Buffer.concat([num(8, 'writeBigUInt64LE', BigInt(key.length)), Buffer.from(key), num(4, 'writeUInt32LE', type), value]);
  const parts = [];
  for (let p = 0; p < n; p++) {
    const group = tensors.slice(p * maxTensors, (p + 1) * maxTensors);
    const pairs = [
      ...(p === 0 ? kvs.map((k) => b.subarray(k.start, k.end)) : []),
      kv('split.no', 2, num(2, 'writeUInt16LE', p)),
      kv('split.count', 2, num(2, 'writeUInt16LE', n)),
      kv('split.tensors.count', 5, num(4, 'writeInt32LE', tensors.length)),
    ];
    const infos = [];
    const datas = [];
    let offset = 0;
    for (const t of group) {
      const i = tensors.indexOf(t);
      // A tensor's bytes run to the next one's (its padding included), the last to the end.
      const end = i + 1 < tensors.length ? dataStart + tensors[i + 1].offset : b.length;
      const data = b.subarray(dataStart + t.offset, end);
      const info = Buffer.from(b.subarray(t.start, t.end));
      info.writeBigUInt64LE(BigInt(offset), t.offsetAt - t.start);
      infos.push(info);
      datas.push(data, Buffer.alloc(align(data.length) - data.length));
      offset += align(data.length);
    }
    const head = Buffer.concat([Buffer.from('GGUF'), num(4, 'writeUInt32LE', 3), num(8, 'writeBigUInt64LE', BigInt(group.length)), num(8, 'writeBigUInt64LE', BigInt(pairs.length)), ...pairs, ...infos]);
    parts.push(Buffer.concat([head, Buffer.alloc(align(head.length) - head.length), ...datas]));
  }
  return parts;
}
export let splits = null; // the default model in 3 parts, and in 4 (for a part of another set)

// ChatML with today's date in the system turn, as Llama 3.1's template writes it.
export const DATED_TEMPLATE = "{{ '<|im_start|>system\\nToday is ' + strftime_now('%d %b %Y') + '.<|im_end|>\\n' }}{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
export let dated = null; // the default model with DATED_TEMPLATE, made on first use

// Downloads that drop mid-file: requests seen per route ('full' GETs and 'range' GETs).
export const resumeHits = {};

// Serves the default model for the resume routes: `mode` 'resume' honours Range (with If-Range
// on its ETag) and drops the full GET at 40 % and the first ranged one at 70 %; 'norange' drops
// its first GET and ignores Range afterwards; 'changed' drops its first GET and answers the
// Range request for a file one byte longer.
export function resumeRoute(mode, req, res) {
  const hits = (resumeHits[mode] ??= { full: 0, range: 0 });
  const size = fs.statSync(MODEL_PATH).size;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range || '');
  const ranged = m && mode !== 'norange' && (req.headers['if-range'] ?? '"v1"') === '"v1"';
  hits[ranged ? 'range' : 'full']++;
  const start = ranged ? Number(m[1]) : 0;
  const head = { 'content-type': 'application/octet-stream', etag: '"v1"', 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
  if (ranged) {
    const total = mode === 'changed' ? size + 1 : size;
    res.writeHead(206, { ...head, 'content-length': size - start, 'content-range': `bytes ${start}-${total - 1}/${total}` });
  } else {
    res.writeHead(200, { ...head, 'content-length': size });
  }
  // Where this response stops short: the first GET always; in 'resume' also a range before 70 %.
  const first = hits.full + hits.range === 1;
  const second = Math.floor(size * 0.7);
  const cut = first ? Math.floor(size * (mode === 'resume' ? 0.4 : 0.3)) : mode === 'resume' && hits.range === 1 && start < second ? second : size;
  const stream = fs.createReadStream(MODEL_PATH, { start, end: cut - 1 });
  stream.pipe(res, { end: cut === size });
  if (cut < size) stream.on('end', () => setTimeout(() => res.destroy(), 100));
}

// Requests the imitation Hugging Face Hub saw: its resolve URLs and its CDN.
export const hubHits = { resolve: 0, cdn: 0 };

export function testRoutes(req, res) {
  const { pathname } = new URL(req.url, 'http://x');
  // The Hub: /hub/owner/repo/resolve/revision/file answers 302 to its CDN with a signed query,
  // as huggingface.co does, plus the headers it sends there.
  const hub = /^\/hub\/[\w.-]+\/[\w.-]+\/resolve\/main\/model\.gguf$/.exec(pathname);
  if (hub) {
    hubHits.resolve++;
    const size = fs.statSync(MODEL_PATH).size;
    res.writeHead(302, {
      location: `/hub-cdn/repos/7a/1f/7a1f${'0'.repeat(60)}?response-content-disposition=attachment&X-Amz-Expires=3600&X-Amz-Signature=${Math.random().toString(16).slice(2)}`,
      'x-repo-commit': 'c'.repeat(40),
      'x-linked-size': String(size),
      'x-linked-etag': `"${'7a1f' + '0'.repeat(60)}"`,
      etag: '"hub-etag"',
      'cache-control': 'no-store',
      'content-length': '0',
    });
    res.end();
    return true;
  }
  if (pathname.startsWith('/hub-cdn/repos/')) {
    hubHits.cdn++;
    const size = fs.statSync(MODEL_PATH).size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, etag: `"${'7a1f' + '0'.repeat(60)}"`, 'cache-control': 'public, max-age=31536000' });
    fs.createReadStream(MODEL_PATH).pipe(res);
    return true;
  }
  if (pathname === '/test/dated.gguf') {
    dated ??= withChatTemplate(MODEL_PATH, DATED_TEMPLATE);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': dated.length, 'cache-control': 'no-store' });
    res.end(dated);
    return true;
  }
  const resume = /^\/test\/(resume|norange|changed)-\w+\.gguf$/.exec(pathname);
  if (resume) {
    resumeRoute(resume[1], req, res);
    return true;
  }
  // /test/split-TAG/smol-0000k-of-00003.gguf: the default model in 3 parts; under split-missing-
  // part 3 is absent, under split-foreign- part 2 is a part of the model split in 4.
  const split = /^\/test\/split-(missing-|foreign-)?\w+\/smol-0000(\d)-of-00003\.gguf$/.exec(pathname);
  if (split) {
    if (!splits) {
      const b = fs.readFileSync(MODEL_PATH);
      splits = { three: splitGguf(b, 100), four: splitGguf(b, 70) };
      check(splits.three.length === 3 && splits.four.length === 4, 'split sizes');
    }
    const k = Number(split[2]);
    const body = split[1] === 'missing-' && k === 3 ? null : split[1] === 'foreign-' && k === 2 ? splits.four[1] : splits.three[k - 1];
    if (!body) return res.writeHead(404, { 'cache-control': 'no-store' }).end(), true;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
    return true;
  }
  // The synthetic models of other families (tests/fixtures/families).
  const family = /^\/test\/families\/([\w-]+)\/([\w.-]+\.gguf)$/.exec(pathname);
  if (family) {
    const file = path.join(FAMILIES, family[1], family[2]);
    if (!fs.existsSync(file)) return res.writeHead(404).end(), true;
    const body = fs.readFileSync(file);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(body);
    return true;
  }
  if (pathname === '/test/not-a-model.gguf') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': NOT_GGUF.length, 'cache-control': 'no-store' });
    res.end(NOT_GGUF);
    return true;
  }
  if (pathname === '/test/dropped.gguf') {
    // Promises the whole model, sends 5 MB of it, then drops the connection.
    const size = fs.statSync(MODEL_PATH).size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
    const part = Buffer.alloc(5 * 1000 * 1000);
    const fd = fs.openSync(MODEL_PATH, 'r');
    fs.readSync(fd, part, 0, part.length, 0);
    fs.closeSync(fd);
    res.write(part, () => setTimeout(() => res.destroy(), 200));
    return true;
  }
  if (pathname === '/test/truncated.gguf') {
    if (!truncated) {
      const fd = fs.openSync(MODEL_PATH, 'r');
      truncated = Buffer.alloc(10 * 1000 * 1000);
      fs.readSync(fd, truncated, 0, truncated.length, 0);
      fs.closeSync(fd);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': truncated.length, 'cache-control': 'no-store' });
    res.end(truncated);
    return true;
  }
  return false;
}

export async function serve() {
  return startServer({ routes: { '/': WWW, '/models/': MODELS }, extra: testRoutes });
}

// --- the browser -----------------------------------------------------------------------------

export const requests = []; // {url, from} of every request any page, worker or service worker made
export const servedBySw = new Set(); // URLs whose response came from the service worker

export async function launch({ webgpu = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
  process.env.XDG_CONFIG_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-xdg-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...BASE_ARGS, ...(webgpu ? WEBGPU_ARGS : [])],
    viewport: { width: 1100, height: 800 },
  });
  context.on('request', (r) => requests.push({ url: r.url(), from: r.serviceWorker() ? 'sw' : 'context' }));
  context.on('response', (r) => {
    if (r.fromServiceWorker()) servedBySw.add(r.url());
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('request', (r) => requests.push({ url: r.url(), from: 'page' }));
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
  page.on('worker', (w) => {
    w.on?.('console', (m) => consoleLines.push(`[worker ${m.type()}] ${m.text()}`));
  });
  return {
    context,
    page,
    consoleLines,
    close: async () => {
      await context.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- page helpers ----------------------------------------------------------------------------

export const state = (page) =>
  page.evaluate(() => {
    const h = window.hearthPage;
    const last = [...document.querySelectorAll('#messages .assistant')].pop();
    const err = document.getElementById('error');
    return {
      loaded: !!h.engine,
      info: h.engine ? h.engine.info : null,
      memory: h.engine ? h.engine.memory : null,
      memorySamples: h.memorySamples,
      ids: h.lastTokenIds,
      finish: h.lastFinishReason,
      lastSettings: h.lastSettings,
      usage: h.lastUsage,
      timing: h.lastTiming,
      text: last ? last.querySelector('.body').textContent : null,
      done: last ? last.dataset.done === 'true' : null,
      error: err.hidden ? '' : err.textContent,
      status: document.getElementById('status').textContent,
      loads: h.loads,
      replies: h.replies,
    };
  });

export async function openPage(page, base) {
  await page.goto(base, { waitUntil: 'load' });
  await page.waitForFunction(() => window.hearthPage !== undefined);
}

// Clicks `button` and waits until the page's `counter` (loads or replies) moves on; returns
// the page state with the wall time since the click.
export async function clickAndWait(page, button, counter, { timeout, polling }) {
  const before = await page.evaluate((c) => window.hearthPage[c], counter);
  const t0 = Date.now();
  await page.click(button);
  await page.waitForFunction(([c, n]) => window.hearthPage[c] > n, [counter, before], { timeout, polling });
  const s = await state(page);
  s.wallMs = Date.now() - t0;
  return s;
}

export async function uiLoad(page, url, backend = 'auto') {
  await page.fill('#model-url', url);
  await page.selectOption('#backend', backend);
  return clickAndWait(page, '#load', 'loads', { timeout: LOAD_TIMEOUT, polling: 200 });
}

// The fields of the chat page's Settings panel (a <details>, closed at first) and their defaults.
export const SETTINGS_DEFAULTS = { temperature: '0.7', 'top-p': '1', 'top-k': '0', 'min-p': '0', 'repeat-penalty': '1', 'frequency-penalty': '0', 'presence-penalty': '0', 'max-tokens': '256', seed: '', 'stop-strings': '' };

export async function openSettings(page) {
  if (!(await page.$eval('#settings', (d) => d.open))) await page.click('#settings > summary');
}

// Fills Settings fields by id ({'top-k': 1, seed: ''}); `defaults` first resets the others.
export async function setSettings(page, values, { defaults = false } = {}) {
  await openSettings(page);
  for (const [id, v] of Object.entries(defaults ? { ...SETTINGS_DEFAULTS, ...values } : values)) await page.fill(`#${id}`, String(v));
}

export async function uiSend(page, text, { temperature = 0, maxTokens = 8 } = {}) {
  // The page ignores Send while it is busy (a load or a reply still ending): wait it out, or
  // the reply awaited below would be another one.
  await page.waitForFunction(() => !window.hearthPage.busy, null, { timeout: REPLY_TIMEOUT, polling: 100 });
  await setSettings(page, { temperature, 'max-tokens': maxTokens });
  await page.fill('#prompt', text);
  return clickAndWait(page, '#send', 'replies', { timeout: REPLY_TIMEOUT, polling: 100 });
}

export async function ensureLoaded(page, backend) {
  const s = await state(page);
  const want = backend === 'cpu' ? 'cpu' : 'gpu';
  if (s.loaded && s.info.backend.startsWith(want) && s.info.url.endsWith(MODEL_REL)) return s;
  const r = await uiLoad(page, MODEL_REL, backend);
  check(r.loaded, `loading ${MODEL_REL} (${backend}) failed: ${r.error}`);
  return r;
}

export function perToken(timing) {
  return timing && timing.decode_tokens > 0 ? timing.decode_ms / timing.decode_tokens : NaN;
}

// --- the tests -------------------------------------------------------------------------------

export const golden = readGolden();
export const pplGolden = JSON.parse(fs.readFileSync(path.resolve(REPO, '..', 'shared', 'golden', 'smollm2-135m-instruct-q4_1', 'ppl.json'), 'utf8'));
export const goldenMessage = golden.messages[0].content;
// The native engine's greedy reply to the golden message (the CLI's ids; tests/golden_cpu.rs
// checks those steps against float64, whose very first step is a near-tie, so the browser is
// compared with the native engine rather than with float64's free-running text).
export let nativeGolden = null;
export function goldenIds(n) {
  nativeGolden ??= nativeIds(goldenMessage, GOLDEN_TOKENS);
  return nativeGolden.slice(0, n);
}
export const timings = {};

export async function greedyGolden(page, backend) {
  const loadedState = await ensureLoaded(page, backend);
  const info = loadedState.info;
  log(`backend: ${info.backend}${info.notice ? ` (notice: ${info.notice})` : ''}; load ${ms(info.load_ms)}${info.from_cache ? ' from the cache' : ''}`);
  if (backend === 'cpu') {
    check(info.backend === 'cpu', `expected the CPU backend, got ${info.backend}`);
    // The test server sends COOP/COEP: the CPU path runs one thread per core (at most 8).
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    check(info.threads === Math.min(cores, 8), `info.threads ${info.threads} on ${cores} cores (${info.threads_note || 'no note'})`);
    log(`${info.threads} CPU threads`);
  } else check(info.backend.startsWith('gpu'), `expected a WebGPU backend, got ${info.backend} ${info.notice || ''}`);
  await page.click('#new-chat');
  const r = await uiSend(page, goldenMessage, { temperature: 0, maxTokens: GOLDEN_TOKENS });
  check(!r.error, `error: ${r.error}`);
  const t = r.timing;
  log(`reply ${JSON.stringify(r.text)} (${r.finish}); ids ${JSON.stringify(r.ids)}`);
  log(`prefill ${r.usage.prompt_tokens} tokens ${ms(t.prefill_ms)}; decode ${t.decode_tokens} tokens ${ms(t.decode_ms)} = ${perToken(t).toFixed(1)} ms/token`);
  timings[backend] = { load_ms: info.load_ms, from_cache: info.from_cache, prefill_ms: t.prefill_ms, prompt_tokens: r.usage.prompt_tokens, ms_per_token: perToken(t) };
  const want = goldenIds(GOLDEN_TOKENS);
  check(sameIds(r.ids, want), `greedy ids ${JSON.stringify(r.ids)} differ from the native engine's ${JSON.stringify(want)}`);
  check(r.done, 'the assistant message has no data-done="true"');
}

// The native engine's ids for a chat message (the CLI, built by `cargo test`); greedy unless
// `sampling` flags are given. `input` is ['--chat', message] or ['--prompt', text].
export function nativeIds(message, maxTokens, sampling = ['--temperature', '0'], { model = MODEL_PATH, input = ['--chat', message] } = {}) {
  const cli = path.join(REPO, 'target/release/hearth');
  check(fs.existsSync(cli), `${cli} is missing: build it with ./build.sh cli`);
  const args = ['generate', model, ...input, '--max-tokens', String(maxTokens), '--backend', 'cpu', '--json', ...sampling];
  return JSON.parse(execFileSync(cli, args, { encoding: 'utf8' })).ids;
}

// The other two models build.sh fetches, with their golden files: Qwen2.5-Coder is a chat model
// with K-quants and a 145 MB output matrix; Gemma 3 270M a base model with a SentencePiece
// vocabulary and a 189 MB embedding table.
export const BIG_MODELS = [
  { name: 'qwen2', file: 'qwen2.5-coder-0.5b-instruct.gguf', golden: 'qwen2.5-coder-0.5b-instruct/chat_greedy.json', chat: true },
  { name: 'gemma3', file: 'gemma-3-270m-q4_k_m.gguf', golden: 'gemma-3-270m/greedy.json', chat: false },
];
// Greedy tokens compared per backend: SwiftShader runs a 0.5B model at seconds per token.
export const BIG_TOKENS = { gpu: 3, cpu: 8 };

export const STORY = 'Tell me a story about a dragon.';

// The npm package (www/package.json) as npm packs it, unpacked into a temporary folder:
// {dir (the package's root), tmp (remove it afterwards), packed (npm pack's report)}.
export function packPackage() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: WWW, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [packed] = JSON.parse(out);
  execFileSync('tar', ['xzf', path.join(tmp, packed.filename), '-C', tmp]);
  return { dir: path.join(tmp, 'package'), tmp, packed };
}

// Checks the package's manifest and contents: an ES module entry with its types, an exports
// map whose every target is in the package, no runtime dependencies, and the browser files
// only (not the chat page's). Returns the manifest.
export function checkPackage({ dir, packed }) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const files = packed.files.map((f) => f.path).sort();
  log(`npm pack: ${packed.filename}, ${files.length} files, ${(packed.size / 1e6).toFixed(2)} MB (${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked): ${files.join(' ')}`);
  for (const key of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundleDependencies']) {
    check(!manifest[key] || Object.keys(manifest[key]).length === 0, `the package has ${key}: ${JSON.stringify(manifest[key])}`);
  }
  const want = ['package.json', 'README.md', 'hearth.js', 'hearth.d.ts', 'hearth-chat.js', 'hearth-chat.d.ts', 'worker.js', 'thread.js', 'parts.js', 'pkg/hearth.js', 'pkg/hearth_bg.wasm',
    'pkg-mt/hearth.js', 'pkg-mt/hearth_bg.wasm', 'pkg-grammar/hearth_grammar.js', 'pkg-grammar/hearth_grammar_bg.wasm'];
  const missing = want.filter((f) => !files.includes(f));
  check(missing.length === 0, `the package lacks ${missing.join(', ')}`);
  const app = files.filter((f) => /^(index\.html|app\.js|style\.css|sw\.js|demo\.html|embed\.html)$/.test(f));
  check(app.length === 0, `the package holds the chat page's files: ${app.join(', ')}`);
  check(manifest.type === 'module' && manifest.exports?.['.']?.default === './hearth.js' && manifest.exports['.'].types === './hearth.d.ts', `exports["."]: ${JSON.stringify(manifest.exports?.['.'])}`);
  const targets = Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
  const absent = targets.filter((t) => !t.includes('*') && !fs.existsSync(path.join(dir, t)));
  check(absent.length === 0, `exports point at files not in the package: ${absent.join(', ')}`);
  // The README's CDN URLs name this version.
  const readme = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  const cdnRefs = [...readme.matchAll(new RegExp(`cdn\\.jsdelivr\\.net/npm/${manifest.name}@([^/]+)/`, 'g'))].map((m) => m[1]);
  check(cdnRefs.length > 0 && cdnRefs.every((v) => v === manifest.version), `the README's CDN URLs name versions ${cdnRefs.join(', ') || 'none'}, not ${manifest.version}`);
  return manifest;
}

// How a bundler or node resolves the package by name: `import … from '<name>'` through its
// exports map, from a project that has it in node_modules.
export function importByName(tmp, dir, name) {
  const project = path.join(tmp, 'project');
  fs.mkdirSync(path.join(project, 'node_modules'), { recursive: true });
  fs.cpSync(dir, path.join(project, 'node_modules', name), { recursive: true });
  const script = `const m = await import(${JSON.stringify(name)}); console.log(JSON.stringify({ load: typeof m.load, default: typeof m.default?.load, chat: import.meta.resolve(${JSON.stringify(name + '/hearth-chat.js')}) }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8' }));
}

