// hearth worker: owns the wasm engine, streams the model file into it and runs the token loop.
// Started by hearth.js as a module worker. Protocol (every reply carries the request's id):
//   in:  {type:'load', id, url, sha256?, backend?, maxContext?, contextShift?, prefillChunk?, threads?}
//        {type:'generate', id, messages | prompt, temperature?, max_tokens?, seed?, stop?, sampling?,
//         response_format?}
//        (sampling: top_k, top_p, min_p, repeat_penalty, repeat_last_n, frequency_penalty,
//        presence_penalty, logit_bias as [[id, bias], …]; the engine validates them)
//        {type:'abort', id}  {type:'reset', id?}  {type:'unload', id?}
//        {type:'perplexity', id, text, window?, stride?}  -> {type:'perplexity', id, result}
//        {type:'embed', id, input: [text or [id, …], …]}  -> {type:'embeddings', id, data: [Float32Array], tokens}
//   out: {type:'progress', id, loaded, total, rate, eta, fromCache}
//        {type:'memory', id, bytes}            wasm heap samples taken while loading
//        {type:'loaded', id, info, memory}
//        {type:'token', id, text, tokenId}   tokenId null: text released at the end
//        {type:'done', id, finish_reason, usage, timing, memory}
//        {type:'error', id, message}
//        {type:'reset', id}  {type:'unloaded', id}
// Requests run one at a time in arrival order; 'abort' acts at once on a running or queued one.
// A url naming the first part of a split model (…-00001-of-0000N.gguf) loads every part;
// sha256 is then an array, one hash per part.

import { partUrls } from './parts.js';

const CACHE_NAME = 'hearth-models-v1';
const PROGRESS_EVERY_MS = 100;
const MEMORY_EVERY_MS = 100;
const DEFAULT_MAX_TOKENS = 512;
const PUSH_SLICE = 1 << 20;
// A dropped download resumes with a Range request this many times (waiting 0.5 s, 1 s, …).
const MAX_RESUMES = 5;
const RESUME_WAIT_MS = 500;
const DEFAULT_TEMPERATURE = 0.7;

let wasm = null; // the wasm exports (memory)
let Loader = null;
let engine = null;
let crashed = null; // message of a wasm trap; the instance is unusable after one

const pending = new Set(); // ids queued or running
const aborted = new Set(); // ids asked to abort
const controllers = new Map(); // id -> AbortController of a running load
let queue = Promise.resolve();

const post = (msg) => self.postMessage(msg);

// HTTP/2 responses carry no status text.
const STATUS_TEXT = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  410: 'Gone',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'AbortError';
  }
}

// The backend could not be set up (e.g. no WebGPU): not the file's fault.
class SetupError extends Error {}
// The server answered a resume with the whole file (no range support): start over, once.
class RestartError extends Error {}

// The stable `code` of an error (hearth.js puts it on the Error): the engine's own come from
// the first words of its messages (src/error.rs); a load's other failures are
// model_load_failed, a request's invalid_request.
function codeOf(e, message, phase) {
  if (e instanceof AbortedError) return 'aborted';
  if (crashed && message.startsWith('the wasm engine crashed')) return 'engine_crashed';
  const known = [
    [/^context_length_exceeded:/, 'context_length_exceeded'],
    [/^gpu_lost:/, 'gpu_lost'],
    [/does not fit in this site's storage/, 'storage_quota_exceeded'],
  ].find(([re]) => re.test(message));
  if (known) return known[1];
  if (phase === 'load') return 'model_load_failed';
  if (/^GPU:/.test(message)) return 'gpu_error';
  if (/^(invalid argument|chat template|tokenizer|sampling settings|reply options):/.test(message) || !engine) return 'invalid_request';
  return 'internal_error';
}

function messageOf(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    crashed = e.message;
    return `the wasm engine crashed (${e.message}); load the model again`;
  }
  if (e instanceof Error) return e.message || e.name || 'unknown error';
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// Threads: where the page is cross-origin isolated (COOP + COEP headers, so SharedArrayBuffer
// exists), the CPU path runs the multi-threaded package (pkg-mt/: shared memory, one Web Worker
// per extra thread, see thread.js); elsewhere the single-threaded one (pkg/). Chosen once per
// worker, at the first load.
let threading = { threads: 1, why: null };

function threadCount(requested) {
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') {
    return { n: 1, why: 'the page is not cross-origin isolated (no COOP/COEP headers), so WebAssembly threads are unavailable' };
  }
  if (Number.isInteger(requested) && requested > 0) return { n: Math.min(requested, 64), why: null };
  const cores = navigator.hardwareConcurrency || 1;
  return { n: Math.max(1, Math.min(cores, 8)), why: cores > 1 ? null : 'this device reports one core' };
}

