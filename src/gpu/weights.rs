//! Weights in GPU buffers, uploaded tensor by tensor as the GGUF stream yields them. A tensor
//! larger than the adapter's storage-binding limit is split by rows into parts, each bound and
//! dispatched on its own.

use std::sync::Arc;

use super::context::GpuContext;
use crate::model::{ForwardPlan, WeightId};
use crate::quant::gpu_layout::{gpu_block_bytes, gpu_block_len, gpu_supports_cols, to_gpu_layout};
use crate::quant::{dequantize_row, GgmlType};
use crate::{Error, Result};

pub struct GpuTensorPart {
    pub row_offset: u32,
    pub rows: u32,
    pub buffer: wgpu::Buffer,
}

pub struct GpuTensor {
    /// For a tensor sharing one buffer with others (gate and up of a SwiGLU): the stack and
    /// the row of the buffer where this tensor starts.
    pub stack: Option<(usize, u32)>,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// 32-bit words per row in the GPU layout.
    pub row_words: u32,
    pub parts: Vec<GpuTensorPart>,
}

pub struct GpuWeights {
    pub ctx: Arc<GpuContext>,
    tensors: Vec<Option<GpuTensor>>,
    /// T5's relative position biases, kept on the host in f32: the backend expands them into
    /// per-position tables (`crate::model::relative::bias_table`) rather than reading them.
    host: Vec<Option<Vec<f32>>>,
    is_host: Vec<bool>,
    /// Weights stored back to back in one buffer, so one dispatch can read them all.
    stacks: Vec<Stack>,
    /// Largest buffer one tensor part may occupy.
    part_limit: u64,
}

struct Stack {
    members: Vec<WeightId>,
    /// First row of each member in the buffer.
    base_rows: Vec<usize>,
    total_rows: usize,
    buffer: Option<wgpu::Buffer>,
}

impl GpuWeights {
    pub fn new(ctx: Arc<GpuContext>, plan: &ForwardPlan) -> Self {
        let limit = ctx.max_binding().min(ctx.limits.max_buffer_size);
        Self::with_part_limit(ctx, plan, limit)
    }

    /// Like [`new`](Self::new) with tensors split into parts of at most `limit` bytes (for
    /// tests of the split path, and devices that fail below their reported limit).
    pub fn with_part_limit(ctx: Arc<GpuContext>, plan: &ForwardPlan, limit: u64) -> Self {
        let limit = limit.min(ctx.max_binding()).min(ctx.limits.max_buffer_size);
        // Runs of matmuls over one input (Q/K/V, gate/up) of one format share a buffer.
        let stacks = stack_groups(plan)
            .into_iter()
            .filter_map(|(_, members)| {
                let first = &plan.weights[members[0].0];
                let base_rows: Vec<usize> =
                    members.iter().scan(0, |acc, m| Some(std::mem::replace(acc, *acc + plan.weights[m.0].rows))).collect();
                let total_rows = members.iter().map(|m| plan.weights[m.0].rows).sum::<usize>();
                let bytes = (total_rows * row_bytes(first.ty, first.cols)) as u64;
                (gpu_supports_cols(first.ty, first.cols) && bytes <= limit)
                    .then_some(Stack { members, base_rows, total_rows, buffer: None })
            })
            .collect();
        let n = plan.weights.len();
        let mut is_host = vec![false; n];
        plan.rel_biases().into_iter().for_each(|(w, _)| is_host[w.0] = true);
        Self { ctx, tensors: (0..n).map(|_| None).collect(), host: vec![None; n], is_host, stacks, part_limit: limit }
    }

    pub fn get(&self, id: WeightId) -> &GpuTensor {
        self.tensors[id.0].as_ref().expect("every weight is uploaded before the backend runs")
    }

    /// A weight kept on the host (a relative bias table), dequantized.
    pub fn host(&self, id: WeightId) -> &[f32] {
        self.host[id.0].as_deref().expect("host weights are loaded before the backend runs")
    }

