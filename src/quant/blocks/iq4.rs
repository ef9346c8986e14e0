//! The 4-bit non-linear formats: each nibble indexes a fixed table of 16 signed levels
//! ([`IQ4_LEVELS`]) instead of standing for its own value.
//!
//! | format | block | bytes | layout | element |
//! | --- | --- | --- | --- | --- |
//! | IQ4_NL | 32 | 18 | `d: f16, qs: [u8; 16]` | `d · L[q]`; low nibble of `qs[j]` is element `j`, high nibble `j + 16` |
//! | IQ4_XS | 256 | 136 | `d: f16, scales_h: u16, scales_l: [u8; 4], qs: [u8; 128]` | `(d · sc) · L[q]` in 8 sub-blocks of 32, as IQ4_NL; sc 6-bit − 32 |
//!
//! As for the K-quants, `d · sc` is rounded to f32 before it multiplies the level, like gguf-py
//! and ggml.

// The block types carry ggml's names (Q4_K, IQ4_NL).
#![allow(non_camel_case_types)]

use super::{f16_at, BlockFormat};
use crate::quant::GgmlType;

/// ggml's `kvalues_iq4nl`.
pub const IQ4_LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// IQ4_XS sub-block `j`'s scale (−32..=31): 4 low bits from `scales_l`, 2 high bits from `scales_h`.
#[inline(always)]
pub(crate) fn scale_iq4xs(block: &[u8], j: usize) -> i32 {
    let high = u16::from_le_bytes([block[2], block[3]]);
    let lo = (block[4 + j / 2] >> (4 * (j % 2))) & 0x0F;
    let hi = ((high >> (2 * j)) & 3) as u8;
    (lo | (hi << 4)) as i32 - 32
}

/// `out[j] = dl · L[low nibble of qs[j]]`, `out[j + 16] = dl · L[high nibble]`.
#[inline(always)]
fn levels16(qs: &[u8], dl: f32, out: &mut [f32]) {
    let (qs, out): (&[u8; 16], &mut [f32; 32]) = (qs.try_into().unwrap(), out.try_into().unwrap());
    for j in 0..16 {
        out[j] = dl * IQ4_LEVELS[(qs[j] & 0x0F) as usize] as f32;
        out[j + 16] = dl * IQ4_LEVELS[(qs[j] >> 4) as usize] as f32;
    }
}

/// 32 × 4-bit indices into the non-linear levels, one scale.
pub struct IQ4_NL;
/// 256 × 4-bit indices into the non-linear levels, 8 scales of 6 bits.
pub struct IQ4_XS;

impl BlockFormat for IQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 18;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        levels16(&block[2..18], f16_at(block, 0), &mut out[..32]);
    }
}

impl BlockFormat for IQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 136;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let d = f16_at(block, 0);
        for (j, sub) in out[..256].chunks_exact_mut(32).enumerate() {
            let dl = d * scale_iq4xs(block, j) as f32;
            levels16(&block[8 + 16 * j..24 + 16 * j], dl, sub);
        }
    }
}
