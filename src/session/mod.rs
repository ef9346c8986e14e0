//! A conversation's state on a backend: the tokens in its KV cache, evaluation with prefix
//! reuse, and the generation loop.

mod beam;
mod eval;
mod generate;
mod stop;

pub use beam::{beam_search, beam_search_async, BeamOptions, BeamResult};
pub use eval::{logsumexp, top_k, Perplexity, PositionScore};
pub use generate::{generate, GenerateOptions, Generation, Reply, Step, StopReason};
pub use stop::StopMatcher;

use crate::backend::{block_on, Backend, LogitsFor};
use crate::model::Pooling;
use crate::sampler::{DeviceDraw, Sampler};
use crate::{Error, Result};

/// Default number of tokens evaluated per forward call during prefill.
pub const DEFAULT_PREFILL_CHUNK: usize = 256;

pub struct Session {
    backend: Box<dyn Backend>,
    tokens: Vec<u32>,
    /// Ids a decoding run computed beyond the one last returned ([`Backend::decode_run`]);
    /// the backend's cache holds `tokens.len() + ahead.len()` positions meanwhile.
    ahead: std::collections::VecDeque<u32>,
    /// The id last returned by a decoding run, which the caller appends next.
    ahead_of: u32,
    /// How the next id ahead was picked: `None` greedy, else the draw (its counter the next
    /// one's); the caller's next pick must be the same for it to apply.
    ahead_draw: Option<DeviceDraw>,
    /// The most tokens the caller may still use: a run computes no more than this ahead (the
    /// reply loop sets it from `max_tokens`; unlimited by default).
    pub lookahead: usize,
    n_vocab: usize,
    pub prefill_chunk: usize,
    /// Off (`None`, the default): a sequence longer than the context is a
    /// `ContextLengthExceeded` error. `Some(sinks)`: when the context is full, the oldest
    /// tokens after the first `sinks` are dropped (half of the rest, or more if a chunk needs
    /// it) and the cache is shifted with their RoPE positions corrected.
    pub context_shift: Option<usize>,
}

impl Session {
    pub fn new(backend: Box<dyn Backend>, n_vocab: usize) -> Self {
        Self {
            backend,
            tokens: Vec::new(),
            ahead: Default::default(),
            ahead_of: 0,
            ahead_draw: None,
            lookahead: usize::MAX,
            n_vocab,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            context_shift: None,
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Device time per kernel family for evaluating `tokens` after the sequence, which stays
    /// as it was (see [`Backend::profile`]).
    pub fn profile(&mut self, tokens: &[u32]) -> Result<Vec<crate::backend::KernelTime>> {
        self.settle();
        let start = self.tokens.len();
        self.backend.profile(tokens, start)
    }

    /// Tokens whose keys and values are in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Drops what a decoding run computed ahead: the cache holds `tokens` again.
    fn settle(&mut self) {
        if !self.ahead.is_empty() {
            self.ahead.clear();
            self.backend.truncate(self.tokens.len());
        }
    }

    pub fn clear(&mut self) {
        self.ahead.clear();
        self.backend.truncate(0);
        self.tokens.clear();
    }

    fn chunk_len(&self) -> usize {
        let room = match self.context_shift {
            Some(sinks) => self.backend.max_context().saturating_sub(sinks).max(1),
            None => usize::MAX,
        };
        self.prefill_chunk.min(self.backend.max_batch()).min(room).max(1)
    }

    /// Whether one more token fits: the context has a free position, or it shifts.
    pub fn has_room(&self) -> bool {
        self.context_shift.is_some() || self.tokens.len() < self.backend.max_context()
    }

    /// Whether `extra` more tokens fit, counting on the context shift where it is on.
    fn check_room(&self, extra: usize) -> Result<()> {
        let limit = self.backend.max_context();
        if self.context_shift.is_none() && self.tokens.len() + extra > limit {
            return Err(Error::ContextLengthExceeded { needed: self.tokens.len() + extra, limit });
        }
        Ok(())
    }

    /// Makes room for `n` more tokens by dropping old ones after the sinks.
    fn shift_for(&mut self, n: usize) -> Result<()> {
        let limit = self.backend.max_context();
        let len = self.tokens.len();
        let Some(sinks) = self.context_shift.filter(|_| len + n > limit) else { return Ok(()) };
        if sinks + n > limit || len < sinks {
            return Err(Error::ContextLengthExceeded { needed: sinks + n, limit });
        }
        let drop = (len + n - limit).max((len - sinks) / 2).min(len - sinks);
        self.backend.shift(sinks, drop)?;
        self.tokens.drain(sinks..sinks + drop);
        Ok(())
    }

    /// Runs one forward call on `part` at the end of the sequence, keeping the session
    /// consistent when it fails.
    async fn step(&mut self, part: &[u32], want: Want) -> Result<Got> {
        self.settle();
        self.shift_for(part.len())?;
        let limit = self.backend.max_context();
        let start = self.tokens.len();
        if start + part.len() > limit {
            return Err(Error::ContextLengthExceeded { needed: start + part.len(), limit });
        }
        let result = match want {
            Want::Logits(which) => self.backend.forward_async(part, start, which).await.map(Got::Logits),
            Want::Argmax => self.backend.forward_argmax_async(part, start).await.map(Got::Id),
            Want::TopK(k) => self.backend.forward_top_k_async(part, start, k).await.map(Got::Candidates),
        };
        match result {
            Ok(v) => {
                self.tokens.extend_from_slice(part);
                Ok(v)
            }
            Err(e) => {
                self.backend.truncate(start);
                Err(e)
            }
        }
    }

    /// Evaluates every chunk of `tokens` but the last without logits and returns the last.
    async fn prefill_head<'t>(&mut self, tokens: &'t [u32]) -> Result<&'t [u32]> {
        self.check_room(tokens.len())?;
        let chunk = self.chunk_len();
        let head = tokens.len().saturating_sub(1) / chunk * chunk;
        for part in tokens[..head].chunks(chunk) {
            self.step(part, Want::Logits(LogitsFor::None)).await?;
        }
        Ok(&tokens[head..])
    }

