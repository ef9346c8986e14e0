//! Grouped-query attention over the KV cache: causal, or over every key (an encoder,
//! cross-attention).

use super::par::{self, SharedOut};
use crate::model::ModelConfig;
use crate::quant::{axpy, dot_f32};

/// `q`: the batch's query vectors (positions `start..start + n`); `k_cache`/`v_cache`: the keys
/// and values it attends to. Causal: a query at position p sees keys `p − window < p' <= p`
/// (all up to p when `window` is 0); `all_keys`: every key given (an encoder, cross-attention).
/// `rel` (T5): each head's bias for every distance key − query over a context of `len`
/// ([`relative::bias_table`]), as `(table, len)`. Writes one `head_dim` slice of `out` per
/// (token, head).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    c: &ModelConfig,
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    start: usize,
    window: usize,
    all_keys: bool,
    rel: Option<(&[f32], usize)>,
    out: &mut [f32],
) {
    let (hd, q_dim, kv_dim) = (c.head_dim, c.q_dim(), c.kv_dim());
    let n = q.len() / q_dim;
    let group = c.n_head / c.n_head_kv;
    let scale = c.attn_scale;
    let shared = SharedOut::new(out);
    par::for_each(n * c.n_head, |task| {
        let (t, h) = (task / c.n_head, task % c.n_head);
        let kv_off = (h / group) * hd;
        let qv = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
        let pos = start + t;
        let len = if all_keys { k_cache.len() / kv_dim } else { pos + 1 };
        let first = if window > 0 { len.saturating_sub(window) } else { 0 };
        // ALiBi: the head's slope times the distance back (0 without); T5: the bucket's bias.
        let slope = c.alibi.map_or(0.0, |a| a.slope(h));
        let bias = |j: usize| match rel {
            Some((table, ctx)) => table[h * (2 * ctx - 1) + j + ctx - 1 - pos],
            None => slope * (j as f32 - pos as f32),
        };
        let mut scores: Vec<f32> = (first..len)
            .map(|j| dot_f32(qv, &k_cache[j * kv_dim + kv_off..j * kv_dim + kv_off + hd]) * scale + bias(j))
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let o = unsafe { shared.slice(t * q_dim + h * hd, hd) };
        o.fill(0.0);
        for (j, &p) in (first..).zip(&scores) {
            axpy(p / sum, &v_cache[j * kv_dim + kv_off..j * kv_dim + kv_off + hd], o);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Ffn, Norm, Positions, RopeSpec, RopeStyle};

    /// A sliding window of w keys gives what full attention over only the last w cached
    /// positions gives.
    #[test]
    fn window_equals_attention_over_the_last_positions() {
        let c = ModelConfig {
            architecture: "test".into(),
            name: None,
            n_vocab: 1,
            n_ctx_train: 64,
            n_embd: 8,
            n_layer: 1,
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
            n_ff: 8,
            rms_eps: 1e-6,
            norm: Norm::Rms,
            positions: Positions::Rope,
            ffn: Ffn::Gated,
            parallel_residual: false,
            shared_norm: false,
            alibi: None,
            embed_norm: false,
            rope: RopeSpec::plain(4, RopeStyle::Neox, 10_000.0),
            rope_local: None,
            windows: vec![3],
            attn_scale: 0.5,
            activation: Activation::Silu,
            embed_scale: None,
            qk_norm: false,
            post_norms: false,
            tied_output: true,
            post_norm: false,
            encoder: false,
            pooling: crate::model::Pooling::Mean,
            encoder_decoder: false,
            n_layer_enc: 0,
            rel_buckets: 0,
            decoder_start: None,
        };
        let val = |i: usize| ((i * 7919 % 101) as f32 / 50.0) - 1.0;
        let (len, kv) = (10usize, c.kv_dim());
        let k: Vec<f32> = (0..len * kv).map(|i| val(i + 3)).collect();
        let v: Vec<f32> = (0..len * kv).map(|i| val(i + 11)).collect();
        let q: Vec<f32> = (0..c.q_dim()).map(val).collect();
        let mut windowed = vec![0.0; c.q_dim()];
        attend(&c, &q, &k, &v, len - 1, 3, false, None, &mut windowed);
        let mut last_three = vec![0.0; c.q_dim()];
        attend(&c, &q, &k[(len - 3) * kv..], &v[(len - 3) * kv..], 2, 0, false, None, &mut last_three);
        assert_eq!(windowed, last_three);
        let mut full = vec![0.0; c.q_dim()];
        attend(&c, &q, &k, &v, len - 1, 0, false, None, &mut full);
        assert_ne!(windowed, full, "the window changes the result");
    }
}
