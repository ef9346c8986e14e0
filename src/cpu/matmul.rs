//! Quantized matrix × activations: `out[t] (+)= W · x[t]`, parallel over blocks of rows.

use super::par::{self, SharedOut};
use crate::model::QTensor;
use crate::quant::{dequantize_row, dot_row};

/// Rows per task: enough work to amortise scheduling, few enough to balance two+ threads.
const ROWS_PER_TASK: usize = 32;

pub fn matmul(w: &QTensor, x: &[f32], n: usize, out: &mut [f32], accumulate: bool) {
    let (m, k) = (w.rows, w.cols);
    debug_assert!(x.len() >= n * k && out.len() >= n * m);
    if n == 0 {
        return;
    }
    let shared = SharedOut::new(out);
    let tasks = m.div_ceil(ROWS_PER_TASK);
    par::for_each(tasks, |task| {
        let rows = task * ROWS_PER_TASK..((task + 1) * ROWS_PER_TASK).min(m);
        if n == 1 {
            // Decode: one dot per row straight from the quantized bytes.
            for r in rows {
                let v = dot_row(w.ty, w.row(r), &x[..k]);
                unsafe { shared.write(r, v, accumulate) };
            }
            return;
        }
        // Batches: expand each row once, then reuse it for every token.
        let mut row = vec![0.0f32; k];
        for r in rows {
            dequantize_row(w.ty, w.row(r), &mut row);
            for t in 0..n {
                let v = crate::quant::dot_f32(&row, &x[t * k..(t + 1) * k]);
                unsafe { shared.write(t * m + r, v, accumulate) };
            }
        }
    });
}
