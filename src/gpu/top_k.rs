//! The k most likely tokens of the last logits row, selected on the GPU so that sampling
//! reads back 8·k bytes instead of the vocabulary. `shaders/top_k.wgsl` keeps the best k of
//! every 1024 entries; levels repeat over the survivors until one workgroup remains. After it,
//! `shaders/draw.wgsl` can draw the sampled token on the device ([`TopK::record_draw`]).

use super::backend::{record, storage};
use super::context::GpuContext;
use super::lower::{bind_group, uniform};
use super::params;
use super::shaders::{Kernel, Pipelines};
use crate::sampler::DeviceDraw;

/// The largest k the selection serves (more would need many levels for little gain).
pub const MAX_TOP_K: usize = 256;
/// Entries one workgroup sorts (`TILE` in the shader).
const TILE: usize = 1024;

pub(super) struct TopK {
    pipeline: wgpu::ComputePipeline,
    /// Per level: its parameters and its bind group (level 0 reads the logits into `a`, odd
    /// levels read `a` into `b`, even ones `b` into `a`).
    levels: Vec<(wgpu::Buffer, wgpu::BindGroup)>,
    /// Where each level writes.
    outputs: [wgpu::Buffer; 2],
    pub staging: wgpu::Buffer,
    n_vocab: usize,
    draw_pipeline: wgpu::ComputePipeline,
    draw_params: wgpu::Buffer,
    /// The draw reading `outputs[0]` and `outputs[1]`.
    draw_groups: [wgpu::BindGroup; 2],
}

/// (entries in, workgroups) of each level selecting the best `k` of `n`.
pub fn levels(n: usize, k: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut n = n;
    loop {
        let groups = n.div_ceil(TILE);
        out.push((n, groups));
        if groups == 1 {
            return out;
        }
        n = groups * k;
    }
}

impl TopK {
    /// The selection over `logits`; the draw writes its id to `drawn` (with the Philox words
    /// after it: 20 bytes) using the counter in the `step` uniform.
    pub fn new(ctx: &GpuContext, pipelines: &mut Pipelines, logits: &wgpu::Buffer, n_vocab: usize, drawn: &wgpu::Buffer, step: &wgpu::Buffer) -> Self {
        let pipeline = pipelines.get(&ctx.device, Kernel::TopK, None).clone();
        let pair_bytes = |n: usize| (n * 8) as u64;
        let most = n_vocab.div_ceil(TILE) * MAX_TOP_K;
        let outputs = [storage(ctx, "top-k a", pair_bytes(most)), storage(ctx, "top-k b", pair_bytes(most))];
        let levels = (0..levels(n_vocab, MAX_TOP_K).len())
            .map(|l| {
                let p = uniform(ctx, &params::TopK { n: 0, k: 0, from_logits: 0, _pad: 0 });
                let (src, dst) = if l % 2 == 0 { (&outputs[1], &outputs[0]) } else { (&outputs[0], &outputs[1]) };
                let bg = bind_group(ctx, &pipeline, &[logits, src, dst, &p]);
                (p, bg)
            })
            .collect();
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("top-k readback"),
            size: pair_bytes(MAX_TOP_K),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let draw_pipeline = pipelines.get(&ctx.device, Kernel::Draw, None).clone();
        let draw_params = uniform(ctx, &params::Draw { k: 0, seed: [0; 2], top_p: 1.0, ln_min_p: 0.0, inv_temp: 1.0, _pad: [0; 2] });
        let draw_groups = [0, 1].map(|i| bind_group(ctx, &draw_pipeline, &[&outputs[i], drawn, &draw_params, step]));
        Self { pipeline, levels, outputs, staging, n_vocab, draw_pipeline, draw_params, draw_groups }
    }

    /// Writes the draw's settings (the same for every step of a run; the counter comes from
    /// each step's record).
    pub fn set_draw(&self, queue: &wgpu::Queue, d: &DeviceDraw) {
        queue.write_buffer(&self.draw_params, 0, bytemuck::bytes_of(&draw_params(d)));
    }

    /// Records the draw from the selection of `record(.., d.top_k)`; one dispatch.
    pub fn record_draw(&self, pass: &mut wgpu::ComputePass, d: &DeviceDraw) {
        record(pass, &self.draw_pipeline, &self.draw_groups[self.output_of(d.top_k)], 1);
    }

    /// Writes the level parameters for `k` and records the levels; returns the number of
    /// dispatches.
    pub fn record(&self, queue: &wgpu::Queue, pass: &mut wgpu::ComputePass, k: usize) -> usize {
        self.set_k(queue, k);
        self.record_levels(pass, k)
    }

    /// Writes the level parameters for `k` (once for a whole decoding run).
    pub fn set_k(&self, queue: &wgpu::Queue, k: usize) {
        for (l, &(n, _)) in levels(self.n_vocab, k).iter().enumerate() {
            let p = params::TopK { n: n as u32, k: k as u32, from_logits: (l == 0) as u32, _pad: 0 };
            queue.write_buffer(&self.levels[l].0, 0, bytemuck::bytes_of(&p));
        }
    }

    /// Records the levels of a selection whose parameters [`set_k`](Self::set_k) wrote.
    pub fn record_levels(&self, pass: &mut wgpu::ComputePass, k: usize) -> usize {
        let levels = levels(self.n_vocab, k);
        for (l, &(_, groups)) in levels.iter().enumerate() {
            record(pass, &self.pipeline, &self.levels[l].1, groups as u32);
        }
        levels.len()
    }

    /// The buffer whose first k (key, id) pairs are the result for `k`.
    pub fn result(&self, k: usize) -> &wgpu::Buffer {
        &self.outputs[self.output_of(k)]
    }

    /// Which of `outputs` the last level for `k` writes.
    fn output_of(&self, k: usize) -> usize {
        (levels(self.n_vocab, k).len() - 1) % 2
    }
}

/// The draw's uniform block: what the CPU sampler computes in f64 is rounded once here.
pub fn draw_params(d: &DeviceDraw) -> params::Draw {
    // A finite floor for "off": WGSL need not honour infinities.
    let ln_min_p = if d.min_p > 0.0 { (d.min_p as f64).ln() as f32 } else { -f32::MAX };
    params::Draw {
        k: d.top_k as u32,
        seed: [d.seed as u32, (d.seed >> 32) as u32],
        top_p: d.top_p,
        ln_min_p,
        inv_temp: (1.0 / d.temperature as f64) as f32,
        _pad: [0; 2],
    }
}

/// `top_k.wgsl`'s sort key of a logit (orders like `f32::total_cmp`).
pub fn key_of_logit(l: f32) -> u32 {
    let b = l.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// The logit a sort key stands for (the inverse of `sort_key` in the shader).
pub fn logit_of_key(key: u32) -> f32 {
    f32::from_bits(if key >> 31 == 1 { key & 0x7fff_ffff } else { !key })
}

/// Decodes the read-back (key, id) pairs, dropping padding.
pub fn decode(bytes: &[u8], n_vocab: usize) -> Vec<(u32, f32)> {
    bytemuck::pod_collect_to_vec::<u8, u32>(bytes)
        .chunks_exact(2)
        .filter(|p| (p[1] as usize) < n_vocab)
        .map(|p| (p[1], logit_of_key(p[0])))
        .collect()
}
