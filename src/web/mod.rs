//! The browser API (wasm-bindgen). JavaScript streams the model file into a [`Loader`] chunk by
//! chunk, then drives the native token loop's rules ([`Reply`]) on an [`Engine`] one
//! `start`/`step` call at a time, so it can stream text, honour an abort between tokens and
//! never block. Every error crosses the
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
use crate::sampler::{Constraint, Sampler};
use crate::session::{GenerateOptions, Reply, Session};
use crate::tokenizer::Tokenizer;

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

/// Sizes the CPU thread pool (the engine's own thread included), before any model is loaded.
/// JavaScript then starts `n - 1` Web Workers on this module and its memory, each calling
/// [`thread_pool_worker`]. Fails in the single-threaded build.
#[wasm_bindgen(js_name = "threadPoolInit")]
pub fn thread_pool_init(n: usize) -> Result<(), JsError> {
    crate::cpu::set_wasm_threads(n).map_err(JsError::new)
}

/// The body of a pool worker: serves the CPU thread pool and never returns.
#[doc(hidden)]
#[wasm_bindgen(js_name = "__threadPoolWorker")]
pub fn thread_pool_worker() {
    crate::cpu::serve_as_wasm_worker();
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
    device: Device,
}

/// The GPU device of a loader or an engine, destroyed with it: in the browser a dropped wgpu
/// buffer or device keeps its GPU memory until the garbage collector runs, while a destroyed
/// device frees every buffer at once (`unload()`, a failed load, a freed engine).
struct Device(Option<Arc<GpuContext>>);

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(ctx) = &self.0 {
            ctx.destroy();
        }
    }
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
                Ok(ctx) if ctx.is_software() => {
                    // A device frees its memory when destroyed, not when wgpu drops it.
                    ctx.destroy();
                    let why = "this browser's WebGPU is a software renderer, slower than the CPU; running on the CPU (choose the GPU backend to use it anyway)";
                    (None, Some(why.to_string()))
                }
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
        let mut device = Device(None);
        let (describe, stream) = match ctx {
            Some(ctx) => {
                let ctx = Arc::new(ctx);
                device.0 = Some(ctx.clone());
                let describe = ctx.describe();
                let new = Box::new(move |plan: &_| Ok(Weights::Gpu(GpuWeights::new(ctx.clone(), plan))));
                (describe, ModelStream::new(total, new, Box::new(put)).in_pieces(crate::gpu::UPLOAD_PIECE))
            }
            None => {
                let new = Box::new(|plan: &_| Ok(Weights::Cpu(CpuWeights::new(plan))));
                ("cpu".to_string(), ModelStream::new(total, new, Box::new(put)))
            }
        };
        Ok(Loader { stream, backend: describe, notice, device })
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

    /// Of a split model of `count` parts: the first bytes of its next part after the first, in
    /// order and before the first part's data; true once that part's header is complete.
    #[wasm_bindgen(js_name = pushPartHeader)]
    pub fn push_part_header(&mut self, chunk: &[u8], count: u16) -> Result<bool, JsError> {
        self.stream.push_part_header(chunk, count).map_err(js_err)
    }

    /// Of a split model: ends the current part and starts the next, `total_len` bytes long.
    #[wasm_bindgen(js_name = nextPart)]
    pub fn next_part(&mut self, total_len: Option<f64>) -> Result<(), JsError> {
        let total = total_len.filter(|n| n.is_finite() && *n >= 0.0).map(|n| n as u64);
        self.stream.next_part(total).map_err(js_err)
    }

    pub fn loaded(&self) -> f64 {
        self.stream.loaded() as f64
    }

    /// Lowercase hex SHA-256 of the current part's (the file's) bytes pushed so far.
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
        let backend: Box<dyn Backend> = match weights {
            Weights::Gpu(w) => Box::new(GpuBackend::new(model.plan.clone(), Arc::new(w), chunk, ctx).map_err(js_err)?),
            Weights::Cpu(w) => Box::new(CpuBackend::new(model.plan.clone(), Arc::new(w), ctx)),
        };
        let model = Rc::new(model);
        let mut session = Session::new(backend, model.config().n_vocab);
        session.prefill_chunk = chunk;
        let state = State { session, sampler: Sampler::greedy(), reply: None };
        Ok(Engine { model, state: Rc::new(RefCell::new(state)), backend: self.backend, notice: self.notice, gpu: self.device })
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
    /// The reply in progress (or the last one).
    reply: Option<Reply<Shared>>,
}

/// What JavaScript passes to [`Engine::start`] besides the prompt and the sampler.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyOptions {
    max_tokens: usize,
    #[serde(default)]
    stop: Vec<String>,
}

fn step_json(step: crate::Result<crate::session::Step>) -> Result<JsValue, JsValue> {
    let step = step.map_err(js_val)?;
    Ok(JsValue::from(serde_json::to_string(&step).map_err(js_val)?))
}