    /// Uploads rows of one tensor: bytes in file layout starting at byte `offset` of the
    /// tensor, a whole number of rows (the whole tensor, or pieces in order). Norm weights (one
    /// row) are expanded to f32; matrices keep their quantized blocks in the GPU layout.
    pub fn put(&mut self, plan: &ForwardPlan, id: WeightId, offset: usize, bytes: Vec<u8>) -> Result<()> {
        let spec = &plan.weights[id.0];
        let file_row = spec.cols / spec.ty.block_len() * spec.ty.block_bytes();
        if file_row == 0 || !offset.is_multiple_of(file_row) || !bytes.len().is_multiple_of(file_row) || offset + bytes.len() > spec.rows * file_row {
            return Err(Error::Model(format!("tensor {:?}: bytes {offset}..{} are not whole rows of it", spec.name, offset + bytes.len())));
        }
        if self.is_host[id.0] {
            let host = self.host[id.0].get_or_insert_with(Vec::new);
            host.truncate(offset / file_row * spec.cols);
            for row in bytes.chunks(file_row) {
                let mut v = vec![0.0f32; spec.cols];
                dequantize_row(spec.ty, row, &mut v);
                host.extend(v);
            }
            return Ok(());
        }
        let (ty, bytes) = if spec.rows == 1 && spec.ty != GgmlType::F32 {
            let mut v = vec![0.0f32; spec.cols];
            dequantize_row(spec.ty, &bytes, &mut v);
            (GgmlType::F32, bytemuck::cast_slice(&v).to_vec())
        } else {
            (spec.ty, bytes)
        };
        if !gpu_supports_cols(ty, spec.cols) {
            return Err(Error::Unsupported(format!("tensor {:?}: {} rows of odd length {}", spec.name, ty.name(), spec.cols)));
        }
        if offset == 0 || self.tensors[id.0].is_none() {
            let t = self.allocate(spec, id, ty);
            self.tensors[id.0] = Some(t);
        }
        let t = self.tensors[id.0].as_ref().expect("allocated above");
        let row_bytes = t.row_words as usize * 4;
        let gpu = to_gpu_layout(ty, &bytes);
        let (first, n) = (offset / file_row, bytes.len() / file_row);
        // A stacked tensor starts `base` rows into its buffer; split ones span several parts.
        let base = t.stack.map_or(0, |(_, row)| row as usize);
        for part in &t.parts {
            let (p0, p1) = (part.row_offset as usize, (part.row_offset + part.rows) as usize);
            let (r0, r1) = (first.max(p0), (first + n).min(p1));
            if r0 < r1 {
                let src = &gpu[(r0 - first) * row_bytes..(r1 - first) * row_bytes];
                self.ctx.queue.write_buffer(&part.buffer, ((base + r0 - p0) * row_bytes) as u64, src);
            }
        }
        // Out of GPU memory, or a lost device, while uploading.
        self.ctx.check()
    }

    /// Creates the buffers of one tensor: a share of its stack's buffer, or its own buffers,
    /// split by rows where it exceeds the binding limit.
    fn allocate(&mut self, spec: &crate::model::WeightSpec, id: WeightId, ty: GgmlType) -> GpuTensor {
        let row_bytes = row_bytes(ty, spec.cols);
        let row_words = (row_bytes / 4) as u32;
        let stacked = self.stacks.iter().enumerate().find_map(|(s, st)| st.members.iter().position(|&m| m == id).map(|k| (s, k)));
        if let Some((s, k)) = stacked {
            let ctx = &self.ctx;
            let stack = &mut self.stacks[s];
            let (base_row, total_rows) = (stack.base_rows[k], stack.total_rows);
            let buffer = stack.buffer.get_or_insert_with(|| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&spec.name),
                    size: (total_rows * row_bytes) as u64,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            let part = GpuTensorPart { row_offset: 0, rows: spec.rows as u32, buffer: buffer.clone() };
            return GpuTensor { stack: Some((s, base_row as u32)), ty, rows: spec.rows, cols: spec.cols, row_words, parts: vec![part] };
        }
        let rows_per_part = (self.part_limit / row_bytes as u64).max(1) as usize;
        let parts = (0..spec.rows)
            .step_by(rows_per_part)
            .map(|start| {
                let rows = rows_per_part.min(spec.rows - start);
                // Vectors (norms, biases) may be copied into stacked bias buffers.
                let copy_src = if spec.rows == 1 { wgpu::BufferUsages::COPY_SRC } else { wgpu::BufferUsages::empty() };
                let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&spec.name),
                    size: (rows * row_bytes) as u64,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | copy_src,
                    mapped_at_creation: false,
                });
                GpuTensorPart { row_offset: start as u32, rows: rows as u32, buffer }
            })
            .collect();
        GpuTensor { stack: None, ty, rows: spec.rows, cols: spec.cols, row_words, parts }
    }

    /// Streams a GGUF file into GPU buffers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_file(
        ctx: Arc<GpuContext>,
        path: &std::path::Path,
        progress: impl FnMut(crate::model::LoadProgress),
    ) -> Result<(crate::model::Model, GpuWeights)> {
        let new = Box::new(move |plan: &_| Ok(GpuWeights::new(ctx.clone(), plan)));
        crate::model::load_model_file(path, new, Box::new(GpuWeights::put), Some(UPLOAD_PIECE), progress)
    }
}

/// Runs of matmuls over one input (Q/K/V, gate/up), split into maximal groups of consecutive
/// weights of one format and row length, as `(index of the group's first op, weights)`: each
/// group of two or more is stored in one buffer and computed by one dispatch. (A Q4_K_M file
/// often stores V in another format than Q and K; then Q and K still share a dispatch.)
pub(super) fn stack_groups(plan: &ForwardPlan) -> Vec<(usize, Vec<WeightId>)> {
    let key = |w: &WeightId| (plan.weights[w.0].ty, plan.weights[w.0].cols);
    let mut out = Vec::new();
    for (start, ws) in plan.matmul_runs() {
        let mut i = 0;
        while i < ws.len() {
            let n = ws[i..].iter().take_while(|w| key(w) == key(&ws[i])).count();
            if n >= 2 {
                out.push((start + i, ws[i..i + n].to_vec()));
            }
            i += n;
        }
    }
    out
}

/// Tensors are uploaded in pieces of about this many bytes, so none is ever held whole.
pub const UPLOAD_PIECE: usize = 4 << 20;

/// Bytes of one row of `cols` elements in the GPU layout.
fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    cols / gpu_block_len(ty) * gpu_block_bytes(ty)
}
