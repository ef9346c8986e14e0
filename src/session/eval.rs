//! Teacher-forced evaluation: per-position top-k and log-normaliser, and perplexity. Both
//! evaluate in chunks and keep only the numbers they report, never every position's logits.

use super::Session;
use crate::backend::LogitsFor;
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
    fn for_each_position(&mut self, tokens: &[u32], mut each: impl FnMut(usize, &[f32])) -> Result<()> {
        self.clear();
        let n_vocab = self.n_vocab;
        let chunk = self.chunk_len();
        for (c, part) in tokens.chunks(chunk).enumerate() {
            let logits = self.append(part, LogitsFor::All)?;
            for (i, row) in logits.chunks_exact(n_vocab).enumerate() {
                each(c * chunk + i, row);
            }
        }
        Ok(())
    }

    /// Teacher-forced scores for every position of `tokens`.
    pub fn score(&mut self, tokens: &[u32], k: usize) -> Result<Vec<PositionScore>> {
        let mut out = Vec::with_capacity(tokens.len());
        self.for_each_position(tokens, |_, row| out.push(PositionScore { top: top_k(row, k), logsumexp: logsumexp(row) }))?;
        Ok(out)
    }

    /// Perplexity of `tokens`: exp of the mean negative log-likelihood of tokens 1..N.
    pub fn perplexity(&mut self, tokens: &[u32]) -> Result<Perplexity> {
        if tokens.len() < 2 {
            return Err(Error::InvalidArgument(format!("perplexity needs at least 2 tokens, got {}", tokens.len())));
        }
        let mut nll = 0.0;
        self.for_each_position(&tokens[..tokens.len() - 1], |p, row| {
            nll += logsumexp(row) - row[tokens[p + 1] as usize] as f64;
        })?;
        let mean_nll = nll / (tokens.len() - 1) as f64;
        Ok(Perplexity { ppl: mean_nll.exp(), n_tokens: tokens.len(), mean_nll })
    }
}
