//! The browser API (wasm-bindgen). JavaScript streams the model file into a [`Loader`] chunk by
//! chunk, then drives the token loop on an [`Engine`] one `begin`/`next` call at a time, so it
//! can stream text, honour an abort between tokens and never block. Every error crosses the
//! boundary as a JS `Error` with a readable message; nothing panics.

// The browser is single-threaded: the GPU types are not Send there, yet the backend API
// shares them through `Arc` as it does natively.
#![allow(clippy::arc_with_non_send_sync)]
// An engine call holds its state across GPU awaits on purpose: a second call made meanwhile
// fails its `try_borrow_mut` with a clear "busy" error instead of interleaving.
#![allow(clippy::await_holding_refcell_ref)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::Backend;
use crate::chat::ChatMessage;
use crate::cpu::{CpuBackend, CpuWeights};
use crate::gpu::{GpuBackend, GpuContext, GpuWeights};
use crate::model::{Model, ModelStream};
use crate::sampler::{Grammars, ResponseFormat, Sampler};
use crate::session::{Session, StopMatcher};
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// Runs when the module is instantiated: a panic (a bug; none is expected) logs its message and
/// location to the console instead of a bare `unreachable` trap.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Panics on purpose: the browser test of the panic hook calls it on a module of its own.
#[doc(hidden)]
#[wasm_bindgen(js_name = "__panicForTests")]
pub fn panic_for_tests() {
    panic!("a deliberate panic for the panic-hook test");
}

/// Default context in the browser: enough for a long chat, small enough for modest GPUs.
const DEFAULT_CONTEXT: usize = 2048;
/// Default tokens per forward call while reading a prompt.
const GPU_BATCH: usize = 128;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn js_val(e: impl std::fmt::Display) -> JsValue {
    js_err(e).into()
}

enum Weights {
    Gpu(GpuWeights),
    Cpu(CpuWeights),
}

/// Receives a GGUF file chunk by chunk; on the GPU path each tensor goes to a GPU buffer as
/// soon as it is complete, so the wasm heap never holds the model.
#[wasm_bindgen]
pub struct Loader {
    stream: ModelStream<Weights>,
    backend: String,
    notice: Option<String>,
}

#[wasm_bindgen]
impl Loader {
    /// `backend` is "auto" (WebGPU on a hardware adapter, else the CPU), "gpu" or "cpu".
    /// `total_len` is the file size when known (Content-Length).
    pub async fn create(total_len: Option<f64>, backend: String) -> Result<Loader, JsError> {
        let (ctx, notice) = match backend.as_str() {
            "cpu" => (None, None),
            "gpu" => (Some(GpuContext::new_async().await.map_err(js_err)?), None),
            "auto" | "" => match GpuContext::new_async().await {
                // A software renderer (SwiftShader) is many times slower than the wasm CPU
                // path; "gpu" still selects it.
                Ok(ctx) if ctx.is_software() => (
                    None,
                    Some("this browser's WebGPU is a software renderer, slower than the CPU; running on the CPU (choose the GPU backend to use it anyway)".to_string()),
                ),
                Ok(ctx) => (Some(ctx), None),
                Err(e) => {
                    // wgpu's message lists every backend it tried; the page needs one line.
                    let why = if matches!(&e, crate::Error::Gpu(m) if m.starts_with("no adapter")) {
                        "this browser offers no WebGPU adapter".to_string()
                    } else {
                        e.to_string()
                    };
                    (None, Some(format!("WebGPU is not available ({why}); running on the CPU, which is slower")))
                }
            },
            other => return Err(JsError::new(&format!("unknown backend {other:?}: use \"auto\", \"gpu\" or \"cpu\""))),
        };
        let total = total_len.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64);
        let (describe, stream) = match ctx {
            Some(ctx) => {
                let ctx = Arc::new(ctx);
                let describe = ctx.describe();
                let new = Box::new(move |plan: &_| Ok(Weights::Gpu(GpuWeights::new(ctx.clone(), plan))));
                (describe, ModelStream::new(total, new, Box::new(put)).in_pieces(crate::gpu::UPLOAD_PIECE))
            }
            None => {
                let new = Box::new(|plan: &_| Ok(Weights::Cpu(CpuWeights::new(plan))));
                ("cpu".to_string(), ModelStream::new(total, new, Box::new(put)))
            }
        };
        Ok(Loader { stream, backend: describe, notice })
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Why "auto" chose the CPU, if it did.
    #[wasm_bindgen(getter)]
    pub fn notice(&self) -> Option<String> {
        self.notice.clone()
    }

