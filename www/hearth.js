// hearth: the main-thread API. Every model runs in its own module worker (worker.js), so
// nothing here blocks the page. Shaped like WebLLM / the OpenAI client:
//
//   import { load } from './hearth.js';   // or from 'hearth-llm' (npm), or a CDN's URL of this file
//   const engine = await load('models/SmolLM2-135M-Instruct.Q4_1.gguf', { onProgress });
//   for await (const chunk of engine.chat.completions.create({ messages, stream: true }))
//     out.textContent += chunk.choices[0].delta.content;

import { partUrls } from './parts.js';

const DEFAULT_TEMPERATURE = 0.7;
const DEFAULT_MAX_TOKENS = 512;
const MAX_N = 16; // completions per request
const MAX_SIZE = 2 ** 31 - 1; // the largest maxContext / prefillChunk / contextShift
const SEED_RANGE = 2 ** 53; // the worker reduces seeds to [0, 2^53)

// The seed of completion i of a request with `seed`: the worker's own reduction of `seed`
// (so choice 0 of n gets the same reply as n = 1), plus i, wrapping within [0, 2^53).
function choiceSeed(seed, i) {
  const base = Math.abs(Math.floor(seed)) % SEED_RANGE;
  return base >= SEED_RANGE - i ? base - (SEED_RANGE - i) : base + i;
}

function abortError() {
  const e = new Error('aborted');
  e.name = 'AbortError';
  e.code = 'aborted';
  return e;
}

// Marks a caller's mistake (a TypeError from the checks) with code invalid_request.
function asRequestError(e) {
  if (e instanceof TypeError && !e.code) e.code = 'invalid_request';
  return e;
}

// An error from the worker, with its stable `code` (see the README's list).
function workerError(message, code) {
  if (message === 'aborted') return abortError();
  const e = new Error(message);
  if (code) e.code = code;
  return e;
}



function baseURL() {
  if (typeof document !== 'undefined' && document.baseURI) return document.baseURI;
  return self.location.href;
}

const HUB = 'https://huggingface.co';
// The Cache Storage the worker keeps models in (worker.js's CACHE_NAME).
const MODEL_CACHE = 'hearth-models-v1';

/** The models in this origin's model cache: [{url, bytes}] (bytes null where unknown). */
export async function listCachedModels() {
  if (typeof caches === 'undefined') return [];
  const cache = await caches.open(MODEL_CACHE);
  const out = [];
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    const n = Number(res?.headers.get('content-length'));
    out.push({ url: req.url, bytes: Number.isFinite(n) && n > 0 ? n : null });
  }
  return out;
}

/**
 * Removes a model from the cache (any name load() takes for it; every part of a split model
 * named by its first part); resolves to whether it was there.
 */
export async function deleteCachedModel(url, { hubEndpoint } = {}) {
  if (typeof caches === 'undefined') return false;
  const href = resolveModelUrl(url, hubEndpoint == null ? {} : { hubEndpoint });
  const cache = await caches.open(MODEL_CACHE);
  let found = false;
  for (const part of partUrls(href)) found = (await cache.delete(part)) || found;
  return found;
}

/**
 * A model URL as people have it, made fetchable: `hf:owner/repo/path/file.gguf` (or
 * `hf:owner/repo@revision/…`) becomes the Hugging Face Hub's download URL
 * (`https://huggingface.co/owner/repo/resolve/main/path/file.gguf`), whose redirect to the Hub's
 * CDN fetch follows; a Hub page URL (`…/blob/…`) becomes its download URL (`…/resolve/…`);
 * anything else is resolved against the page. The result is also the cache key, so a model is
 * cached under this one URL however it was named. `hubEndpoint` replaces the Hub's origin
 * (a mirror; tests).
 */
