//! Lowering the forward plan to GPU dispatches: each op becomes a pre-built pipeline, bind
//! group and grid, and patterns in the plan become fused kernels (a norm folded into the
//! matmuls that read it; Q, K, V or gate and up from one stacked weight; biases added by the
//! matmul that produces their target; RoPE with the KV write, and for one token with the
//! attention too, and the output projection after it; gate/up with the gated activation; a
//! post-norm with its residual add).

use super::backend::storage;
use super::context::GpuContext;
use super::params;
use super::shaders::{matmul_groups, Kernel, Pipelines};
use super::weights::GpuWeights;
use crate::model::{Act, Activation, ForwardPlan, Op, RopeStyle, WeightId};

const WG: u32 = 64;
/// Batches of at least this many tokens use the tiled matmul kernel.
const TILED_FROM: u32 = 4;

/// How many workgroups a dispatch needs for `n` tokens.
#[derive(Clone, Copy)]
pub(super) enum Grid {
    /// A fixed number of workgroups per token.
    PerToken(u32),
    /// One thread per element, `per_token` elements per token.
    Threads(u32),
    /// Workgroups for one token only (logits of the last token).
    Once(u32),
    /// A matmul kernel's grid for this many output rows.
    MatMul(Kernel, u32),
}

impl Grid {
    pub fn groups(self, n: u32) -> u32 {
        match self {
            Grid::PerToken(g) => g * n,
            Grid::Threads(per) => (per * n).div_ceil(WG),
            Grid::Once(g) => g,
            Grid::MatMul(k, rows) => matmul_groups(k, rows, n),
        }
    }
}

/// Which logits request a dispatch serves (the output head has one per kind).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Always,
    LogitsLast,
    LogitsAll,
    /// Greedy decoding: argmax of the last token's logits.
    Argmax,
    /// Embeddings: every token's final normed state, written where the logits go.
    Hidden,
}

pub(super) struct Dispatch {
    pub kernel: Kernel,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub grid: Grid,
    pub role: Role,
    /// The same work for batches of `batched_from` tokens or more (matmuls: the tiled kernel
    /// from `TILED_FROM`; attention: the unfused form from 2).
    pub batched: Option<Box<Dispatch>>,
    pub batched_from: u32,
    /// Recorded only for batches of at least this many tokens: for one token the next
    /// dispatch does this work itself (RoPE and the KV store, in the fused attention).
    pub min_tokens: u32,
}

impl Dispatch {
    /// The form of this dispatch to record for `n` tokens, if any.
    pub fn for_tokens(&self, n: u32) -> Option<&Dispatch> {
        if n < self.min_tokens {
            return None;
        }
        match &self.batched {
            Some(b) if n >= self.batched_from => Some(b),
            _ => Some(self),
        }
    }
}

/// The device buffers a lowered plan binds.
pub(super) struct Buffers {
    pub acts: Vec<(Act, wgpu::Buffer)>,
    pub tokens: wgpu::Buffer,
    pub step: wgpu::Buffer,
    pub logits: wgpu::Buffer,
    pub argmax: wgpu::Buffer,
    /// cos/sin tables, one per RoPE variant of the config (`ModelConfig::ropes`).
    pub rope_tables: Vec<wgpu::Buffer>,
    pub k_cache: Vec<wgpu::Buffer>,
    pub v_cache: Vec<wgpu::Buffer>,
    /// An encoder-decoder's cross-attention keys and values, per decoder layer.
    pub cross_k: Vec<wgpu::Buffer>,
    pub cross_v: Vec<wgpu::Buffer>,
    /// Positions the caches hold.
    pub context: usize,
}

/// A lowered op list: its dispatches, and the parameters of its cross-attention dispatches,
/// whose key count ([`params::Attention::keys`]) is written when an input is encoded.
pub(super) struct Lowered {
    pub dispatches: Vec<Dispatch>,
    pub cross_params: Vec<wgpu::Buffer>,
}

/// Binds `bufs` to bindings 0, 1, … of a pipeline's group 0.
pub(super) fn bind_group(ctx: &GpuContext, pipeline: &wgpu::ComputePipeline, bufs: &[&wgpu::Buffer]) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
        .collect();
    let layout = pipeline.get_bind_group_layout(0);
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries })
}

pub(super) fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, value: &T) -> wgpu::Buffer {
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("params"),
        size: std::mem::size_of::<T>() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buf, 0, bytemuck::bytes_of(value));
    buf
}