    /// Feeds the next bytes of the file.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.stream.push(chunk).map_err(js_err)
    }

    pub fn loaded(&self) -> f64 {
        self.stream.loaded() as f64
    }

    /// Lowercase hex SHA-256 of the bytes pushed so far.
    pub fn sha256(&self) -> String {
        self.stream.sha256_hex()
    }

    /// Ends the input and prepares the engine; `max_context` 0 picks the default context and
    /// `prefill_chunk` 0 the default tokens per forward call while reading a prompt (on the
    /// GPU also the largest batch).
    pub fn finish(self, max_context: u32, prefill_chunk: u32) -> Result<Engine, JsError> {
        let (model, weights) = self.stream.finish().map_err(js_err)?;
        let train = model.config().n_ctx_train.max(1);
        let ctx = if max_context == 0 { DEFAULT_CONTEXT.min(train) } else { max_context as usize };
        let chunk = if prefill_chunk == 0 { GPU_BATCH } else { prefill_chunk as usize };
        let mut gpu = None;
        let backend: Box<dyn Backend> = match weights {
            Weights::Gpu(w) => {
                gpu = Some(w.ctx.clone());
                Box::new(GpuBackend::new(model.plan.clone(), Arc::new(w), chunk, ctx).map_err(js_err)?)
            }
            Weights::Cpu(w) => Box::new(CpuBackend::new(model.plan.clone(), Arc::new(w), ctx)),
        };
        let model = Rc::new(model);
        let mut session = Session::new(backend, model.config().n_vocab);
        session.prefill_chunk = chunk;
        let state = State { session, sampler: Sampler::greedy(), decoder: StreamDecoder::new(Shared(model.clone())) };
        Ok(Engine { model, state: Rc::new(RefCell::new(state)), grammars: RefCell::new(None), backend: self.backend, notice: self.notice, gpu })
    }
}

fn put(w: &mut Weights, plan: &crate::model::ForwardPlan, id: crate::model::WeightId, offset: usize, bytes: Vec<u8>) -> crate::Result<()> {
    match w {
        Weights::Gpu(g) => g.put(plan, id, offset, bytes),
        Weights::Cpu(c) => c.put(plan, id, offset, bytes),
    }
}

/// The model, shared by the engine and its stream decoder.
struct Shared(Rc<Model>);

impl AsRef<Tokenizer> for Shared {
    fn as_ref(&self) -> &Tokenizer {
        &self.0.tokenizer
    }
}

struct State {
    session: Session,
    sampler: Sampler,
    decoder: StreamDecoder<Shared>,
}

/// A loaded model and one conversation's KV cache.
#[wasm_bindgen]
pub struct Engine {
    model: Rc<Model>,
    state: Rc<RefCell<State>>,
    /// The vocabulary trie for structured output, built on first use.
    grammars: RefCell<Option<Rc<Grammars>>>,
    backend: String,
    notice: Option<String>,
    /// The GPU device, on the GPU path.
    gpu: Option<Arc<GpuContext>>,
}

fn busy() -> JsValue {
    js_val("the engine is busy with another call; await it first")
}

