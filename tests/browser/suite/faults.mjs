// Faults: a panic, a lost GPU device, a template calling the clock.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  REPO, MODEL_REL, check, sameIds, log, dated, uiLoad, ensureLoaded,
} from '../harness.mjs';

export default [
  {
    name: 'panic: a panic in the wasm module (deliberate, on a module instance of its own) reports its message and source location on the console',
    async run({ page }) {
      const seen = [];
      const listen = (m) => seen.push(m.text());
      page.on('console', listen);
      const thrown = await page.evaluate(async () => {
        const m = await import(new URL('pkg/hearth.js', location.href).href + '?panic-test');
        await m.default();
        try {
          m.__panicForTests();
          return 'no panic';
        } catch (e) {
          return String(e);
        }
      });
      page.off('console', listen);
      const report = seen.find((l) => l.includes('a deliberate panic for the panic-hook test')) || '';
      log(`thrown: ${thrown}; console: ${JSON.stringify(report.split('\n').slice(0, 2).join(' '))}`);
      check(thrown !== 'no panic', 'the call did not panic');
      check(/src\/web\/mod\.rs:\d+/.test(report), `the console report has no message and location: ${JSON.stringify(seen)}`);
    },
  },
  {
    name: 'gpu-lost: a destroyed GPU device ends generation with a gpu_lost error, and the model loads again (the wasm engine driven in the page)',
    async run({ page }) {
      const r = await page.evaluate(async (modelUrl) => {
        const m = await import(new URL('pkg/hearth.js', location.href).href + '?gpu-lost');
        await m.default();
        const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
        const engine = async () => {
          const loader = await m.Loader.create(bytes.length, 'gpu');
          for (let at = 0; at < bytes.length; at += 1 << 20) loader.push(bytes.subarray(at, at + (1 << 20)));
          return loader.finish(64, 0);
        };
        const prompt = Uint32Array.from([1, 9690, 198, 2683]);
        const out = {};
        const first = await engine();
        out.backend = JSON.parse(first.info()).backend;
        const opts = '{"max_tokens": 8}';
        out.before = JSON.parse(await first.start(prompt, '{"temperature": 0}', undefined, opts)).id;
        first.__loseDeviceForTests();
        try {
          out.after = await first.step();
        } catch (e) {
          out.error = String(e.message ?? e);
        }
        const second = await engine();
        out.again = JSON.parse(await second.start(prompt, '{"temperature": 0}', undefined, opts)).id;
        return out;
      }, MODEL_REL);
      log(`backend ${r.backend}; first token ${r.before}; after the loss: ${JSON.stringify(r.error ?? r.after)}; reloaded: first token ${r.again}`);
      check(r.backend.startsWith('gpu'), `not on the GPU: ${r.backend}`);
      check(/^gpu_lost: the GPU device was lost/.test(r.error || ''), `after destroy(): ${JSON.stringify(r)}`);
      check(r.again === r.before, `the reloaded engine's first token ${r.again} != ${r.before}`);
    },
  },
  {
    name: 'dated: a chat template calling strftime_now (as Llama 3.1\'s does) renders in the browser with the page\'s date, as natively (CPU backend)',
    async run({ page }) {
      const r = await uiLoad(page, 'test/dated.gguf', 'cpu');
      check(r.loaded, `load failed: ${r.error}`);
      const reply = await page.evaluate(async () => {
        const out = await window.hearthPage.engine.chat.completions.create({ messages: [{ role: 'user', content: 'What day is it?' }], max_tokens: 4, temperature: 0 });
        return { usage: out.usage, ids: out.hearth.tokenIds, text: out.choices[0].message.content };
      });
      const file = path.join(os.tmpdir(), `hearth-dated-${process.pid}.gguf`);
      fs.writeFileSync(file, dated);
      try {
        const cli = path.join(REPO, 'target/release/hearth');
        const native = JSON.parse(execFileSync(cli, ['generate', file, '--chat', 'What day is it?', '--max-tokens', '4', '--temperature', '0', '--backend', 'cpu', '--json'], { encoding: 'utf8' }));
        const today = new Date().toUTCString().split(' ').slice(1, 4).join(' ');
        log(`prompt ${reply.usage.prompt_tokens} tokens (native ${native.n_prompt}), today ${today}; reply ${JSON.stringify(reply.text)}`);
        check(reply.usage.prompt_tokens === native.n_prompt && sameIds(reply.ids, native.ids), `browser ${JSON.stringify(reply)} vs native ${JSON.stringify(native)}`);
      } finally {
        fs.rmSync(file, { force: true });
      }
      await ensureLoaded(page, 'cpu');
    },
  },
];