export function resolveModelUrl(url, { hubEndpoint = HUB } = {}) {
  const s = String(url).trim();
  let hub;
  try {
    hub = new URL(String(hubEndpoint));
  } catch {
    throw new TypeError(`hubEndpoint must be an absolute URL, got ${JSON.stringify(hubEndpoint)}`);
  }
  const root = hub.href.replace(/\/+$/, '');
  if (/^hf:/i.test(s)) {
    const m = /^hf:(?:\/\/)?([\w.-]+)\/([\w.-]+)(?:@([^/\s]+))?\/([^\s]+)$/i.exec(s);
    const parts = m ? m[4].split('/') : [];
    if (!m || parts.some((p) => !p || p === '.' || p === '..')) {
      throw new TypeError(`a Hub model is hf:owner/repo/file.gguf or hf:owner/repo@revision/path/file.gguf, got ${JSON.stringify(s)}`);
    }
    const [, owner, repo, revision = 'main'] = m;
    return `${root}/${owner}/${repo}/resolve/${encodeURIComponent(revision)}/${parts.map(encodeURIComponent).join('/')}`;
  }
  const u = new URL(s, baseURL());
  // A Hub file page: /owner/repo/blob/revision/path → /owner/repo/resolve/revision/path.
  const base = hub.pathname.replace(/\/+$/, '');
  if (u.origin === hub.origin && u.pathname.startsWith(base + '/')) {
    const rest = u.pathname.slice(base.length).split('/');
    if (rest.length > 5 && rest[3] === 'blob') {
      rest[3] = 'resolve';
      u.pathname = base + rest.join('/');
    }
  }
  return u.href;
}

function randomId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// Browsers start workers only from the page's own origin. Where hearth.js came from another
// one (a CDN), the worker is a same-origin blob: module that imports the real one: its
// import.meta.url is then the CDN's, so worker.js finds the wasm packages there (fetched with
// CORS), while its origin, and so its Cache Storage, is the page's.
function isCrossOrigin(url) {
  return typeof location !== 'undefined' && url.origin !== location.origin;
}

