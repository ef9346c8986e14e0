//! How weights sit in GPU memory: ggml blocks padded to whole 32-bit words, so shaders read
//! them as `array<u32>` without unaligned loads. Formats whose header is one f16 scale (Q4_0,
//! Q5_0, Q8_0, IQ4_NL) get two padding bytes after it; those whose f16 scale comes last (Q3_K,
//! Q6_K) get them at the end, which keeps every field at its file offset; the others are
//! already word-sized.

use super::GgmlType;

/// Bytes of one block in the GPU layout (a multiple of 4).
pub fn gpu_block_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::F32 => 4,
        // Two f16/bf16 elements share a word.
        GgmlType::F16 | GgmlType::BF16 => 4,
        GgmlType::Q4_0 => 20,
        GgmlType::Q4_1 => 20,
        GgmlType::Q5_0 => 24,
        GgmlType::Q5_1 => 24,
        GgmlType::Q8_0 => 36,
        GgmlType::IQ4_NL => 20,
        GgmlType::Q3_K => 112,
        GgmlType::Q6_K => 212,
        GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::IQ4_XS => ty.block_bytes(),
    }
}

/// Elements per GPU block (two for f16/bf16 pairs).
pub fn gpu_block_len(ty: GgmlType) -> usize {
    match ty {
        GgmlType::F16 | GgmlType::BF16 => 2,
        _ => ty.block_len(),
    }
}

/// Whether rows of `cols` elements can be laid out (f16/bf16 rows must pair up).
pub fn gpu_supports_cols(ty: GgmlType, cols: usize) -> bool {
    cols.is_multiple_of(gpu_block_len(ty))
}

/// Converts one row-major run of whole GPU blocks from file layout to GPU layout.
pub fn to_gpu_layout(ty: GgmlType, bytes: &[u8]) -> Vec<u8> {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL => {
            let src = ty.block_bytes();
            let mut out = Vec::with_capacity(bytes.len() / src * (src + 2));
            for block in bytes.chunks_exact(src) {
                out.extend_from_slice(&block[..2]);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&block[2..]);
            }
            out
        }
        GgmlType::Q3_K | GgmlType::Q6_K => {
            let src = ty.block_bytes();
            let mut out = Vec::with_capacity(bytes.len() / src * (src + 2));
            for block in bytes.chunks_exact(src) {
                out.extend_from_slice(block);
                out.extend_from_slice(&[0, 0]);
            }
            out
        }
        _ => bytes.to_vec(),
    }
}
