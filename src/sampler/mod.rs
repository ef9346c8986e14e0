//! Turning logits into the next token: composable logit processors (`processors`, applied in
//! the order documented there) and a draw whose random number is a pure function of the seed
//! and the draw's index ([`philox`]), so that a GPU drawing on the device and the CPU give the
//! same tokens for the same seed. Temperature 0 is greedy (ties go to the lower id).

pub mod constraint;
pub mod philox;
pub mod processors;

use crate::{Error, Result};
pub use constraint::{Constraint, ConstraintStats, ResponseFormat};
#[cfg(not(target_arch = "wasm32"))]
pub use constraint::Grammars;
use processors as p;

/// Sampling settings; the defaults turn every processor off except temperature 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// 0 is greedy; larger values flatten the distribution.
    pub temperature: f32,
    /// Keep the k most likely tokens (0: off).
    pub top_k: usize,
    /// Keep the most likely tokens until their probability reaches p (1: off).
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely (0: off).
    pub min_p: f32,
    /// CTRL-style repetition penalty (1: off) over the last `repeat_last_n` tokens.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// OpenAI-style penalties over the same window (0: off).
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// Added to the logits of the given token ids.
    pub logit_bias: Vec<(u32, f32)>,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplerConfig {
    fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32| Err(Error::InvalidArgument(format!("{what} {v} is out of range")));
        let t = self.temperature;
        if !(t >= 0.0 && t.is_finite()) {
            return Err(Error::InvalidArgument(format!("temperature must be a finite number >= 0, got {t}")));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p (0 < top_p <= 1)", self.top_p);
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p (0 to 1)", self.min_p);
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad("repeat_penalty (> 0)", self.repeat_penalty);
        }
        for (what, v) in [("frequency_penalty (-2 to 2)", self.frequency_penalty), ("presence_penalty (-2 to 2)", self.presence_penalty)] {
            if !(-2.0..=2.0).contains(&v) {
                return bad(what, v);
            }
        }
        if let Some(&(id, b)) = self.logit_bias.iter().find(|(_, b)| !b.is_finite()) {
            return Err(Error::InvalidArgument(format!("logit_bias for token {id} is {b}")));
        }
        Ok(())
    }

    fn changes_logits(&self) -> bool {
        !self.logit_bias.is_empty() || self.repeat_penalty != 1.0 || self.frequency_penalty != 0.0 || self.presence_penalty != 0.0
    }
}

pub struct Sampler {
    config: SamplerConfig,
    /// Draws made so far: the next draw's Philox counter.
    draws: u64,
    constraint: Option<Constraint>,
}

/// What a device needs to make a draw itself: the draw of [`Sampler::sample_top_k`] over the
/// `top_k` best logits (truncated by `top_p` and `min_p`, at `temperature`), with the random
/// number of draw `counter` under `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceDraw {
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub temperature: f32,
    pub seed: u64,
    pub counter: u64,
}

impl Sampler {
    /// Plain temperature sampling (no truncation, no penalties).
    pub fn new(temperature: f32, seed: u64) -> Result<Self> {
        Self::from_config(SamplerConfig { temperature, seed, ..SamplerConfig::default() })
    }

