//! The seam between the engine and the hardware: a backend holds a model's weights and one
//! sequence's KV cache, and executes the model's [`ForwardPlan`](crate::model::ForwardPlan).

use std::future::Future;
use std::pin::Pin;

use crate::sampler::DeviceDraw;
use crate::Result;

/// A boxed future borrowing the backend: what the async forward calls return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Which positions of a batch need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only the last token (generation).
    Last,
    /// Every token (scoring, perplexity).
    All,
    /// None (prefill of a prefix whose continuation comes next).
    None,
    /// No logits: every token's final normed hidden state instead (`n_embd` floats a row, what
    /// the output projection reads), for embeddings.
    Hidden,
}

pub trait Backend {
    /// Human-readable description, e.g. "cpu (2 threads)".
    fn describe(&self) -> String;

    /// The hyper-parameters of the model it runs.
    fn config(&self) -> &crate::model::ModelConfig;

    /// Runs `tokens` at positions `start..start + tokens.len()`; the cache must already hold
    /// exactly `start` positions. Returns row-major logits for the rows `which` selects.
    fn forward(&mut self, tokens: &[u32], start: usize, which: LogitsFor) -> Result<Vec<f32>>;

    /// Like [`forward`](Self::forward) for the last token only, returning the id of its
    /// largest logit (the lowest id among equals). Backends that can keep the logits where
    /// they are computed override this to read back one id instead of the vocabulary.
    fn forward_argmax(&mut self, tokens: &[u32], start: usize) -> Result<u32> {
        let logits = self.forward(tokens, start, LogitsFor::Last)?;
        Ok(crate::sampler::argmax(&logits))
    }

