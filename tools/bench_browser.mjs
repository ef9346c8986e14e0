// Browser CPU speed, hearth against wllama (llama.cpp compiled to wasm), side by side in one
// Chromium page: the same GGUF, the same thread count, the same prompt, runs interleaved so
// both see the same load. Not part of the tests.
//
//   node tools/bench_browser.mjs [MODEL.gguf] [--threads N] [--rounds R] [--prompt-tokens P]
//                                [--steps S] [--json]
//
// Defaults: the default model, 2 threads, 3 rounds, a ~128-token prompt, 64 greedy steps.
// wllama (npm @wllama/wllama 3.8.1, CPU only: n_gpu_layers 0) is installed on first use into
// target/bench-node/, never into the project's packages. The page is served cross-origin
// isolated (COOP/COEP) so that both can use threads. Prints the best round of each, per
// engine: prefill and decode tokens/s, and hearth/wllama ratios.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WLLAMA_VERSION = '3.8.1';
const SCRATCH = path.join(REPO, 'target', 'bench-node');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const threads = Number(opt('--threads', 2));
const rounds = Number(opt('--rounds', 3));
const promptTokens = Number(opt('--prompt-tokens', 128));
const steps = Number(opt('--steps', 64));
const json = args.includes('--json');
const model = path.resolve(args.find((a) => !a.startsWith('--')) || path.join(REPO, 'models/SmolLM2-135M-Instruct.Q4_1.gguf'));
if (!fs.existsSync(model)) throw new Error(`${model} not found (./build.sh model)`);
for (const f of ['www/pkg/hearth.js', 'www/pkg-mt/hearth.js']) {
  if (!fs.existsSync(path.join(REPO, f))) throw new Error(`${f} is missing: run ./build.sh wasm`);
}

const wllamaDir = path.join(SCRATCH, 'node_modules/@wllama/wllama');
const installed = fs.existsSync(path.join(wllamaDir, 'package.json')) && JSON.parse(fs.readFileSync(path.join(wllamaDir, 'package.json'), 'utf8')).version === WLLAMA_VERSION;
if (!installed) {
  console.error(`installing @wllama/wllama@${WLLAMA_VERSION} into ${SCRATCH} (once)`);
  fs.mkdirSync(SCRATCH, { recursive: true });
  if (!fs.existsSync(path.join(SCRATCH, 'package.json'))) fs.writeFileSync(path.join(SCRATCH, 'package.json'), '{"private": true}\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', `@wllama/wllama@${WLLAMA_VERSION}`], { cwd: SCRATCH, stdio: 'inherit' });
}

const BLANK = '<!doctype html><meta charset="utf-8"><title>bench</title>';
const server = await startServer({
  routes: { '/': path.join(REPO, 'www'), '/models/': path.dirname(model), '/wllama/': path.join(wllamaDir, 'esm') },
  extra: (req, res) => {
    if (req.url !== '/bench.html') return false;
    res.writeHead(200, { 'content-type': 'text/html', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
    res.end(BLANK);
    return true;
  },
});
const { chromium } = await import('playwright-core');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--disable-features=WebGPU,WebGPUService,SkiaGraphite'],
});

// Prose with no natural end, so that greedy decoding runs all the steps.
const TEXT = 'The old lighthouse keeper climbed the winding stairs every evening, counting each of the two hundred steps as his father had taught him. ' +
  'At the top he trimmed the wick, polished the great lens and watched the ships pass along the rocky coast. ' +
  'One stormy night in late autumn, a small fishing boat appeared out of the rain, its sails torn and its lantern dark. ' +
  'He lit a second lamp, waved it from the gallery and shouted into the wind, hoping the sailors would see the light before the reef. ' +
  'The boat turned slowly toward the harbour, and the keeper ran down the stairs with a coil of rope over his shoulder, ' +
  'past the storeroom, the kitchen and the little room where he kept the logbooks of forty years';

