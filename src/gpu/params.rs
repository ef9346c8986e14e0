//! Uniform parameter blocks, laid out exactly as the `Params` structs in the shaders.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Step {
    pub n_tokens: u32,
    pub start_pos: u32,
    /// The Philox counter of a device draw after this step (low word first).
    pub draw: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct MatMul {
    pub rows: u32,
    pub cols: u32,
    pub row_words: u32,
    pub accumulate: u32,
    pub last_only: u32,
    pub y_stride: u32,
    pub row_offset: u32,
    /// 1: RMSNorm the input on the fly (the norm op folded into this matmul).
    pub norm: u32,
    pub eps: f32,
    /// Word offset of the weight's first row in the bound buffer.
    pub w_base: u32,
    /// 1 (SiLU) or 2 (GELU): the up rows follow `glu_rows` rows after the gate rows; output
    /// act(gate) * up.
    pub glu: u32,
    pub glu_rows: u32,
    /// Rows from `split1` on are written to the second output, from `split2` on to the third
    /// (`u32::MAX`: one output).
    pub split1: u32,
    pub split2: u32,
    pub stride2: u32,
    pub stride3: u32,
    /// 1: add `bias[row_offset + r]` to output row `r`.
    pub bias: u32,
    /// For one token: heads' partial output projections (`AttentionProj`) to add to the
    /// input (`parts_in` of them) or, with `accumulate`, to the output (`parts_out`).
    pub parts_in: u32,
    pub parts_out: u32,
    pub _pad: u32,
}

impl MatMul {
    /// A plain matmul of `rows` × `cols` into one output of `y_stride` columns.
    pub fn plain(rows: u32, cols: u32, row_words: u32, y_stride: u32) -> Self {
        Self {
            rows,
            cols,
            row_words,
            accumulate: 0,
            last_only: 0,
            y_stride,
            row_offset: 0,
            norm: 0,
            eps: 0.0,
            w_base: 0,
            glu: 0,
            glu_rows: 0,
            split1: u32::MAX,
            split2: u32::MAX,
            stride2: 0,
            stride3: 0,
            bias: 0,
            parts_in: 0,
            parts_out: 0,
            _pad: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Embed {
    pub dim: u32,
    pub row_words: u32,
    pub row_offset: u32,
    pub rows: u32,
    pub scale: f32,
    /// 1: add the rows of the batch's positions (a learned position table).
    pub positions: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Norm {
    pub dim: u32,
    pub eps: f32,
    /// 1: add the result to the output instead of storing it.
    pub accumulate: u32,
    /// Bit 0: LayerNorm (else RMSNorm); bit 1: add the bias.
    pub mode: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct HeadNorm {
    pub n_heads: u32,
    /// Heads of the second tensor normed by the same dispatch (0: none).
    pub n_heads2: u32,
    pub head_dim: u32,
    pub eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Add {
    pub width: u32,
    /// 1: the input is one vector added to every token (a bias).
    pub broadcast: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Glu {
    pub width: u32,
    /// 0 SiLU, 1 GELU (tanh approximation), 2 ReLU.
    pub act: u32,
    /// 1: `gate = act(gate)` (no up).
    pub unary: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Rope {
    pub n_heads: u32,
    pub head_dim: u32,
    pub half: u32,
    pub neox: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Attention {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub kv_dim: u32,
    pub scale: f32,
    /// Keys a query sees (its own position and `window − 1` before it); 0: all.
    pub window: u32,
    /// 1: decoding one token, with RoPE on the query and the new key and the KV store done
    /// here (`half`, `neox` as in [`RopeKv`]).
    pub fused: u32,
    pub half: u32,
    pub neox: u32,
    /// `AttentionProj`: the output projection's rows, words per row and first word.
    pub proj_rows: u32,
    pub proj_row_words: u32,
    pub proj_w_base: u32,
    /// ALiBi (`alibi_heads` > 0, the largest power of two ≤ n_head): head h adds
    /// slope·(key position − query position) to its scores, slope `m0^(h+1)` for the first
    /// `alibi_heads` heads and `m1^(2(h − alibi_heads) + 1)` after.
    pub alibi_m0: f32,
    pub alibi_m1: f32,
    pub alibi_heads: u32,
    /// 1: every query sees every position of the batch (an encoder), not only those before it.
    pub bidirectional: u32,
    /// > 0: every query sees the keys `0..keys` (cross-attention over an encoded input).
    pub keys: u32,
    /// > 0 (T5): the relative position bias table's length per head, `2·context − 1`.
    pub rel_span: u32,
    pub _pad: [u32; 2],
}

/// `kv_store` and `argmax` take one width.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Width {
    pub width: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct RopeKv {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    pub half: u32,
    pub neox: u32,
    pub kv_dim: u32,
    pub _pad: [u32; 2],
}

/// `top_k`: one level of the selection tree.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct TopK {
    pub n: u32,
    pub k: u32,
    pub from_logits: u32,
    pub _pad: u32,
}

/// `draw`: a token drawn from the top-k selection (see [`DeviceDraw`](crate::sampler::DeviceDraw)).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct Draw {
    pub k: u32,
    pub seed: [u32; 2],
    pub top_p: f32,
    /// ln(min_p) as the CPU computes it (f64, then rounded), or -inf when min-p is off.
    pub ln_min_p: f32,
    pub inv_temp: f32,
    pub _pad: [u32; 2],
}
