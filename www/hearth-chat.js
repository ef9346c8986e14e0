// <hearth-chat model="models/SmolLM2-135M-Instruct.Q4_1.gguf"></hearth-chat>
// A self-contained chat box: one script tag, no other markup or styles needed.
//   <script type="module" src="hearth-chat.js"></script>
// (or from the npm package on a CDN: https://cdn.jsdelivr.net/npm/hearth-llm@VERSION/hearth-chat.js).
// Attributes: model (URL, relative to the page), backend (auto|gpu|cpu), temperature,
// max-tokens, system (a system prompt), placeholder. The model loads when the element is
// connected. Events: 'hearth-loaded' (detail: info), 'hearth-error' (detail: {message}),
// 'hearth-reply' (detail: {content, finish_reason, usage}).
import { load } from './hearth.js';

const STYLE = `
:host { display: block; font: 15px/1.45 system-ui, sans-serif; color: #1f1d1a; border: 1px solid #ddd6cb;
        border-radius: 10px; background: #fff; max-width: 100%; }
.wrap { display: flex; flex-direction: column; gap: .5rem; padding: .6rem; height: 100%; }
.status { font-size: .8rem; color: #6b655c; overflow-wrap: anywhere; }
progress { width: 100%; height: .5rem; }
.err { background: #fde8e8; color: #9b1c1c; padding: .4rem .55rem; border-radius: 6px; overflow-wrap: anywhere; }
.log { display: flex; flex-direction: column; gap: .45rem; overflow-y: auto; min-height: 4rem; max-height: var(--hearth-chat-height, 24rem); }
.m { padding: .4rem .6rem; border-radius: 8px; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 92%; }
.user { align-self: flex-end; background: #fde9dc; }
.assistant { align-self: flex-start; background: #f6f4f0; }
form { display: flex; gap: .4rem; }
textarea { flex: 1; font: inherit; padding: .4rem; border: 1px solid #ddd6cb; border-radius: 6px; resize: vertical; min-width: 0; }
button { font: inherit; padding: .4rem .8rem; border-radius: 6px; border: 1px solid #c2410c; background: #c2410c; color: #fff; }
button.stop { background: #fff; color: #1f1d1a; border-color: #ddd6cb; }
button:disabled { opacity: .45; }
[hidden] { display: none !important; }
`;

class HearthChat extends HTMLElement {
  #engine = null;
  #history = [];
  #busy = null;
  #els = null;
  #loadedFor = null;

  static get observedAttributes() {
    return ['model', 'backend'];
  }

