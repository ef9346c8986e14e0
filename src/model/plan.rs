//! The forward plan: one description of the network that every backend executes.
//!
//! A plan is a flat list of [`Op`]s over named activation buffers ([`Act`]), each holding one
//! vector per token of the batch, and the weights they read ([`WeightId`]). The CPU backend
//! interprets it op by op; the GPU backend turns the same list into dispatches. Reading
//! [`ForwardPlan::build`] top to bottom is reading the model: every architecture is the same
//! function with the switches of its [`ModelConfig`].

use super::arch::{names, Activation};
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
}

impl Act {
    pub const ALL: [Act; 9] = [Act::Hidden, Act::Normed, Act::Q, Act::K, Act::V, Act::Attn, Act::Gate, Act::Up, Act::Proj];
}

#[derive(Clone, Debug)]
pub enum Op {
    /// `out[t] = dequant(table[token[t]]) · scale`.
    Embed { table: WeightId, out: Act, scale: f32 },
    /// `out[t] = x[t] / rms(x[t]) * weight`.
    RmsNorm { input: Act, weight: WeightId, out: Act },
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
    Attention { layer: usize, q: Act, k: Act, v: Act, out: Act, window: usize },
    /// `gate[t] = act(gate[t]) * up[t]`.
    Glu { gate: Act, up: Act, act: Activation },
    /// Logits for the requested tokens: `W · x[t]`, W with `n_vocab` rows.
    Logits { weight: WeightId, input: Act },
}

impl Op {
    /// Activation buffers the op reads.
    pub fn reads(&self) -> Vec<Act> {
        match *self {
            Op::Embed { .. } => vec![],
            Op::RmsNorm { input, .. } | Op::Logits { input, .. } => vec![input],
            Op::MatMul { input, out, accumulate, .. } => if accumulate { vec![input, out] } else { vec![input] },
            Op::Rope { target, .. } | Op::HeadNorm { target, .. } | Op::AddBias { target, .. } => vec![target],
            Op::Add { input, out } => vec![input, out],
            Op::Attention { q, k, v, .. } => vec![q, k, v],
            Op::Glu { gate, up, .. } => vec![gate, up],
        }
    }

    /// Activation buffers the op writes.
    pub fn writes(&self) -> Vec<Act> {
        match *self {
            Op::Embed { out, .. } | Op::RmsNorm { out, .. } | Op::MatMul { out, .. } | Op::Attention { out, .. } | Op::Add { out, .. } => vec![out],
            Op::Rope { target, .. } | Op::HeadNorm { target, .. } | Op::AddBias { target, .. } => vec![target],
            Op::Glu { gate, .. } => vec![gate],
            Op::Logits { .. } => vec![],
        }
    }
}

#[derive(Clone, Debug)]
pub struct ForwardPlan {
    pub config: ModelConfig,
    pub weights: Vec<WeightSpec>,
    pub ops: Vec<Op>,
}

