//! Rotary position embeddings: how a file's RoPE settings become the cos/sin table every
//! backend rotates by. The table is computed here once, in f64, so all backends rotate by the
//! same f32 values; llama.cpp computes the same quantities in f32 (its `theta *= theta_scale`
//! recurrence drifts by a few ulps at long positions, which exact math does not).
//!
//! For dimension pair `i` of `n = dims / 2` at position `p` (ggml's `ggml_rope_cache_init` and
//! `rope_yarn`, with `f` the file's frequency factor for the pair, 1 without one):
//!
//! ```text
//! θ_extrap = p · base^(−2i/dims) / f
//! θ        = freq_scale · θ_extrap                                      (linear / no scaling)
//! θ        = freq_scale · θ_extrap · (1 − r_i) + θ_extrap · r_i        (YaRN, r_i its ramp)
//! cos, sin = cos θ · m, sin θ · m,   m = attn_factor (· (1 + 0.1 ln(1/freq_scale)) with YaRN)
//! ```

use super::arch::RopeStyle;

/// YaRN's extrapolation/interpolation mix (only with `rope.scaling.type = "yarn"`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Yarn {
    /// Weight of the ramp (llama.cpp: 1 for YaRN files).
    pub ext_factor: f64,
    /// Training context the scaling extends (`rope.scaling.original_context_length`).
    pub orig_ctx: f64,
    pub beta_fast: f64,
    pub beta_slow: f64,
}

/// One RoPE variant of a model (gemma3 has two: local layers and global layers).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RopeSpec {
    /// Rotated dimensions per head (the first `dims` of each head; even).
    pub dims: usize,
    pub style: RopeStyle,
    /// `rope.freq_base`.
    pub base: f64,
    /// Positions are multiplied by this (1 / `rope.scaling.factor`; 1 without scaling).
    pub freq_scale: f64,
    /// Per-pair divisors of the frequency (`rope_freqs.weight`, Llama 3.1+ scaling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq_factors: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yarn: Option<Yarn>,
    /// Magnitude the rotation is scaled by (`rope.scaling.attn_factor`, 1 by default).
    pub attn_factor: f64,
}

impl RopeSpec {
    /// Plain RoPE: no scaling, no factors.
    pub fn plain(dims: usize, style: RopeStyle, base: f64) -> Self {
        Self { dims, style, base, freq_scale: 1.0, freq_factors: None, yarn: None, attn_factor: 1.0 }
    }

    /// Rotated pairs per head.
    pub fn half(&self) -> usize {
        self.dims / 2
    }

    /// YaRN's correction range of pair indices (ggml's `ggml_rope_yarn_corr_dims`).
    fn yarn_corr_dims(&self, y: &Yarn) -> [f64; 2] {
        let n = self.dims as f64;
        let corr = |rot: f64| n * (y.orig_ctx / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * self.base.ln());
        [corr(y.beta_fast).floor().max(0.0), corr(y.beta_slow).ceil().min(n - 1.0)]
    }

    /// The rotation angles of every pair at position `p`, and the magnitude the rotation is
    /// scaled by.
    fn angles(&self, p: usize) -> (Vec<f64>, f64) {
        let corr = self.yarn.as_ref().map(|y| (y.ext_factor, self.yarn_corr_dims(y)));
        let mut magnitude = self.attn_factor;
        if corr.is_some_and(|(ext, _)| ext != 0.0) {
            magnitude *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
        }
        let angles = (0..self.half())
            .map(|i| {
                let f = self.freq_factors.as_ref().map_or(1.0, |ff| ff[i] as f64);
                let extrap = p as f64 * self.base.powf(-2.0 * i as f64 / self.dims as f64) / f;
                let interp = self.freq_scale * extrap;
                match corr {
                    Some((ext, [lo, hi])) if ext != 0.0 => {
                        let mix = ext * (1.0 - ((i as f64 - lo) / (hi - lo).max(0.001)).clamp(0.0, 1.0));
                        interp * (1.0 - mix) + extrap * mix
                    }
                    _ => interp,
                }
            })
            .collect();
        (angles, magnitude)
    }

    /// `[cos, sin]` for positions `start..start + n`, [`half`](Self::half) pairs each.
    pub fn cos_sin(&self, start: usize, n: usize) -> Vec<[f32; 2]> {
        let mut out = Vec::with_capacity(n * self.half());
        for p in start..start + n {
            let (angles, m) = self.angles(p);
            out.extend(angles.iter().map(|a| {
                let (s, c) = a.sin_cos();
                [(c * m) as f32, (s * m) as f32]
            }));
        }
        out
    }

    /// Rows that rotate by `-delta` positions (undoing `delta` steps, without the magnitude),
    /// `n` times: what a context shift applies to the keys it moves. Every angle is linear in
    /// the position, so this is exact up to rounding.
    pub fn unshift_rows(&self, delta: usize, n: usize) -> Vec<[f32; 2]> {
        let row: Vec<[f32; 2]> = self
            .angles(delta)
            .0
            .iter()
            .map(|a| {
                let (s, c) = a.sin_cos();
                [c as f32, -s as f32]
            })
            .collect();
        row.iter().copied().cycle().take(row.len() * n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rope_is_the_textbook_rotation() {
        let r = RopeSpec::plain(8, RopeStyle::Norm, 10_000.0);
        let t = r.cos_sin(3, 1);
        for (i, [c, s]) in t.iter().enumerate() {
            let th = 3.0 * 10_000f64.powf(-2.0 * i as f64 / 8.0);
            assert_eq!(*c, th.cos() as f32);
            assert_eq!(*s, th.sin() as f32);
        }
    }

    #[test]
    fn factors_and_linear_scaling_slow_the_rotation() {
        let mut r = RopeSpec::plain(4, RopeStyle::Neox, 100.0);
        r.freq_factors = Some(vec![1.0, 8.0]);
        r.freq_scale = 0.5;
        let t = r.cos_sin(5, 1);
        assert_eq!(t[0][1], (5.0f64 * 0.5).sin() as f32);
        assert_eq!(t[1][1], (5.0f64 * 0.5 * 100f64.powf(-0.5) / 8.0).sin() as f32);
    }
}
