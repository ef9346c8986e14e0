//! Kernel sources and pipelines. Each op family is one `.wgsl` file in `shaders/`; the only
//! preprocessing is concatenation: `common.wgsl`, then (for kernels reading weights) the byte
//! helpers `quant/bytes.wgsl` and the quant format's file from `shaders/quant/` (after the
//! helpers it shares with its family: `k_scale_min.wgsl`, `iq4_levels.wgsl`), then (for the two matmul kernels) `matmul_io.wgsl`, then
//! the kernel (the attention kernels: `attention.wgsl`, then their entry point's file).

use std::collections::HashMap;

use crate::quant::GgmlType;

/// A kernel file as `build.rs` copied it (without comments in the browser build).
macro_rules! shader {
    ($file:literal) => {
        include_str!(concat!(env!("OUT_DIR"), "/shaders/", $file))
    };
}

const COMMON: &str = shader!("common.wgsl");
const MATMUL_IO: &str = shader!("matmul_io.wgsl");
const QUANT_BYTES: &str = shader!("quant/bytes.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Embed,
    MatMul,
    /// The prefill form of `MatMul`: several tokens per workgroup.
    MatMulTiled,
    /// RMSNorm or LayerNorm.
    Norm,
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
    /// The kernel's files, in order.
    fn source(self) -> &'static [&'static str] {
        match self {
            Kernel::Embed => &[shader!("embed.wgsl")],
            Kernel::MatMul => &[shader!("matmul.wgsl")],
            Kernel::MatMulTiled => &[shader!("matmul_tiled.wgsl")],
            Kernel::Norm => &[shader!("norm.wgsl")],
            Kernel::Rope => &[shader!("rope.wgsl")],
            Kernel::KvStore => &[shader!("kv_store.wgsl")],
            Kernel::Attention => &[shader!("attention.wgsl"), shader!("attention_out.wgsl")],
            Kernel::AttentionProj => &[shader!("attention.wgsl"), shader!("attention_proj.wgsl")],
            Kernel::Glu => &[shader!("glu.wgsl")],
            Kernel::HeadNorm => &[shader!("head_norm.wgsl")],
            Kernel::Add => &[shader!("add.wgsl")],
            Kernel::Argmax => &[shader!("argmax.wgsl")],
            Kernel::RopeKv => &[shader!("rope_kv.wgsl")],
            Kernel::TopK => &[shader!("top_k.wgsl")],
            Kernel::Draw => &[shader!("draw.wgsl")],
        }
    }

    fn reads_weights(self) -> bool {
        matches!(self, Kernel::Embed | Kernel::MatMul | Kernel::MatMulTiled | Kernel::AttentionProj)
    }
}

/// The block decoder of a weight format, after the helpers it shares with related formats.
fn quant_sources(ty: GgmlType) -> &'static [&'static str] {
    const K_SCALE_MIN: &str = shader!("quant/k_scale_min.wgsl");
    const IQ4_LEVELS: &str = shader!("quant/iq4_levels.wgsl");
    match ty {
        GgmlType::F32 => &[shader!("quant/f32.wgsl")],
        GgmlType::F16 => &[shader!("quant/f16.wgsl")],
        GgmlType::BF16 => &[shader!("quant/bf16.wgsl")],
        GgmlType::Q4_0 => &[shader!("quant/q4_0.wgsl")],
        GgmlType::Q4_1 => &[shader!("quant/q4_1.wgsl")],
        GgmlType::Q5_0 => &[shader!("quant/q5_0.wgsl")],
        GgmlType::Q5_1 => &[shader!("quant/q5_1.wgsl")],
        GgmlType::Q8_0 => &[shader!("quant/q8_0.wgsl")],
        GgmlType::Q2_K => &[shader!("quant/q2_k.wgsl")],
        GgmlType::Q3_K => &[shader!("quant/q3_k.wgsl")],
        GgmlType::Q4_K => &[K_SCALE_MIN, shader!("quant/q4_k.wgsl")],
        GgmlType::Q5_K => &[K_SCALE_MIN, shader!("quant/q5_k.wgsl")],
        GgmlType::Q6_K => &[shader!("quant/q6_k.wgsl")],
        GgmlType::IQ4_NL => &[IQ4_LEVELS, shader!("quant/iq4_nl.wgsl")],
        GgmlType::IQ4_XS => &[IQ4_LEVELS, shader!("quant/iq4_xs.wgsl")],
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
    for part in kernel.source() {
        src.push_str(part);
    }
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
