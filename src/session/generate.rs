//! The token loop: prefill the prompt, then sample and decode one token at a time.

use web_time::Instant;

use super::stop::StopMatcher;
use super::Session;
use crate::sampler::Sampler;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eos,
    /// `max_tokens` were generated.
    Length,
    /// The caller's callback asked to stop.
    Cancelled,
    /// A stop string appeared in the text (it is not part of the reply).
    Stop,
}

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    /// The reply ends before the first of these strings (matched across tokens).
    pub stop: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    /// Generated ids, including the end-of-generation token when that is why it stopped.
    pub ids: Vec<u32>,
    pub text: String,
    pub stop_reason: StopReason,
    pub prefill_tokens: usize,
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
}

impl Generation {
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_seconds)
    }

    /// Decode rate over the tokens that needed a forward pass (all but the first).
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.ids.len().saturating_sub(1), self.decode_seconds)
    }
}

fn rate(n: usize, s: f64) -> f64 {
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Generates from `prompt_ids`, reusing whatever prefix the session already holds. `on_text`
/// receives text as it becomes complete UTF-8 and returns `false` to stop.
pub fn generate(
    session: &mut Session,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    opts: &GenerateOptions,
    sampler: &mut Sampler,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<Generation> {
    let t0 = Instant::now();
    let reused = session.common_prefix(prompt_ids);
    let mut next = session.set_tokens_and_sample(prompt_ids, sampler)?;
    let prefill_seconds = t0.elapsed().as_secs_f64();
    let prefill_tokens = prompt_ids.len() - reused.min(prompt_ids.len() - 1);
    let t1 = Instant::now();
    let mut ids = Vec::new();
    let mut text = String::new();
    let mut decoder = StreamDecoder::new(tokenizer);
    let mut stops = StopMatcher::new(&opts.stop);
    let mut stop_reason = StopReason::Length;
    while ids.len() < opts.max_tokens {
        let id = next;
        ids.push(id);
        if tokenizer.is_end_of_generation(id) {
            stop_reason = StopReason::Eos;
            break;
        }
        let matched = stops.push(&decoder.push(id)?);
        text.push_str(&matched.emit);
        if matched.stopped {
            on_text(&matched.emit);
            stop_reason = StopReason::Stop;
            break;
        }
        if !on_text(&matched.emit) {
            stop_reason = StopReason::Cancelled;
            break;
        }
        if ids.len() == opts.max_tokens {
            break;
        }
        next = session.append_and_sample(&[id], sampler)?;
    }
    let tail = if stop_reason == StopReason::Stop { String::new() } else { stops.push(&decoder.finish()).emit + &stops.finish() };
    if !tail.is_empty() {
        on_text(&tail);
        text.push_str(&tail);
    }
    Ok(Generation {
        prompt_ids: prompt_ids.to_vec(),
        ids,
        text,
        stop_reason,
        prefill_tokens,
        prefill_seconds,
        decode_seconds: t1.elapsed().as_secs_f64(),
    })
}