    /// Appends `tokens` to the sequence, evaluating them in chunks. Returns the logits `which`
    /// selects (for `All`, one row per appended token).
    pub fn append(&mut self, tokens: &[u32], which: LogitsFor) -> Result<Vec<f32>> {
        block_on(self.append_async(tokens, which))
    }

    /// [`append`](Self::append) without blocking (the browser).
    pub async fn append_async(&mut self, tokens: &[u32], which: LogitsFor) -> Result<Vec<f32>> {
        if which == LogitsFor::All {
            self.check_room(tokens.len())?;
            // Checked and fallible: on wasm32 a long text's logits can exceed the address space,
            // and a failed allocation there would trap the whole engine.
            let too_big = || Error::InvalidArgument(format!("logits for {} tokens of {} ids do not fit in memory", tokens.len(), self.n_vocab));
            let floats = tokens.len().checked_mul(self.n_vocab).ok_or_else(too_big)?;
            let mut out = Vec::new();
            out.try_reserve_exact(floats).map_err(|_| too_big())?;
            for part in tokens.chunks(self.chunk_len()) {
                out.extend(self.step(part, Want::Logits(LogitsFor::All)).await?.logits());
            }
            return Ok(out);
        }
        let last = self.prefill_head(tokens).await?;
        Ok(self.step(last, Want::Logits(which)).await?.logits())
    }

    /// An encoder-decoder's input (T5): runs the encoder over `ids` once; what the decoder
    /// generates or scores next attends to it. The sequence starts empty (evaluate the
    /// decoder's start token first: [`Model::decoder_prompt`](crate::model::Model::decoder_prompt)).
    pub fn encode(&mut self, ids: &[u32]) -> Result<()> {
        block_on(self.encode_async(ids))
    }

    /// [`encode`](Self::encode) without blocking.
    pub async fn encode_async(&mut self, ids: &[u32]) -> Result<()> {
        self.clear();
        self.backend.encode_async(ids).await
    }

