//! Turning logits into the next token. Temperature 0 is greedy (ties go to the lower id);
//! otherwise a softmax at the given temperature sampled with a seeded ChaCha8 RNG, which gives
//! the same draws on every platform for the same seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::{Error, Result};

pub struct Sampler {
    temperature: f32,
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(temperature: f32, seed: u64) -> Result<Self> {
        if !(temperature >= 0.0 && temperature.is_finite()) {
            return Err(Error::InvalidArgument(format!("temperature must be a finite number >= 0, got {temperature}")));
        }
        Ok(Self { temperature, rng: ChaCha8Rng::seed_from_u64(seed) })
    }

    pub fn greedy() -> Self {
        Self { temperature: 0.0, rng: ChaCha8Rng::seed_from_u64(0) }
    }

    /// Temperature 0: the next token is the argmax, which backends can compute in place.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        if logits.is_empty() {
            return Err(Error::InvalidArgument("no logits to sample from".into()));
        }
        if self.temperature == 0.0 {
            return Ok(argmax(logits));
        }
        let inv_t = 1.0 / self.temperature as f64;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let weights: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) * inv_t).exp()).collect();
        let total: f64 = weights.iter().sum();
        // 53 random bits → uniform in [0, 1).
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let mut acc = 0.0;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return Ok(i as u32);
            }
        }
        Ok(argmax(logits))
    }
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