try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error('page:', m.text()));
  page.on('response', (r) => r.status() >= 400 && console.error(`page: HTTP ${r.status()} for ${r.url()}`));
  await page.goto(server.url + 'bench.html');
  const file = path.basename(model);
  const setup = await page.evaluate(async ({ file, threads, promptTokens, TEXT }) => {
    const isolated = self.crossOriginIsolated;
    const { load } = await import('/hearth.js');
    const hearth = await load(`/models/${file}`, { backend: 'cpu', threads, maxContext: 1024 });
    // A prompt of about promptTokens tokens (the model's own tokenizer decides; both engines
    // get the same text and report their own counts).
    const words = TEXT.split(' ');
    let text = TEXT;
    while (text.split(' ').length < promptTokens * 0.8) text += ' ' + words.join(' ');
    text = text.split(' ').slice(0, Math.round(promptTokens * 0.78)).join(' ');
    const { Wllama } = await import('/wllama/index.js');
    const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { logger: { debug() {}, log() {}, warn() {}, error: console.error } });
    await wllama.loadModelFromUrl(`/models/${file}`, { n_threads: threads, n_ctx: 1024, n_batch: 512, n_gpu_layers: 0 });
    self.bench = { hearth, wllama, text };
    return { isolated, hearthInfo: hearth.info, wllamaThreads: wllama.getNumThreads(), wllamaMultithread: wllama.isMultithread(), wllamaWebGpu: wllama.isSupportWebGPU(), gpu: !!navigator.gpu };
  }, { file, threads, promptTokens, TEXT });
  console.error('setup:', JSON.stringify({ ...setup, hearthInfo: undefined }));
  if (!setup.isolated) throw new Error('the bench page is not cross-origin isolated');
  if (setup.hearthInfo.threads !== threads) throw new Error(`hearth runs ${setup.hearthInfo.threads} threads (${setup.hearthInfo.threads_note || ''}), wanted ${threads}`);
  if (setup.wllamaThreads !== threads) throw new Error(`wllama runs ${setup.wllamaThreads} threads, wanted ${threads}`);

  const results = { hearth: [], wllama: [] };
  for (let r = 0; r < rounds; r++) {
    for (const engine of r % 2 ? ['wllama', 'hearth'] : ['hearth', 'wllama']) {
      // A different first word each round: neither engine may reuse the last round's cache.
      const got = await page.evaluate(async ({ engine, r, steps }) => {
        const { hearth, wllama, text } = self.bench;
        const prompt = `Chapter ${r + 1}. ${text}`;
        if (engine === 'hearth') {
          const out = await hearth.chat.completions.create({ prompt, max_tokens: steps, temperature: 0 });
          const t = out.hearth.timing;
          return { prompt_n: out.usage.prompt_tokens, prompt_ms: t.prefill_ms, predicted_n: t.decode_tokens, predicted_ms: t.decode_ms, text: out.choices[0].message.content };
        }
        const out = await wllama.createCompletion({ prompt, max_tokens: steps, temperature: 0, cache_prompt: false });
        const t = out.timings;
        return { prompt_n: t.prompt_n, prompt_ms: t.prompt_ms, predicted_n: t.predicted_n, predicted_ms: t.predicted_ms, text: out.choices[0].text };
      }, { engine, r, steps });
      got.prefill = got.prompt_n / (got.prompt_ms / 1000);
      got.decode = got.predicted_n / (got.predicted_ms / 1000);
      results[engine].push(got);
      console.error(`round ${r + 1} ${engine}: prefill ${got.prompt_n} tokens ${got.prefill.toFixed(1)} tok/s, decode ${got.predicted_n} tokens ${got.decode.toFixed(1)} tok/s`);
    }
  }
  const best = (e, k) => Math.max(...results[e].map((x) => x[k]));
  const summary = {
    date: new Date().toISOString().slice(0, 10),
    model: file,
    threads,
    rounds,
    chromium: browser.version(),
    cores: (await import('node:os')).cpus().length,
    hearth: { prefill: best('hearth', 'prefill'), decode: best('hearth', 'decode'), prompt_tokens: results.hearth[0].prompt_n, decode_tokens: results.hearth[0].predicted_n },
    wllama: { prefill: best('wllama', 'prefill'), decode: best('wllama', 'decode'), prompt_tokens: results.wllama[0].prompt_n, decode_tokens: results.wllama[0].predicted_n },
  };
  summary.ratio = { prefill: summary.hearth.prefill / summary.wllama.prefill, decode: summary.hearth.decode / summary.wllama.decode };
  if (json) console.log(JSON.stringify(summary, null, 2));
  else {
    console.log(`${summary.model}, ${threads} threads, best of ${rounds}, Chromium ${summary.chromium}, ${summary.date}`);
    console.log('| | prefill tok/s | decode tok/s |');
    console.log('|---|---|---|');
    console.log(`| hearth | ${summary.hearth.prefill.toFixed(1)} | ${summary.hearth.decode.toFixed(1)} |`);
    console.log(`| wllama ${WLLAMA_VERSION} | ${summary.wllama.prefill.toFixed(1)} | ${summary.wllama.decode.toFixed(1)} |`);
    console.log(`| hearth / wllama | ${summary.ratio.prefill.toFixed(2)}× | ${summary.ratio.decode.toFixed(2)}× |`);
  }
} finally {
  await browser.close();
  await server.close();
}