    /// A sentence embedding of `ids`, as llama.cpp pools it: every token's final state (a
    /// decoder's final normed hidden state, what the output projection reads), pooled as the
    /// model's [`Pooling`] says (the mean, in f64, by default) and L2-normalised. The ids are a
    /// sequence of their own: the cache is cleared before and after, so a conversation
    /// continues by evaluating its prompt again. An encoder reads them in one batch.
    pub fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        block_on(self.embed_async(ids))
    }

    /// [`embed`](Self::embed) without blocking.
    pub async fn embed_async(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        if self.backend.config().pooling == Pooling::Rank {
            return Err(Error::Unsupported(format!(
                "rank pooling, a reranker's classifier head ({}.pooling_type = 4)",
                self.backend.config().architecture
            )));
        }
        let rows = self.states_async(ids).await?;
        let width = rows.len() / ids.len();
        let take = match self.backend.config().pooling {
            Pooling::Mean | Pooling::Rank => &rows[..],
            Pooling::Cls => &rows[..width],
            Pooling::Last => &rows[rows.len() - width..],
        };
        let mut pooled = vec![0f64; width];
        for row in take.chunks_exact(width) {
            pooled.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
        }
        let norm = pooled.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(Error::Model(format!("the pooled state has norm {norm}: it cannot be normalised")));
        }
        // The mean's 1/n cancels in the normalisation.
        Ok(pooled.iter().map(|x| (x / norm) as f32).collect())
    }

    /// Every token's final state (`n_embd` floats a row, what [`embed`](Self::embed) pools):
    /// llama.cpp's embeddings without pooling. The ids are a sequence of their own, as for
    /// `embed`.
    pub fn states(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        block_on(self.states_async(ids))
    }

    /// [`states`](Self::states) without blocking.
    pub async fn states_async(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        if self.backend.config().encoder_decoder {
            return Err(Error::Unsupported(format!(
                "embeddings of an encoder-decoder ({}): only its decoder's text is implemented",
                self.backend.config().architecture
            )));
        }
        if ids.is_empty() {
            return Err(Error::InvalidArgument("nothing to embed: the input has no tokens".into()));
        }
        let limit = self.backend.max_context();
        if ids.len() > limit {
            return Err(Error::ContextLengthExceeded { needed: ids.len(), limit });
        }
        // An encoder reads its input in one batch.
        let chunk = if self.backend.config().encoder { ids.len() } else { self.prefill_chunk.min(self.backend.max_batch()).max(1) };
        self.clear();
        let mut rows = Vec::new();
        let result = async {
            for part in ids.chunks(chunk) {
                rows.extend(self.step(part, Want::Logits(LogitsFor::Hidden)).await?.logits());
            }
            Ok::<_, Error>(())
        }
        .await;
        self.clear();
        result?;
        Ok(rows)
    }

    /// Appends `tokens` and returns the id of the last one's largest logit, letting the
    /// backend avoid reading back the whole vocabulary.
    pub fn append_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        block_on(self.append_greedy_async(tokens))
    }

    /// [`append_greedy`](Self::append_greedy) without blocking: appends `tokens` and returns
    /// the argmax of the last one's logits (computed ahead where the backend runs several
    /// steps at once: see [`decode_one`](Self::decode_one)).
    pub async fn append_greedy_async(&mut self, tokens: &[u32]) -> Result<u32> {
        if let Some(id) = self.decode_one(tokens, None).await? {
            return Ok(id);
        }
        Ok(self.append_for_last(tokens, Want::Argmax).await?.id())
    }

    /// One token appended and the next picked as `draw` says (`None`: greedy) by a decoding
    /// run on a backend that runs several steps without the host ([`Backend::decode_run`]):
    /// the run computes up to that many ids at once, and the next calls are served from them
    /// while each appends the id returned before with the same kind of pick; anything else
    /// first drops them (the cache is truncated back). `None` when this does not apply
    /// (several tokens, or a backend without runs): the caller evaluates as usual.
    async fn decode_one(&mut self, tokens: &[u32], draw: Option<DeviceDraw>) -> Result<Option<u32>> {
        let [token] = *tokens else { return Ok(None) };
        let served = token == self.ahead_of && draw == self.ahead_draw && !self.ahead.is_empty();
        if !served {
            self.settle();
            let start = self.tokens.len();
            let room = self.backend.max_context().saturating_sub(start);
            let steps = self.backend.decode_run_len().min(self.lookahead).min(room);
            if steps <= 1 {
                return Ok(None);
            }
            self.ahead = match self.backend.decode_run_async(token, start, steps, draw).await {
                Ok(ids) if ids.len() == steps => ids.into(),
                Ok(_) => {
                    self.backend.truncate(start);
                    return Err(Error::Gpu("a decoding run returned the wrong number of ids".into()));
                }
                Err(e) => {
                    self.backend.truncate(start);
                    return Err(e);
                }
            };
        }
        let id = self.ahead.pop_front().expect("a run or the ids ahead");
        self.tokens.push(token);
        self.ahead_of = id;
        self.ahead_draw = draw.map(|d| DeviceDraw { counter: d.counter + 1, ..d });
        Ok(Some(id))
    }

    /// Appends `tokens` (at least one); the last one's forward call yields what `want` asks
    /// for instead of its logits.
    async fn append_for_last(&mut self, tokens: &[u32], want: Want) -> Result<Got> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("no tokens to evaluate".into()));
        }
        let last = self.prefill_head(tokens).await?;
        self.step(last, want).await
    }

    /// How many leading tokens of `tokens` the cache already holds.
    pub fn common_prefix(&self, tokens: &[u32]) -> usize {
        self.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count()
    }

    /// [`set_tokens`](Self::set_tokens), then the next token drawn by `sampler`. A greedy
    /// sampler lets the backend compute the argmax in place (a GPU reads back 4 bytes).
    pub fn set_tokens_and_sample(&mut self, tokens: &[u32], sampler: &mut Sampler) -> Result<u32> {
        block_on(self.set_tokens_and_sample_async(tokens, sampler))
    }

    /// [`set_tokens_and_sample`](Self::set_tokens_and_sample) without blocking.
    pub async fn set_tokens_and_sample_async(&mut self, tokens: &[u32], sampler: &mut Sampler) -> Result<u32> {
        let rest = self.reuse_prefix(tokens)?;
        self.append_and_sample_async(rest, sampler).await
    }

    /// Appends `tokens` and draws the next token with `sampler`. The backend reads back as
    /// little as the sampler needs: the argmax when greedy, the k best logits for plain top-k
    /// sampling where it can select them, the whole last row otherwise. Where the backend
    /// runs several steps at once, greedy and plain top-k picks of one token are made on the
    /// device, ahead ([`decode_one`](Self::decode_one)), with the draws the sampler would make.
    pub fn append_and_sample(&mut self, tokens: &[u32], sampler: &mut Sampler) -> Result<u32> {
        block_on(self.append_and_sample_async(tokens, sampler))
    }

    /// [`append_and_sample`](Self::append_and_sample) without blocking.
    pub async fn append_and_sample_async(&mut self, tokens: &[u32], sampler: &mut Sampler) -> Result<u32> {
        if sampler.is_greedy() {
            return self.append_greedy_async(tokens).await;
        }
        if let Some(draw) = sampler.device_draw().filter(|d| d.top_k <= self.backend.device_top_k()) {
            if let Some(id) = self.decode_one(tokens, Some(draw)).await? {
                sampler.skip_draws(1);
                return Ok(id);
            }
            let k = draw.top_k;
            let candidates = self.append_for_last(tokens, Want::TopK(k)).await?.candidates();
            return sampler.sample_top_k(candidates);
        }
        let logits = self.append_async(tokens, LogitsFor::Last).await?;
        sampler.sample(&logits, &self.tokens)
    }

    /// Truncates the cache to the longest common prefix with `tokens`, always leaving at least
    /// the last token to evaluate (its logits are the result); returns what must be evaluated.
    fn reuse_prefix<'t>(&mut self, tokens: &'t [u32]) -> Result<&'t [u32]> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("empty prompt".into()));
        }
        self.settle();
        let common = self.common_prefix(tokens);
        let keep = common.min(tokens.len() - 1);
        self.backend.truncate(keep);
        self.tokens.truncate(keep);
        Ok(&tokens[keep..])
    }

    /// Makes the sequence equal to `tokens`, re-evaluating only what follows the longest
    /// common prefix with the cached tokens, and returns the last token's logits.
    pub fn set_tokens(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        block_on(self.set_tokens_async(tokens))
    }

    /// [`set_tokens`](Self::set_tokens) without blocking.
    pub async fn set_tokens_async(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let rest = self.reuse_prefix(tokens)?;
        self.append_async(rest, LogitsFor::Last).await
    }

    /// [`set_tokens`](Self::set_tokens) for greedy decoding: returns the next token's id.
    pub fn set_tokens_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        block_on(self.set_tokens_greedy_async(tokens))
    }

    /// [`set_tokens_greedy`](Self::set_tokens_greedy) without blocking.
    pub async fn set_tokens_greedy_async(&mut self, tokens: &[u32]) -> Result<u32> {
        let rest = self.reuse_prefix(tokens)?;
        self.append_greedy_async(rest).await
    }
}

/// What one forward call should produce.
#[derive(Clone, Copy)]
enum Want {
    Logits(LogitsFor),
    Argmax,
    TopK(usize),
}

enum Got {
    Logits(Vec<f32>),
    Id(u32),
    Candidates(Vec<(u32, f32)>),
}

impl Got {
    fn logits(self) -> Vec<f32> {
        match self {
            Got::Logits(l) => l,
            _ => unreachable!("asked for logits"),
        }
    }

    fn id(self) -> u32 {
        match self {
            Got::Id(i) => i,
            _ => unreachable!("asked for an id"),
        }
    }

    fn candidates(self) -> Vec<(u32, f32)> {
        match self {
            Got::Candidates(c) => c,
            _ => unreachable!("asked for candidates"),
        }
    }
}
