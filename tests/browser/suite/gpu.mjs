// The default model on WebGPU: greedy and sampled ids, the wasm heap, the page's look.

import fs from 'node:fs';
import path from 'node:path';
import {
  ARTIFACTS, MIB, HEAP_LIMIT, GOLDEN_TOKENS, EMBEDDINGS, embeddingError, check, sameIds, log,
  state, openSettings, uiSend, ensureLoaded, golden, goldenMessage, greedyGolden, nativeIds, STORY,
} from '../harness.mjs';

export default [
  {
    name: 'gpu-golden: default model on WebGPU, greedy chat and 16 story tokens equal the native engine\'s ids; seeded top-k sampling drawn on the GPU equals whole-row draws and the native engine\'s',
    async run({ page }) {
      await greedyGolden(page, 'gpu');
      // The golden reply ends after 8 tokens; a story runs the full 16.
      const want = nativeIds(STORY, GOLDEN_TOKENS);
      check(want.length === GOLDEN_TOKENS, `native story reply has ${want.length} tokens`);
      await page.click('#new-chat');
      const r = await uiSend(page, STORY, { temperature: 0, maxTokens: GOLDEN_TOKENS });
      check(!r.error, `error: ${r.error}`);
      log(`story ${JSON.stringify(r.text)}; ids ${JSON.stringify(r.ids)}`);
      check(sameIds(r.ids, want), `WebGPU story ids ${JSON.stringify(r.ids)} differ from the native ${JSON.stringify(want)}`);
      // Seeded sampling: the first token from the 40 candidates the GPU selects (320 bytes read
      // back), the rest drawn on the GPU in runs; a zero logit bias forces the whole-row
      // readback and wasm's draws. Both equal the native CPU engine's seeded ids (the same
      // Philox numbers on every backend).
      const topK = await page.evaluate(async (m) => {
        const engine = window.hearthPage.engine;
        const req = { messages: [{ role: 'user', content: m }], temperature: 0.9, top_k: 40, top_p: 0.95, min_p: 0.02, seed: 9, max_tokens: 12 };
        const selected = await engine.chat.completions.create(req);
        const full = await engine.chat.completions.create({ ...req, logit_bias: { 0: 0 } });
        return { selected: selected.hearth.tokenIds, full: full.hearth.tokenIds, text: selected.choices[0].message.content };
      }, STORY);
      const nativeSampled = nativeIds(STORY, 12, ['--temperature', '0.9', '--top-k', '40', '--top-p', '0.95', '--min-p', '0.02', '--seed', '9']);
      log(`top-k 40 on WebGPU: ${JSON.stringify(topK.text)} ${JSON.stringify(topK.selected)}; native ${JSON.stringify(nativeSampled)}`);
      check(topK.selected.length > 1 && sameIds(topK.selected, topK.full), `GPU-drawn ids ${JSON.stringify(topK.selected)} != whole-row ids ${JSON.stringify(topK.full)}`);
      check(sameIds(topK.selected, nativeSampled), `GPU-drawn ids ${JSON.stringify(topK.selected)} != the native engine's ${JSON.stringify(nativeSampled)}`);
      // Embeddings on WebGPU: the float64 reference within the f32 guidance of its fixture.
      const texts = EMBEDDINGS.cases.map((c) => c.text);
      const emb = await page.evaluate((input) => window.hearthPage.engine.embeddings.create({ input }).then((r) => r.data.map((d) => d.embedding)), texts);
      const errs = emb.map((v, i) => embeddingError(v, EMBEDDINGS.cases[i].embedding));
      log(`embeddings on WebGPU: cosine ≥ ${Math.min(...errs.map((e) => e.cosine)).toFixed(7)}, max abs ≤ ${Math.max(...errs.map((e) => e.maxAbs)).toExponential(2)}`);
      check(errs.every((e) => e.cosine >= 0.99998 && e.maxAbs <= 0.002), `WebGPU embeddings vs float64: ${JSON.stringify(errs)}`);
    },
  },
  {
    name: 'gpu-memory: wasm heap under 64 MiB while and after loading on the GPU path',
    async run({ page }) {
      const s = await ensureLoaded(page, 'gpu');
      const samples = s.memorySamples;
      check(samples.length >= 3, `only ${samples.length} memory samples`);
      const peakLoad = Math.max(...samples);
      const peakAll = Math.max(peakLoad, s.memory.peak);
      log(`heap samples while loading (MiB): ${samples.map((x) => (x / MIB).toFixed(1)).join(' ')}`);
      log(`${samples.length} samples while loading; heap peak ${(peakLoad / MIB).toFixed(1)} MiB while loading, ${(peakAll / MIB).toFixed(1)} MiB including replies`);
      check(peakAll < HEAP_LIMIT, `wasm heap reached ${(peakAll / MIB).toFixed(1)} MiB`);
    },
  },
  {
    name: 'screenshot: the chat page after a reply (desktop and 375 px)',
    async run({ page }) {
      const s = await state(page);
      if (!(s.loaded && s.done && s.text)) {
        await ensureLoaded(page, 'cpu');
        await page.click('#new-chat');
        const r = await uiSend(page, goldenMessage, { temperature: 0, maxTokens: 16 });
        check(!r.error, r.error);
      }
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      // The Settings panel open (its widest state), then closed at 375 px too.
      await openSettings(page);
      // Scrolled to the last message, none of it lies under the form (Settings open).
      const hidden = () => page.evaluate(() => {
        const last = [...document.querySelectorAll('#messages .msg')].pop();
        last.scrollIntoView({ block: 'end' });
        const m = last.getBoundingClientRect();
        const f = document.querySelector('#chat-form').getBoundingClientRect();
        return Math.max(0, Math.min(m.bottom, f.bottom) - Math.max(m.top, f.top));
      });
      const hiddenDesktop = await hidden();
      await page.screenshot({ path: path.join(ARTIFACTS, 'chat.png'), fullPage: true });
      await page.setViewportSize({ width: 375, height: 740 });
      const hiddenPhone = await hidden();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await page.screenshot({ path: path.join(ARTIFACTS, 'chat-375.png'), fullPage: true });
      await page.click('#settings > summary');
      const overflowClosed = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await page.screenshot({ path: path.join(ARTIFACTS, 'chat-375-closed.png'), fullPage: true });
      await page.setViewportSize({ width: 1100, height: 800 });
      log(`wrote test-artifacts/chat.png, chat-375.png (Settings open) and chat-375-closed.png`);
      check(hiddenDesktop === 0 && hiddenPhone === 0, `with Settings open the form covers ${hiddenDesktop}px (desktop) and ${hiddenPhone}px (375 px) of the last message`);
      check(overflow <= 0, `the page is ${overflow}px wider than a 375px screen (Settings open)`);
      check(overflowClosed <= 0, `the page is ${overflowClosed}px wider than a 375px screen (Settings closed)`);
    },
  },
];