// A blob: URL of a module that imports `url` (revoke it once its worker has ended).
function bootstrapUrl(url) {
  return URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};\n`], { type: 'text/javascript' }));
}

// One worker and the requests in flight on it.
class WorkerClient {
  constructor() {
    this.nextId = 1;
    this.handlers = new Map();
    this.dead = null;
    this.started = false; // whether the worker has answered once
    this.bootstrap = null;
    const url = new URL('./worker.js', import.meta.url);
    const crossOrigin = isCrossOrigin(url);
    if (crossOrigin) {
      this.bootstrap = bootstrapUrl(url);
      this.worker = new Worker(this.bootstrap, { type: 'module', name: 'hearth' });
    } else {
      // Written out in full: bundlers recognize this form and bundle the worker.
      this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'hearth' });
    }
    this.worker.onmessage = (e) => {
      this.started = true;
      const msg = e.data;
      const h = this.handlers.get(msg.id);
      if (h) h(msg);
    };
    this.worker.onerror = (e) => {
      e.preventDefault?.();
      // A worker that fails to start gets an error event without a message.
      const why = e.message || (crossOrigin
        ? `could not load ${url.href} from another origin; its server must send Access-Control-Allow-Origin (CORS) for it and the wasm files beside it`
        : `could not load ${url.href}`);
      const error = new Error(`the hearth worker failed: ${why}`);
      // A worker that never answered failed to start: the load failed.
      error.code = this.started ? 'engine_crashed' : 'model_load_failed';
      this.kill(error);
    };
    this.worker.onmessageerror = () => {
      const error = new Error('the hearth worker sent a message that could not be read');
      error.code = 'internal_error';
      this.kill(error);
    };
  }

  // Sends a request; `handler` sees every reply with its id until it returns true (finished).
  request(msg, handler) {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    this.handlers.set(id, (m) => {
      if (handler(m)) this.handlers.delete(id);
    });
    this.worker.postMessage({ ...msg, id });
    return id;
  }

  abort(id) {
    if (!this.dead && this.handlers.has(id)) this.worker.postMessage({ type: 'abort', id });
  }

  // Ends the worker; every request still in flight gets `error`.
  kill(error) {
    if (this.dead) return;
    this.dead = error;
    this.worker.terminate();
    if (this.bootstrap) URL.revokeObjectURL(this.bootstrap);
    const handlers = [...this.handlers.values()];
    this.handlers.clear();
    for (const h of handlers) h({ type: 'error', message: error.message, code: error.code, fatal: true });
  }
}

/**
 * Streams a GGUF model from `url` into a new engine running in a worker. A url naming the first
 * part of a split model (`…-00001-of-00003.gguf`, llama.cpp's gguf-split) loads every part.
 * Options: onProgress({loaded, total, rate, eta, fromCache}), sha256 (an array for a split
 * model, one per part), backend ('auto'|'gpu'|'cpu'),
 * maxContext, contextShift (keep this many first tokens and drop older ones when the context
 * is full, instead of failing), prefillChunk (tokens per forward call while reading a prompt),
 * threads (CPU threads where the page is cross-origin isolated; 0 = one per core, at most 8),
 * signal (AbortSignal), onMemory(bytes) (wasm heap samples while loading), hubEndpoint (see
 * resolveModelUrl, which turns `url` into the URL fetched and cached), cache (false: neither
 * read nor write the model cache).
 */
export async function load(url, options = {}) {
  try {
    return await loadModel(url, options);
  } catch (e) {
    throw asRequestError(e);
  }
}

// sha256 is one hex hash for one file, an array of one per part for a split model.
function checkSha256(sha256, parts) {
  if (sha256 == null) return;
  const list = Array.isArray(sha256) ? sha256 : [sha256];
  if (list.length !== parts || (parts > 1 && !Array.isArray(sha256))) {
    throw new TypeError(parts > 1 ? `sha256: this model is split into ${parts} files; give an array of ${parts} hashes, one per part` : 'sha256: give one hash (a string) for one file');
  }
  const bad = list.find((h) => typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h.trim()));
  if (bad !== undefined) throw new TypeError(`sha256: ${JSON.stringify(bad)} is not a hex SHA-256 (64 hex digits)`);
}

async function loadModel(url, options) {
  if (typeof url !== 'string' && !(url instanceof URL)) throw new TypeError('load(url): url must be a string or URL');
  const { onProgress, onMemory, sha256, backend = 'auto', maxContext = 0, contextShift, prefillChunk = 0, threads = 0, signal, hubEndpoint, cache = true } = options;
  if (typeof cache !== 'boolean') throw new TypeError(`cache must be true or false, got ${JSON.stringify(cache)}`);
  // Sizes cross into wasm as 32-bit integers: anything larger would wrap, so it is refused here.
  const size = (v) => Number.isInteger(v) && v >= 0 && v <= MAX_SIZE;
  if (!size(prefillChunk)) {
    throw new TypeError(`prefillChunk must be an integer from 0 to ${MAX_SIZE}, got ${JSON.stringify(prefillChunk)}`);
  }
  if (!size(maxContext)) {
    throw new TypeError(`maxContext must be an integer from 0 to ${MAX_SIZE}, got ${JSON.stringify(maxContext)}`);
  }
  if (!Number.isInteger(threads) || threads < 0 || threads > 64) {
    throw new TypeError(`threads must be an integer from 0 to 64, got ${JSON.stringify(threads)}`);
  }
  if (contextShift != null && !size(contextShift)) {
    throw new TypeError(`contextShift must be an integer from 0 to ${MAX_SIZE}, got ${JSON.stringify(contextShift)}`);
  }
  if (!['auto', 'gpu', 'cpu'].includes(backend)) throw new TypeError(`backend must be "auto", "gpu" or "cpu", got ${JSON.stringify(backend)}`);
  if (signal?.aborted) throw abortError();
  const href = resolveModelUrl(url, hubEndpoint == null ? {} : { hubEndpoint });
  checkSha256(sha256, partUrls(href).length);
  const client = new WorkerClient();
  const memory = { samples: [], peak: 0 };
  const record = (bytes) => {
    memory.samples.push(bytes);
    memory.peak = Math.max(memory.peak, bytes);
    try {
      onMemory?.(bytes);
    } catch (e) {
      console.error(e);
    }
  };
  let onAbort = null;
  try {
    const loaded = await new Promise((resolve, reject) => {
      const id = client.request({ type: 'load', url: href, sha256, backend, maxContext, contextShift, prefillChunk, threads, cache }, (m) => {
        switch (m.type) {
          case 'progress':
            try {
              onProgress?.({ loaded: m.loaded, total: m.total, rate: m.rate, eta: m.eta, fromCache: m.fromCache });
            } catch (e) {
              console.error(e);
            }
            return false;
          case 'memory':
            record(m.bytes);
            return false;
          case 'loaded':
            record(m.memory);
            resolve(m);
            return true;
          case 'error':
            reject(workerError(m.message, m.code));
            return true;
          default:
            return false;
        }
      });
      if (signal) {
        onAbort = () => client.abort(id);
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    return new HearthEngine(client, { ...loaded.info, url: href }, memory);
  } catch (e) {
    client.kill(e);
    throw e;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function normalizeContent(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p) => (typeof p === 'string' ? p : p && p.type === 'text' ? String(p.text ?? '') : '')).join('');
  }
  if (content == null) return '';
  throw new TypeError('message content must be a string or an array of text parts');
}

// Request fields: what the engine uses, and OpenAI's that mean nothing for a local model and are
// ignored (`model`: the loaded model answers; `user`, `store`, `metadata`). Others are refused.
const REQUEST_FIELDS = new Set([
  'messages', 'prompt', 'temperature', 'max_tokens', 'max_completion_tokens', 'seed', 'n', 'top_k', 'top_p', 'min_p',
  'repeat_penalty', 'repeat_last_n', 'frequency_penalty', 'presence_penalty', 'logit_bias', 'response_format', 'stop',
  'stream', 'stream_options', 'signal', 'model', 'user', 'store', 'metadata', 'n_beams', 'length_penalty',
]);

// The AbortSignal of a request: create(request, { signal }) as in OpenAI's client, or the
// request's own `signal` field (either aborts it).
function requestSignal(request, options) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw new TypeError('create(request, options): options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'signal') throw new TypeError(`create(request, options): unknown option ${JSON.stringify(key)} (only signal is supported)`);
  }
  const signals = [request.signal, options.signal].filter((x) => x != null);
  for (const x of signals) {
    if (typeof x.aborted !== 'boolean' || typeof x.addEventListener !== 'function') throw new TypeError('signal must be an AbortSignal');
  }
  if (signals.length < 2) return signals[0] ?? null;
  return AbortSignal.any(signals);
}

// Embedding request fields: OpenAI's (`model` and `user` ignored, as for chat).
const EMBEDDING_FIELDS = new Set(['input', 'encoding_format', 'dimensions', 'model', 'user', 'signal']);
const MAX_EMBEDDING_INPUTS = 2048; // OpenAI's limit per request

function checkEmbeddingRequest(req, info) {
  if (!req || typeof req !== 'object') throw new TypeError('embeddings.create(request): request must be an object');
  const unknown = Object.keys(req).filter((k) => !EMBEDDING_FIELDS.has(k));
  if (unknown.length) throw new TypeError(`embeddings.create(request): unsupported field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  // As OpenAI: a string, strings, one array of token ids, or arrays of them.
  let input = req.input;
  if (typeof input === 'string') input = [input];
  else if (Array.isArray(input) && input.length > 0 && input.every((t) => typeof t === 'number')) input = [input];
  const isIds = (t) => Array.isArray(t) && t.every((id) => Number.isInteger(id) && id >= 0 && id < info.n_vocab);
  if (!Array.isArray(input) || input.length === 0 || input.length > MAX_EMBEDDING_INPUTS || !input.every((t) => typeof t === 'string' || isIds(t))) {
    throw new TypeError(
      `input must be a string, an array of token ids (integers below ${info.n_vocab}), or an array of 1 to ${MAX_EMBEDDING_INPUTS} of either`,
    );
  }
  if (input.some((t) => t.length === 0)) throw new TypeError('input: an empty string or token list has no embedding');
  const format = req.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw new TypeError(`encoding_format must be "float" or "base64", got ${JSON.stringify(format)}`);
  if (req.dimensions != null && req.dimensions !== info.embedding_length) {
    throw new TypeError(`dimensions: this model's embeddings have ${info.embedding_length} dimensions (they cannot be shortened)`);
  }
  return { input, encoding_format: format };
}

