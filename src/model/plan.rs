//! The forward plan: one description of the network that every backend executes.
//!
//! A plan is a flat list of [`Op`]s over named activation buffers ([`Act`]), each holding one
//! vector per token of the batch, and the weights they read ([`WeightId`]). The CPU backend
//! interprets it op by op; the GPU backend turns the same list into dispatches. Reading
//! [`ForwardPlan::build`] top to bottom is reading the model: every architecture is the same
//! function with the switches of its [`ModelConfig`].

use super::arch::{names, Activation, Ffn, Norm, Positions};
use super::config::ModelConfig;
use crate::gguf::GgufHeader;
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Index into [`ForwardPlan::weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightId(pub usize);

/// A tensor the plan needs: `rows` vectors of `cols` elements (a norm weight has one row).
#[derive(Clone, Debug)]
pub struct WeightSpec {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub ty: GgmlType,
    /// The weight is the bytes `start..start + len` of tensor `name`: one part of a fused
    /// tensor (Q, K or V of `attn_qkv`). `None`: the whole tensor.
    pub slice: Option<(usize, usize)>,
}

/// Activation buffers, one vector per token of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// The residual stream.
    Hidden,
    /// A normalised copy of the residual stream, input of the next matmuls.
    Normed,
    Q,
    K,
    V,
    /// Attention output (all heads).
    Attn,
    Gate,
    Up,
    /// A block's output before it joins the residual stream (when it is normed or biased first).
    Proj,
    /// With a parallel residual, the attention block's output, held while the feed-forward
    /// block reads the same input; added to the residual stream after it.
    Branch,
}

impl Act {
    pub const ALL: [Act; 10] = [Act::Hidden, Act::Normed, Act::Q, Act::K, Act::V, Act::Attn, Act::Gate, Act::Up, Act::Proj, Act::Branch];
}

#[derive(Clone, Debug)]
pub enum Op {
    /// `out[t] = dequant(table[token[t]]) · scale`.
    Embed { table: WeightId, out: Act, scale: f32 },
    /// `out[t] += dequant(table[start + t])`: the learned embedding of each token's position.
    PosEmbed { table: WeightId, out: Act },
    /// `out[t] = x[t] / rms(x[t]) * weight`.
    RmsNorm { input: Act, weight: WeightId, out: Act },
    /// `out[t] = (x[t] − mean) / √(var + ε) * weight (+ bias)`.
    LayerNorm { input: Act, weight: WeightId, bias: Option<WeightId>, out: Act },
    /// RMSNorm of each `head_dim` slice of `target` (`n_heads` per token) in place, times the
    /// `head_dim`-long `weight`.
    HeadNorm { target: Act, weight: WeightId, n_heads: usize },
    /// `out[t] = W · x[t]`, or `out[t] += W · x[t]` when `accumulate` (fused residual add).
    MatMul { weight: WeightId, input: Act, out: Act, accumulate: bool },
    /// `target[t] += bias`.
    AddBias { target: Act, bias: WeightId },
    /// `out[t] += input[t]` (a residual add).
    Add { input: Act, out: Act },
    /// Rotates each head of `target` in place by its token's position, with RoPE variant
    /// `rope` of [`ModelConfig::ropes`].
    Rope { target: Act, n_heads: usize, rope: usize },
    /// Stores `k`, `v` into layer `layer`'s cache at the batch positions, then causal
    /// attention of every query head over the cache up to its own position, scaled by the
    /// config's `attn_scale`, over the last `window` positions only when `window > 0`.
    /// With `bidirectional` (an encoder) every query sees every position of the batch, and
    /// nothing is cached before it. `rel_bias` (T5): each score gets its head's learned bias
    /// for the bucket of the key's position relative to the query's, in `rel_buckets` rows.
    Attention { layer: usize, q: Act, k: Act, v: Act, out: Act, window: usize, bidirectional: bool, rel_bias: Option<WeightId> },
    /// Stores `k` and `v` of every token as layer `layer`'s cross-attention keys and values
    /// (an encoder-decoder's encoder output, projected), replacing what was there.
    StoreCross { layer: usize, k: Act, v: Act },
    /// Attention of every query head over all of layer `layer`'s cross-attention keys and
    /// values: no mask, no positions, scaled by `attn_scale`.
    CrossAttention { layer: usize, q: Act, out: Act },
    /// `gate[t] = act(gate[t]) * up[t]`.
    Glu { gate: Act, up: Act, act: Activation },
    /// `target[t] = act(target[t])`.
    Activate { target: Act, act: Activation },
    /// Logits for the requested tokens: `W · x[t] (+ bias)`, W with `n_vocab` rows.
    Logits { weight: WeightId, input: Act, bias: Option<WeightId> },
    /// An encoder's output: every token's final state `input[t]` (no output head).
    States { input: Act },
}

impl Op {
    /// Activation buffers the op reads.
    pub fn reads(&self) -> Vec<Act> {
        match *self {
            Op::Embed { .. } => vec![],
            Op::PosEmbed { out, .. } => vec![out],
            Op::RmsNorm { input, .. } | Op::LayerNorm { input, .. } | Op::Logits { input, .. } | Op::States { input } => vec![input],
            Op::MatMul { input, out, accumulate, .. } => if accumulate { vec![input, out] } else { vec![input] },
            Op::Rope { target, .. } | Op::HeadNorm { target, .. } | Op::AddBias { target, .. } | Op::Activate { target, .. } => vec![target],
            Op::Add { input, out } => vec![input, out],
            Op::Attention { q, k, v, .. } => vec![q, k, v],
            Op::StoreCross { k, v, .. } => vec![k, v],
            Op::CrossAttention { q, .. } => vec![q],
            Op::Glu { gate, up, .. } => vec![gate, up],
        }
    }

    /// Weights the op reads.
    pub fn weights(&self) -> Vec<WeightId> {
        match *self {
            Op::Embed { table, .. } | Op::PosEmbed { table, .. } => vec![table],
            Op::RmsNorm { weight, .. } | Op::HeadNorm { weight, .. } | Op::MatMul { weight, .. } => vec![weight],
            Op::LayerNorm { weight, bias, .. } | Op::Logits { weight, bias, .. } => std::iter::once(weight).chain(bias).collect(),
            Op::AddBias { bias, .. } => vec![bias],
            Op::Attention { rel_bias, .. } => rel_bias.into_iter().collect(),
            Op::Add { .. } | Op::Rope { .. } | Op::StoreCross { .. } | Op::CrossAttention { .. } | Op::Glu { .. } | Op::Activate { .. } | Op::States { .. } => vec![],
        }
    }

    /// Activation buffers the op writes.
    pub fn writes(&self) -> Vec<Act> {
        match *self {
            Op::Embed { out, .. }
            | Op::PosEmbed { out, .. }
            | Op::RmsNorm { out, .. }
            | Op::LayerNorm { out, .. }
            | Op::MatMul { out, .. }
            | Op::Attention { out, .. }
            | Op::CrossAttention { out, .. }
            | Op::Add { out, .. } => vec![out],
            Op::Rope { target, .. } | Op::HeadNorm { target, .. } | Op::AddBias { target, .. } | Op::Activate { target, .. } => vec![target],
            Op::Glu { gate, .. } => vec![gate],
            Op::Logits { .. } | Op::States { .. } | Op::StoreCross { .. } => vec![],
        }
    }
}

#[derive(Clone, Debug)]
pub struct ForwardPlan {
    pub config: ModelConfig,
    pub weights: Vec<WeightSpec>,
    pub ops: Vec<Op>,
    /// An encoder-decoder's encoder: run once over the input (positions from 0), it leaves the
    /// cross-attention keys and values the decoder (`ops`) reads. Empty for other models.
    pub encoder_ops: Vec<Op>,
}

impl ForwardPlan {
    /// Width of one token's vector in an activation buffer.
    pub fn width(&self, act: Act) -> usize {
        let c = &self.config;
        match act {
            Act::Hidden | Act::Normed | Act::Proj | Act::Branch => c.n_embd,
            Act::Q | Act::Attn => c.q_dim(),
            Act::K | Act::V => c.kv_dim(),
            Act::Gate | Act::Up => c.n_ff,
        }
    }

    /// Whether the RMSNorm at `ops[i]` can be folded into the ops that read its output: they
    /// are all matmuls (or the logits) and run before anything changes the norm's input.
    pub fn norm_folds_into_matmuls(&self, i: usize) -> bool {
        let Op::RmsNorm { input, out, .. } = self.ops[i] else { return false };
        let (mut input_changed, mut any_reader) = (false, false);
        for op in &self.ops[i + 1..] {
            if op.reads().contains(&out) {
                let matmul_of_out = matches!(*op,
                    Op::MatMul { input: x, accumulate: false, .. } | Op::Logits { input: x, .. } if x == out);
                if !matmul_of_out || input_changed {
                    return false;
                }
                any_reader = true;
            }
            if op.writes().contains(&out) {
                break;
            }
            input_changed |= op.writes().contains(&input);
        }
        any_reader
    }

    /// Runs of consecutive matmuls that read one input and overwrite distinct outputs (Q, K
    /// and V; gate and up), as `(index of the first op, weights)`: a backend may store a run's
    /// weights together and compute it as one op.
    pub fn matmul_runs(&self) -> Vec<(usize, Vec<WeightId>)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < self.ops.len() {
            let Op::MatMul { input, accumulate: false, .. } = self.ops[i] else {
                i += 1;
                continue;
            };
            let mut weights = Vec::new();
            let mut outs: Vec<Act> = Vec::new();
            for op in &self.ops[i..] {
                match *op {
                    Op::MatMul { weight, input: x, out, accumulate: false } if x == input && out != input && !outs.contains(&out) => {
                        weights.push(weight);
                        outs.push(out);
                    }
                    _ => break,
                }
            }
            let n = weights.len();
            if n >= 2 {
                runs.push((i, weights));
            }
            i += n.max(1);
        }
        runs
    }

    /// Gate and up matmuls of one input feeding a gated activation, as `(index of the gate
    /// matmul, gate weight, up weight, activation)`: a backend may run each as one fused op.
    pub fn glu_triples(&self) -> Vec<(usize, WeightId, WeightId, Activation)> {
        self.ops
            .windows(3)
            .enumerate()
            .filter_map(|(i, w)| match *w {
                [Op::MatMul { weight: g, input: a, out: go, accumulate: false }, Op::MatMul { weight: u, input: b, out: uo, accumulate: false }, Op::Glu { gate, up, act }]
                    if a == b && go == gate && uo == up =>
                {
                    Some((i, g, u, act))
                }
                _ => None,
            })
            .collect()
    }

    pub fn weight_index(&self, name: &str) -> Option<WeightId> {
        self.weights.iter().position(|w| w.name == name).map(WeightId)
    }

    /// Every weight read from tensor `name` (several where a fused tensor is split).
    pub fn weight_ids<'a>(&'a self, name: &'a str) -> impl Iterator<Item = WeightId> + 'a {
        self.weights.iter().enumerate().filter(move |(_, w)| w.name == name).map(|(i, _)| WeightId(i))
    }

    /// Builds the plan of `config`'s architecture, checking that every tensor it needs exists
    /// with the right shape. Reading this function top to bottom is reading the model.
    pub fn build(config: ModelConfig, header: &GgufHeader) -> Result<Self> {
        let mut b = Builder { header, weights: Vec::new() };
        let c = &config;
        let embd = b.weight(names::TOKEN_EMBD, c.n_vocab, c.n_embd)?;
        // BLOOM and BERT LayerNorm the embeddings on their way into the residual stream.
        let embedded = if c.embed_norm { Act::Proj } else { Act::Hidden };
        let mut ops = vec![Op::Embed { table: embd, out: embedded, scale: c.embed_scale.unwrap_or(1.0) }];
        // An encoder's token types: every token is sentence A, so row 0 is a bias.
        if c.encoder && b.has(names::TOKEN_TYPES) {
            let types = b.header.tensor(names::TOKEN_TYPES).map_or(0, |t| t.rows_cols().0);
            let bias = b.part(names::TOKEN_TYPES, (types, c.n_embd), 1, c.n_embd, 0)?;
            ops.push(Op::AddBias { target: embedded, bias });
        }
        if c.positions == Positions::Learned {
            let table = b.weight(names::POSITION_EMBD, c.n_ctx_train, c.n_embd)?;
            ops.push(Op::PosEmbed { table, out: embedded });
        }
        if c.embed_norm {
            ops.push(b.norm(c, names::TOKEN_EMBD_NORM)?.op(Act::Proj, Act::Hidden));
        }
        // An encoder-decoder (T5) reads its input once with an encoder stack of its own (from
        // the same embeddings); its normed output is projected to every decoder layer's
        // cross-attention keys and values, which the decoder's queries then read.
        let mut encoder_ops = Vec::new();
        if c.encoder_decoder {
            encoder_ops = ops.clone();
            for l in 0..c.n_layer_enc {
                b.block(c, &mut encoder_ops, l, Stack::T5Encoder)?;
            }
            encoder_ops.push(Op::RmsNorm { input: Act::Hidden, weight: b.weight(names::ENC_OUTPUT_NORM, 1, c.n_embd)?, out: Act::Normed });
            for l in 0..c.n_layer {
                let (k, v) = (Stack::T5Decoder.weight(l, "cross_attn_k"), Stack::T5Decoder.weight(l, "cross_attn_v"));
                encoder_ops.extend([
                    Op::MatMul { weight: b.weight(&k, c.kv_dim(), c.n_embd)?, input: Act::Normed, out: Act::K, accumulate: false },
                    Op::MatMul { weight: b.weight(&v, c.kv_dim(), c.n_embd)?, input: Act::Normed, out: Act::V, accumulate: false },
                    Op::StoreCross { layer: l, k: Act::K, v: Act::V },
                ]);
            }
        }
        let stack = match (c.encoder_decoder, c.positions) {
            (true, _) => Stack::T5Decoder,
            // T5's encoder alone.
            (false, Positions::Relative) => Stack::T5Encoder,
            _ => Stack::Blocks,
        };
        for l in 0..c.n_layer {
            b.block(c, &mut ops, l, stack)?;
        }
        // An encoder's output is the final states themselves.
        if c.encoder {
            // (T5's encoder ends in its output norm; BERT's blocks end in theirs.)
            let states = if stack == Stack::T5Encoder {
                ops.push(Op::RmsNorm { input: Act::Hidden, weight: b.weight(names::ENC_OUTPUT_NORM, 1, c.n_embd)?, out: Act::Normed });
                Act::Normed
            } else {
                Act::Hidden
            };
            ops.push(Op::States { input: states });
            return Ok(Self { config, weights: b.weights, ops, encoder_ops });
        }
        let out_norm = b.norm(c, if c.encoder_decoder { names::DEC_OUTPUT_NORM } else { names::OUTPUT_NORM })?;
        let head = if c.tied_output { embd } else { b.weight(names::OUTPUT, c.n_vocab, c.n_embd)? };
        let bias = b.optional(names::OUTPUT_BIAS, 1, c.n_vocab)?;
        ops.push(out_norm.op(Act::Hidden, Act::Normed));
        ops.push(Op::Logits { weight: head, input: Act::Normed, bias });
        Ok(Self { config, weights: b.weights, ops, encoder_ops })
    }

    /// T5's relative position bias tables, as (weight, bidirectional) pairs, each once: what a
    /// backend expands into per-distance tables ([`super::relative::bias_table`]).
    pub fn rel_biases(&self) -> Vec<(WeightId, bool)> {
        let mut out = Vec::new();
        for op in self.ops.iter().chain(&self.encoder_ops) {
            if let Op::Attention { rel_bias: Some(w), bidirectional, .. } = *op {
                if !out.contains(&(w, bidirectional)) {
                    out.push((w, bidirectional));
                }
            }
        }
        out
    }

    /// KV cache slots a backend keeps: one per layer of the larger stack (an encoder-decoder's
    /// encoder uses the decoder's slots while it runs).
    pub fn cache_slots(&self) -> usize {
        self.config.n_layer.max(self.config.n_layer_enc)
    }

    /// The most positions a sequence can have: a learned position table's rows (unbounded
    /// with RoPE).
    pub fn max_positions(&self) -> usize {
        match self.config.positions {
            Positions::Learned => self.config.n_ctx_train,
            Positions::Rope | Positions::Alibi | Positions::Relative => usize::MAX,
        }
    }
}

/// Which stack of blocks a layer belongs to, which names its tensors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stack {
    /// `blk.N.*`: every model but T5.
    Blocks,
    /// `enc.blk.N.*`: T5's encoder.
    T5Encoder,
    /// `dec.blk.N.*`: T5's decoder, with cross-attention.
    T5Decoder,
}

