//! Runs one kernel on host-provided buffers and reads them all back: how each WGSL kernel is
//! tested against the CPU reference, independent of the forward pass.

use super::context::GpuContext;
use super::shaders::{Kernel, Pipelines};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// One binding, in binding order.
pub enum Binding {
    Storage(Vec<u8>),
    Uniform(Vec<u8>),
}

/// Dispatches `kernel` (for weight format `ty`) over `groups` workgroups (folded into 2-D past
/// 65,535) and returns every binding's contents afterwards.
pub fn run_kernel(
    ctx: &GpuContext,
    kernel: Kernel,
    ty: Option<GgmlType>,
    bindings: &[Binding],
    groups: u32,
) -> Result<Vec<Vec<u8>>> {
    let mut pipes = Pipelines::default();
    let pipeline = pipes.get(&ctx.device, kernel, ty).clone();
    run_pipeline(ctx, &pipeline, bindings, groups)
}

/// [`run_kernel`] with a pipeline already built (compiling is most of a small kernel's time on
/// a software GPU).
fn run_pipeline(ctx: &GpuContext, pipeline: &wgpu::ComputePipeline, bindings: &[Binding], groups: u32) -> Result<Vec<Vec<u8>>> {
    let buffers: Vec<wgpu::Buffer> = bindings
        .iter()
        .map(|b| {
            let (data, usage) = match b {
                Binding::Storage(d) => (d, wgpu::BufferUsages::STORAGE),
                Binding::Uniform(d) => (d, wgpu::BufferUsages::UNIFORM),
            };
            let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: (data.len() as u64).max(16).next_multiple_of(4),
                usage: usage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            ctx.queue.write_buffer(&buf, 0, data);
            buf
        })
        .collect();
    let bind_group = super::lower::bind_group(ctx, pipeline, &buffers.iter().collect::<Vec<_>>());
    // Bindings that do not fit the kernel are a validation error, reported here.
    ctx.check()?;
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        super::backend::record(&mut pass, pipeline, &bind_group, groups);
    }
    let staging: Vec<wgpu::Buffer> = buffers
        .iter()
        .map(|b| {
            let s = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: b.size(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.copy_buffer_to_buffer(b, 0, &s, 0, b.size());
            s
        })
        .collect();
    ctx.queue.submit([encoder.finish()]);
    let mut out = Vec::new();
    for (s, b) in staging.iter().zip(bindings) {
        let len = match b {
            Binding::Storage(d) | Binding::Uniform(d) => d.len(),
        };
        out.push(super::backend::read_back(ctx, s, len)?);
    }
    Ok(out)
}

impl From<wgpu::BufferAsyncError> for Error {
    fn from(e: wgpu::BufferAsyncError) -> Self {
        Error::Gpu(format!("readback failed: {e}"))
    }
}

/// The GPU top-k selection over `logits` (every level, as the backend records them): the `k`
/// largest with their ids, largest first.
pub fn top_k(ctx: &GpuContext, logits: &[f32], k: usize) -> Result<Vec<(u32, f32)>> {
    if !(1..=super::top_k::MAX_TOP_K).contains(&k) || logits.is_empty() {
        return Err(Error::InvalidArgument(format!("top-k of {k} from {} logits", logits.len())));
    }
    let buffer = super::backend::storage(ctx, "logits", std::mem::size_of_val(logits) as u64);
    ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(logits));
    let (drawn, step) = (super::backend::storage(ctx, "drawn", 20), super::lower::uniform(ctx, &super::params::Step { n_tokens: 1, start_pos: 0, draw: [0; 2] }));
    let selection = super::top_k::TopK::new(ctx, &mut Pipelines::default(), &buffer, logits.len(), &drawn, &step);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        selection.record(&ctx.queue, &mut pass, k);
    }
    encoder.copy_buffer_to_buffer(selection.result(k), 0, &selection.staging, 0, (k * 8) as u64);
    ctx.queue.submit([encoder.finish()]);
    let bytes = super::backend::read_back(ctx, &selection.staging, k * 8)?;
    Ok(super::top_k::decode(&bytes, logits.len()))
}

/// The device draw (`shaders/draw.wgsl`) of each case from its candidates (sorted, best first,
/// as the top-k selection leaves them; at most 256): the id drawn and the four Philox words it
/// used.
pub fn draws(ctx: &GpuContext, cases: &[(Vec<(u32, f32)>, crate::sampler::DeviceDraw)]) -> Result<Vec<(u32, [u32; 4])>> {
    let pipeline = Pipelines::default().get(&ctx.device, Kernel::Draw, None).clone();
    cases
        .iter()
        .map(|(candidates, d)| {
            if candidates.is_empty() || candidates.len() > super::top_k::MAX_TOP_K || d.top_k != candidates.len() {
                return Err(Error::InvalidArgument(format!("a draw of top-{} from {} candidates", d.top_k, candidates.len())));
            }
            let pairs: Vec<u32> = candidates.iter().flat_map(|&(id, l)| [super::top_k::key_of_logit(l), id]).collect();
            let step = super::params::Step { n_tokens: 1, start_pos: 0, draw: [d.counter as u32, (d.counter >> 32) as u32] };
            let bindings = [
                Binding::Storage(bytemuck::cast_slice(&pairs).to_vec()),
                Binding::Storage(vec![0; 20]),
                Binding::Uniform(bytemuck::bytes_of(&super::top_k::draw_params(d)).to_vec()),
                Binding::Uniform(bytemuck::bytes_of(&step).to_vec()),
            ];
            let w: Vec<u32> = bytemuck::pod_collect_to_vec(&run_pipeline(ctx, &pipeline, &bindings, 1)?[1]);
            Ok((w[0], [w[1], w[2], w[3], w[4]]))
        })
        .collect()
}