    pub fn from_config(config: SamplerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, draws: 0, constraint: None })
    }

    /// Restricts the draws from now on to what `constraint` allows (applied before every other
    /// processor) and advances it with each drawn token; one constraint serves one reply.
    pub fn set_constraint(&mut self, constraint: Option<Constraint>) {
        self.constraint = constraint;
    }

    /// The constraint of the reply in progress, if any (to [`supply`](Constraint::supply) an
    /// external one's next mask).
    pub fn constraint_mut(&mut self) -> Option<&mut Constraint> {
        self.constraint.as_mut()
    }

    /// Time spent on constraint masks so far, if there is a constraint.
    pub fn constraint_stats(&self) -> Option<ConstraintStats> {
        self.constraint.as_ref().map(Constraint::stats)
    }

    pub fn greedy() -> Self {
        Self::new(0.0, 0).expect("valid")
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Whether the next token is the argmax of the raw logits, which backends can compute in
    /// place (temperature 0 and nothing that changes logits first).
    pub fn is_greedy(&self) -> bool {
        self.config.temperature == 0.0 && !self.config.changes_logits() && self.constraint.is_none()
    }

    /// The next token for `logits`, given the sequence so far (`history`, for the penalties).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let id = match &mut self.constraint {
            Some(c) => {
                let mut masked = logits.to_vec();
                c.mask(&mut masked)?;
                self.draw(&masked, history)?
            }
            None => self.draw(logits, history)?,
        };
        if let Some(c) = &mut self.constraint {
            c.commit(id)?;
        }
        Ok(id)
    }

    fn draw(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let d = self.distribution(logits, history)?;
        Ok(pick(d, self.next_uniform()))
    }

    /// The next draw's random number; every draw takes one, needed or not, so that draw n
    /// always uses counter n.
    fn next_uniform(&mut self) -> f64 {
        let u = philox::uniform(self.config.seed, self.draws);
        self.draws += 1;
        u
    }

    /// Draws made so far (the next draw's counter).
    pub fn draws(&self) -> u64 {
        self.draws
    }

    /// Counts `n` draws a device made with [`device_draw`](Self::device_draw)'s settings.
    pub fn skip_draws(&mut self, n: u64) {
        self.draws += n;
    }

    /// The next draw as a device can make it ([`DeviceDraw`]), when it depends only on the k
    /// best raw logits ([`top_k_only`](Self::top_k_only)).
    pub fn device_draw(&self) -> Option<DeviceDraw> {
        self.top_k_only().map(|_| self.next_draw())
    }

    /// The settings of the next draw from the k best logits.
    fn next_draw(&self) -> DeviceDraw {
        let c = &self.config;
        DeviceDraw { top_k: c.top_k, top_p: c.top_p, min_p: c.min_p, temperature: c.temperature, seed: c.seed, counter: self.draws }
    }

    /// `Some(k)` when a draw depends only on the k largest raw logits (top-k sampling with
    /// nothing that changes logits first), so a backend can select them where it computes them.
    pub fn top_k_only(&self) -> Option<usize> {
        let c = &self.config;
        (c.top_k > 0 && c.temperature > 0.0 && !c.changes_logits() && self.constraint.is_none()).then_some(c.top_k)
    }

    /// The draw [`sample`](Self::sample) makes, from the `top_k` largest logits with their ids,
    /// largest first (lower id among equals): the same token for the same seed.
    pub fn sample_top_k(&mut self, candidates: Vec<(u32, f32)>) -> Result<u32> {
        let d = self.next_draw();
        self.draws += 1;
        draw_candidates(candidates, &d)
    }

    /// The distribution a draw uses: probabilities and their token ids, most likely first
    /// (a single certain token when greedy). The constraint, if any, is not applied.
    pub fn distribution(&self, logits: &[f32], history: &[u32]) -> Result<(Vec<f64>, Vec<u32>)> {
        if logits.is_empty() {
            return Err(Error::InvalidArgument("no logits to sample from".into()));
        }
        let c = &self.config;
        let mut l = logits.to_vec();
        p::apply_logit_bias(&mut l, &c.logit_bias);
        let window = &history[history.len().saturating_sub(c.repeat_last_n)..];
        p::apply_penalties(&mut l, window, c.repeat_penalty, c.frequency_penalty, c.presence_penalty);
        if c.temperature == 0.0 {
            return Ok((vec![1.0], vec![argmax(&l)]));
        }
        Ok(self.truncate(p::best_candidates(&l, c.top_k)))
    }

    fn truncate(&self, cands: Vec<p::Candidate>) -> (Vec<f64>, Vec<u32>) {
        let c = &self.config;
        truncate(cands, c.top_p, c.min_p, c.temperature)
    }
}

/// Top-p, min-p and temperature over sorted candidates: the probabilities a draw uses.
fn truncate(mut cands: Vec<p::Candidate>, top_p: f32, min_p: f32, temperature: f32) -> (Vec<f64>, Vec<u32>) {
    p::top_p(&mut cands, top_p);
    p::min_p(&mut cands, min_p);
    let probs = p::tempered(&cands, temperature);
    (probs, cands.into_iter().map(|(id, _)| id).collect())
}

/// The draw `d` describes from sorted candidates (the best logits with their ids, largest
/// first): what [`Sampler::sample_top_k`] does, and what a device's draw must match.
pub fn draw_candidates(candidates: Vec<(u32, f32)>, d: &DeviceDraw) -> Result<u32> {
    if candidates.is_empty() {
        return Err(Error::InvalidArgument("no candidates to sample from".into()));
    }
    let mut c = candidates;
    p::top_k(&mut c, d.top_k);
    Ok(pick(truncate(c, d.top_p, d.min_p, d.temperature), philox::uniform(d.seed, d.counter)))
}

/// The draw's inverse-CDF step, walking the tokens in id order: the first whose cumulative
/// probability exceeds `u` (the last one if rounding leaves `u` past the total). Id order, not
/// probability order, keeps a draw stable when two nearly equal logits swap places between
/// backends whose arithmetic differs in the last bits: only a `u` within that difference of a
/// boundary can change the token.
fn pick((probs, ids): (Vec<f64>, Vec<u32>), u: f64) -> u32 {
    // By id (a scatter, not a sort: ids are below the vocabulary size).
    let last = ids.iter().copied().max().unwrap_or(0);
    let mut by_id = vec![0.0f64; last as usize + 1];
    for (&q, &id) in probs.iter().zip(&ids) {
        by_id[id as usize] = q;
    }
    let mut acc = 0.0;
    for (id, &q) in by_id.iter().enumerate() {
        acc += q;
        if u < acc {
            return id as u32;
        }
    }
    last
}

/// Index of the largest logit; the lowest index among equals.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}
