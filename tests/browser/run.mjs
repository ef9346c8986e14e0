// Browser tests of the chat page and the hearth.js API, in Debian's Chromium driven by
// playwright-core (WebGPU runs on SwiftShader here, so on the CPU and slowly).
//
//   node tests/browser/run.mjs            every test
//   node tests/browser/run.mjs abort cpu  only tests whose name contains one of the words
//                                         (each test also runs alone: it loads what it needs)
//
// Needs www/pkg (./build.sh wasm) and models/SmolLM2-135M-Instruct.Q4_1.gguf (./build.sh model;
// the encoders test also models/nomic-embed-text-v1.5.f16.gguf, ./build.sh model nomic-embed).
// Prints one PASS/FAIL line per test and exits non-zero on any failure; screenshots go to
// test-artifacts/.
import fs from 'node:fs';
import path from 'node:path';
import {
  WWW, MODEL_FILE, MODEL_PATH, ARTIFACTS, log, ms, serve, launch, openPage, timings,
} from './harness.mjs';
import gpu from './suite/gpu.mjs';
import loading from './suite/loading.mjs';
import threads from './suite/threads.mjs';
import api from './suite/api.mjs';
import faults from './suite/faults.mjs';
import models from './suite/models.mjs';
import embedding from './suite/embedding.mjs';
import offline from './suite/offline.mjs';

// In the order they run (each also runs alone).
const tests = [...gpu, ...loading, ...threads, ...api, ...faults, ...models, ...embedding, ...offline];

// --- main ------------------------------------------------------------------------------------

async function main() {
  for (const [what, p] of [['www/pkg/hearth_bg.wasm (run ./build.sh wasm)', path.join(WWW, 'pkg', 'hearth_bg.wasm')], [`models/${MODEL_FILE} (run ./build.sh model)`, MODEL_PATH]]) {
    if (!fs.existsSync(p)) {
      console.error(`missing ${what}`);
      process.exit(2);
    }
  }
  const filters = process.argv.slice(2);
  // Tests marked `byName` (the soak run) run only when named.
  const selected = tests.filter((t) => (filters.length === 0 && !t.byName) || filters.some((f) => t.name.split(':')[0] === f || (!t.byName && t.name.split(':')[0].includes(f))));
  let server = await serve();
  const base = server.url;
  let serverUp = true;
  const stopServer = async () => {
    if (serverUp) await server.close();
    serverUp = false;
  };
  const b = await launch();
  let passed = 0;
  let failed = 0;
  const started = Date.now();
  try {
    await openPage(b.page, base);
    for (const t of selected) {
      const t0 = Date.now();
      console.log(`--- ${t.name}`);
      try {
        await t.run({ page: b.page, context: b.context, base, stopServer });
        passed++;
        console.log(`PASS ${t.name.split(':')[0]} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name.split(':')[0]} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${e.message}`);
        const lines = b.consoleLines.slice(-15);
        if (lines.length) log(`browser console (last ${lines.length}):\n      ${lines.join('\n      ')}`);
        try {
          fs.mkdirSync(ARTIFACTS, { recursive: true });
          await b.page.screenshot({ path: path.join(ARTIFACTS, `fail-${t.name.split(':')[0]}.png`) });
        } catch {
          /* no screenshot */
        }
      }
    }
  } finally {
    await b.close().catch(() => {});
    await stopServer().catch(() => {});
  }
  for (const [k, v] of Object.entries(timings)) {
    console.log(`timing ${k === 'auto' ? 'gpu' : k}: load ${ms(v.load_ms)}${v.from_cache ? ' (cache)' : ''}, prefill ${v.prompt_tokens} tokens ${ms(v.prefill_ms)}, ${v.ms_per_token.toFixed(1)} ms/token decode`);
  }
  console.log(`browser tests: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