/// The `AddBias` on `out` that belongs to the matmul(s) from `ops[from]` on: it follows them
/// among other matmuls of the same run and their biases.
fn bias_after(ops: &[Op], from: usize, out: Act) -> Option<(usize, WeightId)> {
    for (j, op) in ops.iter().enumerate().skip(from) {
        match *op {
            Op::AddBias { target, bias } if target == out => return Some((j, bias)),
            Op::AddBias { .. } => {}
            Op::MatMul { out: o, input, .. } if o != out && input != out => {}
            _ => return None,
        }
    }
    None
}

/// Whether the value an op leaves in `act` is never read after `ops[from - 1]` (the next op
/// touching it overwrites it first).
fn dead_after(ops: &[Op], from: usize, act: Act) -> bool {
    for op in &ops[from..] {
        if op.reads().contains(&act) {
            return false;
        }
        if op.writes().contains(&act) {
            return true;
        }
    }
    true
}

/// Whether the output projection `ops[j]`, reading the attention output `attn_out`, can be
/// left to the heads' partial products of the decode attention (attention_proj.wgsl): a plain
/// accumulate into the residual, in a format whose blocks divide a head, with the residual
/// then read only by matmuls (or a norm folded into them) until the MLP's down projection
/// accumulates into it, which adds the partials.
fn proj_fusable(plan: &ForwardPlan, weights: &GpuWeights, j: usize, attn_out: Act) -> bool {
    let c = &plan.config;
    let Some(&Op::MatMul { weight, input, out: x, accumulate: true }) = plan.ops.get(j) else { return false };
    let w = weights.get(weight);
    if input != attn_out || w.parts.len() != 1 || w.cols != c.n_head * c.head_dim || c.head_dim % w.ty.block_len() != 0 || w.rows != c.n_embd {
        return false;
    }
    if bias_after(&plan.ops, j + 1, x).is_some() || !dead_after(&plan.ops, j + 1, attn_out) {
        return false;
    }
    for (k, op) in plan.ops.iter().enumerate().skip(j + 1) {
        match *op {
            Op::MatMul { out, accumulate: true, input, .. } if out == x => return input != x,
            Op::MatMul { input, accumulate: false, out, .. } if input == x && out != x => {}
            Op::RmsNorm { input, .. } if input == x && plan.norm_folds_into_matmuls(k) => {}
            _ if op.reads().contains(&x) || op.writes().contains(&x) => return false,
            _ => {}
        }
    }
    false
}

