// hearth CPU thread: one per extra thread of the multi-threaded engine (started by worker.js).
// It instantiates the engine's module on the engine's shared memory, then serves the CPU
// thread pool for the rest of the worker's life.
self.onmessage = async ({ data }) => {
  let mod;
  try {
    mod = await import('./pkg-mt/hearth.js');
    await mod.default({ module_or_path: data.module, memory: data.memory });
  } catch (e) {
    self.postMessage({ error: String(e?.message || e) });
    return;
  }
  self.postMessage('ready');
  mod.__threadPoolWorker();
};
