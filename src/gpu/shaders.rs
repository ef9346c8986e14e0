//! Kernel sources and pipelines. Each op family is one `.wgsl` file in `shaders/`; the only
//! preprocessing is concatenation: `common.wgsl`, then (for kernels reading weights) the byte
//! helpers `quant/bytes.wgsl` and the quant format's file from `shaders/quant/` (after the
//! helpers it shares with its family: `k_scale_min.wgsl`, `iq4_levels.wgsl`), then (for the two matmul kernels) `matmul_io.wgsl`, then
//! the kernel (the attention kernels: `attention.wgsl`, then their entry point's file).

use std::collections::HashMap;

use crate::quant::GgmlType;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const MATMUL_IO: &str = include_str!("../../shaders/matmul_io.wgsl");
const QUANT_BYTES: &str = include_str!("../../shaders/quant/bytes.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Embed,
    MatMul,
    /// The prefill form of `MatMul`: several tokens per workgroup.
    MatMulTiled,
    RmsNorm,
    Rope,
    KvStore,
    Attention,
    /// Attention for one decoded token times its slice of the output projection.
    AttentionProj,
    Glu,
    HeadNorm,
    Add,
    Argmax,
    RopeKv,
    TopK,
    Draw,
}

impl Kernel {
    fn source(self) -> &'static str {
        match self {
            Kernel::Embed => include_str!("../../shaders/embed.wgsl"),
            Kernel::MatMul => include_str!("../../shaders/matmul.wgsl"),
            Kernel::MatMulTiled => include_str!("../../shaders/matmul_tiled.wgsl"),
            Kernel::RmsNorm => include_str!("../../shaders/rms_norm.wgsl"),
            Kernel::Rope => include_str!("../../shaders/rope.wgsl"),
            Kernel::KvStore => include_str!("../../shaders/kv_store.wgsl"),
            Kernel::Attention => concat!(include_str!("../../shaders/attention.wgsl"), include_str!("../../shaders/attention_out.wgsl")),
            Kernel::AttentionProj => concat!(include_str!("../../shaders/attention.wgsl"), include_str!("../../shaders/attention_proj.wgsl")),
            Kernel::Glu => include_str!("../../shaders/glu.wgsl"),
            Kernel::HeadNorm => include_str!("../../shaders/head_norm.wgsl"),
            Kernel::Add => include_str!("../../shaders/add.wgsl"),
            Kernel::Argmax => include_str!("../../shaders/argmax.wgsl"),
            Kernel::RopeKv => include_str!("../../shaders/rope_kv.wgsl"),
            Kernel::TopK => include_str!("../../shaders/top_k.wgsl"),
            Kernel::Draw => include_str!("../../shaders/draw.wgsl"),
        }
    }

    fn reads_weights(self) -> bool {
        matches!(self, Kernel::Embed | Kernel::MatMul | Kernel::MatMulTiled | Kernel::AttentionProj)
    }
}

/// The block decoder of a weight format, after the helpers it shares with related formats.
fn quant_sources(ty: GgmlType) -> &'static [&'static str] {
    const K_SCALE_MIN: &str = include_str!("../../shaders/quant/k_scale_min.wgsl");
    const IQ4_LEVELS: &str = include_str!("../../shaders/quant/iq4_levels.wgsl");
    match ty {
        GgmlType::F32 => &[include_str!("../../shaders/quant/f32.wgsl")],
        GgmlType::F16 => &[include_str!("../../shaders/quant/f16.wgsl")],
        GgmlType::BF16 => &[include_str!("../../shaders/quant/bf16.wgsl")],
        GgmlType::Q4_0 => &[include_str!("../../shaders/quant/q4_0.wgsl")],
        GgmlType::Q4_1 => &[include_str!("../../shaders/quant/q4_1.wgsl")],
        GgmlType::Q5_0 => &[include_str!("../../shaders/quant/q5_0.wgsl")],
        GgmlType::Q5_1 => &[include_str!("../../shaders/quant/q5_1.wgsl")],
        GgmlType::Q8_0 => &[include_str!("../../shaders/quant/q8_0.wgsl")],
        GgmlType::Q2_K => &[include_str!("../../shaders/quant/q2_k.wgsl")],
        GgmlType::Q3_K => &[include_str!("../../shaders/quant/q3_k.wgsl")],
        GgmlType::Q4_K => &[K_SCALE_MIN, include_str!("../../shaders/quant/q4_k.wgsl")],
        GgmlType::Q5_K => &[K_SCALE_MIN, include_str!("../../shaders/quant/q5_k.wgsl")],
        GgmlType::Q6_K => &[include_str!("../../shaders/quant/q6_k.wgsl")],
        GgmlType::IQ4_NL => &[IQ4_LEVELS, include_str!("../../shaders/quant/iq4_nl.wgsl")],
        GgmlType::IQ4_XS => &[IQ4_LEVELS, include_str!("../../shaders/quant/iq4_xs.wgsl")],
    }
}

/// The full WGSL of a kernel (for a weight format where it reads weights).
pub fn assemble(kernel: Kernel, ty: Option<GgmlType>) -> String {
    let mut src = String::from(COMMON);
    if kernel.reads_weights() {
        src.push_str(QUANT_BYTES);
        for part in quant_sources(ty.expect("weight kernels take a format")) {
            src.push_str(part);
        }
    }
    if matches!(kernel, Kernel::MatMul | Kernel::MatMulTiled) {
        src.push_str(MATMUL_IO);
    }
    src.push_str(kernel.source());
    src
}

/// Rows per workgroup of the matmul kernels (`ROWS` in their files) and tokens per workgroup
/// of the tiled one (`TOKS`).
const MATVEC_ROWS: u32 = 16;
const TILED_ROWS: u32 = 64;
const TILED_TOKENS: u32 = 16;

/// Workgroups a matmul kernel needs for `rows` output rows and `n_tokens` tokens.
pub fn matmul_groups(kernel: Kernel, rows: u32, n_tokens: u32) -> u32 {
    match kernel {
        Kernel::MatMulTiled => rows.div_ceil(TILED_ROWS) * n_tokens.div_ceil(TILED_TOKENS),
        _ => rows.div_ceil(MATVEC_ROWS) * n_tokens,
    }
}

/// Compiled pipelines, one per (kernel, weight format), built on first use.
#[derive(Default)]
pub struct Pipelines {
    cache: HashMap<(Kernel, Option<GgmlType>), wgpu::ComputePipeline>,
}

impl Pipelines {
    pub fn get(&mut self, device: &wgpu::Device, kernel: Kernel, ty: Option<GgmlType>) -> &wgpu::ComputePipeline {
        let ty = if kernel.reads_weights() { ty } else { None };
        self.cache.entry((kernel, ty)).or_insert_with(|| {
            let label = format!("{kernel:?}{}", ty.map(|t| format!("/{}", t.name())).unwrap_or_default());
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(assemble(kernel, ty).into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        })
    }
}
