//! Causal grouped-query attention over the KV cache.

use super::par::{self, SharedOut};
use crate::model::ModelConfig;
use crate::quant::dot_f32;

/// `q`: the batch's query vectors (positions `start..start + n`); `k_cache`/`v_cache`: every
/// position up to the batch's last. A query at position p sees keys `p − window < p' <= p`
/// (all up to p when `window` is 0). Writes one `head_dim` slice of `out` per (token, head).
pub fn attend(c: &ModelConfig, q: &[f32], k_cache: &[f32], v_cache: &[f32], start: usize, window: usize, out: &mut [f32]) {
    let (hd, q_dim, kv_dim) = (c.head_dim, c.q_dim(), c.kv_dim());
    let n = q.len() / q_dim;
    let group = c.n_head / c.n_head_kv;
    let scale = c.attn_scale;
    let shared = SharedOut::new(out);
    par::for_each(n * c.n_head, |task| {
        let (t, h) = (task / c.n_head, task % c.n_head);
        let kv_off = (h / group) * hd;
        let qv = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
        let len = start + t + 1;
        let first = if window > 0 { len.saturating_sub(window) } else { 0 };
        let mut scores: Vec<f32> =
            (first..len).map(|j| dot_f32(qv, &k_cache[j * kv_dim + kv_off..j * kv_dim + kv_off + hd]) * scale).collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let o = unsafe { shared.slice(t * q_dim + h * hd, hd) };
        o.fill(0.0);
        for (j, &p) in (first..).zip(&scores) {
            let vv = &v_cache[j * kv_dim + kv_off..j * kv_dim + kv_off + hd];
            let w = p / sum;
            for (o, &v) in o.iter_mut().zip(vv) {
                *o += w * v;
            }
        }
    });
}