// The worker's Float32Arrays as OpenAI's response: numbers, or base64 of the little-endian
// float32 bytes.
function embeddingResponse(m, format, model) {
  const encode = (v) => {
    if (format === 'float') return Array.from(v);
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  return {
    object: 'list',
    data: m.data.map((v, index) => ({ object: 'embedding', index, embedding: encode(v) })),
    model,
    usage: { prompt_tokens: m.tokens, total_tokens: m.tokens },
  };
}

function checkRequest(req) {
  if (!req || typeof req !== 'object') throw new TypeError('create(request): request must be an object');
  const unknown = Object.keys(req).filter((k) => !REQUEST_FIELDS.has(k));
  if (unknown.length) {
    throw new TypeError(`create(request): unsupported field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (see the README for the fields hearth takes)`);
  }
  if (req.stream_options != null) {
    const o = req.stream_options;
    if (typeof o !== 'object' || Object.keys(o).some((k) => k !== 'include_usage') || (o.include_usage != null && typeof o.include_usage !== 'boolean')) {
      throw new TypeError(`stream_options must be {include_usage: boolean}, got ${JSON.stringify(o)}`);
    }
  }
  const out = {};
  if (req.messages !== undefined) {
    if (!Array.isArray(req.messages) || req.messages.length === 0) throw new TypeError('messages must be a non-empty array of {role, content}');
    out.messages = req.messages.map((m, i) => {
      if (!m || typeof m.role !== 'string') throw new TypeError(`messages[${i}].role must be a string`);
      return { role: m.role, content: normalizeContent(m.content) };
    });
  } else if (typeof req.prompt === 'string') {
    out.prompt = req.prompt;
  } else {
    throw new TypeError('create(request): messages (or a prompt string) is required');
  }
  const temperature = req.temperature ?? DEFAULT_TEMPERATURE;
  if (typeof temperature !== 'number' || !(temperature >= 0)) throw new TypeError(`temperature must be a number >= 0, got ${JSON.stringify(req.temperature)}`);
  out.temperature = temperature;
  const maxTokens = req.max_tokens ?? req.max_completion_tokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new TypeError(`max_tokens must be a positive integer, got ${JSON.stringify(maxTokens)}`);
  out.max_tokens = maxTokens;
  if (req.seed != null) {
    if (typeof req.seed !== 'number' || !Number.isFinite(req.seed)) throw new TypeError(`seed must be a number, got ${JSON.stringify(req.seed)}`);
    out.seed = req.seed;
  }
  const n = req.n ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_N) throw new TypeError(`n must be an integer from 1 to ${MAX_N}, got ${JSON.stringify(req.n)}`);
  out.n = n;
  // The other sampling settings go to the engine, which checks their ranges.
  const sampling = {};
  for (const key of ['top_k', 'top_p', 'min_p', 'repeat_penalty', 'repeat_last_n', 'frequency_penalty', 'presence_penalty']) {
    if (req[key] != null) {
      if (typeof req[key] !== 'number' || !Number.isFinite(req[key])) throw new TypeError(`${key} must be a number, got ${JSON.stringify(req[key])}`);
      sampling[key] = req[key];
    }
  }
  if (req.logit_bias != null) {
    if (typeof req.logit_bias !== 'object') throw new TypeError('logit_bias must be an object mapping token ids to biases');
    sampling.logit_bias = Object.entries(req.logit_bias).map(([id, bias]) => {
      if (!/^\d+$/.test(id) || typeof bias !== 'number') throw new TypeError(`logit_bias: ${JSON.stringify(id)}: ${JSON.stringify(bias)} is not a token id and a number`);
      return [Number(id), bias];
    });
  }
  out.sampling = sampling;
  if (req.response_format != null) {
    const f = req.response_format;
    if (typeof f !== 'object' || !['text', 'json_object', 'json_schema'].includes(f.type)) {
      throw new TypeError(`response_format must be {type: 'text' | 'json_object' | 'json_schema', …}, got ${JSON.stringify(f)}`);
    }
    out.response_format = f; // the engine checks the schema
  }
  const beams = req.n_beams ?? 1;
  if (!Number.isInteger(beams) || beams < 1 || beams > MAX_N) throw new TypeError(`n_beams must be an integer from 1 to ${MAX_N}, got ${JSON.stringify(req.n_beams)}`);
  if (req.length_penalty != null && (typeof req.length_penalty !== 'number' || !Number.isFinite(req.length_penalty))) {
    throw new TypeError(`length_penalty must be a number, got ${JSON.stringify(req.length_penalty)}`);
  }
  if (beams > 1) {
    const clash = ['response_format', 'stop', 'logit_bias'].filter((k) => req[k] != null).concat(n > 1 ? ['n'] : []);
    if (clash.length) throw new TypeError(`n_beams cannot be combined with ${clash.join(', ')}`);
    out.n_beams = beams;
    if (req.length_penalty != null) out.length_penalty = req.length_penalty;
  }
  if (req.stop != null) {
    const stop = Array.isArray(req.stop) ? req.stop : [req.stop];
    if (!stop.every((s) => typeof s === 'string')) throw new TypeError('stop must be a string or an array of strings');
    out.stop = stop;
  }
  return out;
}

