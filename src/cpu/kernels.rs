//! Element-wise CPU kernels: RMSNorm (whole vectors and per head), LayerNorm, biases and
//! residual adds, RoPE, activations (gated and plain).

use crate::model::{Activation, QTensor, RopeSpec, RopeStyle};

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

/// `y[t] = (x[t] − mean) / sqrt(var + eps) * w + b` for every token vector (LayerNorm; `b` only
/// where given).
pub fn layer_norm(x: &[f32], w: &QTensor, b: Option<&QTensor>, eps: f32, y: &mut [f32]) {
    let d = w.cols;
    let row = |t: &QTensor| {
        let mut v = vec![0.0f32; d];
        crate::quant::dequantize_row(t.ty, t.row(0), &mut v);
        v
    };
    let (weight, bias) = (row(w), b.map_or_else(|| vec![0.0f32; d], row));
    for (xs, ys) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        // f64 sums, as rms_norm.
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let scale = 1.0 / (var + eps as f64).sqrt();
        for (((y, &x), &w), &b) in ys.iter_mut().zip(xs).zip(&weight).zip(&bias) {
            *y = ((x as f64 - mean) * scale) as f32 * w + b;
        }
    }
}

/// RMSNorm of each `weight.cols`-long slice of `x` in place (per-head Q/K norms).
pub fn head_norm(x: &mut [f32], w: &QTensor, eps: f32) {
    let copy = x.to_vec();
    rms_norm(&copy, w, eps, x);
}

/// `x[t] += bias` for every token vector.
pub fn add_bias(x: &mut [f32], bias: &QTensor) {
    let mut b = vec![0.0f32; bias.cols];
    crate::quant::dequantize_row(bias.ty, bias.row(0), &mut b);
    for xs in x.chunks_exact_mut(bias.cols) {
        for (x, b) in xs.iter_mut().zip(&b) {
            *x += b;
        }
    }
}

/// `out += input`, element-wise.
pub fn add(input: &[f32], out: &mut [f32]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o += i;
    }
}

/// cos/sin of every (position, frequency) pair of one batch, for one RoPE variant.
pub struct RopeTable {
    /// `n` rows of `half` pairs.
    cos_sin: Vec<[f32; 2]>,
    half: usize,
    style: RopeStyle,
}

impl RopeTable {
    pub fn new(spec: &RopeSpec, start: usize, n: usize) -> Self {
        Self::from_rows(spec, spec.cos_sin(start, n))
    }

    /// A table from explicit rows of `spec.half()` (cos, sin) pairs.
    pub fn from_rows(spec: &RopeSpec, cos_sin: Vec<[f32; 2]>) -> Self {
        Self { cos_sin, half: spec.half(), style: spec.style }
    }
}

/// Rotates each `head_dim` head of every token vector in `x` by its position.
pub fn rope(x: &mut [f32], n_heads: usize, head_dim: usize, table: &RopeTable) {
    let half = table.half;
    for (t, tok) in x.chunks_exact_mut(n_heads * head_dim).enumerate() {
        let cs = &table.cos_sin[t * half..(t + 1) * half];
        for head in tok.chunks_exact_mut(head_dim) {
            for (i, &[cos, sin]) in cs.iter().enumerate() {
                let (a, b) = match table.style {
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

/// `act(x)` of one value.
fn act_one(x: f32, act: Activation) -> f32 {
    match act {
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Relu => x.max(0.0),
    }
}

/// `gate = act(gate) * up`.
pub fn glu(gate: &mut [f32], up: &[f32], act: Activation) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = act_one(*g, act) * u;
    }
}

/// `x = act(x)`.
pub fn activate(x: &mut [f32], act: Activation) {
    x.iter_mut().for_each(|v| *v = act_one(*v, act));
}