  connectedCallback() {
    if (!this.#els) this.#render();
    this.#maybeLoad();
  }

  disconnectedCallback() {
    this.#busy?.abort();
    const engine = this.#engine;
    this.#engine = null;
    this.#loadedFor = null;
    engine?.unload();
  }

  attributeChangedCallback() {
    if (this.isConnected && this.#els) this.#maybeLoad();
  }

  /** The loaded engine (hearth.js API), or null. */
  get engine() {
    return this.#engine;
  }

  #render() {
    const root = this.attachShadow({ mode: 'open' });
    // A constructed style sheet works under a strict Content-Security-Policy; <style> otherwise.
    let inline = '';
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      root.adoptedStyleSheets = [sheet];
    } catch {
      inline = `<style>${STYLE}</style>`;
    }
    root.innerHTML = `${inline}
      <div class="wrap">
        <div class="status" part="status">Loading…</div>
        <progress max="1" part="progress"></progress>
        <div class="err" part="error" hidden></div>
        <div class="log" part="log" aria-live="polite"></div>
        <form part="form">
          <textarea rows="1" part="input"></textarea>
          <button type="button" class="stop" disabled>Stop</button>
          <button type="submit" disabled>Send</button>
        </form>
      </div>`;
    const q = (s) => root.querySelector(s);
    this.#els = { status: q('.status'), bar: q('progress'), err: q('.err'), log: q('.log'), form: q('form'), input: q('textarea'), stop: q('.stop'), send: q('button[type=submit]') };
    this.#els.input.placeholder = this.getAttribute('placeholder') || 'Ask something…';
    this.#els.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send(this.#els.input.value);
    });
    this.#els.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send(this.#els.input.value);
      }
    });
    this.#els.stop.addEventListener('click', () => this.#busy?.abort());
  }

  #error(message) {
    this.#els.err.textContent = message || '';
    this.#els.err.hidden = !message;
    if (message) this.dispatchEvent(new CustomEvent('hearth-error', { detail: { message } }));
  }

  async #maybeLoad() {
    const model = this.getAttribute('model');
    const backend = this.getAttribute('backend') || 'auto';
    const key = `${model}|${backend}`;
    if (!model || key === this.#loadedFor) return;
    this.#loadedFor = key;
    this.#busy?.abort();
    const old = this.#engine;
    this.#engine = null;
    await old?.unload();
    const ctrl = new AbortController();
    this.#busy = ctrl;
    const { status, bar, send, stop } = this.#els;
    this.#error('');
    send.disabled = true;
    stop.disabled = false;
    bar.hidden = false;
    status.textContent = 'Loading the model…';
    try {
      const engine = await load(model, {
        backend,
        signal: ctrl.signal,
        onProgress: (p) => {
          if (p.total) {
            bar.max = p.total;
            bar.value = p.loaded;
          }
          status.textContent = `Loading the model… ${(p.loaded / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB`;
        },
      });
      if (this.#loadedFor !== key) {
        engine.unload();
        return;
      }
      this.#engine = engine;
      const where = engine.info.backend.startsWith('gpu') ? 'WebGPU' : 'the CPU';
      status.textContent = `${engine.info.name || 'model'} on ${where}${engine.info.notice ? ` — ${engine.info.notice}` : ''}`;
      bar.hidden = true;
      send.disabled = false;
      this.dispatchEvent(new CustomEvent('hearth-loaded', { detail: engine.info }));
    } catch (e) {
      if (this.#loadedFor === key) {
        this.#loadedFor = null;
        status.textContent = 'No model loaded.';
        bar.hidden = true;
        this.#error(`Could not load the model: ${e.message}`);
      }
    } finally {
      if (this.#busy === ctrl) this.#busy = null;
      stop.disabled = true;
    }
  }

  /** Sends a user message; resolves with the reply text. */
  async send(text) {
    text = String(text ?? '').trim();
    if (!text || !this.#engine || this.#busy) return null;
    const { log, input, send, stop } = this.#els;
    this.#error('');
    input.value = '';
    const add = (cls, t) => {
      const d = document.createElement('div');
      d.className = `m ${cls}`;
      d.setAttribute('part', `message ${cls}`);
      d.textContent = t;
      log.append(d);
      log.scrollTop = log.scrollHeight;
      return d;
    };
    add('user', text);
    const out = add('assistant', '…');
    const system = this.getAttribute('system');
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...this.#history, { role: 'user', content: text }];
    const ctrl = new AbortController();
    this.#busy = ctrl;
    send.disabled = true;
    stop.disabled = false;
    let content = '';
    try {
      const temperature = Number(this.getAttribute('temperature') ?? 0.7);
      const max_tokens = parseInt(this.getAttribute('max-tokens') ?? '256', 10);
      let finish = null;
      let usage = null;
      const request = { messages, stream: true, stream_options: { include_usage: true }, temperature, max_tokens };
      for await (const chunk of this.#engine.chat.completions.create(request, { signal: ctrl.signal })) {
        usage = chunk.usage ?? usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        content += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
        out.textContent = content || '…';
        log.scrollTop = log.scrollHeight;
      }
      this.#history.push({ role: 'user', content: text }, { role: 'assistant', content });
      this.dispatchEvent(new CustomEvent('hearth-reply', { detail: { content, finish_reason: finish, usage } }));
      return content;
    } catch (e) {
      if (e.name === 'AbortError') {
        // Stopped: the reply keeps what arrived.
        this.#history.push({ role: 'user', content: text }, { role: 'assistant', content });
        this.dispatchEvent(new CustomEvent('hearth-reply', { detail: { content, finish_reason: 'abort', usage: null } }));
        return content;
      }
      this.#error(`Generation failed: ${e.message}`);
      return null;
    } finally {
      this.#busy = null;
      send.disabled = !this.#engine;
      stop.disabled = true;
    }
  }

  /** Clears the conversation. */
  async reset() {
    this.#busy?.abort();
    this.#history = [];
    this.#els?.log.replaceChildren();
    await this.#engine?.resetChat();
  }
}

if (!customElements.get('hearth-chat')) customElements.define('hearth-chat', HearthChat);
export { HearthChat };