/// How the fusions applied to a plan: what `hearth bench --profile` reports besides the times.
pub(super) fn fusion_notes(plan: &ForwardPlan, weights: &GpuWeights) -> Vec<String> {
    let groups = super::weights::stack_groups(plan);
    let stacked = |ws: &[WeightId]| weights.get(ws[0]).stack.is_some() && ws.iter().all(|&w| weights.get(w).stack.map(|s| s.0) == weights.get(ws[0]).stack.map(|s| s.0));
    let (mut whole, mut split, mut extra) = (0, 0, 0);
    let mut mixes = std::collections::BTreeSet::new();
    for (start, ws) in plan.matmul_runs().into_iter().filter(|(_, ws)| ws.len() == 3) {
        let dispatches = 3 - groups.iter().filter(|(j, g)| *j >= start && *j < start + 3 && stacked(g)).map(|(_, g)| g.len() - 1).sum::<usize>();
        if dispatches == 1 {
            whole += 1;
        } else {
            split += 1;
            extra += dispatches - 1;
            mixes.insert(ws.iter().map(|w| plan.weights[w.0].ty.name()).collect::<Vec<_>>().join("/"));
        }
    }
    let mut notes = vec![format!("Q/K/V projections in one dispatch in {whole} of {} layers", whole + split)];
    let attentions: Vec<(usize, Act)> = plan.ops.iter().enumerate().filter_map(|(i, op)| match *op {
        Op::Attention { out, .. } => Some((i, out)),
        _ => None,
    }).collect();
    let projected = attentions.iter().filter(|&&(i, out)| proj_fusable(plan, weights, i + 1, out)).count();
    notes.push(format!("decoding: the output projection inside the attention dispatch in {projected} of {} layers", attentions.len()));
    if split > 0 {
        notes.push(format!(
            "{split} layers mix formats ({}): their Q/K/V take {extra} more dispatches per token in all (Q and K still \
             share one where they agree)",
            mixes.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    notes
}

/// An activation as the kernels number it (common.wgsl's `activate`).
fn act_code(a: Activation) -> u32 {
    match a {
        Activation::Silu => 0,
        Activation::GeluTanh => 1,
        Activation::Relu => 2,
    }
}

fn layer_norm_params(c: &crate::model::ModelConfig, dim: usize, bias: bool) -> params::Norm {
    params::Norm { dim: dim as u32, eps: c.rms_eps, accumulate: 0, mode: 1 | (bias as u32) << 1 }
}

/// Every dispatch of one forward pass of `plan.ops`, in order.
pub(super) fn lower(ctx: &GpuContext, plan: &ForwardPlan, weights: &GpuWeights, b: &Buffers) -> Lowered {
    let c = &plan.config;
    let act = |a: Act| &b.acts.iter().find(|(x, _)| *x == a).expect("every activation has a buffer").1;
    let (tokens, step, logits, argmax) = (&b.tokens, &b.step, &b.logits, &b.argmax);
    let (k_cache, v_cache) = (&b.k_cache, &b.v_cache);
    // Bound as the norm weight of matmuls without a folded norm, and as the bias of matmuls
    // without one (the kernel ignores it).
    let no_norm = storage(ctx, "no norm", 16);
    // Bound as the second and third outputs of single-output matmuls (never written).
    let no_out2 = storage(ctx, "no second output", 16);
    let no_out3 = storage(ctx, "no third output", 16);
    // Copies that fill stacked bias buffers, submitted once at the end.
    let mut copies = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("stacked biases") });
    let pipes = std::cell::RefCell::new(Pipelines::default());
    // Shared by `add` and the fused forms that adjust the dispatch it just added.
    let dispatches = std::cell::RefCell::new(Vec::new());
    let build = |kernel: Kernel, ty, bufs: &[&wgpu::Buffer], grid: Grid, role: Role| {
        let pipeline = pipes.borrow_mut().get(&ctx.device, kernel, ty).clone();
        let bind_group = bind_group(ctx, &pipeline, bufs);
        Dispatch { kernel, pipeline, bind_group, grid, role, batched: None, batched_from: TILED_FROM, min_tokens: 1 }
    };
    let add = |kernel: Kernel, ty, bufs: &[&wgpu::Buffer], grid: Grid, role: Role| {
        let mut d = build(kernel, ty, bufs, grid, role);
        // Matmuls over every token also get the tiled form for prefill.
        if let Grid::MatMul(Kernel::MatMul, rows) = grid {
            let tiled = build(Kernel::MatMulTiled, ty, bufs, Grid::MatMul(Kernel::MatMulTiled, rows), role);
            d.batched = Some(Box::new(tiled));
        }
        dispatches.borrow_mut().push(d);
    };
    let kv = c.kv_dim() as u32;
    // `rope`: the fused decode form's RoPE variant (see attention.wgsl); `rel_span`: T5's
    // relative bias table length per head (0: none); `keys`: cross-attention's key count.
    let attention_params = |window: usize, bidirectional: bool, rel_span: u32, keys: u32, rope: Option<&crate::model::RopeSpec>, proj: Option<&super::weights::GpuTensor>| {
        uniform(
            ctx,
            &params::Attention {
                n_head: c.n_head as u32,
                n_head_kv: c.n_head_kv as u32,
                head_dim: c.head_dim as u32,
                kv_dim: kv,
                scale: c.attn_scale,
                window: window as u32,
                fused: rope.is_some() as u32,
                half: rope.map_or(0, |r| r.half() as u32),
                neox: rope.is_some_and(|r| r.style == RopeStyle::Neox) as u32,
                proj_rows: proj.map_or(0, |w| w.rows as u32),
                proj_row_words: proj.map_or(0, |w| w.row_words),
                proj_w_base: proj.and_then(|w| w.stack).map_or(0, |(_, row)| row * proj.expect("some").row_words),
                alibi_m0: c.alibi.map_or(0.0, |a| a.m0),
                alibi_m1: c.alibi.map_or(0.0, |a| a.m1),
                alibi_heads: c.alibi.map_or(0, |a| a.heads as u32),
                bidirectional: bidirectional as u32,
                keys,
                rel_span,
                _pad: [0; 2],
            },
        )
    };
    // Bindings the unfused attention does not read (the fused form's new K, V and table).
    let unused = storage(ctx, "unused", 16);
    // T5's relative position bias tables, one per (weight, direction), built once.
    let rel_tables = std::cell::RefCell::new(Vec::<(WeightId, bool, wgpu::Buffer)>::new());
    let rel_table = |w: Option<WeightId>, bidirectional: bool| -> (wgpu::Buffer, u32) {
        let Some(w) = w else { return (unused.clone(), 0) };
        let span = (2 * b.context - 1) as u32;
        if let Some((_, _, buf)) = rel_tables.borrow().iter().find(|(x, d, _)| *x == w && *d == bidirectional) {
            return (buf.clone(), span);
        }
        let table = crate::model::relative::bias_table(weights.host(w), c.n_head, c.rel_buckets, bidirectional, b.context);
        let buf = storage(ctx, "relative position biases", (table.len() * 4) as u64);
        ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(&table));
        rel_tables.borrow_mut().push((w, bidirectional, buf.clone()));
        (buf, span)
    };
    let mut cross_params = Vec::new();
    let ropes = c.ropes();
    let rope_kv_params: Vec<wgpu::Buffer> = ropes
        .iter()
        .map(|r| {
            let p = params::RopeKv {
                n_head: c.n_head as u32,
                n_head_kv: c.n_head_kv as u32,
                head_dim: c.head_dim as u32,
                half: r.half() as u32,
                neox: (r.style == RopeStyle::Neox) as u32,
                kv_dim: kv,
                _pad: [0; 2],
            };
            uniform(ctx, &p)
        })
        .collect();
    // A norm folded into the matmuls that read its output: (output, input, weight).
    let mut folded: Option<(Act, Act, WeightId)> = None;
    // The heads' partial output projections of a decode attention (attention_proj.wgsl),
    // written by a layer's attention and added by the matmuls that read the residual next.
    let attn_parts = storage(ctx, "attention partials", (c.n_head * c.n_embd * 4) as u64);
    // The residual whose output projection is left to the partials, until the down
    // projection adds them; and the projections so left (recorded for 2+ tokens only).
    let mut pending: Option<Act> = None;
    let mut proj_fused = vec![false; plan.ops.len()];
    let n_parts = c.n_head as u32;
    // Ops already covered by a fused dispatch.
    let mut done = vec![false; plan.ops.len()];
    let glu = plan.glu_triples();
    let runs = super::weights::stack_groups(plan);
    // Whether the weights sit back to back, in order, in one stacked buffer.
    let same_stack = |ws: &[WeightId]| {
        let st: Vec<_> = ws.iter().map(|&w| weights.get(w).stack).collect();
        st.iter().all(|s| s.is_some_and(|(k, _)| Some(k) == st[0].map(|(k0, _)| k0)))
            && ws.windows(2).zip(st.windows(2)).all(|(w, s)| s[0].unwrap().1 + weights.get(w[0]).rows as u32 == s[1].unwrap().1)
    };
    let bias_buf = |w: WeightId| &weights.get(w).parts[0].buffer;
    // The norm just before `ops[i]`, if it writes `input`, again into the logits buffer
    // (`Role::Hidden`): every token's final state for embeddings.
    let norm_again = |i: usize, input: Act| match plan.ops.get(i.wrapping_sub(1)) {
        Some(&Op::LayerNorm { input: x, weight, bias, out }) if out == input => {
            let pb = uniform(ctx, &layer_norm_params(c, weights.get(weight).cols, bias.is_some()));
            let bias_bind = bias.map_or(&no_norm, bias_buf);
            let bufs = [act(x), &weights.get(weight).parts[0].buffer, logits, &pb, step, bias_bind];
            add(Kernel::Norm, None, &bufs, Grid::PerToken(1), Role::Hidden);
        }
        Some(&Op::RmsNorm { input: x, weight, out }) if out == input => {
            let w = weights.get(weight);
            let pb = uniform(ctx, &params::Norm { dim: w.cols as u32, eps: c.rms_eps, accumulate: 0, mode: 0 });
            add(Kernel::Norm, None, &[act(x), &w.parts[0].buffer, logits, &pb, step, &no_norm], Grid::PerToken(1), Role::Hidden);
        }
        _ => {}
    };
    for (i, op) in plan.ops.iter().enumerate() {
        if done[i] {
            continue;
        }
        if folded.is_some_and(|(out, ..)| op.writes().contains(&out)) {
            folded = None;
        }
        // The matmul's real input and norm weight, for ops reading a folded norm's output.
        let norm_for = |x: Act| match folded {
            Some((out, input, w)) if out == x => (input, Some(weights.get(w))),
            _ => (x, None),
        };
        // Partials a matmul reading `src` adds to its input.
        let parts_in = |src: Act| if pending == Some(src) { n_parts } else { 0 };
        let parts_bind = |n: u32| if n > 0 { &attn_parts } else { &no_norm };
        match *op {
            // Token rows, or (positions) the rows of the batch's positions added.
            Op::Embed { table, out, .. } | Op::PosEmbed { table, out } => {
                let (scale, positions) = match *op {
                    Op::Embed { scale, .. } => (scale, 0),
                    _ => (1.0, 1),
                };
                let t = weights.get(table);
                for part in &t.parts {
                    let p = params::Embed {
                        dim: t.cols as u32,
                        row_words: t.row_words,
                        row_offset: part.row_offset,
                        rows: part.rows,
                        scale,
                        positions,
                        _pad: [0; 2],
                    };
                    let pb = uniform(ctx, &p);
                    add(Kernel::Embed, Some(t.ty), &[&part.buffer, tokens, act(out), &pb, step], Grid::Threads(t.cols as u32), Role::Always);
                }
            }
            Op::LayerNorm { input, weight, bias, out } => {
                let pb = uniform(ctx, &layer_norm_params(c, weights.get(weight).cols, bias.is_some()));
                let bias_bind = bias.map_or(&no_norm, bias_buf);
                let bufs = [act(input), &weights.get(weight).parts[0].buffer, act(out), &pb, step, bias_bind];
                add(Kernel::Norm, None, &bufs, Grid::PerToken(1), Role::Always);
            }
            Op::RmsNorm { input, weight, out } if plan.norm_folds_into_matmuls(i) => {
                folded = Some((out, input, weight));
            }
            Op::RmsNorm { input, weight, out } => {
                let w = weights.get(weight);
                // A post-norm whose result is only added to the residual stream: norm and add
                // in one dispatch.
                let (dest, accumulate) = match plan.ops.get(i + 1) {
                    Some(&Op::Add { input: x, out: y }) if x == out && y != input && dead_after(&plan.ops, i + 2, out) => {
                        done[i + 1] = true;
                        (y, 1)
                    }
                    _ => (out, 0),
                };
                let pb = uniform(ctx, &params::Norm { dim: w.cols as u32, eps: c.rms_eps, accumulate, mode: 0 });
                add(Kernel::Norm, None, &[act(input), &w.parts[0].buffer, act(dest), &pb, step, &no_norm], Grid::PerToken(1), Role::Always);
            }
            Op::HeadNorm { target, weight, n_heads } => {
                let w = &weights.get(weight).parts[0].buffer;
                // Q's and K's norms side by side: one dispatch for both.
                let (x2, w2, n2) = match plan.ops.get(i + 1) {
                    Some(&Op::HeadNorm { target: t2, weight: w2, n_heads: n2 }) if t2 != target => {
                        done[i + 1] = true;
                        (act(t2), &weights.get(w2).parts[0].buffer, n2)
                    }
                    _ => (&no_out2, &no_norm, 0),
                };
                let p = params::HeadNorm { n_heads: n_heads as u32, n_heads2: n2 as u32, head_dim: c.head_dim as u32, eps: c.rms_eps };
                let pb = uniform(ctx, &p);
                add(Kernel::HeadNorm, None, &[act(target), w, x2, w2, &pb, step], Grid::PerToken((n_heads + n2) as u32), Role::Always);
            }
            Op::AddBias { target, bias } => {
                let w = weights.get(bias);
                let pb = uniform(ctx, &params::Add { width: w.cols as u32, broadcast: 1, _pad: [0; 2] });
                add(Kernel::Add, None, &[&w.parts[0].buffer, act(target), &pb, step], Grid::Threads(w.cols as u32), Role::Always);
            }
            Op::Add { input, out } => {
                let width = plan.width(out) as u32;
                let pb = uniform(ctx, &params::Add { width, broadcast: 0, _pad: [0; 2] });
                add(Kernel::Add, None, &[act(input), act(out), &pb, step], Grid::Threads(width), Role::Always);
            }
            // Gate and up stacked in one buffer, then the gated activation: one dispatch for all three.
            Op::MatMul { input, out, .. } if glu.iter().any(|&(j, g, u, _)| j == i && same_stack(&[g, u])) => {
                let &(_, g, u, activation) = glu.iter().find(|&&(j, ..)| j == i).expect("matched above");
                let (gw, uw) = (weights.get(g), weights.get(u));
                let (g_row, u_row) = (gw.stack.expect("stacked").1, uw.stack.expect("stacked").1);
                let (src, norm) = norm_for(input);
                let p = params::MatMul {
                    norm: norm.is_some() as u32,
                    eps: c.rms_eps,
                    w_base: g_row * gw.row_words,
                    glu: act_code(activation) + 1,
                    glu_rows: u_row - g_row,
                    parts_in: parts_in(src),
                    ..params::MatMul::plain(gw.rows as u32, gw.cols as u32, gw.row_words, gw.rows as u32)
                };
                let pb = uniform(ctx, &p);
                let norm_buf = norm.map_or(&no_norm, |n| &n.parts[0].buffer);
                let bufs = [&gw.parts[0].buffer, act(src), act(out), &pb, step, norm_buf, &no_out2, &no_out3, &no_norm, parts_bind(p.parts_in)];
                add(Kernel::MatMul, Some(gw.ty), &bufs, Grid::MatMul(Kernel::MatMul, gw.rows as u32), Role::Always);
                done[i + 1] = true;
                done[i + 2] = true;
            }
            // Two or three matmuls of one input stacked in one buffer (Q, K, V): one
            // dispatch, its output rows routed to each op's buffer, their biases stacked alike.
            Op::MatMul { input, .. }
                if runs.iter().any(|(j, ws)| *j == i && (2..=3).contains(&ws.len()) && same_stack(ws)) =>
            {
                let (_, ws) = runs.iter().find(|(j, _)| *j == i).expect("matched above");
                let outs: Vec<Act> = plan.ops[i..i + ws.len()]
                    .iter()
                    .map(|op| match *op {
                        Op::MatMul { out, .. } => out,
                        _ => unreachable!("a run holds matmuls only"),
                    })
                    .collect();
                let ts: Vec<&super::weights::GpuTensor> = ws.iter().map(|&w| weights.get(w)).collect();
                let rows: Vec<u32> = ts.iter().map(|t| t.rows as u32).collect();
                let (src, norm) = norm_for(input);
                let first = ts[0];
                let total: u32 = rows.iter().sum();
                let biases: Vec<Option<(usize, WeightId)>> = outs.iter().map(|&o| bias_after(&plan.ops, i + ws.len(), o)).collect();
                let stacked_bias = biases.iter().any(Option::is_some).then(|| {
                    let buf = storage(ctx, "stacked bias", total as u64 * 4);
                    let mut base = 0u64;
                    for (bias, &r) in biases.iter().zip(&rows) {
                        if let Some((j, w)) = *bias {
                            copies.copy_buffer_to_buffer(bias_buf(w), 0, &buf, base * 4, r as u64 * 4);
                            done[j] = true;
                        }
                        base += r as u64;
                    }
                    buf
                });
                let p = params::MatMul {
                    norm: norm.is_some() as u32,
                    eps: c.rms_eps,
                    w_base: first.stack.expect("stacked").1 * first.row_words,
                    split1: rows[0],
                    split2: if rows.len() == 3 { rows[0] + rows[1] } else { u32::MAX },
                    stride2: rows[1],
                    stride3: rows.get(2).copied().unwrap_or(0),
                    bias: stacked_bias.is_some() as u32,
                    parts_in: parts_in(src),
                    ..params::MatMul::plain(total, first.cols as u32, first.row_words, rows[0])
                };
                let pb = uniform(ctx, &p);
                let norm_buf = norm.map_or(&no_norm, |n| &n.parts[0].buffer);
                let y3 = outs.get(2).map_or(&no_out3, |&a| act(a));
                let bias = stacked_bias.as_ref().unwrap_or(&no_norm);
                let bufs = [&first.parts[0].buffer, act(src), act(outs[0]), &pb, step, norm_buf, act(outs[1]), y3, bias, parts_bind(p.parts_in)];
                add(Kernel::MatMul, Some(first.ty), &bufs, Grid::MatMul(Kernel::MatMul, total), Role::Always);
                for d in &mut done[i..i + ws.len()] {
                    *d = true;
                }
            }
            Op::MatMul { weight, input, out, accumulate } => {
                let w = weights.get(weight);
                let (src, norm) = norm_for(input);
                let norm_buf = norm.map_or(&no_norm, |n| &n.parts[0].buffer);
                let bias = bias_after(&plan.ops, i + 1, out);
                if let Some((j, _)) = bias {
                    done[j] = true;
                }
                let bias_bind = bias.map_or(&no_norm, |(_, b)| bias_buf(b));
                // The down projection after a fused attention adds the partials to the residual.
                let parts_out = if accumulate && pending == Some(out) { n_parts } else { 0 };
                for part in &w.parts {
                    let p = params::MatMul {
                        accumulate: accumulate as u32,
                        row_offset: part.row_offset,
                        norm: norm.is_some() as u32,
                        eps: c.rms_eps,
                        w_base: w.stack.map_or(0, |(_, row)| row * w.row_words),
                        bias: bias.is_some() as u32,
                        parts_in: parts_in(src),
                        parts_out,
                        ..params::MatMul::plain(part.rows, w.cols as u32, w.row_words, w.rows as u32)
                    };
                    let pb = uniform(ctx, &p);
                    let bufs = [&part.buffer, act(src), act(out), &pb, step, norm_buf, &no_out2, &no_out3, bias_bind, parts_bind(p.parts_in + p.parts_out)];
                    add(Kernel::MatMul, Some(w.ty), &bufs, Grid::MatMul(Kernel::MatMul, part.rows), Role::Always);
                    if proj_fused[i] {
                        dispatches.borrow_mut().last_mut().expect("just added").min_tokens = 2;
                    }
                }
                if parts_out > 0 {
                    pending = None;
                }
                if proj_fused[i] {
                    pending = Some(out);
                }
            }
            // RoPE on Q and K followed by attention over them. A batch rotates both and
            // stores K and V in the cache in one dispatch, then attends; one token (decoding)
            // does it all in the attention dispatch.
            Op::Rope { target: qa, rope, .. }
                if matches!((plan.ops.get(i + 1), plan.ops.get(i + 2)),
                    (Some(Op::Rope { target: ka, rope: r2, .. }), Some(Op::Attention { q, k, .. })) if *q == qa && k == ka && *r2 == rope) =>
            {
                // (RoPE and T5's relative biases never meet: they are two kinds of positions.)
                let Some(&Op::Attention { layer, q, k, v, out, window, bidirectional, .. }) = plan.ops.get(i + 2) else { unreachable!() };
                let per_token = (c.n_head * ropes[rope].half() + 2 * c.kv_dim()) as u32;
                let bufs = [act(q), act(k), act(v), &k_cache[layer], &v_cache[layer], &b.rope_tables[rope], &rope_kv_params[rope], step];
                let mut rope_kv = build(Kernel::RopeKv, None, &bufs, Grid::Threads(per_token), Role::Always);
                rope_kv.min_tokens = 2;
                let grid = Grid::PerToken(c.n_head as u32);
                // Decoding one token with an output projection it can take on: the partials.
                let proj = match plan.ops.get(i + 3) {
                    Some(&Op::MatMul { weight, .. }) if proj_fusable(plan, weights, i + 3, out) => Some(weights.get(weight)),
                    _ => None,
                };
                let (pf, pa) = (
                    attention_params(window, bidirectional, 0, 0, Some(ropes[rope]), proj),
                    attention_params(window, bidirectional, 0, 0, None, None),
                );
                let mut attention = match proj {
                    Some(w) => {
                        proj_fused[i + 3] = true;
                        let fused = [act(q), &k_cache[layer], &v_cache[layer], &attn_parts, &pf, step, act(k), act(v), &b.rope_tables[rope], &w.parts[0].buffer];
                        build(Kernel::AttentionProj, Some(w.ty), &fused, grid, Role::Always)
                    }
                    None => {
                        let fused = [act(q), &k_cache[layer], &v_cache[layer], act(out), &pf, step, act(k), act(v), &b.rope_tables[rope]];
                        build(Kernel::Attention, None, &fused, grid, Role::Always)
                    }
                };
                let batched = [act(q), &k_cache[layer], &v_cache[layer], act(out), &pa, step, &unused, &unused, &unused];
                attention.batched = Some(Box::new(build(Kernel::Attention, None, &batched, grid, Role::Always)));
                attention.batched_from = 2;
                dispatches.borrow_mut().extend([rope_kv, attention]);
                done[i + 1] = true;
                done[i + 2] = true;
            }
            Op::Rope { target, n_heads, rope } => {
                let r = ropes[rope];
                let p = params::Rope {
                    n_heads: n_heads as u32,
                    head_dim: c.head_dim as u32,
                    half: r.half() as u32,
                    neox: (r.style == RopeStyle::Neox) as u32,
                };
                let pb = uniform(ctx, &p);
                let bufs = [act(target), &b.rope_tables[rope], &pb, step];
                add(Kernel::Rope, None, &bufs, Grid::Threads((n_heads * r.half()) as u32), Role::Always);
            }
            Op::Attention { layer, q, k, v, out, window, bidirectional, rel_bias } => {
                let pb = uniform(ctx, &params::Width { width: kv, _pad: [0; 3] });
                add(Kernel::KvStore, None, &[act(k), act(v), &k_cache[layer], &v_cache[layer], &pb, step], Grid::Threads(kv), Role::Always);
                let (rel, rel_span) = rel_table(rel_bias, bidirectional);
                let pa = attention_params(window, bidirectional, rel_span, 0, None, None);
                // The relative bias table where the RoPE table would be.
                let bufs = [act(q), &k_cache[layer], &v_cache[layer], act(out), &pa, step, &unused, &unused, &rel];
                add(Kernel::Attention, None, &bufs, Grid::PerToken(c.n_head as u32), Role::Always);
            }
            // The encoded input's keys and values, stored from position 0 (the encoder's batch).
            Op::StoreCross { layer, k, v } => {
                let pb = uniform(ctx, &params::Width { width: kv, _pad: [0; 3] });
                add(Kernel::KvStore, None, &[act(k), act(v), &b.cross_k[layer], &b.cross_v[layer], &pb, step], Grid::Threads(kv), Role::Always);
            }
            // Over every encoded position: the key count is written when an input is encoded.
            Op::CrossAttention { layer, q, out } => {
                let pa = attention_params(0, true, 0, 1, None, None);
                let bufs = [act(q), &b.cross_k[layer], &b.cross_v[layer], act(out), &pa, step, &unused, &unused, &unused];
                add(Kernel::Attention, None, &bufs, Grid::PerToken(c.n_head as u32), Role::Always);
                cross_params.push(pa);
            }
            Op::Glu { gate, up, act: activation } => {
                let p = params::Glu { width: c.n_ff as u32, act: act_code(activation), unary: 0, _pad: 0 };
                let pb = uniform(ctx, &p);
                add(Kernel::Glu, None, &[act(gate), act(up), &pb, step], Grid::Threads(c.n_ff as u32), Role::Always);
            }
            Op::Activate { target, act: activation } => {
                let width = plan.width(target) as u32;
                let p = params::Glu { width, act: act_code(activation), unary: 1, _pad: 0 };
                let pb = uniform(ctx, &p);
                add(Kernel::Glu, None, &[act(target), &no_norm, &pb, step], Grid::Threads(width), Role::Always);
            }
            Op::Logits { weight, input, bias } => {
                let w = weights.get(weight);
                let (src, norm) = norm_for(input);
                let norm_buf = norm.map_or(&no_norm, |n| &n.parts[0].buffer);
                let bias_bind = bias.map_or(&no_norm, bias_buf);
                for (last_only, role) in [(1, Role::LogitsLast), (0, Role::LogitsAll)] {
                    for part in &w.parts {
                        let p = params::MatMul {
                            last_only,
                            row_offset: part.row_offset,
                            norm: norm.is_some() as u32,
                            eps: c.rms_eps,
                            bias: bias.is_some() as u32,
                            ..params::MatMul::plain(part.rows, w.cols as u32, w.row_words, w.rows as u32)
                        };
                        let pb = uniform(ctx, &p);
                        let grid = if last_only == 1 {
                            Grid::Once(matmul_groups(Kernel::MatMul, part.rows, 1))
                        } else {
                            Grid::MatMul(Kernel::MatMul, part.rows)
                        };
                        let bufs = [&part.buffer, act(src), logits, &pb, step, norm_buf, &no_out2, &no_out3, bias_bind, &no_norm];
                        add(Kernel::MatMul, Some(w.ty), &bufs, grid, role);
                    }
                }
                let pb = uniform(ctx, &params::Width { width: c.n_vocab as u32, _pad: [0; 3] });
                add(Kernel::Argmax, None, &[logits, argmax, &pb], Grid::Once(1), Role::Argmax);
                // For embeddings, the final norm just before (folded or not) once more, written
                // where the logits go.
                norm_again(i, input);
            }
            // An encoder's states: its last LayerNorm once more, written where the logits go.
            Op::States { input } => norm_again(i, input),
        }
    }
    ctx.queue.submit([copies.finish()]);
    Lowered { dispatches: dispatches.into_inner(), cross_params }
}
