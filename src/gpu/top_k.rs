//! The k most likely tokens of the last logits row, selected on the GPU so that sampling
//! reads back 8·k bytes instead of the vocabulary. `shaders/top_k.wgsl` keeps the best k of
//! every 1024 entries; levels repeat over the survivors until one workgroup remains.

use super::backend::{record, storage};
use super::context::GpuContext;
use super::lower::{bind_group, uniform};
use super::params;
use super::shaders::{Kernel, Pipelines};

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
    pub fn new(ctx: &GpuContext, pipelines: &mut Pipelines, logits: &wgpu::Buffer, n_vocab: usize) -> Self {
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
        Self { pipeline, levels, outputs, staging, n_vocab }
    }

    /// Writes the level parameters for `k` and records the levels.
    /// Records the selection; returns the number of dispatches.
    pub fn record(&self, queue: &wgpu::Queue, pass: &mut wgpu::ComputePass, k: usize) -> usize {
        let levels = levels(self.n_vocab, k);
        for (l, &(n, groups)) in levels.iter().enumerate() {
            let (p, bg) = &self.levels[l];
            queue.write_buffer(p, 0, bytemuck::bytes_of(&params::TopK { n: n as u32, k: k as u32, from_logits: (l == 0) as u32, _pad: 0 }));
            record(pass, &self.pipeline, bg, groups as u32);
        }
        levels.len()
    }

    /// The buffer whose first k (key, id) pairs are the result for `k`.
    pub fn result(&self, k: usize) -> &wgpu::Buffer {
        &self.outputs[(levels(self.n_vocab, k).len() - 1) % 2]
    }
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