    /// [`forward`](Self::forward) for callers that must not block (the browser, where a GPU
    /// readback completes on the event loop). Backends that compute in place finish at once.
    fn forward_async<'a>(&'a mut self, tokens: &'a [u32], start: usize, which: LogitsFor) -> BoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(std::future::ready(self.forward(tokens, start, which)))
    }

    /// [`forward_argmax`](Self::forward_argmax) without blocking.
    fn forward_argmax_async<'a>(&'a mut self, tokens: &'a [u32], start: usize) -> BoxFuture<'a, Result<u32>> {
        Box::pin(std::future::ready(self.forward_argmax(tokens, start)))
    }

    /// Most decoding steps [`decode_run`](Self::decode_run) computes per call without the host
    /// in the loop (1: none; it would only repeat the single-step calls).
    fn decode_run_len(&self) -> usize {
        1
    }

    /// Decodes `steps` tokens in one go: evaluates `token` at position `start`, then each
    /// step's pick at the next position, and returns the `steps` ids picked. The pick is the
    /// argmax (`draw` `None`) or the device draw `draw` describes, whose counter advances by
    /// one per step. The cache then holds `start + steps` positions; a caller that uses fewer
    /// of the ids truncates it.
    fn decode_run(&mut self, token: u32, start: usize, steps: usize, draw: Option<DeviceDraw>) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(steps);
        let mut next = token;
        for i in 0..steps {
            next = match draw {
                None => self.forward_argmax(&[next], start + i)?,
                Some(d) => {
                    let candidates = self.forward_top_k(&[next], start + i, d.top_k)?;
                    crate::sampler::draw_candidates(candidates, &DeviceDraw { counter: d.counter + i as u64, ..d })?
                }
            };
            ids.push(next);
        }
        Ok(ids)
    }

    /// [`decode_run`](Self::decode_run) without blocking.
    fn decode_run_async<'a>(&'a mut self, token: u32, start: usize, steps: usize, draw: Option<DeviceDraw>) -> BoxFuture<'a, Result<Vec<u32>>> {
        Box::pin(std::future::ready(self.decode_run(token, start, steps, draw)))
    }

    /// The largest k for which [`forward_top_k`](Self::forward_top_k) selects on the device
    /// (0: it reads the logits back like [`forward`](Self::forward)).
    fn device_top_k(&self) -> usize {
        0
    }

    /// Like [`forward`](Self::forward) for the last token only, returning its `k` largest
    /// logits with their ids, largest first (the lower id among equals).
    fn forward_top_k(&mut self, tokens: &[u32], start: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        let logits = self.forward(tokens, start, LogitsFor::Last)?;
        Ok(crate::sampler::processors::best_candidates(&logits, k))
    }

    /// [`forward_top_k`](Self::forward_top_k) without blocking.
    fn forward_top_k_async<'a>(&'a mut self, tokens: &'a [u32], start: usize, k: usize) -> BoxFuture<'a, Result<Vec<(u32, f32)>>> {
        Box::pin(std::future::ready(self.forward_top_k(tokens, start, k)))
    }

    /// Removes cached positions `keep..keep + drop`: the later ones move down by `drop` and
    /// their keys are re-rotated, so the cache holds what evaluating the remaining tokens at
    /// their new positions would give (up to rounding). This lets a long conversation keep
    /// its first tokens and its recent ones ("attention sinks") instead of ending.
    fn shift(&mut self, keep: usize, drop: usize) -> Result<()> {
        let _ = (keep, drop);
        Err(crate::Error::InvalidArgument(format!("{} cannot shift its cache", self.describe())))
    }

    /// Forgets cached positions from `len` on.
    fn truncate(&mut self, len: usize);

    /// An encoder-decoder's input: runs the encoder over `tokens` (positions from 0) and keeps
    /// what the decoder's cross-attention reads; the decoder's cache starts empty.
    fn encode(&mut self, tokens: &[u32]) -> Result<()> {
        let _ = tokens;
        Err(crate::Error::InvalidArgument(format!("{} has no encoder", self.describe())))
    }

    /// [`encode`](Self::encode) without blocking.
    fn encode_async<'a>(&'a mut self, tokens: &'a [u32]) -> BoxFuture<'a, Result<()>> {
        Box::pin(std::future::ready(self.encode(tokens)))
    }

    /// Positions the cache can hold.
    fn max_context(&self) -> usize;

    /// Most tokens one `forward` call accepts.
    fn max_batch(&self) -> usize {
        usize::MAX
    }

    /// How the backend fused the plan's ops, in lines for a profile report (none by default).
    fn fusion_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Times each kernel family while running `tokens` at positions from `start` (at most the
    /// cached length; greedy logits for one token, none for more). Afterwards the cache holds
    /// `start` positions. Backends without device timers return `Unsupported`.
    fn profile(&mut self, tokens: &[u32], start: usize) -> Result<Vec<KernelTime>> {
        let _ = (tokens, start);
        Err(crate::Error::InvalidArgument(format!("{} has no kernel timers", self.describe())))
    }

    /// Running totals of the host's traffic with a device (`None` for backends without one).
    fn traffic(&self) -> Option<Traffic> {
        None
    }
}

/// What a device backend has done since it was made (counts as floats, so that differences
/// divide into per-token rates): what bounds a small model's token on a fast GPU is the count
/// of dependent dispatches and host round trips, not bandwidth.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Traffic {
    pub dispatches: f64,
    pub submits: f64,
    /// Waits for results to come back to the host.
    pub readbacks: f64,
    pub readback_bytes: f64,
    /// Host time spent recording and submitting work, in microseconds.
    pub encode_us: f64,
}

impl Traffic {
    /// `(self − earlier) / n`: e.g. per decoded token.
    pub fn per(&self, earlier: &Traffic, n: usize) -> Traffic {
        let n = n.max(1) as f64;
        Traffic {
            dispatches: (self.dispatches - earlier.dispatches) / n,
            submits: (self.submits - earlier.submits) / n,
            readbacks: (self.readbacks - earlier.readbacks) / n,
            readback_bytes: (self.readback_bytes - earlier.readback_bytes) / n,
            encode_us: (self.encode_us - earlier.encode_us) / n,
        }
    }
}

/// Device time of one kernel family in a profiled forward call.
#[derive(Clone, Debug)]
pub struct KernelTime {
    pub kernel: String,
    pub dispatches: usize,
    pub seconds: f64,
}