/// A loaded model and one conversation's KV cache.
#[wasm_bindgen]
pub struct Engine {
    model: Rc<Model>,
    state: Rc<RefCell<State>>,
    backend: String,
    notice: Option<String>,
    /// The GPU device, on the GPU path.
    gpu: Device,
}

fn busy() -> JsValue {
    js_val("the engine is busy with another call; await it first")
}

impl Engine {
    /// An encoder-decoder's prompt is its encoder input, and its decoder starts from the start
    /// token: `(Some(input), decoder prompt)`. Other models: `(None, prompt)`.
    fn encoder_input(&self, prompt: Vec<u32>) -> crate::Result<(Option<Vec<u32>>, Vec<u32>)> {
        if self.model.config().encoder_decoder {
            Ok((Some(prompt), self.model.decoder_prompt()?))
        } else {
            Ok((None, prompt))
        }
    }
}

#[wasm_bindgen]
impl Engine {
    /// Destroys the GPU device, as the browser may at any time: for the test that a lost
    /// device ends the engine with a `gpu_lost` error (and a new load works).
    #[doc(hidden)]
    #[wasm_bindgen(js_name = "__loseDeviceForTests")]
    pub fn lose_device_for_tests(&self) {
        if let Some(gpu) = &self.gpu.0 {
            gpu.destroy();
        }
    }

    /// JSON: name, architecture, vocabulary size, context length, backend, the CPU threads,
    /// and whether the file has a chat template (without one — a base model — text is
    /// completed, not chatted).
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
            "threads": crate::cpu::threads(),
            "notice": self.notice,
            "embedding_length": c.n_embd,
            "pooling": c.pooling,
            "encoder": c.encoder,
            "encoder_decoder": c.encoder_decoder,
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

    /// Token ids of a text to embed (BOS where the model wants it; special tokens written in
    /// the text are not parsed).
    #[wasm_bindgen(js_name = embeddingPrompt)]
    pub fn embedding_prompt(&self, text: &str) -> Result<Vec<u32>, JsError> {
        self.model.embedding_prompt(text).map_err(js_err)
    }