async function ensureWasm(requestedThreads) {
  if (crashed) throw new Error(`the wasm engine crashed earlier (${crashed}); load the model again`);
  if (wasm) return;
  const { n, why } = threadCount(requestedThreads);
  if (n > 1) {
    try {
      await startThreaded(n);
      threading = { threads: n, why: null };
      return;
    } catch (e) {
      wasm = null;
      threading = { threads: 1, why: `the multi-threaded package failed to start (${messageOf(e)})` };
      console.warn(`hearth: ${threading.why}; running on one thread`);
    }
  } else {
    threading = { threads: 1, why };
  }
  let mod;
  try {
    mod = await import('./pkg/hearth.js');
  } catch (e) {
    throw new Error(`could not load the wasm package (pkg/hearth.js): ${messageOf(e)}`);
  }
  try {
    wasm = await mod.default();
  } catch (e) {
    throw new Error(`could not start the wasm module (pkg/hearth_bg.wasm): ${messageOf(e)}`);
  }
  Loader = mod.Loader;
}

// Instantiates pkg-mt/ on a shared memory, sizes its thread pool and starts n - 1 thread
// workers on the same module and memory.
async function startThreaded(n) {
  const mod = await import('./pkg-mt/hearth.js');
  const url = new URL('./pkg-mt/hearth_bg.wasm', import.meta.url);
  const module = await WebAssembly.compileStreaming(fetch(url));
  wasm = await mod.default({ module_or_path: module });
  mod.threadPoolInit(n);
  const memory = wasm.memory;
  const bootstrap = threadBootstrap();
  try {
    await Promise.all(
      Array.from({ length: n - 1 }, (_, i) => new Promise((resolve, reject) => {
        const name = `hearth-thread-${i + 1}`;
        // (The same-origin form written out in full: bundlers recognize it.)
        const w = bootstrap
          ? new Worker(bootstrap, { type: 'module', name })
          : new Worker(new URL('./thread.js', import.meta.url), { type: 'module', name });
        w.onmessage = (e) => (e.data === 'ready' ? resolve() : reject(new Error(e.data?.error || 'a thread failed to start')));
        w.onerror = (e) => reject(new Error(e.message || `a thread worker failed to load ${new URL('./thread.js', import.meta.url).href}`));
        w.postMessage({ module, memory });
      })),
    );
  } finally {
    if (bootstrap) URL.revokeObjectURL(bootstrap);
  }
  Loader = mod.Loader;
}

// Workers start only from their creator's origin, which is the page's: where thread.js lies on
// another (hearth loaded from a CDN), they start from a same-origin blob: module importing it.
// Null where thread.js is same-origin.
function threadBootstrap() {
  const href = new URL('./thread.js', import.meta.url).href;
  if (new URL(href).origin === self.location.origin) return null;
  return URL.createObjectURL(new Blob([`import ${JSON.stringify(href)};\n`], { type: 'text/javascript' }));
}

// Structured output: the grammar engine is a wasm module of its own (pkg-grammar/), loaded on
// the first reply with a response_format; it turns the engine's vocabulary into a trie once per
// model and hands the engine an allowed-token mask before every draw.
let grammarModule = null;
let vocabulary = null; // {engine, vocab}: the loaded model's grammar vocabulary

async function constrain(format) {
  if (!grammarModule) {
    try {
      const mod = await import('./pkg-grammar/hearth_grammar.js');
      await mod.default();
      grammarModule = mod;
    } catch (e) {
      throw new Error(`could not load the structured-output module (pkg-grammar/): ${messageOf(e)}`);
    }
  }
  if (!vocabulary || vocabulary.engine !== engine) {
    freeVocabulary();
    vocabulary = { engine, vocab: new grammarModule.Vocabulary(engine.grammarVocab()) };
  }
  return vocabulary.vocab.constrain(JSON.stringify(format)) ?? null;
}

