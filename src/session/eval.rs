//! Teacher-forced evaluation: per-position top-k and log-normaliser, and perplexity. Both
//! evaluate in chunks and keep only the numbers they report, never every position's logits.

use super::Session;
use crate::backend::{block_on, LogitsFor};
use crate::{Error, Result};

/// What the model predicted at one position (for the token that follows it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PositionScore {
    /// The `k` highest `(id, logit)` pairs, highest first, lower id first among equals.
    pub top: Vec<(u32, f32)>,
    pub logsumexp: f64,
}

/// Perplexity result over `n_tokens` tokens (`n_tokens - 1` of them predicted).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Perplexity {
    pub ppl: f64,
    pub n_tokens: usize,
    /// Tokens whose likelihood was scored (all but the first, or fewer with disjoint windows,
    /// whose first tokens have no context).
    pub n_scored: usize,
    pub mean_nll: f64,
}

pub fn logsumexp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln()
}

/// The `k` largest logits, ties broken towards the lower id.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    let cmp = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, logits[i as usize])).collect()
}

impl Session {
    /// Evaluates `tokens` from an empty cache and calls `each(position, logits)` for every
    /// position, chunk by chunk.
    async fn for_each_position(&mut self, tokens: &[u32], mut each: impl FnMut(usize, &[f32])) -> Result<()> {
        self.clear();
        let n_vocab = self.n_vocab;
        let chunk = self.chunk_len();
        for (c, part) in tokens.chunks(chunk).enumerate() {
            let logits = self.append_async(part, LogitsFor::All).await?;
            for (i, row) in logits.chunks_exact(n_vocab).enumerate() {
                each(c * chunk + i, row);
            }
        }
        Ok(())
    }

    /// Teacher-forced scores for every position of `tokens`.
    pub fn score(&mut self, tokens: &[u32], k: usize) -> Result<Vec<PositionScore>> {
        let mut out = Vec::with_capacity(tokens.len());
        block_on(self.for_each_position(tokens, |_, row| out.push(PositionScore { top: top_k(row, k), logsumexp: logsumexp(row) })))?;
        Ok(out)
    }

    /// Perplexity of `tokens`: exp of the mean negative log-likelihood of tokens 1..N, all in
    /// one window.
    pub fn perplexity(&mut self, tokens: &[u32]) -> Result<Perplexity> {
        self.perplexity_windowed(tokens, tokens.len(), tokens.len())
    }

    /// Perplexity of a text longer than the context: windows of `window` tokens starting every
    /// `stride` tokens, each scoring only the tokens no earlier window scored (so every token
    /// after the first is scored once, with at least `window - stride` tokens of context
    /// once the first window is past).
    pub fn perplexity_windowed(&mut self, tokens: &[u32], window: usize, stride: usize) -> Result<Perplexity> {
        block_on(self.perplexity_async(tokens, window, stride))
    }

    /// [`perplexity_windowed`](Self::perplexity_windowed) without blocking (the browser).
    pub async fn perplexity_async(&mut self, tokens: &[u32], window: usize, stride: usize) -> Result<Perplexity> {
        if tokens.len() < 2 {
            return Err(Error::InvalidArgument(format!("perplexity needs at least 2 tokens, got {}", tokens.len())));
        }
        if window < 2 || stride == 0 || stride > window {
            return Err(Error::InvalidArgument(format!("perplexity windows need 2 <= window and 1 <= stride <= window, got {window} and {stride}")));
        }
        let (mut nll, mut scored, mut done) = (0.0, 0usize, 1usize);
        let mut begin = 0;
        while done < tokens.len() {
            let end = (begin + window).min(tokens.len());
            // Logits at position p predict token p + 1; score targets from `done` on.
            self.for_each_position(&tokens[begin..end - 1], |p, row| {
                let target = begin + p + 1;
                if target >= done {
                    nll += logsumexp(row) - row[tokens[target] as usize] as f64;
                    scored += 1;
                }
            })
            .await?;
            done = end;
            begin += stride;
        }
        let mean_nll = nll / scored as f64;
        Ok(Perplexity { ppl: mean_nll.exp(), n_tokens: tokens.len(), n_scored: scored, mean_nll })
    }
}