// An async queue of chunks fed by worker messages.
class ChunkQueue {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.ended = false;
    this.error = null;
  }
  push(item) {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.items.push(item);
  }
  end(error = null) {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    for (const w of this.waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }
  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.ended) {
      if (this.error) {
        const e = this.error;
        this.error = null; // thrown once, then the iterator is done
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/**
 * What create({stream: true}) returns: an async iterable of chat.completion.chunk objects.
 * It may also be awaited first (`await create(...)`) as with the OpenAI and WebLLM clients.
 */
class ChatCompletionStream {
  #queue;
  #cancel;
  #taken = false;
  constructor(queue, cancel) {
    this.#queue = queue;
    this.#cancel = cancel;
  }
  [Symbol.asyncIterator]() {
    if (this.#taken) throw new Error('this stream can be iterated only once');
    this.#taken = true;
    const queue = this.#queue;
    const cancel = this.#cancel;
    return {
      next: () => queue.next(),
      return: (value) => {
        cancel();
        return Promise.resolve({ value, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
  /** Stops the generation: iterating then throws an AbortError after the chunks already received. */
  abort() {
    this.#cancel();
  }
  then(resolve, reject) {
    const iterable = { [Symbol.asyncIterator]: () => this[Symbol.asyncIterator](), abort: () => this.abort() };
    return Promise.resolve(iterable).then(resolve, reject);
  }
}

class HearthEngine {
  #client;
  #unloaded = false;
  constructor(client, info, memory) {
    this.#client = client;
    /** {name, architecture, n_vocab, context_length, backend, notice, url, bytes, sha256, parts, from_cache, cached, load_ms} */
    this.info = Object.freeze(info);
    /** wasm heap samples (bytes) taken while loading and after each reply; peak = largest. */
    this.memory = memory;
    this.chat = { completions: { create: (request, options) => this.#create(request, options) } };
    this.embeddings = { create: (request, options) => this.#embed(request, options) };
    /** The module's listCachedModels and deleteCachedModel, for code that holds only an engine. */
    this.listCachedModels = listCachedModels;
    this.deleteCachedModel = deleteCachedModel;
  }

  get backend() {
    return this.info.backend;
  }

  #checkAlive() {
    if (this.#unloaded) throw new Error('the engine was unloaded');
    if (this.#client.dead) throw this.#client.dead;
  }

  #create(request, options = {}) {
    let req;
    let signal = null;
    let error = null;
    try {
      this.#checkAlive();
      if (this.info.encoder) {
        throw new TypeError(`this model is an encoder (${this.info.architecture}): it makes embeddings, not text; use embeddings.create`);
      }
      if (this.info.encoder_decoder && request?.messages != null) {
        throw new TypeError(`this model is a text-to-text encoder-decoder (${this.info.architecture}): send a prompt (e.g. "translate English to German: …"), not messages`);
      }
      req = checkRequest(request);
      signal = requestSignal(request, options);
    } catch (e) {
      error = asRequestError(e);
    }
    const stream = !!request?.stream;
    const queue = new ChunkQueue();
    let cancel = () => {};
    if (error) queue.end(error);
    else cancel = this.#start(req, signal, queue, !stream ? 'last' : request.stream_options?.include_usage ? 'chunk' : 'none');
    if (stream) return new ChatCompletionStream(queue, cancel);
    return collect(queue, req?.n ?? 1);
  }

  // Posts one generate request per choice; the worker runs them one after another in order
  // (the second and later ones reuse the prompt's KV cache). Their replies become chunks in
  // `queue`: choice i's chunks carry index i and end with its own finish_reason chunk; the
  // last chunk of all carries the usage, with the prompt counted once. Returns the cancel
  // function, which stops every choice (the running one within a token, the queued ones at
  // once) and ends the queue with an AbortError.
  // `usage`: 'last' puts the usage on the last chunk (for collect), 'chunk' in a chunk of its
  // own after it (a stream with stream_options.include_usage, as OpenAI does), 'none' nowhere.
  #start(req, signal, queue, usageMode) {
    const { n, ...one } = req;
    const base = {
      id: `chatcmpl-${randomId()}`,
      object: 'chat.completion.chunk',
      created: Math.floor(Date.now() / 1000),
      model: this.info.name || this.info.url,
    };
    const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    // With a usage chunk, every other chunk says usage: null (as OpenAI's do).
    const nullUsage = usageMode === 'chunk' ? { usage: null } : {};
    const open = new Set(); // request ids whose reply has not ended
    let remaining = n;
    let onAbort = null;
    const detach = () => {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      onAbort = null;
    };
    const cancel = () => {
      for (const id of open) this.#client.abort(id);
    };
    const handler = (index) => {
      let first = true;
      const delta = (content) => {
        if (!first) return { content };
        first = false;
        return { role: 'assistant', content };
      };
      return (m) => {
        switch (m.type) {
          case 'token':
            queue.push({
              ...base,
              choices: [{ index, delta: delta(m.text), finish_reason: null }],
              ...nullUsage,
              hearth: { tokenIds: m.tokenIds ?? (m.tokenId == null ? [] : [m.tokenId]) },
            });
            return false;
          case 'done': {
            open.delete(m.id);
            if (m.finish_reason === 'abort') {
              // Aborted (the signal, or the stream's abort()): as with fetch, a stream throws an
              // AbortError after the chunks that arrived, and create() without a stream rejects.
              if (!queue.ended) {
                queue.end(abortError());
                detach();
                cancel();
              }
              return true;
            }
            if (m.memory) {
              this.memory.samples.push(m.memory);
              this.memory.peak = Math.max(this.memory.peak, m.memory);
            }
            // Every choice has the same prompt (a choice aborted before it started reports 0).
            usage.prompt_tokens = Math.max(usage.prompt_tokens, m.usage?.prompt_tokens ?? 0);
            usage.completion_tokens += m.usage?.completion_tokens ?? 0;
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
            remaining--;
            const chunk = {
              ...base,
              choices: [{ index, delta: delta(''), finish_reason: m.finish_reason }],
              hearth: { tokenIds: [], timing: m.timing, memory: m.memory },
            };
            if (remaining > 0) {
              queue.push({ ...chunk, ...nullUsage });
            } else {
              if (usageMode === 'last') {
                queue.push({ ...chunk, usage: { ...usage } });
              } else if (usageMode === 'chunk') {
                queue.push({ ...chunk, usage: null });
                queue.push({ ...base, choices: [], usage: { ...usage }, hearth: { tokenIds: [] } });
              } else {
                queue.push(chunk);
              }
              queue.end();
              detach();
            }
            return true;
          }
          case 'error':
            open.delete(m.id);
            if (!queue.ended) {
              queue.end(workerError(m.message, m.code));
              detach();
              cancel(); // the choices still queued would fail the same way
            }
            return true;
          default:
            return false;
        }
      };
    };
    try {
      for (let i = 0; i < n; i++) {
        const msg = { type: 'generate', ...one };
        if (one.seed != null) msg.seed = choiceSeed(one.seed, i);
        open.add(this.#client.request(msg, handler(i)));
      }
    } catch (e) {
      queue.end(e);
      cancel();
      return () => {};
    }
    if (signal) {
      if (signal.aborted) cancel();
      else {
        onAbort = cancel;
        signal.addEventListener('abort', onAbort, { once: true });
      }
    }
    return cancel;
  }

  /**
   * Perplexity of `text` (tokenized as is): resolves to {ppl, n_tokens, n_scored, mean_nll}.
   * Texts longer than `window` tokens (default: the context) are scored in windows starting
   * every `stride` tokens (default: `window`). The conversation cache is cleared.
   */
  perplexity(text, { window = 0, stride = 0 } = {}) {
    return new Promise((resolve, reject) => {
      try {
        this.#checkAlive();
        if (typeof text !== 'string') throw new TypeError('perplexity(text): text must be a string');
        for (const [k, v] of [['window', window], ['stride', stride]]) {
          if (!Number.isInteger(v) || v < 0) throw new TypeError(`${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
        }
        this.#client.request({ type: 'perplexity', text, window, stride }, (m) => {
          if (m.type === 'error') reject(workerError(m.message, m.code));
          else if (m.type === 'perplexity') resolve(m.result);
          else return false;
          return true;
        });
      } catch (e) {
        reject(asRequestError(e));
      }
    });
  }

  // embeddings.create: OpenAI's request and response shapes. The texts are evaluated one after
  // another in the model's worker, which clears the conversation cache.
  #embed(request, options) {
    return new Promise((resolve, reject) => {
      let onAbort = null;
      let signal = null;
      const settle = (f, v) => {
        if (onAbort) signal.removeEventListener('abort', onAbort);
        f(v);
      };
      try {
        this.#checkAlive();
        if (this.info.encoder_decoder) {
          throw new TypeError(`embeddings of a text-to-text encoder-decoder (${this.info.architecture}) are not implemented`);
        }
        const { input, encoding_format: format } = checkEmbeddingRequest(request, this.info);
        signal = requestSignal(request, options);
        if (signal?.aborted) throw abortError();
        const model = this.info.name || this.info.url;
        const id = this.#client.request({ type: 'embed', input }, (m) => {
          if (m.type === 'error') settle(reject, workerError(m.message, m.code));
          else if (m.type === 'embeddings') settle(resolve, embeddingResponse(m, format, model));
          else return false;
          return true;
        });
        if (signal) {
          onAbort = () => {
            this.#client.abort(id);
            settle(reject, abortError());
          };
          signal.addEventListener('abort', onAbort, { once: true });
        }
      } catch (e) {
        settle(reject, asRequestError(e));
      }
    });
  }

  /** Forgets the conversation cache (the next reply evaluates its whole prompt). */
  resetChat() {
    return this.#simple('reset');
  }

  /** Frees the model and ends its worker. The engine cannot be used afterwards. */
  async unload() {
    if (this.#unloaded) return;
    try {
      await Promise.race([this.#simple('unload'), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      /* the worker is ended below anyway */
    }
    this.#unloaded = true;
    this.#client.kill(new Error('the engine was unloaded'));
  }

  #simple(type) {
    return new Promise((resolve, reject) => {
      try {
        this.#checkAlive();
        this.#client.request({ type }, (m) => {
          if (m.type === 'error') reject(workerError(m.message, m.code));
          else resolve();
          return true;
        });
      } catch (e) {
        reject(asRequestError(e));
      }
    });
  }
}

// Gathers a stream's chunks into one chat.completion with n choices.
async function collect(queue, n) {
  const choices = Array.from({ length: n }, () => ({ content: '', tokenIds: [], finish_reason: null, timing: null }));
  let last = null;
  for (;;) {
    const { value, done } = await queue.next();
    if (done) break;
    const c = value.choices[0];
    if (!c) continue;
    const choice = choices[c.index];
    choice.content += c.delta.content ?? '';
    choice.tokenIds.push(...value.hearth.tokenIds);
    if (c.finish_reason) {
      choice.finish_reason = c.finish_reason;
      choice.timing = value.hearth.timing ?? null;
    }
    last = value;
  }
  const timing = { prefill_ms: 0, decode_ms: 0, decode_tokens: 0, grammar_ms: 0 };
  for (const c of choices) {
    if (!c.timing) continue;
    timing.prefill_ms += c.timing.prefill_ms;
    timing.decode_ms += c.timing.decode_ms;
    timing.decode_tokens += c.timing.decode_tokens;
    timing.grammar_ms += c.timing.grammar_ms ?? 0;
  }
  timing.prefill_ms = Math.round(timing.prefill_ms * 10) / 10;
  timing.decode_ms = Math.round(timing.decode_ms * 10) / 10;
  timing.grammar_ms = Math.round(timing.grammar_ms * 10) / 10;
  return {
    id: last.id,
    object: 'chat.completion',
    created: last.created,
    model: last.model,
    choices: choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.content }, finish_reason: c.finish_reason })),
    usage: last.usage,
    hearth: {
      tokenIds: choices[0].tokenIds,
      timing,
      memory: last.hearth.memory,
      choices: choices.map((c) => ({ tokenIds: c.tokenIds, timing: c.timing })),
    },
  };
}

export const Hearth = { load, resolveModelUrl, listCachedModels, deleteCachedModel };
export default Hearth;