    /// Resolves to the sentence embedding of `ids` (a Float32Array: the final normed hidden
    /// states, mean-pooled and L2-normalised). The conversation cache starts empty afterwards.
    pub fn embed(&self, ids: Vec<u32>) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            s.reply = None;
            let v = s.session.embed_async(&ids).await.map_err(js_val)?;
            Ok(js_sys::Float32Array::from(v.as_slice()).into())
        })
    }

    /// Starts a reply: evaluates `prompt` (reusing the cached prefix it shares with the
    /// previous sequence) and resolves to the first [`Step`](crate::session::Step) as JSON
    /// (`{"id", "text", "finish"}`; `finish` is null until the reply ends, then "eos",
    /// "stop", "length" or "cancelled"). `sampling` is a JSON object of
    /// [`SamplerConfig`](crate::sampler::SamplerConfig) fields (temperature 0 is greedy);
    /// `mask`, for structured output, is the first draw's allowed tokens from the grammar
    /// module (`pkg-grammar/`, token `id` is bit `id % 32` of word `id / 32`; see
    /// [`grammar_vocab`](Engine::grammar_vocab)): with it every [`step`](Engine::step) needs
    /// its own. `options` is `{"max_tokens", "stop"}`. The reply follows the native loop's
    /// rules ([`Reply`](crate::session::Reply)).
    pub fn start(&self, prompt: Vec<u32>, sampling: &str, mask: Option<Vec<u32>>, options: &str) -> Result<js_sys::Promise, JsError> {
        let config: crate::sampler::SamplerConfig =
            serde_json::from_str(sampling).map_err(|e| JsError::new(&format!("sampling settings: {e}")))?;
        let mut sampler = Sampler::from_config(config).map_err(js_err)?;
        if let Some(bits) = mask {
            if bits.len() * 32 < self.model.config().n_vocab {
                return Err(JsError::new(&format!("the grammar mask has {} words; the vocabulary needs {}", bits.len(), self.model.config().n_vocab.div_ceil(32))));
            }
            let mut c = Constraint::external();
            c.supply(bits);
            sampler.set_constraint(Some(c));
        }
        let options: ReplyOptions = serde_json::from_str(options).map_err(|e| JsError::new(&format!("reply options: {e}")))?;
        let reply = Reply::new(Shared(self.model.clone()), &GenerateOptions { max_tokens: options.max_tokens, stop: options.stop }).map_err(js_err)?;
        if prompt.is_empty() {
            return Err(JsError::new("the prompt is empty"));
        }
        let (input, prompt) = self.encoder_input(prompt).map_err(js_err)?;
        let state = self.state.clone();
        Ok(future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let s = &mut *s;
            s.reply = None;
            s.sampler = sampler;
            if let Some(input) = &input {
                s.session.encode_async(input).await.map_err(js_val)?;
            }
            let id = s.session.set_tokens_and_sample_async(&prompt, &mut s.sampler).await.map_err(js_val)?;
            let reply = s.reply.insert(reply);
            step_json(reply.push(id, s.session.has_room()))
        }))
    }

    /// Appends the reply's last token, samples the next and resolves to its step (JSON, as
    /// from [`start`](Engine::start)). `mask`: the draw's allowed tokens, for a reply started
    /// with one.
    pub fn step(&self, mask: Option<Vec<u32>>) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            let State { session, sampler, reply } = &mut *s;
            if let (Some(bits), Some(c)) = (mask, sampler.constraint_mut()) {
                c.supply(bits);
            }
            let none = || js_val("no reply is in progress: call start() first");
            let r = reply.as_mut().filter(|r| r.finish().is_none()).ok_or_else(none)?;
            let last = *r.ids().last().ok_or_else(none)?;
            session.lookahead = r.remaining();
            let sampled = session.append_and_sample_async(&[last], sampler).await;
            session.lookahead = usize::MAX;
            match sampled {
                Ok(id) => step_json(r.push(id, session.has_room())),
                Err(e) => {
                    *reply = None;
                    Err(js_val(e))
                }
            }
        })
    }

    /// Ends the reply in progress at the caller's request; returns the last step (JSON) with
    /// the text held back so far and `finish` "cancelled" (or the reason it had already ended).
    pub fn cancel(&self) -> Result<String, JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        let step = match &mut s.reply {
            Some(r) => r.cancel(),
            None => crate::session::Step { id: None, text: String::new(), finish: Some(crate::session::StopReason::Cancelled) },
        };
        serde_json::to_string(&step).map_err(js_err)
    }

    /// The vocabulary as the grammar module (`pkg-grammar/`) takes it, for structured output.
    #[wasm_bindgen(js_name = grammarVocab)]
    pub fn grammar_vocab(&self) -> Vec<u8> {
        crate::sampler::constraint::packed_vocabulary(&self.model.tokenizer, self.model.config().n_vocab)
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
            s.reply = None;
            let result = s.session.perplexity_async(&ids, window, stride).await;
            s.session.clear();
            let p = result.map_err(js_val)?;
            Ok(JsValue::from(serde_json::to_string(&p).map_err(js_val)?))
        })
    }

    /// Beam search from `prompt` (as the CLI's `--beams`, with `num_beams` from 1 to 16):
    /// resolves to the best beam as JSON, `{"ids", "text", "finish"}` (`ids` ends with the end
    /// token if the beam ended with one, and `finish` is then "eos", else "length"). The
    /// conversation cache keeps the prompt's prefix.
    pub fn beam(&self, prompt: Vec<u32>, num_beams: u32, max_tokens: u32, length_penalty: f64) -> Result<js_sys::Promise, JsError> {
        if !(1..=16).contains(&num_beams) || max_tokens == 0 || !length_penalty.is_finite() {
            return Err(JsError::new("invalid argument: n_beams is 1 to 16, max_tokens at least 1, length_penalty finite"));
        }
        let opts = crate::session::BeamOptions { num_beams: num_beams as usize, max_tokens: max_tokens as usize, length_penalty, early_stopping: true };
        let (input, prompt) = self.encoder_input(prompt).map_err(js_err)?;
        let (state, model) = (self.state.clone(), self.model.clone());
        Ok(future_to_promise(async move {
            let mut s = state.try_borrow_mut().map_err(|_| busy())?;
            s.reply = None;
            if let Some(input) = &input {
                s.session.encode_async(input).await.map_err(js_val)?;
            }
            let out = crate::session::beam_search_async(&mut s.session, &model.tokenizer, &prompt, &opts).await.map_err(js_val)?;
            let eos = out.ids.last().is_some_and(|&id| model.tokenizer.is_end_of_generation(id));
            // By hand: a derived serializer would add to the wasm file every page loads.
            let text = serde_json::to_string(&out.text).map_err(js_val)?;
            Ok(JsValue::from(format!(r#"{{"ids":{:?},"text":{text},"finish":"{}"}}"#, out.ids, if eos { "eos" } else { "length" })))
        }))
    }

    /// Forgets the conversation's KV cache (an encoder-decoder's encoded input stays).
    pub fn reset(&self) -> Result<(), JsError> {
        let mut s = self.state.try_borrow_mut().map_err(|_| JsError::new("the engine is busy"))?;
        s.session.clear();
        s.reply = None;
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
        if sinks >= 0 {
            crate::backend::check_shift_positions(self.model.config()).map_err(js_err)?;
        }
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
