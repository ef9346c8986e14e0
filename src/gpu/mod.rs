//! The GPU backend: the forward plan as WGSL compute dispatches through wgpu, natively
//! (Vulkan/Metal/DX12) and, compiled to wasm, on WebGPU.
//!
//! Buffers, bind groups and pipelines are built once per backend; a forward call writes the
//! token ids and a 16-byte step record, encodes one compute pass and submits once.

mod backend;
mod context;
pub mod harness;
mod lower;
pub mod params;
mod shaders;
pub mod top_k;
mod weights;

pub use backend::{GpuBackend, DECODE_RUN};
pub use context::GpuContext;
pub use shaders::{assemble, matmul_groups, Kernel};
pub use weights::{GpuTensor, GpuWeights, UPLOAD_PIECE};