function freeVocabulary() {
  try {
    vocabulary?.vocab.free();
  } catch {
    /* already gone */
  }
  vocabulary = null;
}

// The wasm heap's current size. grow(0) reads it afresh: with shared memory (the threaded
// package) a cached `buffer` may still have the length from before another thread grew it.
const heapBytes = () => (wasm && wasm.memory ? wasm.memory.grow(0) * 65536 : 0);

self.onmessage = (event) => {
  const msg = event.data || {};
  if (msg.type === 'abort') {
    if (pending.has(msg.id)) {
      aborted.add(msg.id);
      controllers.get(msg.id)?.abort();
    }
    return;
  }
  if (msg.id !== undefined) pending.add(msg.id);
  queue = queue.then(() => dispatch(msg));
};

async function dispatch(msg) {
  const { id } = msg;
  try {
    switch (msg.type) {
      case 'load':
        await load(msg);
        break;
      case 'generate':
        await generate(msg);
        break;
      case 'perplexity': {
        if (!engine) throw new Error('no model is loaded');
        if (typeof msg.text !== 'string') throw new Error('perplexity needs a text string');
        const ids = engine.tokenize(msg.text);
        const window = Number.isInteger(msg.window) && msg.window >= 0 ? msg.window : 0;
        const stride = Number.isInteger(msg.stride) && msg.stride >= 0 ? msg.stride : 0;
        const result = JSON.parse(await engine.perplexity(ids, window, stride));
        post({ type: 'perplexity', id, result });
        break;
      }
      case 'embed':
        await embed(msg);
        break;
      case 'reset':
        if (engine) engine.reset();
        post({ type: 'reset', id });
        break;
      case 'unload':
        freeEngine();
        post({ type: 'unloaded', id });
        break;
      default:
        throw new Error(`unknown request type ${JSON.stringify(msg.type)}`);
    }
  } catch (e) {
    const message = messageOf(e);
    post({ type: 'error', id, message, code: codeOf(e, message, msg.type) });
  } finally {
    pending.delete(id);
    aborted.delete(id);
    controllers.delete(id);
  }
}

