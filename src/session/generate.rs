//! The token loop: prefill the prompt, then sample and decode one token at a time.

use web_time::Instant;

use super::stop::StopMatcher;
use super::Session;
use crate::sampler::Sampler;
use crate::tokenizer::{StreamDecoder, Tokenizer};
use crate::{Error, Result};

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

/// What one sampled token adds to a reply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The token, or `None` for the text released when a reply is cancelled.
    pub id: Option<u32>,
    /// Text now safe to show (complete UTF-8, never part of a stop string).
    pub text: String,
    /// Why the reply ended, once it has.
    pub finish: Option<StopReason>,
}

/// The rules of one reply, token by token: when it ends, which text it shows. The native loop
/// ([`generate`]) and the browser engine (which awaits each forward pass between steps) both
/// feed it the sampled ids, so the two cannot drift apart.
///
/// - `ids` holds every sampled token, the end-of-generation token included when it ended the
///   reply; the text never includes it.
/// - The reply ends with [`StopReason::Length`] after `max_tokens` tokens, or when the context
///   is full (and does not shift): the token sampled from the full context is the last one.
/// - A stop string ends it with [`StopReason::Stop`]; the text stops before the string.
pub struct Reply<T: AsRef<Tokenizer>> {
    decoder: StreamDecoder<T>,
    stops: StopMatcher,
    max_tokens: usize,
    ids: Vec<u32>,
    text: String,
    finish: Option<StopReason>,
}

impl<T: AsRef<Tokenizer>> Reply<T> {
    pub fn new(tokenizer: T, opts: &GenerateOptions) -> Result<Self> {
        if opts.max_tokens == 0 {
            return Err(Error::InvalidArgument("max_tokens must be at least 1".into()));
        }
        Ok(Self { decoder: StreamDecoder::new(tokenizer), stops: StopMatcher::new(&opts.stop), max_tokens: opts.max_tokens, ids: Vec::new(), text: String::new(), finish: None })
    }

    /// Takes the next sampled token. `room` says whether the session can take one more token.
    pub fn push(&mut self, id: u32, room: bool) -> Result<Step> {
        if self.finish.is_some() {
            return Err(Error::InvalidArgument("the reply has already ended".into()));
        }
        self.ids.push(id);
        if self.decoder.tokenizer().is_end_of_generation(id) {
            return Ok(self.end(Some(id), String::new(), StopReason::Eos));
        }
        let matched = self.stops.push(&self.decoder.push(id)?);
        if matched.stopped {
            self.text.push_str(&matched.emit);
            self.finish = Some(StopReason::Stop);
            return Ok(Step { id: Some(id), text: matched.emit, finish: self.finish });
        }
        if self.ids.len() >= self.max_tokens || !room {
            return Ok(self.end(Some(id), matched.emit, StopReason::Length));
        }
        self.text.push_str(&matched.emit);
        Ok(Step { id: Some(id), text: matched.emit, finish: None })
    }

    /// Ends the reply at the caller's request, releasing the text held back.
    pub fn cancel(&mut self) -> Step {
        match self.finish {
            Some(_) => Step { id: None, text: String::new(), finish: self.finish },
            None => self.end(None, String::new(), StopReason::Cancelled),
        }
    }

    /// Ends the reply: the text held back (a split character, a possible stop string's start)
    /// is released, unless it completes a stop string.
    fn end(&mut self, id: Option<u32>, mut text: String, mut reason: StopReason) -> Step {
        let tail = self.stops.push(&self.decoder.finish());
        text.push_str(&tail.emit);
        if tail.stopped {
            if reason != StopReason::Eos {
                reason = StopReason::Stop;
            }
        } else {
            text.push_str(&self.stops.finish());
        }
        self.text.push_str(&text);
        self.finish = Some(reason);
        Step { id, text, finish: self.finish }
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Tokens the reply may still draw before `max_tokens` ends it: how far ahead a greedy
    /// run may usefully compute ([`Session::lookahead`]).
    pub fn remaining(&self) -> usize {
        self.max_tokens.saturating_sub(self.ids.len())
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn finish(&self) -> Option<StopReason> {
        self.finish
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
    let mut reply = Reply::new(tokenizer, opts)?;
    let t0 = Instant::now();
    let reused = session.common_prefix(prompt_ids);
    let mut next = session.set_tokens_and_sample(prompt_ids, sampler)?;
    let prefill_seconds = t0.elapsed().as_secs_f64();
    let prefill_tokens = prompt_ids.len() - reused.min(prompt_ids.len() - 1);
    let t1 = Instant::now();
    loop {
        let step = reply.push(next, session.has_room())?;
        let go_on = step.text.is_empty() || on_text(&step.text);
        if step.finish.is_some() {
            break;
        }
        if !go_on {
            let tail = reply.cancel();
            if !tail.text.is_empty() {
                on_text(&tail.text);
            }
            break;
        }
        session.lookahead = reply.remaining();
        let sampled = session.append_and_sample(&[next], sampler);
        session.lookahead = usize::MAX;
        next = sampled?;
    }
    Ok(Generation {
        prompt_ids: prompt_ids.to_vec(),
        stop_reason: reply.finish().unwrap_or(StopReason::Cancelled),
        ids: reply.ids,
        text: reply.text,
        prefill_tokens,
        prefill_seconds,
        decode_seconds: t1.elapsed().as_secs_f64(),
    })
}
