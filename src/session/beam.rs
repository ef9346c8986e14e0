//! Beam search: keeps the `num_beams` most likely continuations at every step and returns the
//! best finished one under a length penalty (score = sum of log-probabilities / length^penalty).
//! Beams share the session's one KV cache; each step re-evaluates a beam from where it departs
//! from the previously evaluated one (the session's prefix reuse), which is cheap for the
//! short replies beam search is used for.

use super::eval::logsumexp;
use super::Session;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct BeamOptions {
    pub num_beams: usize,
    pub max_tokens: usize,
    /// Exponent of the length normalisation (0: raw sum of log-probabilities; 1: average).
    pub length_penalty: f64,
    /// Stop as soon as `num_beams` beams have finished (otherwise stop when no live beam can
    /// still beat the worst finished one).
    pub early_stopping: bool,
}

impl Default for BeamOptions {
    fn default() -> Self {
        Self { num_beams: 4, max_tokens: 256, length_penalty: 1.0, early_stopping: true }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct BeamResult {
    /// Generated ids, including the end-of-generation token if the beam finished with one.
    pub ids: Vec<u32>,
    pub text: String,
    /// Sum of the tokens' log-probabilities.
    pub logprob: f64,
    /// The score beams were ranked by.
    pub score: f64,
}

struct Beam {
    ids: Vec<u32>,
    logprob: f64,
}

/// The candidates by descending log-probability (then beam, then token), by repeated selection:
/// at most 2·width² of them, and no sort instantiated for it in the wasm file.
fn best_first(mut cands: Vec<(usize, u32, f64)>) -> impl Iterator<Item = (usize, u32, f64)> {
    std::iter::from_fn(move || {
        let better = |a: &(usize, u32, f64), b: &(usize, u32, f64)| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)).is_lt();
        let best = (0..cands.len()).reduce(|i, j| if better(&cands[j], &cands[i]) { j } else { i })?;
        Some(cands.swap_remove(best))
    })
}

fn score(logprob: f64, len: usize, penalty: f64) -> f64 {
    logprob / (len.max(1) as f64).powf(penalty)
}

pub fn beam_search(session: &mut Session, tokenizer: &Tokenizer, prompt: &[u32], opts: &BeamOptions) -> Result<BeamResult> {
    crate::backend::block_on(beam_search_async(session, tokenizer, prompt, opts))
}

/// [`beam_search`] without blocking (the browser).
pub async fn beam_search_async(session: &mut Session, tokenizer: &Tokenizer, prompt: &[u32], opts: &BeamOptions) -> Result<BeamResult> {
    if opts.num_beams == 0 {
        return Err(Error::InvalidArgument("num_beams must be at least 1".into()));
    }
    if prompt.is_empty() {
        return Err(Error::InvalidArgument("empty prompt".into()));
    }
    let width = opts.num_beams;
    let mut live = vec![Beam { ids: Vec::new(), logprob: 0.0 }];
    let mut finished: Vec<Beam> = Vec::new();
    let mut seq = prompt.to_vec();
    for _ in 0..opts.max_tokens {
        // (beam, token, new log-probability) for the best 2 * width tokens of every beam.
        let mut cands: Vec<(usize, u32, f64)> = Vec::new();
        for (b, beam) in live.iter().enumerate() {
            seq.truncate(prompt.len());
            seq.extend_from_slice(&beam.ids);
            let logits = session.set_tokens_async(&seq).await?;
            let lse = logsumexp(&logits);
            // The sampler's selection (the same order as `eval::top_k`): one less sort in the wasm file.
            for (id, l) in crate::sampler::processors::best_candidates(&logits, 2 * width) {
                cands.push((b, id, beam.logprob + l as f64 - lse));
            }
        }
        let mut next = Vec::with_capacity(width);
        for (rank, (b, id, logprob)) in best_first(cands).enumerate() {
            let mut ids = live[b].ids.clone();
            ids.push(id);
            if tokenizer.is_end_of_generation(id) {
                // An ending counts only if it ranks among the best `width` of this step.
                if rank < width {
                    finished.push(Beam { ids, logprob });
                }
            } else {
                next.push(Beam { ids, logprob });
            }
            if next.len() == width {
                break;
            }
        }
        live = next;
        let rank = |b: &Beam| score(b.logprob, b.ids.len(), opts.length_penalty);
        if live.is_empty() || (finished.len() >= width && opts.early_stopping) {
            break;
        }
        if finished.len() >= width {
            let worst = finished.iter().map(rank).fold(f64::INFINITY, f64::min);
            // Log-probabilities only fall, so a live beam's score can only rise through the
            // length normalisation; with no penalty none can catch up.
            let best_live = live.iter().map(rank).fold(f64::NEG_INFINITY, f64::max);
            if opts.length_penalty <= 0.0 && best_live <= worst {
                break;
            }
        }
    }
    finished.extend(live);
    let best = finished
        .into_iter()
        .map(|b| (score(b.logprob, b.ids.len(), opts.length_penalty), b))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .ok_or_else(|| Error::InvalidArgument("max_tokens must be at least 1".into()))?;
    let (score, beam) = best;
    let end = beam.ids.iter().position(|&id| tokenizer.is_end_of_generation(id)).unwrap_or(beam.ids.len());
    let text = tokenizer.decode(&beam.ids[..end], false)?;
    Ok(BeamResult { ids: beam.ids, text, logprob: beam.logprob, score })
}
