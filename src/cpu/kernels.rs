//! Element-wise CPU kernels: RMSNorm, RoPE, SwiGLU.

use crate::model::{ModelConfig, QTensor, RopeStyle};

/// `y[t] = x[t] / sqrt(mean(x[t]²) + eps) * w` for every token vector.
pub fn rms_norm(x: &[f32], w: &QTensor, eps: f32, y: &mut [f32]) {
    let d = w.cols;
    let mut weight = vec![0.0f32; d];
    crate::quant::dequantize_row(w.ty, w.row(0), &mut weight);
    for (xs, ys) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        // f64 sum: cheap at this size and keeps the norm exact to f32 rounding.
        let ss: f64 = xs.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / d as f64 + eps as f64).sqrt()) as f32;
        for ((y, &x), &w) in ys.iter_mut().zip(xs).zip(&weight) {
            *y = x * scale * w;
        }
    }
}

/// cos/sin of every (position, frequency) pair of one batch.
pub struct RopeTable {
    /// `n` rows of `rope_dim / 2` pairs.
    cos_sin: Vec<[f32; 2]>,
    half: usize,
}

impl RopeTable {
    pub fn new(c: &ModelConfig, start: usize, n: usize) -> Self {
        Self { cos_sin: c.rope_cos_sin(start, n), half: c.rope_dim / 2 }
    }

    /// A table from explicit rows of `rope_dim / 2` (cos, sin) pairs.
    pub fn from_rows(c: &ModelConfig, cos_sin: Vec<[f32; 2]>) -> Self {
        Self { cos_sin, half: c.rope_dim / 2 }
    }
}

/// Rotates each `head_dim` head of every token vector in `x` by its position.
pub fn rope(x: &mut [f32], n_heads: usize, c: &ModelConfig, table: &RopeTable) {
    let hd = c.head_dim;
    let half = table.half;
    for (t, tok) in x.chunks_exact_mut(n_heads * hd).enumerate() {
        let cs = &table.cos_sin[t * half..(t + 1) * half];
        for head in tok.chunks_exact_mut(hd) {
            for (i, &[cos, sin]) in cs.iter().enumerate() {
                let (a, b) = match c.rope_style {
                    RopeStyle::Norm => (2 * i, 2 * i + 1),
                    RopeStyle::Neox => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos - x1 * sin;
                head[b] = x0 * sin + x1 * cos;
            }
        }
    }
}

/// `gate = silu(gate) * up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}
