//! A conversation's state on a backend: the tokens in its KV cache, evaluation with prefix
//! reuse, and the generation loop.

mod eval;
mod generate;

pub use eval::{logsumexp, top_k, Perplexity, PositionScore};
pub use generate::{generate, GenerateOptions, Generation, StopReason};

use crate::backend::{Backend, LogitsFor};
use crate::{Error, Result};

/// Default number of tokens evaluated per forward call during prefill.
pub const DEFAULT_PREFILL_CHUNK: usize = 256;

pub struct Session {
    backend: Box<dyn Backend>,
    tokens: Vec<u32>,
    n_vocab: usize,
    pub prefill_chunk: usize,
}

impl Session {
    pub fn new(backend: Box<dyn Backend>, n_vocab: usize) -> Self {
        Self { backend, tokens: Vec::new(), n_vocab, prefill_chunk: DEFAULT_PREFILL_CHUNK }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Tokens whose keys and values are in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn clear(&mut self) {
        self.backend.truncate(0);
        self.tokens.clear();
    }

    /// Appends `tokens` to the sequence, evaluating them in chunks. Returns the logits `which`
    /// selects (for `All`, one row per appended token).
    pub fn append(&mut self, tokens: &[u32], which: LogitsFor) -> Result<Vec<f32>> {
        let limit = self.backend.max_context();
        if self.tokens.len() + tokens.len() > limit {
            return Err(Error::ContextLengthExceeded { needed: self.tokens.len() + tokens.len(), limit });
        }
        let chunk = self.prefill_chunk.min(self.backend.max_batch()).max(1);
        let mut out = Vec::new();
        let n_chunks = tokens.len().div_ceil(chunk);
        for (i, part) in tokens.chunks(chunk).enumerate() {
            let last = i + 1 == n_chunks;
            let w = match which {
                LogitsFor::All => LogitsFor::All,
                LogitsFor::Last if last => LogitsFor::Last,
                _ => LogitsFor::None,
            };
            let start = self.tokens.len();
            match self.backend.forward(part, start, w) {
                Ok(logits) => out.extend_from_slice(&logits),
                Err(e) => {
                    // Leave the session consistent: drop whatever this call added.
                    self.backend.truncate(start);
                    return Err(e);
                }
            }
            self.tokens.extend_from_slice(part);
        }
        debug_assert!(out.len() % self.n_vocab.max(1) == 0);
        Ok(out)
    }

    /// Makes the sequence equal to `tokens`, re-evaluating only what follows the longest
    /// common prefix with the cached tokens, and returns the last token's logits.
    pub fn set_tokens(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("empty prompt".into()));
        }
        let common = self.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count();
        // The last token is always evaluated again: its logits are the result.
        let keep = common.min(tokens.len() - 1);
        self.backend.truncate(keep);
        self.tokens.truncate(keep);
        self.append(&tokens[keep..], LogitsFor::Last)
    }
}