/// The checks every backend's `forward` makes before touching its cache: the batch continues
/// the cached sequence, fits the context and the batch limit, and holds only known token ids.
pub fn check_batch(
    tokens: &[u32],
    start: usize,
    cached: usize,
    max_context: usize,
    max_batch: usize,
    n_vocab: usize,
) -> Result<()> {
    use crate::Error;
    if start != cached {
        return Err(Error::InvalidArgument(format!("batch starts at {start} but the cache holds {cached} positions")));
    }
    if start + tokens.len() > max_context {
        return Err(Error::ContextLengthExceeded { needed: start + tokens.len(), limit: max_context });
    }
    if tokens.len() > max_batch {
        return Err(Error::InvalidArgument(format!("batch of {} tokens exceeds {max_batch}", tokens.len())));
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary ({n_vocab} tokens)")));
    }
    Ok(())
}

/// Runs an engine future to completion on the calling thread. Natively this blocks (GPU
/// readbacks poll the device); in the browser nothing may block, so a future that is not
/// ready at once is an error telling the caller to use the async API.
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        pollster::block_on(future)
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Err(crate::Error::Gpu(
                "in the browser GPU results arrive asynchronously: use the async API".into(),
            )),
        }
    }
}

/// The error for asking an encoder for logits.
pub fn no_logits(c: &crate::model::ModelConfig) -> crate::Error {
    crate::Error::Unsupported(format!(
        "next-token logits from {:?}, an encoder: it makes embeddings, not text",
        c.architecture
    ))
}

/// An encoder's forward call: its states (no logits), for a whole input in one batch.
pub fn check_encoder(c: &crate::model::ModelConfig, start: usize, which: LogitsFor) -> Result<()> {
    if !c.encoder {
        return Ok(());
    }
    if which != LogitsFor::Hidden {
        return Err(no_logits(c));
    }
    if start != 0 {
        return Err(crate::Error::InvalidArgument(format!(
            "{:?} is an encoder: it reads its whole input in one batch (this one starts at position {start})",
            c.architecture
        )));
    }
    Ok(())
}

/// The error for decoding with an encoder-decoder before its input was encoded.
pub fn not_encoded(c: &crate::model::ModelConfig) -> crate::Error {
    crate::Error::InvalidArgument(format!(
        "{:?} is an encoder-decoder: encode its input before decoding (the decoder attends to it)",
        c.architecture
    ))
}

/// The checks before [`Backend::encode`]: an encoder-decoder, and an input that fits.
pub fn check_encode(c: &crate::model::ModelConfig, tokens: &[u32], max_context: usize) -> Result<()> {
    use crate::Error;
    if !c.encoder_decoder {
        return Err(Error::InvalidArgument(format!("{:?} has no encoder input: only an encoder-decoder (t5) takes one", c.architecture)));
    }
    if tokens.is_empty() {
        return Err(Error::InvalidArgument("the encoder input has no tokens".into()));
    }
    if tokens.len() > max_context {
        return Err(Error::ContextLengthExceeded { needed: tokens.len(), limit: max_context });
    }
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
        return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary ({} tokens)", c.n_vocab)));
    }
    Ok(())
}

/// A context shift moves keys to new positions by re-rotating them: only RoPE positions allow
/// that (a learned table, ALiBi and T5's relative biases do not).
pub fn check_shift_positions(c: &crate::model::ModelConfig) -> Result<()> {
    if c.positions != crate::model::Positions::Rope {
        return Err(crate::Error::InvalidArgument(format!(
            "a context shift needs RoPE positions; {:?} uses {:?} positions",
            c.architecture, c.positions
        )));
    }
    Ok(())
}

/// Checks a [`Backend::shift`] request against the cached length.
pub fn check_shift(keep: usize, drop: usize, cached: usize) -> Result<()> {
    if drop == 0 || keep + drop > cached {
        return Err(crate::Error::InvalidArgument(format!("cannot drop positions {keep}..{} of {cached}", keep + drop)));
    }
    Ok(())
}