impl ForwardPlan {
    /// Width of one token's vector in an activation buffer.
    pub fn width(&self, act: Act) -> usize {
        let c = &self.config;
        match act {
            Act::Hidden | Act::Normed | Act::Proj => c.n_embd,
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

    /// Builds the plan of `config`'s architecture, checking that every tensor it needs exists
    /// with the right shape. Reading this function top to bottom is reading the model.
    pub fn build(config: ModelConfig, header: &GgufHeader) -> Result<Self> {
        let mut b = Builder { header, weights: Vec::new() };
        let c = &config;
        let embd = b.weight(names::TOKEN_EMBD, c.n_vocab, c.n_embd)?;
        let mut ops = vec![Op::Embed { table: embd, out: Act::Hidden, scale: c.embed_scale.unwrap_or(1.0) }];
        for l in 0..c.n_layer {
            let w = |b: &mut Builder, what: &str, rows, cols| b.weight(&names::layer(l, what), rows, cols);
            let bias = |b: &mut Builder, what: &str, cols| b.optional(&names::layer_bias(l, what), 1, cols);
            // Attention: norm, Q/K/V projections (with biases where the file has them), per-head
            // Q/K norms, RoPE, attention, output projection.
            let attn_norm = w(&mut b, "attn_norm", 1, c.n_embd)?;
            ops.push(Op::RmsNorm { input: Act::Hidden, weight: attn_norm, out: Act::Normed });
            let mut biases = Vec::new();
            for (what, out, rows) in [("attn_q", Act::Q, c.q_dim()), ("attn_k", Act::K, c.kv_dim()), ("attn_v", Act::V, c.kv_dim())] {
                let weight = w(&mut b, what, rows, c.n_embd)?;
                ops.push(Op::MatMul { weight, input: Act::Normed, out, accumulate: false });
                if let Some(bias) = bias(&mut b, what, rows)? {
                    biases.push(Op::AddBias { target: out, bias });
                }
            }
            ops.extend(biases);
            if c.qk_norm {
                let q_norm = w(&mut b, "attn_q_norm", 1, c.head_dim)?;
                let k_norm = w(&mut b, "attn_k_norm", 1, c.head_dim)?;
                ops.push(Op::HeadNorm { target: Act::Q, weight: q_norm, n_heads: c.n_head });
                ops.push(Op::HeadNorm { target: Act::K, weight: k_norm, n_heads: c.n_head_kv });
            }
            let rope = c.layer_rope_index(l);
            ops.extend([
                Op::Rope { target: Act::Q, n_heads: c.n_head, rope },
                Op::Rope { target: Act::K, n_heads: c.n_head_kv, rope },
                Op::Attention { layer: l, q: Act::Q, k: Act::K, v: Act::V, out: Act::Attn, window: c.windows[l] },
            ]);
            let wo = w(&mut b, "attn_output", c.n_embd, c.q_dim())?;
            let bo = bias(&mut b, "attn_output", c.n_embd)?;
            let post = if c.post_norms { Some(w(&mut b, "post_attention_norm", 1, c.n_embd)?) } else { None };
            residual(&mut ops, wo, Act::Attn, bo, post);
            // Feed-forward: norm, gated activation, down projection.
            let ffn_norm = w(&mut b, "ffn_norm", 1, c.n_embd)?;
            let gate = w(&mut b, "ffn_gate", c.n_ff, c.n_embd)?;
            let up = w(&mut b, "ffn_up", c.n_ff, c.n_embd)?;
            let down = w(&mut b, "ffn_down", c.n_embd, c.n_ff)?;
            ops.extend([
                Op::RmsNorm { input: Act::Hidden, weight: ffn_norm, out: Act::Normed },
                Op::MatMul { weight: gate, input: Act::Normed, out: Act::Gate, accumulate: false },
                Op::MatMul { weight: up, input: Act::Normed, out: Act::Up, accumulate: false },
                Op::Glu { gate: Act::Gate, up: Act::Up, act: c.activation },
            ]);
            let post = if c.post_norms { Some(w(&mut b, "post_ffw_norm", 1, c.n_embd)?) } else { None };
            residual(&mut ops, down, Act::Gate, None, post);
        }
        let out_norm = b.weight(names::OUTPUT_NORM, 1, c.n_embd)?;
        let head = if c.tied_output { embd } else { b.weight(names::OUTPUT, c.n_vocab, c.n_embd)? };
        ops.push(Op::RmsNorm { input: Act::Hidden, weight: out_norm, out: Act::Normed });
        ops.push(Op::Logits { weight: head, input: Act::Normed });
        Ok(Self { config, weights: b.weights, ops })
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
        self.weights.push(WeightSpec { name: name.to_string(), rows, cols, ty: info.ty });
        Ok(WeightId(self.weights.len() - 1))
    }

    /// A tensor the architecture uses when the file has it (biases).
    fn optional(&mut self, name: &str, rows: usize, cols: usize) -> Result<Option<WeightId>> {
        match self.header.tensor(name) {
            Some(_) => self.weight(name, rows, cols).map(Some),
            None => Ok(None),
        }
    }
}