#[wasm_bindgen]
impl Engine {
    /// Destroys the GPU device, as the browser may at any time: for the test that a lost
    /// device ends the engine with a `gpu_lost` error (and a new load works).
    #[doc(hidden)]
    #[wasm_bindgen(js_name = "__loseDeviceForTests")]
    pub fn lose_device_for_tests(&self) {
        if let Some(gpu) = &self.gpu {
            gpu.destroy();
        }
    }

    /// JSON: name, architecture, vocabulary size, context length, backend, and whether the
    /// file has a chat template (without one — a base model — text is completed, not chatted).
    pub fn info(&self) -> String {
        let c = self.model.config();
        let ctx = self.state.try_borrow().map(|s| s.session.backend().max_context()).unwrap_or(0);
        serde_json::json!({
            "name": c.name,
            "architecture": c.architecture,
            "chat_template": self.model.chat_template.is_some(),
            "n_vocab": c.n_vocab,
            "context_length": ctx,
            "backend": self.backend,
            "notice": self.notice,
        })
        .to_string()
    }

    /// Token ids of a chat (a JSON array of `{role, content}`), with the model's chat template
    /// and the assistant's generation prompt.
    #[wasm_bindgen(js_name = chatPrompt)]
    pub fn chat_prompt(&self, messages_json: &str) -> Result<Vec<u32>, JsError> {
        let messages: Vec<ChatMessage> = serde_json::from_str(messages_json)
            .map_err(|e| JsError::new(&format!("messages must be an array of {{role, content}} strings: {e}")))?;
        self.model.chat_prompt(&messages).map_err(js_err)
    }

    /// Token ids of plain text (with BOS where the model wants it).
    #[wasm_bindgen(js_name = textPrompt)]
    pub fn text_prompt(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.model.text_prompt(text).map_err(js_err)
    }