impl Stack {
    fn prefix(self) -> &'static str {
        match self {
            Stack::Blocks => "blk",
            Stack::T5Encoder => "enc.blk",
            Stack::T5Decoder => "dec.blk",
        }
    }

    fn weight(self, l: usize, what: &str) -> String {
        format!("{}.{l}.{what}.weight", self.prefix())
    }

    fn bias(self, l: usize, what: &str) -> String {
        format!("{}.{l}.{what}.bias", self.prefix())
    }

    /// The attention's output projection (T5 calls it `attn_o`).
    fn attn_output(self) -> &'static str {
        match self {
            Stack::Blocks => "attn_output",
            Stack::T5Encoder | Stack::T5Decoder => "attn_o",
        }
    }
}

/// A norm's weights: RMSNorm, or LayerNorm with its bias where the file has one.
struct NormWeights {
    weight: WeightId,
    bias: Option<WeightId>,
    layer: bool,
}

impl NormWeights {
    fn op(&self, input: Act, out: Act) -> Op {
        match self.layer {
            false => Op::RmsNorm { input, weight: self.weight, out },
            true => Op::LayerNorm { input, weight: self.weight, bias: self.bias, out },
        }
    }
}

/// A block's output projection joining the residual stream: accumulated straight into it, or
/// first into `Proj` to be biased and/or normed (gemma3's post-norms), then added.
fn residual(ops: &mut Vec<Op>, weight: WeightId, input: Act, bias: Option<WeightId>, post_norm: Option<WeightId>) {
    if bias.is_none() && post_norm.is_none() {
        ops.push(Op::MatMul { weight, input, out: Act::Hidden, accumulate: true });
        return;
    }
    ops.push(Op::MatMul { weight, input, out: Act::Proj, accumulate: false });
    if let Some(bias) = bias {
        ops.push(Op::AddBias { target: Act::Proj, bias });
    }
    let joined = match post_norm {
        Some(weight) => {
            ops.push(Op::RmsNorm { input: Act::Proj, weight, out: Act::Normed });
            Act::Normed
        }
        None => Act::Proj,
    };
    ops.push(Op::Add { input: joined, out: Act::Hidden });
}

