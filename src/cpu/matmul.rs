//! Quantized matrix × activations: `out[t] (+)= W · x[t]`, parallel over blocks of rows.

use super::par::{self, SharedOut};
use crate::model::QTensor;
use crate::quant::int16::{self, QuantizedActs};
use crate::quant::{dequantize_row, dot_f32, dot_f32_tile, dot_row, TILE_COLS, TILE_ROWS};

/// Decode on wasm multiplies in integers against int16 activations (see `quant::int16`): its
/// f32 SIMD has no fused multiply-add. Native x86_64 decode is faster in f32 with AVX2 + FMA.
const INT16_DECODE: bool = cfg!(target_arch = "wasm32");

/// Rows per task: enough work to amortise scheduling, few enough to balance the threads.
const ROWS_PER_TASK: usize = 32;

pub fn matmul(w: &QTensor, x: &[f32], n: usize, out: &mut [f32], accumulate: bool) {
    let (m, k) = (w.rows, w.cols);
    debug_assert!(x.len() >= n * k && out.len() >= n * m);
    if n == 0 {
        return;
    }
    let shared = SharedOut::new(out);
    let tasks = m.div_ceil(ROWS_PER_TASK);
    // Decode's activations, quantized once for every row (where the integer kernels serve).
    let xq = (n == 1 && INT16_DECODE && int16::supports(w.ty)).then(|| {
        let mut xq = QuantizedActs::default();
        xq.quantize(&x[..k]);
        xq
    });
    par::for_each(tasks, |task| {
        let rows = task * ROWS_PER_TASK..((task + 1) * ROWS_PER_TASK).min(m);
        if n == 1 {
            // Decode: one dot per row straight from the quantized bytes.
            for r in rows {
                let v = match &xq {
                    Some(xq) => int16::dot_row(w.ty, w.row(r), xq),
                    None => dot_row(w.ty, w.row(r), &x[..k]),
                };
                unsafe { shared.write(r, v, accumulate) };
            }
            return;
        }
        // Batches: expand the task's rows once, then multiply them with every token in
        // register tiles of TILE_ROWS rows × TILE_COLS tokens.
        let mut deq = vec![0.0f32; rows.len() * k];
        for (i, r) in rows.clone().enumerate() {
            dequantize_row(w.ty, w.row(r), &mut deq[i * k..(i + 1) * k]);
        }
        let row = |i: usize| &deq[i * k..(i + 1) * k];
        let tok = |t: usize| &x[t * k..(t + 1) * k];
        let put = |i: usize, t: usize, v: f32| unsafe { shared.write(t * m + rows.start + i, v, accumulate) };
        let full_t = n / TILE_COLS * TILE_COLS;
        let full_r = rows.len() / TILE_ROWS * TILE_ROWS;
        for t0 in (0..full_t).step_by(TILE_COLS) {
            for r0 in (0..full_r).step_by(TILE_ROWS) {
                let tile = dot_f32_tile(std::array::from_fn(|i| row(r0 + i)), std::array::from_fn(|j| tok(t0 + j)));
                for (i, vals) in tile.iter().enumerate() {
                    for (j, &v) in vals.iter().enumerate() {
                        put(r0 + i, t0 + j, v);
                    }
                }
            }
        }
        // Edges that do not fill a tile.
        for i in 0..rows.len() {
            let ts = if i < full_r { full_t..n } else { 0..n };
            for t in ts {
                put(i, t, dot_f32(row(i), tok(t)));
            }
        }
    });
}
