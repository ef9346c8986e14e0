// The chat page: loads a model with hearth.js and streams replies into #messages.
import { load } from './hearth.js';

const $ = (id) => document.getElementById(id);
const ui = {
  loadForm: $('load-form'),
  url: $('model-url'),
  backend: $('backend'),
  load: $('load'),
  progress: $('progress'),
  bar: $('progress-bar'),
  progressText: $('progress-text'),
  status: $('status'),
  error: $('error'),
  messages: $('messages'),
  chatForm: $('chat-form'),
  prompt: $('prompt'),
  send: $('send'),
  stop: $('stop'),
  newChat: $('new-chat'),
  settings: $('settings'),
  settingsSummary: $('settings-summary'),
  temperature: $('temperature'),
  maxTokens: $('max-tokens'),
  seed: $('seed'),
  stopStrings: $('stop-strings'),
  replyFormat: $('reply-format'),
};

// The Settings panel's number fields: [API name, input, label, default (shown in the field)].
// An empty field is left out of the request (the engine's default).
const NUMBER_SETTINGS = [
  ['temperature', ui.temperature, 'temperature', 0.7],
  ['top_p', $('top-p'), 'top-p', 1],
  ['top_k', $('top-k'), 'top-k', 0],
  ['min_p', $('min-p'), 'min-p', 0],
  ['repeat_penalty', $('repeat-penalty'), 'repeat penalty', 1],
  ['frequency_penalty', $('frequency-penalty'), 'frequency penalty', 0],
  ['presence_penalty', $('presence-penalty'), 'presence penalty', 0],
  ['max_tokens', ui.maxTokens, 'max tokens', 256],
  ['seed', ui.seed, 'seed', null],
];

// For tests and the console.
const page = {
  engine: null,
  lastTokenIds: [],
  lastFinishReason: null,
  lastUsage: null,
  lastTiming: null,
  // The first reply's first token after a load, from the start of that load (ms).
  firstTokenMs: null,
  lastSettings: null, // the settings the last reply was asked with (the request less messages)
  memorySamples: [],
  loadProgress: null,
  busy: false,
  mode: 'chat', // 'completion' for models without a chat template (base models), 'embed' for encoders
  embedded: [], // {text, v}: the texts embedded so far (embed mode)
  loads: 0, // finished load attempts (success or failure)
  replies: 0, // finished replies (any finish reason or an error)
};
window.hearthPage = page;

let history = []; // [{role, content}] of the current chat
let busy = null; // {kind: 'load'|'generate', controller}

const params = new URLSearchParams(location.search);
if (params.get('model')) ui.url.value = params.get('model');
if (['auto', 'gpu', 'cpu'].includes(params.get('backend'))) ui.backend.value = params.get('backend');

// --- helpers ---------------------------------------------------------------------------------