    /// Evaluates `prompt` (reusing the cached prefix it shares with the previous sequence) and
    /// resolves to the first sampled token id. `sampling` is a JSON object of
    /// [`SamplerConfig`](crate::sampler::SamplerConfig) fields; temperature 0 is greedy.
    /// `response_format` is OpenAI's (JSON; empty for free text).
    pub fn begin(&self, prompt: Vec<u32>, sampling: &str, response_format: &str) -> Result<js_sys::Promise, JsError> {
        let config: crate::sampler::SamplerConfig =
            serde_json::from_str(sampling).map_err(|e| JsError::new(&format!("sampling settings: {e}")))?;
        let mut sampler = Sampler::from_config(config).map_err(js_err)?;
        if !response_format.is_empty() {
            let format = ResponseFormat::from_json(response_format).map_err(js_err)?;
            if format != ResponseFormat::Text {
                sampler.set_constraint(self.grammars()?.constrain(&format).map_err(js_err)?);
            }
        }
        if prompt.is_empty() {
            return Err(JsError::new("the prompt is empty"));
        }
        let state = self.state.clone();
        Ok(future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let s = &mut *s;
            s.sampler = sampler;
            s.decoder.reset();
            let id = s.session.set_tokens_and_sample_async(&prompt, &mut s.sampler).await;
            id.map(JsValue::from).map_err(js_val)
        }))
    }

    /// Milliseconds spent on structured-output masks in the current reply (0 without one).
    #[wasm_bindgen(js_name = grammarMs)]
    pub fn grammar_ms(&self) -> f64 {
        let stats = self.state.try_borrow().ok().and_then(|s| s.sampler.constraint_stats());
        stats.map_or(0.0, |s| s.seconds * 1e3)
    }

    fn grammars(&self) -> Result<Rc<Grammars>, JsError> {
        let mut cached = self.grammars.borrow_mut();
        if let Some(g) = &*cached {
            return Ok(g.clone());
        }
        let g = Rc::new(Grammars::new(&self.model.tokenizer, self.model.config().n_vocab).map_err(js_err)?);
        *cached = Some(g.clone());
        Ok(g)
    }

    /// Appends `id` (the last sampled token) and resolves to the next sampled id.
    pub fn next(&self, id: u32) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let s = &mut *s;
            let next = s.session.append_and_sample_async(&[id], &mut s.sampler).await;
            next.map(JsValue::from).map_err(js_val)
        })
    }

    /// Token ids of text as it is (no BOS, special tokens not parsed): what perplexity scores.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.model.tokenizer.encode(text, false).map_err(js_err)
    }

    /// Resolves to the JSON perplexity of `ids` (`{ppl, n_tokens, n_scored, mean_nll}`) in
    /// windows of `window` tokens every `stride` (0: the context length, disjoint windows).
    /// The conversation cache is used for this and starts empty afterwards.
    pub fn perplexity(&self, ids: Vec<u32>, window: u32, stride: u32) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let ctx = s.session.backend().max_context();
            let window = if window == 0 { ctx.min(ids.len()) } else { window as usize };
            let stride = if stride == 0 { window } else { stride as usize };
            let result = s.session.perplexity_async(&ids, window, stride).await;
            s.session.clear();
            let p = result.map_err(js_val)?;
            Ok(JsValue::from(serde_json::to_string(&p).map_err(js_val)?))
        })
    }

    /// Whether `id` ends generation (EOS, EOT).
    #[wasm_bindgen(js_name = isEnd)]
    pub fn is_end(&self, id: u32) -> bool {
        self.model.tokenizer.is_end_of_generation(id)
    }

    /// The text `id` completes (held back while a UTF-8 character is split across tokens).
    pub fn piece(&self, id: u32) -> Result<String, JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        s.decoder.push(id).map_err(js_err)
    }

    /// Text still held back at the end of a reply.
    pub fn flush(&self) -> Result<String, JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        Ok(s.decoder.finish())
    }

    /// Forgets the conversation's KV cache.
    pub fn reset(&self) -> Result<(), JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        s.session.clear();
        s.decoder.reset();
        Ok(())
    }

    /// Tokens in the cache.
    pub fn position(&self) -> u32 {
        self.state.try_borrow().map(|s| s.session.tokens().len() as u32).unwrap_or(0)
    }

    /// `sinks` >= 0: when the context is full, drop the oldest tokens after the first `sinks`
    /// and go on; negative: a full context is an error (the default).
    #[wasm_bindgen(js_name = setContextShift)]
    pub fn set_context_shift(&self, sinks: i32) -> Result<(), JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        s.session.context_shift = usize::try_from(sinks).ok();
        Ok(())
    }

    /// Whether the context shift is on.
    #[wasm_bindgen(js_name = contextShift)]
    pub fn context_shift(&self) -> bool {
        self.state.try_borrow().map(|s| s.session.context_shift.is_some()).unwrap_or(false)
    }

    #[wasm_bindgen(js_name = contextLength)]
    pub fn context_length(&self) -> u32 {
        self.state.try_borrow().map(|s| s.session.backend().max_context() as u32).unwrap_or(0)
    }
}

/// Stop strings matched on streamed text, across token boundaries: text that could still
/// become one is held back, so a stream never shows part of a stop string.
#[wasm_bindgen]
pub struct StopStrings {
    matcher: StopMatcher,
    stopped: bool,
}

#[wasm_bindgen]
impl StopStrings {
    #[wasm_bindgen(constructor)]
    pub fn new(stops: Vec<String>) -> StopStrings {
        StopStrings { matcher: StopMatcher::new(&stops), stopped: false }
    }

    /// The text now safe to show. When `piece` completes a stop string this is the text
    /// before it, and `stopped` is true.
    pub fn push(&mut self, piece: &str) -> String {
        let m = self.matcher.push(piece);
        self.stopped |= m.stopped;
        m.emit
    }

    #[wasm_bindgen(getter)]
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Text still held back when the reply ends for another reason.
    pub fn finish(&mut self) -> String {
        self.matcher.finish()
    }
}