function freeEngine() {
  if (!engine) return;
  const e = engine;
  engine = null;
  freeVocabulary();
  try {
    e.free();
  } catch {
    /* already gone */
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

async function load(msg) {
  const { id, url } = msg;
  if (typeof url !== 'string' || !url) throw new Error('load: url must be a non-empty string');
  const backend = msg.backend || 'auto';
  const maxContext = msg.maxContext > 0 ? Math.floor(msg.maxContext) : 0;
  const contextShift = msg.contextShift;
  const prefillChunk = Number.isInteger(msg.prefillChunk) && msg.prefillChunk > 0 ? msg.prefillChunk : 0;
  const urls = partUrls(url);
  const shas = expectedShas(msg.sha256, urls.length);
  const ctrl = new AbortController();
  controllers.set(id, ctrl);
  const checkAbort = () => {
    if (aborted.has(id)) throw new AbortedError();
  };
  checkAbort();
  await ensureWasm(msg.threads);
  freeEngine(); // one model per worker: release the old one's memory before the new one streams in
  checkAbort();

  const started = performance.now();
  const memory = new MemorySampler(id);
  memory.sample(true);
  const cache = msg.cache === false ? null : await openCache();
  const o = { id, backend, maxContext, contextShift, prefillChunk, memory, checkAbort, ctrl, cache, started, skipCache: new Set() };

  // A broken cached copy is dropped and fetched again from the network, once. A server that
  // cannot resume (it answers a Range request with the whole file) gets the download started
  // over, once; the failed attempt caches nothing.
  let restarted = false;
  for (;;) {
    try {
      return await loadParts(urls, shas, o);
    } catch (e) {
      if (aborted.has(id)) throw new AbortedError();
      if (e instanceof CachedCopyError && !o.skipCache.has(e.url)) {
        o.skipCache.add(e.url);
        try {
          await cache.delete(e.url);
        } catch {
          /* nothing to delete */
        }
        console.warn(`hearth: cached copy of ${e.url} was unusable (${e.message}); fetching it again`);
        continue;
      }
      if (e instanceof RestartError && !restarted) {
        restarted = true;
        console.warn(`hearth: ${e.message}; downloading ${url} again from the start`);
        continue;
      }
      if (e instanceof RestartError) throw new Error(`${e.message} (also after starting over)`);
      throw e instanceof CachedCopyError ? e.cause : e;
    }
  }
}

// The expected SHA-256 of each part: one hash for one file, an array of them for a split model.
function expectedShas(sha256, n) {
  if (sha256 == null || sha256 === '') return null;
  const list = Array.isArray(sha256) ? sha256 : [sha256];
  if (list.length !== n) {
    throw new Error(n > 1 ? `sha256: this model is split into ${n} files; give an array of ${n} hashes, one per part` : 'sha256: give one hash for one file');
  }
  return list.map((h) => String(h).trim().toLowerCase());
}

// An error while reading a model's copy from the cache: the copy is dropped and fetched again.
class CachedCopyError extends Error {
  constructor(url, cause) {
    super(messageOf(cause));
    this.url = url;
    this.cause = cause;
  }
}

// Streams a model's files (one, or every part of a split model in order) through one Loader.
// Each comes from the cache or the network; downloads go to the cache, committed only after the
// whole model loaded (and matched sha256). A split model's later parts are opened for their
// headers first: the plan spans every part, so it is built before the first part's weights.
async function loadParts(urls, shas, o) {
  const n = urls.length;
  const what = (k) => (n > 1 ? `part ${k + 1} of ${n} (${urls[k]})` : urls[k]);
  const streamed = [];
  let loader = null;
  let consumed = false;
  let first = null;
  try {
    first = await openPart(urls[0], what(0), o);
    try {
      loader = await Loader.create(first.total ?? undefined, o.backend);
    } catch (e) {
      throw new SetupError(messageOf(e));
    }
    o.checkAbort();
    const sizes = [first];
    for (let k = 1; k < n; k++) sizes.push(await probePart(loader, urls[k], what(k), n, o));
    if (o.cache) {
      const fresh = sizes.filter((p) => !p.fromCache);
      if (fresh.every((p) => p.total != null)) await checkRoom(urls[0], fresh.reduce((sum, p) => sum + p.total, 0));
    }
    const total = sizes.every((p) => p.total != null) ? sizes.reduce((sum, p) => sum + p.total, 0) : null;
    const progress = new Progress(o, total);
    const hashes = [];
    let resumes = 0;
    for (let k = 0; k < n; k++) {
      const part = k === 0 ? first : await openPart(urls[k], what(k), o);
      streamed.push(part);
      if (k > 0) {
        try {
          loader.nextPart(part.total ?? undefined);
        } catch (e) {
          throw partError(streamed[k - 1], e, n);
        }
      }
      try {
        resumes += await streamPart(loader, part, o, progress);
      } catch (e) {
        throw partError(part, e, n);
      }
      const sha = loader.sha256();
      if (shas && sha !== shas[k]) throw partError(part, new Error(`sha256 mismatch${n > 1 ? ` for ${what(k)}` : ''}: expected ${shas[k]} got ${sha}`), n);
      hashes.push(sha);
    }
    o.checkAbort();
    consumed = true; // finish() consumes the loader, even when it throws
    let eng;
    try {
      eng = loader.finish(o.maxContext, o.prefillChunk);
    } catch (e) {
      throw partError(streamed[n - 1], e, n);
    }
    if (Number.isInteger(o.contextShift) && o.contextShift >= 0) eng.setContextShift(o.contextShift);
    let cached = true;
    for (const p of streamed) if (p.sink) cached = (await p.sink.commit()) && cached;
    const fromCache = streamed.every((p) => p.fromCache);
    const result = { engine: eng, bytes: progress.loaded, sha256: n > 1 ? hashes : hashes[0], resumes, parts: n };
    return finishLoad(o.id, result, o.started, o.memory, fromCache, cached && o.cache != null);
  } catch (e) {
    for (const p of streamed) p.sink?.fail(e);
    if (!(e instanceof RestartError) && !(e instanceof CachedCopyError)) o.ctrl.abort(); // stop downloading the rest
    if (o.cache) {
      for (const p of streamed.filter((p) => !p.fromCache)) {
        try {
          await o.cache.delete(p.url);
        } catch {
          /* nothing stored */
        }
      }
    }
    if (aborted.has(o.id)) throw new AbortedError();
    throw e;
  } finally {
    if (loader && !consumed) {
      try {
        loader.free();
      } catch {
        /* already freed */
      }
    }
    if (first && !first.response.body?.locked) first.response.body?.cancel().catch(() => {});
  }
}

// An error in one file of a model: a cached copy's is the copy's fault (fetched again once); a
// split model's names the part.
function partError(part, e, n) {
  if (e instanceof AbortedError || e instanceof SetupError || e instanceof RestartError || e instanceof WebAssembly.RuntimeError) return e;
  if (part.fromCache) return new CachedCopyError(part.url, e);
  const message = messageOf(e);
  return n > 1 && !message.includes(part.url) ? new Error(`${part.what}: ${message}`) : e;
}

// One file of a model, from the cache or the network (its body not yet read).
async function openPart(url, what, o) {
  if (o.cache && !o.skipCache.has(url)) {
    let hit = null;
    try {
      hit = await o.cache.match(url);
    } catch {
      hit = null;
    }
    if (hit?.body) return { url, what, response: hit, total: contentLength(hit), fromCache: true };
  }
  let response;
  try {
    response = await fetch(url, { signal: o.ctrl.signal });
  } catch (e) {
    if (aborted.has(o.id)) throw new AbortedError();
    throw new Error(`network error: could not fetch ${what} (${messageOf(e)}; offline, server unreachable, or blocked by CORS)`);
  }
  if (!response.ok) {
    response.body?.cancel().catch(() => {});
    const text = response.statusText || STATUS_TEXT[response.status] || '';
    throw new Error(`HTTP ${response.status}${text ? ' ' + text : ''} for ${what}`);
  }
  if (!response.body) throw new Error(`the response for ${what} has no body`);
  return { url, what, response, total: contentLength(response), fromCache: false };
}

// Reads a split model's later part up to the end of its header, hands the header to the loader
// and cancels the rest (read in full later, in order). Resolves to the part's size and source.
async function probePart(loader, url, what, n, o) {
  const part = await openPart(url, what, o);
  const reader = part.response.body.getReader();
  try {
    for (;;) {
      let step;
      try {
        step = await reader.read();
      } catch (e) {
        if (aborted.has(o.id)) throw new AbortedError();
        throw new Error(`network error while reading the header of ${what} (${messageOf(e)})`);
      }
      if (step.done) throw new Error(`${what} ends before its GGUF header does`);
      o.checkAbort();
      const chunk = step.value;
      for (let at = 0; at < chunk.byteLength; at += PUSH_SLICE) {
        if (loader.pushPartHeader(chunk.subarray(at, at + PUSH_SLICE), n)) return { total: part.total, fromCache: part.fromCache };
      }
    }
  } catch (e) {
    throw partError(part, e, n);
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Rejects a download of `bytes` that the origin's storage quota cannot hold.
async function checkRoom(url, bytes) {
  if (bytes == null || !navigator.storage?.estimate) return;
  let usage;
  let quota;
  try {
    ({ usage, quota } = await navigator.storage.estimate());
  } catch {
    return;
  }
  if (!(quota > 0) || usage + bytes <= quota) return;
  const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
  throw new Error(
    `${url} (${mb(bytes)}) does not fit in this site's storage: ${mb(usage)} of ${mb(quota)} are used, ` +
      `${mb(Math.max(0, quota - usage))} free; delete cached models (deleteCachedModel) or load with cache: false`,
  );
}

// How a dropped download of `url` continues: `resume(offset, attempt)` resolves to a reader of
// the file from byte `offset`, asked for with a Range request that is valid only for the same
// file (If-Range with its strong ETag, else its Last-Modified) and checked against the first
// response's length and ETag. Null where resuming cannot be checked (no length, or a content
// encoding, whose byte offsets are not the file's).
function resumer(url, first, signal) {
  const total = contentLength(first);
  const etag = first.headers.get('etag');
  const validator = etag && !etag.startsWith('W/') ? etag : first.headers.get('last-modified');
  if (total == null) return null;
  return async (offset, attempt) => {
    await new Promise((r) => setTimeout(r, RESUME_WAIT_MS * attempt));
    const headers = { range: `bytes=${offset}-` };
    if (validator) headers['if-range'] = validator;
    const r = await fetch(url, { headers, signal, cache: 'no-store' });
    if (r.status === 200) {
      r.body?.cancel().catch(() => {});
      throw new RestartError('the server cannot resume: it answered the Range request with the whole file');
    }
    if (r.status !== 206 || !r.body) {
      r.body?.cancel().catch(() => {});
      throw new Error(`HTTP ${r.status} for ${url} when resuming the download at byte ${offset}`);
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(r.headers.get('content-range') || '');
    const newTag = r.headers.get('etag');
    const why = !range
      ? `no usable Content-Range (${JSON.stringify(r.headers.get('content-range'))})`
      : Number(range[1]) !== offset
        ? `it starts at byte ${range[1]}, not ${offset}`
        : range[3] !== '*' && Number(range[3]) !== total
          ? `the file is now ${range[3]} bytes, not ${total}`
          : Number(range[2]) !== total - 1
            ? `it ends at byte ${range[2]}, not ${total - 1}`
            : etag && newTag && newTag !== etag
              ? `the file changed (ETag ${newTag}, was ${etag})`
              : null;
    if (why) {
      r.body.cancel().catch(() => {});
      throw new Error(`the server's answer to resuming ${url} at byte ${offset} does not match the download: ${why}`);
    }
    return r.body.getReader();
  };
}

function finishLoad(id, { engine: eng, bytes, sha256, resumes, parts }, started, memory, fromCache, cached) {
  engine = eng;
  memory.sample(true);
  let info;
  try {
    info = JSON.parse(eng.info());
  } catch {
    info = {};
  }
  Object.assign(info, {
    bytes,
    sha256,
    parts,
    from_cache: fromCache,
    cached: fromCache || cached,
    download_resumes: resumes,
    load_ms: Math.round(performance.now() - started),
  });
  if (threading.why) info.threads_note = threading.why;
  post({ type: 'loaded', id, info, memory: heapBytes() });
}

function contentLength(response) {
  // With a content encoding the header counts compressed bytes, not the file's.
  if (response.headers.get('content-encoding')) return null;
  const n = Number(response.headers.get('content-length'));
  return Number.isFinite(n) && n > 0 ? n : null;
}

async function openCache() {
  try {
    if (typeof caches === 'undefined') return null;
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

class CacheSink {
  constructor(cache, url, total) {
    let controller;
    const stream = new ReadableStream({
      start(c) {
        controller = c;
      },
    });
    this.controller = controller;
    const headers = { 'content-type': 'application/octet-stream' };
    if (total != null) headers['content-length'] = String(total);
    this.done = cache.put(url, new Response(stream, { headers })).then(
      () => true,
      () => false,
    );
    this.open = true;
  }
  write(chunk) {
    if (this.open) this.controller.enqueue(chunk);
  }
  async commit() {
    if (this.open) {
      this.open = false;
      this.controller.close();
    }
    return this.done;
  }
  fail(e) {
    if (this.open) {
      this.open = false;
      this.controller.error(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

class MemorySampler {
  constructor(id) {
    this.id = id;
    this.last = 0;
  }
  sample(force = false) {
    const now = performance.now();
    if (!force && now - this.last < MEMORY_EVERY_MS) return;
    this.last = now;
    post({ type: 'memory', id: this.id, bytes: heapBytes() });
  }
}

// Load progress over every file of a model: bytes so far of `total` (null where unknown).
class Progress {
  constructor(o, total) {
    this.o = o;
    this.total = total;
    this.loaded = 0;
    this.fromCache = false;
    this.t0 = performance.now();
    this.last = -Infinity;
    this.report(true);
  }
  add(bytes) {
    this.loaded += bytes;
    this.report(false);
    this.o.memory.sample(false);
  }
  report(force) {
    const now = performance.now();
    if (!force && now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    const secs = (now - this.t0) / 1000;
    const rate = secs > 0 ? this.loaded / secs : 0;
    const eta = this.total != null && rate > 0 ? Math.max(0, (this.total - this.loaded) / rate) : null;
    post({ type: 'progress', id: this.o.id, loaded: this.loaded, total: this.total, rate, eta, fromCache: this.fromCache });
  }
}

// Streams one file's body (network or cache) into the loader; a download also goes to the
// cache (part.sink) and continues with Range requests where the connection drops. Resolves to
// the number of resumes.
async function streamPart(loader, part, o, progress) {
  if (!part.fromCache && o.cache) part.sink = new CacheSink(o.cache, part.url, part.total);
  const resume = part.fromCache ? null : resumer(part.url, part.response, o.ctrl.signal);
  let reader = part.response.body.getReader();
  let resumes = 0;
  let loaded = 0;
  progress.fromCache = part.fromCache;
  progress.report(true);
  try {
    for (;;) {
      let step;
      try {
        step = await reader.read();
      } catch (e) {
        if (aborted.has(o.id)) throw new AbortedError();
        const lost = `network error while downloading ${part.what} after ${loaded} bytes (${messageOf(e)})`;
        if (!resume) throw new Error(lost);
        if (resumes === MAX_RESUMES) throw new Error(`${lost}; resumed ${resumes} times already`);
        resumes++;
        reader.cancel().catch(() => {});
        try {
          reader = await resume(loaded, resumes);
        } catch (r) {
          if (aborted.has(o.id)) throw new AbortedError();
          if (r instanceof RestartError) throw new RestartError(`${lost}; ${r.message}`);
          throw new Error(`${lost}; resuming failed: ${messageOf(r)}`);
        }
        console.warn(`hearth: ${lost}; resumed (${resumes})`);
        continue;
      }
      if (step.done) break;
      o.checkAbort();
      const chunk = step.value;
      part.sink?.write(chunk);
      // Large reads are fed in slices: each push copies its bytes into the wasm heap.
      for (let at = 0; at < chunk.byteLength; at += PUSH_SLICE) loader.push(chunk.subarray(at, at + PUSH_SLICE));
      loaded += chunk.byteLength;
      progress.add(chunk.byteLength);
    }
    progress.report(true);
    if (part.total != null && loaded !== part.total) {
      throw new Error(`${part.fromCache ? 'cached copy of' : 'download of'} ${part.what} is ${loaded} bytes, expected ${part.total}`);
    }
    return resumes;
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Sentence embeddings of each text, one after another (an abort takes effect between texts).
async function embed(msg) {
  if (!engine) throw new Error('no model is loaded');
  const input = msg.input;
  const isIds = (t) => Array.isArray(t) && t.every((id) => Number.isInteger(id) && id >= 0 && id < 2 ** 32);
  if (!Array.isArray(input) || !input.every((t) => typeof t === 'string' || isIds(t))) {
    throw new Error('invalid argument: embed input must be an array of strings or token id arrays');
  }
  const data = [];
  let tokens = 0;
  for (const text of input) {
    await yieldToEvents();
    if (aborted.has(msg.id)) throw new AbortedError();
    // Token ids are used as they are (the engine checks them against the vocabulary).
    const ids = typeof text === 'string' ? engine.embeddingPrompt(text) : Uint32Array.from(text);
    tokens += ids.length;
    data.push(await engine.embed(ids));
  }
  post({ type: 'embeddings', id: msg.id, data, tokens });
}

// ---------------------------------------------------------------------------------------------
// Generation

// A macrotask turn, so an 'abort' message is seen even when the engine resolves at once.
function yieldToEvents() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

async function generate(msg) {
  const { id } = msg;
  const zero = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  if (aborted.has(id)) {
    post({ type: 'done', id, finish_reason: 'abort', usage: zero, timing: { prefill_ms: 0, decode_ms: 0, decode_tokens: 0 }, memory: heapBytes() });
    return;
  }
  if (crashed) throw new Error(`the wasm engine crashed earlier (${crashed}); load the model again`);
  if (!engine) throw new Error('no model is loaded');

  const temperature = msg.temperature ?? DEFAULT_TEMPERATURE;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`temperature must be a number >= 0, got ${JSON.stringify(msg.temperature)}`);
  }
  const maxTokens = msg.max_tokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new Error(`max_tokens must be a positive integer, got ${JSON.stringify(msg.max_tokens)}`);
  }
  let seed = msg.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new Error(`seed must be a number, got ${JSON.stringify(msg.seed)}`);
  seed = Math.abs(Math.floor(seed)) % 2 ** 53;

  let ids;
  if (msg.messages !== undefined) {
    if (!Array.isArray(msg.messages) || msg.messages.length === 0) throw new Error('messages must be a non-empty array of {role, content}');
    ids = engine.chatPrompt(JSON.stringify(msg.messages));
  } else if (typeof msg.prompt === 'string') {
    ids = engine.textPrompt(msg.prompt);
  } else {
    throw new Error('generate needs messages or a prompt string');
  }

  if (msg.n_beams > 1) {
    await beamReply(msg, ids, maxTokens);
    return;
  }

  // {type: 'text'} alone needs no grammar (anything else, even a malformed format, goes to the
  // grammar module, which validates it).
  const format = msg.response_format;
  const plain = format == null || (format.type === 'text' && Object.keys(format).length === 1);
  const grammar = plain ? null : await constrain(format);
  try {
    await replyLoop(msg, ids, grammar, temperature, seed, maxTokens);
  } finally {
    grammar?.free();
  }
}

async function replyLoop(msg, ids, grammar, temperature, seed, maxTokens) {
  // The engine runs the native reply loop's rules one step at a time (when the reply ends,
  // which text it shows); this loop only awaits each step, streams it and checks for an abort
  // (and, for structured output, passes the grammar's mask in and the drawn token back).
  const { id } = msg;
  const nPrompt = ids.length;
  const stop = msg.stop == null ? [] : (Array.isArray(msg.stop) ? msg.stop : [msg.stop]).filter((x) => typeof x === 'string');
  const options = JSON.stringify({ max_tokens: maxTokens, stop });
  const emit = (step) => {
    if (step.id != null || step.text) post({ type: 'token', id, text: step.text, tokenId: step.id });
  };
  let decodeMs = 0;
  let decodeTokens = 0; // steps after the first token, each one sampled token
  const t0 = performance.now();
  let step = JSON.parse(await engine.start(ids, JSON.stringify({ ...(msg.sampling || {}), temperature, seed }), grammar?.allowed(), options));
  const prefillMs = performance.now() - t0;
  for (;;) {
    emit(step);
    if (step.finish) break;
    await yieldToEvents();
    if (aborted.has(id)) {
      step = JSON.parse(engine.cancel());
      emit(step);
      break;
    }
    const t1 = performance.now();
    let mask;
    if (grammar) {
      grammar.commit(step.id);
      mask = grammar.allowed();
    }
    step = JSON.parse(await engine.step(mask));
    decodeMs += performance.now() - t1;
    decodeTokens++;
  }
  post({
    type: 'done',
    id,
    finish_reason: FINISH[step.finish],
    usage: { prompt_tokens: nPrompt, completion_tokens: decodeTokens + 1, total_tokens: nPrompt + decodeTokens + 1 },
    timing: { prefill_ms: round1(prefillMs), decode_ms: round1(decodeMs), decode_tokens: decodeTokens, grammar_ms: round1(grammar ? grammar.maskMs() : 0) },
    memory: heapBytes(),
  });
}

// Beam search (n_beams > 1): the best beam arrives whole, as one chunk, when the search ends.
async function beamReply(msg, ids, maxTokens) {
  const { id } = msg;
  const t0 = performance.now();
  const out = JSON.parse(await engine.beam(ids, msg.n_beams, maxTokens, msg.length_penalty ?? 1));
  const ms = performance.now() - t0;
  post({ type: 'token', id, text: out.text, tokenIds: out.ids });
  post({
    type: 'done',
    id,
    finish_reason: FINISH[out.finish],
    usage: { prompt_tokens: ids.length, completion_tokens: out.ids.length, total_tokens: ids.length + out.ids.length },
    timing: { prefill_ms: round1(ms), decode_ms: 0, decode_tokens: 0, grammar_ms: 0 },
    memory: heapBytes(),
  });
}

// The engine's reasons a reply ended, as OpenAI's finish_reason.
const FINISH = { eos: 'stop', stop: 'stop', length: 'length', cancelled: 'abort' };

const round1 = (x) => Math.round(x * 10) / 10;