function formatBytes(n) {
  if (n == null || !Number.isFinite(n)) return '?';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function formatEta(s) {
  if (s == null || !Number.isFinite(s)) return '';
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function clearError() {
  showError('');
}

function setBusy(kind, controller) {
  busy = kind ? { kind, controller } : null;
  page.busy = !!kind;
  ui.load.disabled = kind === 'load';
  ui.url.disabled = kind === 'load';
  ui.backend.disabled = kind === 'load';
  ui.stop.disabled = !kind;
  ui.send.disabled = !!kind || !page.engine;
  ui.newChat.disabled = kind === 'generate';
}

function statusText(info) {
  const detail = info.backend.replace(/^gpu:\s*/, '').replace('(BrowserWebGpu)', '').trim();
  const threads = info.threads > 1 ? ` (${info.threads} threads)` : '';
  const where = info.backend.startsWith('gpu') ? `WebGPU${detail ? ` (${detail})` : ''}` : `the CPU${threads}`;
  let text = `${info.name || 'model'} running on ${where} · context ${info.context_length} tokens · loaded in ${(info.load_ms / 1000).toFixed(1)} s${info.from_cache ? ' from the offline cache' : ''}`;
  if (info.encoder) text += ' · an encoder: it embeds your texts and compares each with the ones before';
  else if (info.encoder_decoder) text += ' · a text-to-text model: it answers the text you give it (e.g. "translate English to German: …")';
  else if (!info.chat_template) text += ' · a base model: it continues the text you give it';
  if (info.notice) text += ` — ${info.notice}`;
  return text;
}

// Chat for models with a chat template; text completion for base models, which have none;
// embeddings for encoders, which make no text.
const MODES = {
  chat: { placeholder: 'Ask something… (Enter sends, Shift+Enter for a new line)', send: 'Send', who: 'Assistant' },
  completion: { placeholder: 'Text for the model to continue… (Enter sends, Shift+Enter for a new line)', send: 'Complete', who: 'Continuation' },
  embed: { placeholder: 'A text to embed and compare with the ones before… (Enter sends)', send: 'Embed', who: 'Embedding' },
};

function setMode(mode) {
  page.mode = mode;
  document.body.dataset.mode = mode;
  ui.prompt.placeholder = MODES[mode].placeholder;
  ui.send.textContent = MODES[mode].send;
}

function addMessage(role, text) {
  const el = document.createElement('div');
  el.className = `msg ${role}`;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : page.engine?.info.encoder_decoder ? 'Output' : MODES[page.mode].who;
  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = text;
  el.append(who, body);
  ui.messages.append(el);
  el.scrollIntoView({ block: 'end' });
  return { el, body };
}

// --- loading ---------------------------------------------------------------------------------

async function loadModel() {
  clearError();
  const url = ui.url.value.trim();
  if (!url) {
    showError('Enter the URL of a GGUF model file.');
    return;
  }
  if (busy?.kind === 'generate') busy.controller.abort();
  const controller = new AbortController();
  const old = page.engine;
  page.engine = null;
  setBusy('load', controller);
  if (old) await old.unload().catch(() => {}); // one model at a time: free the old one first
  ui.progress.hidden = false;
  ui.bar.removeAttribute('value'); // indeterminate until the size is known
  ui.progressText.textContent = 'Starting…';
  ui.status.textContent = `Loading ${url}…`;
  page.memorySamples = [];
  try {
    const engine = await load(url, {
      backend: ui.backend.value,
      signal: controller.signal,
      onMemory: (bytes) => page.memorySamples.push(bytes),
      onProgress: (p) => {
        page.loadProgress = p;
        if (p.total) {
          ui.bar.max = p.total;
          ui.bar.value = p.loaded;
        }
        const parts = [`${formatBytes(p.loaded)}${p.total ? ` / ${formatBytes(p.total)}` : ''}`];
        if (p.rate > 0) parts.push(`${formatBytes(p.rate)}/s`);
        if (p.eta != null && p.loaded < (p.total ?? Infinity)) parts.push(`ETA ${formatEta(p.eta)}`);
        if (p.fromCache) parts.push('from the offline cache');
        ui.progressText.textContent = parts.join(' · ');
      },
    });
    page.engine = engine;
    page.firstTokenMs = null;
    history = [];
    page.embedded = [];
    setMode(engine.info.encoder ? 'embed' : engine.info.chat_template && !engine.info.encoder_decoder ? 'chat' : 'completion');
    ui.status.textContent = statusText(engine.info);
    ui.status.dataset.backend = engine.info.backend.startsWith('gpu') ? 'gpu' : 'cpu';
    ui.progressText.textContent += ' · ready';
    ui.prompt.focus();
  } catch (e) {
    ui.status.textContent = 'No model loaded.';
    delete ui.status.dataset.backend;
    showError(e.name === 'AbortError' ? 'Loading was stopped.' : `Could not load the model: ${e.message}`);
    ui.progress.hidden = true;
  } finally {
    page.loads++;
    setBusy(null);
  }
}

// --- chatting --------------------------------------------------------------------------------

// Stop strings: separated by commas or new lines, trimmed, empty ones dropped.
function parseStops(text) {
  return text
    .split(/[,\n]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

// The request's settings from the panel. Ranges are left to the engine, which rejects a bad
// value with a message naming it; only text that is not a number at all is caught here.
function readSettings() {
  const settings = {};
  for (const [key, input, label] of NUMBER_SETTINGS) {
    input.removeAttribute('aria-invalid');
    if (input.validity.badInput) {
      input.setAttribute('aria-invalid', 'true');
      throw Object.assign(new Error(`${label[0].toUpperCase()}${label.slice(1)} must be a number.`), { input });
    }
    if (input.value.trim() !== '') settings[key] = Number(input.value);
  }
  ui.stopStrings.removeAttribute('aria-invalid');
  const stop = parseStops(ui.stopStrings.value);
  if (stop.length) settings.stop = stop;
  if (ui.replyFormat.value !== 'text') settings.response_format = { type: ui.replyFormat.value };
  return settings;
}

// "temperature 0.7 · 256 tokens", then every setting that is not at its default.
function summarizeSettings() {
  const parts = [];
  for (const [key, input, label, def] of NUMBER_SETTINGS) {
    const v = input.value.trim();
    if (key === 'temperature') parts.push(`temperature ${v || def}`);
    else if (key === 'max_tokens') parts.push(`${v || def} tokens`);
    else if (v !== '' && Number(v) !== def) parts.push(`${label} ${v}`);
  }
  const stops = parseStops(ui.stopStrings.value).length;
  if (stops) parts.push(`${stops} stop string${stops === 1 ? '' : 's'}`);
  if (ui.replyFormat.value === 'json_object') parts.push('JSON');
  ui.settingsSummary.textContent = parts.join(' · ');
}

// Marks the field an engine error names (e.g. "top_p (0 < top_p <= 1) 5 is out of range"),
// opens the panel and focuses it.
function markInvalid(message) {
  let input = null;
  for (const [key, field] of NUMBER_SETTINGS) {
    if (new RegExp(`\\b${key}\\b`).test(message)) {
      input = field;
      break;
    }
  }
  if (!input && /\bstop\b/.test(message)) input = ui.stopStrings;
  if (!input && /response_format|structured output/.test(message)) input = ui.replyFormat;
  if (!input) return;
  input.setAttribute('aria-invalid', 'true');
  ui.settings.open = true;
  input.focus();
}

async function send() {
  clearError();
  const engine = page.engine;
  if (!engine) {
    showError('Load a model first.');
    return;
  }
  if (busy) return;
  const text = ui.prompt.value.trim();
  if (!text) return;
  if (page.mode === 'embed') {
    // (The sampling settings do not apply.)
    ui.prompt.value = '';
    await embedText(engine, text);
    return;
  }
  let settings;
  try {
    settings = readSettings();
  } catch (e) {
    showError(e.message);
    ui.settings.open = true;
    e.input?.focus();
    return;
  }
  page.lastSettings = settings;
  ui.prompt.value = '';
  const user = addMessage('user', text);
  const messages = [...history, { role: 'user', content: text }];
  const reply = addMessage('assistant', '');
  reply.el.classList.add('pending');
  const controller = new AbortController();
  setBusy('generate', controller);
  const tokenIds = [];
  page.lastTokenIds = tokenIds;
  let content = '';
  let finish = null;
  try {
    // A base model continues the text itself; a chat model answers the conversation.
    const input = page.mode === 'chat' ? { messages } : { prompt: text };
    const stream = engine.chat.completions.create({ ...input, stream: true, stream_options: { include_usage: true }, ...settings }, { signal: controller.signal });
    for await (const chunk of stream) {
      if (chunk.usage) page.lastUsage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.content) {
        content += choice.delta.content;
        reply.body.textContent = content;
        reply.el.scrollIntoView({ block: 'end' });
      }
      tokenIds.push(...(chunk.hearth?.tokenIds ?? []));
      if (choice.finish_reason) {
        finish = choice.finish_reason;
        page.lastTiming = chunk.hearth?.timing ?? null;
      }
    }
    page.lastFinishReason = finish;
    if (finish === 'abort') reply.el.dataset.finish = 'abort';
    else if (finish === 'length') reply.el.dataset.finish = 'length';
    if (page.mode === 'chat') history = [...messages, { role: 'assistant', content }];
    const t = page.lastTiming;
    if (t && page.lastUsage) {
      const n = page.lastUsage.completion_tokens;
      const speed = t.decode_tokens > 0 ? ` · ${(t.decode_tokens / (t.decode_ms / 1000)).toFixed(t.decode_ms > 1000 * t.decode_tokens ? 2 : 1)} tokens/s` : '';
      const who = engine.info.encoder_decoder ? 'Output' : MODES[page.mode].who;
      // Time to the first token: reading the prompt and drawing one token. For the first reply
      // of a model also from the start of its load (from the network or the offline cache).
      let first = ` · first token in ${(t.prefill_ms / 1000).toFixed(2)} s`;
      if (page.firstTokenMs == null && engine.info?.load_ms != null) {
        page.firstTokenMs = engine.info.load_ms + t.prefill_ms;
        first += ` (${(page.firstTokenMs / 1000).toFixed(2)} s from the start of the${engine.info.from_cache ? ' cached' : ''} load)`;
      }
      reply.el.querySelector('.who').textContent = `${who} · ${n} token${n === 1 ? '' : 's'}${first}${speed}`;
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      // Stopped: the reply keeps what arrived, and the conversation goes on from it.
      page.lastFinishReason = 'abort';
      reply.el.dataset.finish = 'abort';
      if (page.mode === 'chat') history = [...messages, { role: 'assistant', content }];
      return;
    }
    page.lastFinishReason = 'error';
    showError(`Generation failed: ${e.message}`);
    if (!content) {
      // Nothing was generated (e.g. a setting out of range): take the turn back, so that the
      // message can be sent again once the setting is fixed.
      user.el.remove();
      reply.el.remove();
      if (!ui.prompt.value) ui.prompt.value = text;
      markInvalid(e.message);
    } else {
      reply.el.dataset.finish = 'error';
    }
  } finally {
    reply.el.classList.remove('pending');
    reply.el.dataset.done = 'true';
    page.replies++;
    setBusy(null);
  }
}

// Embeds one text and shows the start of its vector and its cosine similarity with each text
// embedded before it.
async function embedText(engine, text) {
  const user = addMessage('user', text);
  const reply = addMessage('assistant', '');
  reply.el.classList.add('pending');
  const controller = new AbortController();
  setBusy('generate', controller);
  try {
    const t0 = performance.now();
    const res = await engine.embeddings.create({ input: text }, { signal: controller.signal });
    const v = res.data[0].embedding;
    const ms = performance.now() - t0;
    const sims = page.embedded.map((e, i) => `#${i + 1} ${e.v.reduce((s, x, j) => s + x * v[j], 0).toFixed(3)}`);
    page.embedded.push({ text, v });
    const head = v.slice(0, 4).map((x) => x.toFixed(4)).join(', ');
    reply.body.textContent = `[${head}, …] (${v.length} dimensions)${sims.length ? `\ncosine similarity with ${sims.join(', ')}` : ''}`;
    const n = res.usage.prompt_tokens;
    reply.el.querySelector('.who').textContent = `Embedding #${page.embedded.length} · ${n} token${n === 1 ? '' : 's'} · ${ms.toFixed(0)} ms`;
    page.lastFinishReason = 'stop';
  } catch (e) {
    page.lastFinishReason = e.name === 'AbortError' ? 'abort' : 'error';
    if (e.name !== 'AbortError') showError(`Embedding failed: ${e.message}`);
    user.el.remove();
    reply.el.remove();
    if (!ui.prompt.value) ui.prompt.value = text;
  } finally {
    reply.el.classList.remove('pending');
    reply.el.dataset.done = 'true';
    page.replies++;
    setBusy(null);
  }
}

async function newChat() {
  clearError();
  if (busy?.kind === 'generate') busy.controller.abort();
  history = [];
  page.embedded = [];
  ui.messages.replaceChildren();
  page.lastTokenIds = [];
  if (page.engine) {
    try {
      await page.engine.resetChat();
    } catch (e) {
      showError(`Could not reset the chat: ${e.message}`);
    }
  }
  ui.prompt.focus();
}

// --- wiring ----------------------------------------------------------------------------------

ui.loadForm.addEventListener('submit', (e) => {
  e.preventDefault();
  loadModel();
});
ui.chatForm.addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.stop.addEventListener('click', () => busy?.controller.abort());
ui.settings.addEventListener('input', (e) => {
  e.target.removeAttribute?.('aria-invalid');
  summarizeSettings();
});
summarizeSettings();
ui.newChat.addEventListener('click', newChat);
setBusy(null);

if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  // The service worker also adds the COOP/COEP headers that make the page cross-origin
  // isolated (CPU threads) on hosts that cannot send them. They apply from the next load of
  // the page: reload once when it first takes control, unless the page is already in use.
  const uncontrolled = !navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    const key = 'hearth-isolation-reload';
    if (uncontrolled && !self.crossOriginIsolated && !sessionStorage.getItem(key) && page.loads === 0 && !busy) {
      sessionStorage.setItem(key, '1');
      location.reload();
    }
  });
  navigator.serviceWorker.register('./sw.js').catch((e) => console.warn('hearth: service worker not registered:', e));
}
