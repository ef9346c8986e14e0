// The other models and families: real ones by URL, a soak, synthetic families, encoders, T5.

import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, MODELS, MODEL_REL, FAMILIES, FAMILY_STEMS, MIB, HEAP_LIMIT, GOLDEN_TOKENS, embeddingError,
  check, sameIds, log, ms, state, uiLoad, uiSend, ensureLoaded, perToken, golden, goldenMessage,
  goldenIds, nativeIds, BIG_MODELS, BIG_TOKENS,
} from '../harness.mjs';

export default [
  {
    name: 'models: Qwen2.5-Coder (chat template, K-quants) and Gemma 3 (base model, SentencePiece) load by URL on WebGPU and on the CPU; the chat prompt renders like the reference, Gemma completes text, greedy ids equal the native CLI\'s; the 491 MB file keeps the wasm heap under 64 MiB on the GPU path',
    async run({ page }) {
      for (const m of BIG_MODELS) {
        const gold = JSON.parse(fs.readFileSync(path.resolve(REPO, '..', 'shared', 'golden', m.golden), 'utf8'));
        const text = m.chat ? gold.messages[0].content : gold.prompt;
        for (const backend of ['gpu', 'cpu']) {
          const n = BIG_TOKENS[backend];
          const loaded = await uiLoad(page, `models/${m.file}`, backend);
          check(loaded.loaded, `loading ${m.file} (${backend}) failed: ${loaded.error}`);
          const info = loaded.info;
          check(info.backend.startsWith(backend), `expected the ${backend} backend, got ${info.backend} ${info.notice || ''}`);
          check(info.architecture === m.name && info.chat_template === m.chat, `info ${JSON.stringify(info)}`);
          const mode = await page.evaluate(() => [window.hearthPage.mode, document.getElementById('send').textContent]);
          check(mode[0] === (m.chat ? 'chat' : 'completion'), `page mode ${mode}`);
          log(`${m.file} on ${info.backend}: loaded in ${ms(loaded.wallMs)}; page mode ${mode[0]} (${mode[1]})`);
          if (backend === 'gpu') {
            const peak = Math.max(...loaded.memorySamples, loaded.memory.peak);
            log(`wasm heap peak while loading on the GPU path: ${(peak / MIB).toFixed(1)} MiB`);
            check(peak < HEAP_LIMIT, `wasm heap reached ${(peak / MIB).toFixed(1)} MiB`);
          }
          await page.click('#new-chat');
          const r = await uiSend(page, text, { temperature: 0, maxTokens: n });
          check(!r.error, `error: ${r.error}`);
          log(`${m.chat ? 'reply' : 'continuation'} ${JSON.stringify(r.text)}; ids ${JSON.stringify(r.ids)}; prompt ${r.usage.prompt_tokens} tokens, ${perToken(r.timing).toFixed(0)} ms/token`);
          // The prompt the reference used: Qwen's template with its default system prompt, or
          // Gemma's text with BOS.
          check(r.usage.prompt_tokens === gold.prompt_ids.length, `prompt of ${r.usage.prompt_tokens} tokens, the reference's has ${gold.prompt_ids.length}`);
          const want = nativeIds(text, n, ['--temperature', '0'], { model: path.join(MODELS, m.file), input: [m.chat ? '--chat' : '--prompt', text] });
          check(r.lastSettings?.max_tokens === n, `the page asked for ${JSON.stringify(r.lastSettings)}, not max_tokens ${n}`);
          check(sameIds(r.ids, want), `${backend} ids ${JSON.stringify(r.ids)} (${r.finish}) differ from the native CLI's ${JSON.stringify(want)}`);
          // float64's free-running text only up to its first near-tie (margin < 0.1).
          const sure = gold.f64_greedy.top1_minus_top2_margin.findIndex((m) => m < 0.1);
          const k = Math.min(n, sure < 0 ? n : sure);
          check(sameIds(r.ids.slice(0, k), gold.f64_greedy.ids.slice(0, k)), `ids ${JSON.stringify(r.ids)} differ from float64's first ${k}`);
        }
      }
      // Back to the default model for the tests after this one.
      await ensureLoaded(page, 'cpu');
    },
  },
  {
    name: 'soak: 500 generations on one engine (CPU path) with random aborts, resets and n = 3, then unload() and a fresh load(): the wasm heap stays within 1 MiB of its warm-up size, no request sticks, the last greedy reply equals the native ids; a GPU engine freed twice leaves no live GPU buffer (run by name only: minutes)',
    byName: true,
    async run({ page }) {
      const n = Number(process.env.HEARTH_SOAK || 500);
      const seed = Number(process.env.HEARTH_SEED || 7);
      log(`${n} generations, seed ${seed} (HEARTH_SOAK, HEARTH_SEED)`);
      const want = goldenIds(GOLDEN_TOKENS);
      const r = await page.evaluate(async ({ url, n, seed, msg, maxTokens }) => {
        const { load } = await import('./hearth.js');
        // A small counter-based generator, so a seed replays the run.
        let state = seed >>> 0;
        const rand = () => {
          state = (state + 0x6d2b79f5) >>> 0;
          let t = Math.imul(state ^ (state >>> 15), 1 | state);
          t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
          return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
        };
        const questions = ['What is the capital of France?', 'Tell me a story about a dragon.', 'List three colors.', 'Explain rain in one sentence.'];
        // A request that does not settle within a minute is stuck.
        const settle = (p) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('a request is stuck')), 60_000))]);
        const out = { aborts: 0, resets: 0, multi: 0, tokens: 0 };
        let engine = await load(url, { backend: 'cpu' });
        const heap = () => engine.memory.samples[engine.memory.samples.length - 1];
        out.afterLoad = heap();
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          if (i === Math.floor(n / 10)) out.warm = heap();
          const messages = [{ role: 'user', content: questions[Math.floor(rand() * questions.length)] }];
          const kind = Math.floor(rand() * 10);
          if (kind === 0) {
            await settle(engine.resetChat());
            out.resets++;
          } else if (kind === 1) {
            const c = await settle(engine.chat.completions.create({ messages, n: 3, temperature: 0.8, seed: i, max_tokens: 8 }));
            out.tokens += c.usage.completion_tokens;
            out.multi++;
          } else {
            const abortAfter = kind < 4 ? 1 + Math.floor(rand() * 6) : 0;
            const controller = new AbortController();
            let chunks = 0;
            let finish = null;
            const stream = engine.chat.completions.create({ messages, temperature: 0.8, top_k: 40, seed: i, max_tokens: 1 + Math.floor(rand() * 24), stream: true, signal: controller.signal });
            await settle((async () => {
              try {
                for await (const c of stream) {
                  chunks++;
                  out.tokens += c.hearth.tokenIds.length;
                  if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
                  if (abortAfter && chunks === abortAfter) controller.abort();
                }
              } catch (e) {
                if (e.name !== 'AbortError' || !abortAfter) throw e;
                finish = 'aborted';
              }
            })());
            if (!finish) throw new Error(`generation ${i} ended without a finish_reason or an AbortError`);
            if (abortAfter) out.aborts++;
          }
        }
        out.seconds = (performance.now() - t0) / 1000;
        out.end = heap();
        const greedy = await settle(engine.chat.completions.create({ messages: [{ role: 'user', content: msg }], temperature: 0, max_tokens: maxTokens }));
        out.last = greedy.hearth.tokenIds;
        out.endAfterGreedy = heap();
        await engine.unload();
        engine = await load(url, { backend: 'cpu' });
        out.freshAfterLoad = heap();
        const again = await settle(engine.chat.completions.create({ messages: [{ role: 'user', content: msg }], temperature: 0, max_tokens: maxTokens }));
        out.fresh = again.hearth.tokenIds;
        await engine.unload();

        // The GPU leg, on the wasm engine driven in the page so that its buffers can be
        // counted: live = created and neither destroyed nor on a destroyed device.
        const live = new Map();
        const owner = new WeakMap();
        const proto = { create: GPUDevice.prototype.createBuffer, destroy: GPUBuffer.prototype.destroy, destroyDevice: GPUDevice.prototype.destroy };
        GPUDevice.prototype.createBuffer = function (d) {
          const b = proto.create.call(this, d);
          if (!live.has(this)) live.set(this, new Set());
          live.get(this).add(b);
          owner.set(b, this);
          return b;
        };
        GPUBuffer.prototype.destroy = function () {
          live.get(owner.get(this))?.delete(this);
          return proto.destroy.call(this);
        };
        GPUDevice.prototype.destroy = function () {
          live.delete(this);
          return proto.destroyDevice.call(this);
        };
        const count = () => [...live.values()].reduce((a, set) => a + set.size, 0);
        try {
          const m = await import(new URL('pkg/hearth.js', location.href).href + '?soak');
          await m.default();
          const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
          out.gpu = [];
          for (let round = 0; round < 2; round++) {
            const loader = await m.Loader.create(bytes.length, 'gpu');
            for (let at = 0; at < bytes.length; at += 1 << 20) loader.push(bytes.subarray(at, at + (1 << 20)));
            const gpuEngine = loader.finish(64, 0);
            const first = JSON.parse(await gpuEngine.start(Uint32Array.from([1, 9690, 198, 2683]), '{"temperature": 0}', undefined, '{"max_tokens": 2}'));
            const second = JSON.parse(await gpuEngine.step());
            const loaded = count();
            gpuEngine.free();
            out.gpu.push({ loaded, freed: count(), ids: [first.id, second.id], finish: second.finish });
          }
        } finally {
          Object.assign(GPUDevice.prototype, { createBuffer: proto.create, destroy: proto.destroyDevice });
          GPUBuffer.prototype.destroy = proto.destroy;
        }
        return out;
      }, { url: MODEL_REL, n, seed, msg: goldenMessage, maxTokens: GOLDEN_TOKENS });
      const mib = (b) => `${(b / MIB).toFixed(1)} MiB`;
      log(`${n} generations (${r.tokens} tokens, ${r.aborts} aborted, ${r.resets} resets, ${r.multi} with n = 3) in ${r.seconds.toFixed(0)} s`);
      log(`wasm heap: ${mib(r.afterLoad)} after load, ${mib(r.warm)} after warm-up, ${mib(r.end)} at the end, ${mib(r.endAfterGreedy)} after the greedy reply; a fresh engine after unload(): ${mib(r.freshAfterLoad)}`);
      log(`GPU engine (page): ${JSON.stringify(r.gpu)}`);
      // wasm memory only grows, in 64 KiB pages: a leak of 2 KiB per generation shows as 1 MiB.
      check(Math.max(r.end, r.endAfterGreedy) <= r.warm + MIB, `the wasm heap grew from ${mib(r.warm)} to ${mib(r.end)} (${mib(r.endAfterGreedy)})`);
      check(r.freshAfterLoad <= r.afterLoad + MIB, `a fresh engine's heap ${mib(r.freshAfterLoad)} > the first's ${mib(r.afterLoad)}`);
      check(sameIds(r.last, want) && sameIds(r.fresh, want), `the last greedy reply ${JSON.stringify(r.last)} / fresh ${JSON.stringify(r.fresh)} != the native ids ${JSON.stringify(want)}`);
      check(r.gpu.every((g) => g.loaded > 0 && g.freed === 0) && r.gpu[0].loaded === r.gpu[1].loaded && r.gpu[0].ids.join() === r.gpu[1].ids.join(), `GPU buffers: ${JSON.stringify(r.gpu)}`);
    },
  },
  {
    name: 'families: the synthetic model of each other family (tests/fixtures/families, F32 and Q8_0) loads on WebGPU and on the CPU; the page completes text (no chat template) with the native CLI\'s greedy ids',
    async run({ page }) {
      const text = 'The cat sat on the mat and';
      for (const stem of FAMILY_STEMS) {
        for (const kind of ['f32', 'q8_0']) {
          const file = `${stem}-${kind}.gguf`;
          const want = nativeIds(text, 8, ['--temperature', '0'], { model: path.join(FAMILIES, stem.split('-')[0], file), input: ['--prompt', text] });
          for (const backend of ['gpu', 'cpu']) {
            const loaded = await uiLoad(page, `test/families/${stem.split('-')[0]}/${file}`, backend);
            check(loaded.loaded, `loading ${file} (${backend}) failed: ${loaded.error}`);
            check(loaded.info.backend.startsWith(backend), `expected the ${backend} backend, got ${loaded.info.backend}`);
            const mode = await page.evaluate(() => window.hearthPage.mode);
            check(mode === 'completion', `page mode ${mode} for a model without a chat template`);
            await page.click('#new-chat');
            const r = await uiSend(page, text, { temperature: 0, maxTokens: 8 });
            check(!r.error, `error: ${r.error}`);
            log(`${file} on ${loaded.info.backend}: ${JSON.stringify(r.text)} ids ${JSON.stringify(r.ids)}`);
            check(sameIds(r.ids, want), `${file} on ${backend}: ids ${JSON.stringify(r.ids)} differ from the native CLI's ${JSON.stringify(want)}`);
          }
        }
      }
      await ensureLoaded(page, 'cpu');
    },
  },
  {
    name: 'encoders: BERT and nomic-bert (synthetic, F32 and Q8_0) on WebGPU and the CPU: embeddings.create of the fixture ids equals the float64 pooled embedding, of texts equals that of llama.cpp\'s ids for them (WordPiece in wasm); info says encoder and the file\'s pooling; a chat request is an invalid_request TypeError; the page embeds texts and compares them; the real nomic-embed-text-v1.5 (F16) on the CPU is within its float64 reference\'s bound',
    async run({ page }) {
      for (const [dir, stem] of [['bert', 'bert'], ['bert', 'bert-cls'], ['nomic-bert', 'nomic-bert']]) {
        for (const kind of ['f32', 'q8_0']) {
          const fx = JSON.parse(fs.readFileSync(path.join(FAMILIES, dir, `${stem}-${kind}.json`), 'utf8'));
          const pooling = fx.model.pooling_type === 2 ? 'cls' : 'mean';
          const cases = fx.tokenize_cases.slice(0, 4);
          for (const backend of ['gpu', 'cpu']) {
            const r = await page.evaluate(async ({ url, backend, ids, cases }) => {
              const { load } = await import('/hearth.js');
              const engine = await load(url, { backend });
              const byIds = await engine.embeddings.create({ input: ids });
              const texts = await engine.embeddings.create({ input: cases.map((c) => c.text) });
              const llamaIds = await engine.embeddings.create({ input: cases.map((c) => c.ids) });
              const chat = await engine.chat.completions
                .create({ messages: [{ role: 'user', content: 'hi' }] })
                .then(() => 'resolved', (e) => `${e.name} ${e.code}: ${e.message}`);
              const { encoder, pooling, backend: used } = engine.info;
              await engine.unload();
              const same = texts.data.map((d, i) => d.embedding.every((x, j) => x === llamaIds.data[i].embedding[j]));
              return { v: byIds.data[0].embedding, usage: texts.usage, same, chat, encoder, pooling, used };
            }, { url: `/test/families/${dir}/${stem}-${kind}.gguf`, backend, ids: fx.ids, cases });
            const e = embeddingError(r.v, fx[`f64_embedding_${pooling}_normalized`]);
            log(`${stem}-${kind} on ${r.used}: max abs ${e.maxAbs.toExponential(2)}, cosine ${e.cosine.toFixed(9)} against float64; texts as llama.cpp's ids: ${r.same}`);
            check(r.used.startsWith(backend) && r.encoder === true && r.pooling === pooling, `info: ${JSON.stringify({ used: r.used, encoder: r.encoder, pooling: r.pooling })}`);
            // WebGPU computes in f32 (a plain f32 forward is within 6e-7); the wasm CPU path rounds
            // activations to 16 bits, for which the embeddings test's f32 guidance holds.
            const ok = backend === 'gpu' ? e.maxAbs <= 1e-5 : e.cosine >= 0.99998 && e.maxAbs <= 0.002;
            check(ok, `${stem}-${kind} on ${backend}: ${JSON.stringify(e)}`);
            check(r.same.every(Boolean), `${stem}-${kind}: a text's embedding differs from that of llama.cpp's ids for it: ${r.same}`);
            const tokens = cases.reduce((n, c) => n + c.ids.length, 0);
            check(r.usage.prompt_tokens === tokens, `usage ${JSON.stringify(r.usage)}, llama.cpp's ids are ${tokens} tokens`);
            check(/^TypeError invalid_request: this model is an encoder \(/.test(r.chat), `chat on an encoder: ${r.chat}`);
          }
        }
      }
      // The chat page: an encoder switches it to embedding texts and comparing them.
      const loaded = await uiLoad(page, 'test/families/bert/bert-f32.gguf', 'cpu');
      check(loaded.loaded, `loading bert-f32 failed: ${loaded.error}`);
      check(/an encoder/.test(loaded.status), `status: ${loaded.status}`);
      await page.click('#new-chat');
      check((await page.evaluate(() => window.hearthPage.mode)) === 'embed', 'the page is not in embed mode');
      const first = await uiSend(page, 'The quick brown fox jumps.');
      const second = await uiSend(page, 'The quick brown dog jumps.');
      log(`page: ${JSON.stringify(first.text)} then ${JSON.stringify(second.text)}`);
      check(!first.error && !second.error && /\(64 dimensions\)$/.test(first.text), `first: ${JSON.stringify(first)}`);
      check(/\ncosine similarity with #1 0\.\d{3}$/.test(second.text), `second: ${second.text}`);
      // The real model, on the CPU (SwiftShader would take minutes for its 12 layers).
      const nomic = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/embeddings/nomic-embed-text-v1.5.json'), 'utf8'));
      const real = await page.evaluate(async (texts) => {
        const { load } = await import('/hearth.js');
        const engine = await load('/models/nomic-embed-text-v1.5.f16.gguf', { backend: 'cpu' });
        const t0 = performance.now();
        const out = await engine.embeddings.create({ input: texts });
        const ms = performance.now() - t0;
        await engine.unload();
        return { data: out.data.map((d) => d.embedding), usage: out.usage, ms };
      }, nomic.cases.map((c) => c.text));
      const errs = real.data.map((v, i) => embeddingError(v, nomic.cases[i].f64_embedding_mean_normalized));
      log(`nomic-embed-text-v1.5 (wasm CPU): ${real.usage.prompt_tokens} tokens in ${real.ms.toFixed(0)} ms; max abs ≤ ${Math.max(...errs.map((e) => e.maxAbs)).toExponential(2)}, 1 − cosine ≤ ${Math.max(...errs.map((e) => 1 - e.cosine)).toExponential(1)}`);
      const bound = nomic.suggested_tolerance.f32_runtime_f16_matmul_inputs;
      check(errs.every((e) => e.maxAbs <= bound.max_abs && 1 - e.cosine <= bound.max_one_minus_cosine), `nomic-embed in wasm vs float64: ${JSON.stringify(errs)}`);
      check(real.usage.prompt_tokens === nomic.cases.reduce((n, c) => n + c.ids.length, 0), `usage ${JSON.stringify(real.usage)}`);
      await ensureLoaded(page, 'cpu');
    },
  },
  {
    name: 't5: the synthetic T5 and flan-T5 models (F32, Q8_0) run as text-to-text models on WebGPU and the CPU: the page completes the prompt (no chat template) with the native CLI\'s greedy ids, the encoder reading the prompt and the decoder starting from its start token; the API takes a prompt (n = 2 and beam search too) and refuses messages with an invalid_request TypeError',
    async run({ page }) {
      const text = 'translate English to German: The house is wonderful.';
      for (const stem of ['t5', 'flan-t5']) {
        for (const kind of ['f32', 'q8_0']) {
          const file = `${stem}-${kind}.gguf`;
          const model = path.join(FAMILIES, 't5', file);
          const want = nativeIds(text, 8, ['--temperature', '0'], { model, input: ['--prompt', text] });
          for (const backend of ['gpu', 'cpu']) {
            const loaded = await uiLoad(page, `test/families/t5/${file}`, backend);
            check(loaded.loaded, `loading ${file} (${backend}) failed: ${loaded.error}`);
            check(loaded.info.backend.startsWith(backend) && loaded.info.encoder_decoder === true, `info ${JSON.stringify(loaded.info)}`);
            check(/a text-to-text model/.test(loaded.status), `status: ${loaded.status}`);
            const mode = await page.evaluate(() => window.hearthPage.mode);
            check(mode === 'completion', `page mode ${mode} for T5`);
            await page.click('#new-chat');
            const r = await uiSend(page, text, { temperature: 0, maxTokens: 8 });
            check(!r.error, `error: ${r.error}`);
            log(`${file} on ${loaded.info.backend}: ${JSON.stringify(r.text)} ids ${JSON.stringify(r.ids)}`);
            check(sameIds(r.ids, want), `${file} on ${backend}: ids ${JSON.stringify(r.ids)} differ from the native CLI's ${JSON.stringify(want)}`);
          }
        }
      }
      // The API, on the CPU: a prompt, two choices, a beam, and messages refused.
      const want = nativeIds(text, 6, ['--temperature', '0'], { model: path.join(FAMILIES, 't5', 't5-f32.gguf'), input: ['--prompt', text] });
      const beam = nativeIds(text, 6, ['--beams', '3'], { model: path.join(FAMILIES, 't5', 't5-f32.gguf'), input: ['--prompt', text] });
      const r = await page.evaluate(async (text) => {
        const { load } = await import('/hearth.js');
        const engine = await load('/test/families/t5/t5-f32.gguf', { backend: 'cpu' });
        const two = await engine.chat.completions.create({ prompt: text, n: 2, temperature: 0, max_tokens: 6 });
        const beam = await engine.chat.completions.create({ prompt: text, n_beams: 3, max_tokens: 6 }).catch((e) => ({ error: `${e.name} ${e.code}: ${e.message}` }));
        const chat = await engine.chat.completions
          .create({ messages: [{ role: 'user', content: text }] })
          .then(() => 'resolved', (e) => `${e.name} ${e.code}: ${e.message}`);
        await engine.unload();
        return { ids: two.hearth.choices.map((c) => c.tokenIds), beam: beam.error ?? beam.hearth?.tokenIds, chat };
      }, text);
      log(`API: choices ${JSON.stringify(r.ids)}, beam ${JSON.stringify(r.beam)}; messages: ${r.chat}`);
      check(r.ids.length === 2 && r.ids.every((ids) => sameIds(ids, want)), `choices ${JSON.stringify(r.ids)} vs native ${JSON.stringify(want)}`);
      check(sameIds(r.beam, beam), `beam ${JSON.stringify(r.beam)} vs native ${JSON.stringify(beam)}`);
      check(/^TypeError invalid_request: this model is a text-to-text encoder-decoder/.test(r.chat), `messages on T5: ${r.chat}`);
      await ensureLoaded(page, 'cpu');
    },
  },
];