/// A post-norm block's output joining the residual stream: `x = norm(x + W·input + b)`.
fn post_norm_residual(ops: &mut Vec<Op>, weight: WeightId, input: Act, bias: Option<WeightId>, norm: NormWeights) {
    ops.push(Op::MatMul { weight, input, out: Act::Proj, accumulate: false });
    ops.extend(bias.map(|bias| Op::AddBias { target: Act::Proj, bias }));
    ops.push(Op::Add { input: Act::Hidden, out: Act::Proj });
    ops.push(norm.op(Act::Proj, Act::Hidden));
}

struct Builder<'a> {
    header: &'a GgufHeader,
    weights: Vec<WeightSpec>,
}

impl Builder<'_> {
    fn weight(&mut self, name: &str, rows: usize, cols: usize) -> Result<WeightId> {
        let info = self.header.tensor(name).ok_or_else(|| Error::Model(format!("tensor {name:?} is missing")))?;
        let (r, c) = info.rows_cols();
        if (r, c) != (rows, cols) || info.dims.len() > 2 {
            return Err(Error::Model(format!(
                "tensor {name:?} has shape {:?}, expected [{cols}, {rows}]",
                info.dims
            )));
        }
        self.weights.push(WeightSpec { name: name.to_string(), rows, cols, ty: info.ty, slice: None });
        Ok(WeightId(self.weights.len() - 1))
    }

    /// `rows` × `cols` elements of tensor `name` (shaped `full`, rows × cols) from element
    /// `first` on, in storage order: one part of a fused tensor. Parts of a quantized tensor
    /// are whole rows.
    fn part(&mut self, name: &str, full: (usize, usize), rows: usize, cols: usize, first: usize) -> Result<WeightId> {
        let id = self.weight(name, full.0, full.1)?;
        let spec = &mut self.weights[id.0];
        let bytes = |n: usize| spec.ty.bytes_for(n as u64).filter(|_| n % spec.ty.block_len() == 0);
        let (Some(start), Some(len)) = (bytes(first), bytes(rows * cols)) else {
            return Err(Error::Unsupported(format!("tensor {name:?} of type {} split at element {first}", spec.ty.name())));
        };
        spec.rows = rows;
        spec.cols = cols;
        spec.slice = Some((start as usize, len as usize));
        Ok(id)
    }

    /// One transformer block of `stack` at layer `l`, appended to `ops`: attention (with an
    /// encoder-decoder's cross-attention after it in the decoder), then the feed-forward
    /// network, each joining the residual stream as the config's switches say.
    fn block(&mut self, c: &ModelConfig, ops: &mut Vec<Op>, l: usize, stack: Stack) -> Result<()> {
        let w = |b: &mut Builder, what: &str, rows, cols| b.weight(&stack.weight(l, what), rows, cols);
        let bias = |b: &mut Builder, what: &str, cols| b.optional(&stack.bias(l, what), 1, cols);
        // Attention: norm, Q/K/V projections (with biases where the file has them), per-head
        // Q/K norms, RoPE, attention, output projection. Post-norm blocks read the residual
        // stream itself.
        let attn_in = if c.post_norm {
            Act::Hidden
        } else {
            ops.push(self.norm(c, &stack.weight(l, "attn_norm"))?.op(Act::Hidden, Act::Normed));
            Act::Normed
        };
        let mut biases = Vec::new();
        // A fused QKV tensor (in a file without separate ones) is read as its three parts,
        // rows [Q | K | V], as separate tensors would be.
        let qkv = stack.weight(l, "attn_qkv");
        let fused = self.has(&qkv) && !self.has(&stack.weight(l, "attn_q"));
        let total = c.q_dim() + 2 * c.kv_dim();
        let mut first = 0;
        for (what, out, rows) in [("attn_q", Act::Q, c.q_dim()), ("attn_k", Act::K, c.kv_dim()), ("attn_v", Act::V, c.kv_dim())] {
            let (weight, bias) = if fused {
                let weight = self.part(&qkv, (total, c.n_embd), rows, c.n_embd, first * c.n_embd)?;
                let qkv_bias = stack.bias(l, "attn_qkv");
                let bias = if self.has(&qkv_bias) { Some(self.part(&qkv_bias, (1, total), 1, rows, first)?) } else { None };
                (weight, bias)
            } else {
                (w(self, what, rows, c.n_embd)?, bias(self, what, rows)?)
            };
            first += rows;
            ops.push(Op::MatMul { weight, input: attn_in, out, accumulate: false });
            if let Some(bias) = bias {
                biases.push(Op::AddBias { target: out, bias });
            }
        }
        ops.extend(biases);
        if c.qk_norm {
            let q_norm = w(self, "attn_q_norm", 1, c.head_dim)?;
            let k_norm = w(self, "attn_k_norm", 1, c.head_dim)?;
            ops.push(Op::HeadNorm { target: Act::Q, weight: q_norm, n_heads: c.n_head });
            ops.push(Op::HeadNorm { target: Act::K, weight: k_norm, n_heads: c.n_head_kv });
        }
        if c.positions == Positions::Rope {
            let rope = c.layer_rope_index(l);
            ops.push(Op::Rope { target: Act::Q, n_heads: c.n_head, rope });
            ops.push(Op::Rope { target: Act::K, n_heads: c.n_head_kv, rope });
        }
        // T5's relative position biases: a layer without its own uses the first layer's.
        let rel_bias = match c.positions {
            Positions::Relative => {
                let own = stack.weight(l, "attn_rel_b");
                let name = if self.has(&own) { own } else { stack.weight(0, "attn_rel_b") };
                Some(self.weight(&name, c.rel_buckets, c.n_head)?)
            }
            _ => None,
        };
        let bidirectional = c.encoder || stack == Stack::T5Encoder;
        ops.push(Op::Attention { layer: l, q: Act::Q, k: Act::K, v: Act::V, out: Act::Attn, window: c.windows.get(l).copied().unwrap_or(0), bidirectional, rel_bias });
        let wo = w(self, stack.attn_output(), c.n_embd, c.q_dim())?;
        let bo = bias(self, stack.attn_output(), c.n_embd)?;
        let post = if c.post_norms { Some(w(self, "post_attention_norm", 1, c.n_embd)?) } else { None };
        if c.parallel_residual {
            // x + attn(norm₁ x) + ffn(norm₂ x): the attention's output waits in Branch.
            ops.push(Op::MatMul { weight: wo, input: Act::Attn, out: Act::Branch, accumulate: false });
            ops.extend(bo.map(|bias| Op::AddBias { target: Act::Branch, bias }));
        } else if c.post_norm {
            post_norm_residual(ops, wo, Act::Attn, bo, self.norm(c, &stack.weight(l, "attn_output_norm"))?);
        } else {
            residual(ops, wo, Act::Attn, bo, post);
        }
        // The decoder's cross-attention: its queries over the encoder's keys and values.
        if stack == Stack::T5Decoder {
            ops.push(self.norm(c, &stack.weight(l, "cross_attn_norm"))?.op(Act::Hidden, Act::Normed));
            let q = w(self, "cross_attn_q", c.q_dim(), c.n_embd)?;
            ops.push(Op::MatMul { weight: q, input: Act::Normed, out: Act::Q, accumulate: false });
            ops.push(Op::CrossAttention { layer: l, q: Act::Q, out: Act::Attn });
            let o = w(self, "cross_attn_o", c.n_embd, c.q_dim())?;
            ops.push(Op::MatMul { weight: o, input: Act::Attn, out: Act::Hidden, accumulate: true });
        }
        // Feed-forward: norm, then a gated activation or a plain one, then the down projection.
        // (With a shared norm the MLP reads the attention's normed input, still in Normed;
        // post-norm blocks read the residual stream.)
        let ffn_in = if c.post_norm { Act::Hidden } else { Act::Normed };
        if !c.shared_norm && !c.post_norm {
            let ffn_norm = self.norm(c, &stack.weight(l, "ffn_norm"))?;
            ops.push(ffn_norm.op(Act::Hidden, Act::Normed));
        }
        // Gate and up fused in ffn_up (2·n_ff rows, gate first; Phi-3, GLM-4) are read as
        // its two halves.
        let up_name = stack.weight(l, "ffn_up");
        let fused_gate = c.ffn == Ffn::Gated && !self.has(&stack.weight(l, "ffn_gate"));
        let (gate, up) = if fused_gate {
            let full = (2 * c.n_ff, c.n_embd);
            let gate = self.part(&up_name, full, c.n_ff, c.n_embd, 0)?;
            (Some(gate), self.part(&up_name, full, c.n_ff, c.n_embd, c.n_ff * c.n_embd)?)
        } else {
            let gate = if c.ffn == Ffn::Gated { Some(w(self, "ffn_gate", c.n_ff, c.n_embd)?) } else { None };
            (gate, w(self, "ffn_up", c.n_ff, c.n_embd)?)
        };
        let down = w(self, "ffn_down", c.n_embd, c.n_ff)?;
        let hidden = match gate {
            Some(gate) => {
                ops.extend([
                    Op::MatMul { weight: gate, input: ffn_in, out: Act::Gate, accumulate: false },
                    Op::MatMul { weight: up, input: ffn_in, out: Act::Up, accumulate: false },
                    Op::Glu { gate: Act::Gate, up: Act::Up, act: c.activation },
                ]);
                Act::Gate
            }
            None => {
                ops.push(Op::MatMul { weight: up, input: ffn_in, out: Act::Up, accumulate: false });
                if let Some(bias) = bias(self, "ffn_up", c.n_ff)? {
                    ops.push(Op::AddBias { target: Act::Up, bias });
                }
                ops.push(Op::Activate { target: Act::Up, act: c.activation });
                Act::Up
            }
        };
        let down_bias = if c.ffn == Ffn::Plain { bias(self, "ffn_down", c.n_embd)? } else { None };
        let post = if c.post_norms { Some(w(self, "post_ffw_norm", 1, c.n_embd)?) } else { None };
        if c.post_norm {
            post_norm_residual(ops, down, hidden, down_bias, self.norm(c, &stack.weight(l, "layer_output_norm"))?);
        } else {
            residual(ops, down, hidden, down_bias, post);
        }
        if c.parallel_residual {
            ops.push(Op::Add { input: Act::Branch, out: Act::Hidden });
        }
        Ok(())
    }

    fn has(&self, name: &str) -> bool {
        self.header.tensor(name).is_some()
    }

    /// The norm `weight_name` (`….weight`) of the config's kind, with its `….bias` for a
    /// LayerNorm where the file has one.
    fn norm(&mut self, c: &ModelConfig, weight_name: &str) -> Result<NormWeights> {
        let weight = self.weight(weight_name, 1, c.n_embd)?;
        let layer = c.norm == Norm::Layer;
        let bias_name = weight_name.strip_suffix(".weight").map(|stem| format!("{stem}.bias"));
        let bias = match (layer, bias_name) {
            (true, Some(name)) => self.optional(&name, 1, c.n_embd)?,
            _ => None,
        };
        Ok(NormWeights { weight, bias, layer })
    }

    /// A tensor the architecture uses when the file has it (biases).
    fn optional(&mut self, name: &str, rows: usize, cols: usize) -> Result<Option<WeightId>> {
        match self.header.tensor(name) {
            Some(_) => self.weight(name, rows, cols).map(Some),
            None => Ok(None),
        }
    }
}
