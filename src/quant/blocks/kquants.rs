//! ggml's K-quants: 256-element super-blocks split into sub-blocks of 16 or 32 elements, each
//! with its own small integer scale (and minimum) under one f16 super-scale.
//!
//! | format | bytes | layout (in order) | element |
//! | --- | --- | --- | --- |
//! | Q2_K | 84 | `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16` | `(d·sc) · q − (dmin·m)`, q 2-bit, 16 sub-blocks of 16 |
//! | Q3_K | 110 | `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16` | `(d·sc) · (q − 4·!h)`, sc 6-bit − 32, 16 of 16 |
//! | Q4_K | 144 | `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]` | `(d·sc) · q − (dmin·m)`, 6-bit sc and m, 8 of 32 |
//! | Q5_K | 176 | `d, dmin, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]` | as Q4_K with a fifth bit from `qh` |
//! | Q6_K | 210 | `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16` | `(d·sc) · (q − 32)`, 16 of 16 |
//!
//! Each `dequantize_block` computes exactly what gguf-py's numpy code computes, operation by
//! operation in f32 (`d · sc` rounded first, then `· q`, then `− min`, never fused), which is
//! also what ggml's `dequantize_row_*` computes: the results are bit-identical.
//!
//! The element order inside a super-block is written below as index arithmetic: element `e`
//! of Q4_K comes from byte `32·(e/64) + e%32` of `qs`, low nibble when `(e/32)` is even.

// The block types carry ggml's names (Q4_K, IQ4_NL).
#![allow(non_camel_case_types)]

use super::{f16_at, BlockFormat};
use crate::quant::GgmlType;

/// Q4_K/Q5_K sub-block `j`'s 6-bit scale and minimum from the 12 packed bytes (ggml's
/// `get_scale_min_k4`): `j < 4` use the low 6 bits of bytes `j` and `j + 4`; `j >= 4` take
/// their low 4 bits from byte `j + 4` and their top 2 bits from bytes `j − 4` and `j`.
#[inline(always)]
pub(crate) fn scale_min_k4(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Q3_K sub-block `k`'s scale (−32..=31) from its 12 packed bytes: low 4 bits from byte
/// `k % 8` (high nibble for `k >= 8`), high 2 bits from byte `8 + k % 4`, bits `2·(k/4)`.
#[inline(always)]
pub(crate) fn scale_q3k(s: &[u8], k: usize) -> i32 {
    let lo = (s[k % 8] >> (4 * (k / 8))) & 0x0F;
    let hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    (lo | (hi << 4)) as i32 - 32
}

/// 256 × 2-bit, 16 scales and minimums of 4 bits.
pub struct Q2_K;
/// 256 × 3-bit (2 low bits + a high-bit mask), 16 scales of 6 bits.
pub struct Q3_K;
/// 256 × 4-bit, 8 scales and minimums of 6 bits.
pub struct Q4_K;
/// 256 × 5-bit, 8 scales and minimums of 6 bits.
pub struct Q5_K;
/// 256 × 6-bit, 16 signed 8-bit scales.
pub struct Q6_K;

impl BlockFormat for Q2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 84;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (scales, qs) = (&block[..16], &block[16..80]);
        let (d, dmin) = (f16_at(block, 80), f16_at(block, 82));
        let out: &mut [f32; 256] = out.try_into().unwrap();
        for (e, y) in out.iter_mut().enumerate() {
            let sc = scales[e / 16];
            let (dl, ml) = (d * (sc & 0x0F) as f32, dmin * (sc >> 4) as f32);
            let q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
            *y = dl * q as f32 - ml;
        }
    }
}

impl BlockFormat for Q3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 110;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (hmask, qs, scales) = (&block[..32], &block[32..96], &block[96..108]);
        let d = f16_at(block, 108);
        let out: &mut [f32; 256] = out.try_into().unwrap();
        for (e, y) in out.iter_mut().enumerate() {
            let dl = d * scale_q3k(scales, e / 16) as f32;
            let low = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
            // A clear high bit subtracts 4 (ggml stores the bit inverted).
            let high = (hmask[e % 32] >> (e / 32)) & 1;
            *y = dl * (low as i32 - 4 * (1 - high as i32)) as f32;
        }
    }
}

impl BlockFormat for Q4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 144;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
        let (scales, qs) = (&block[4..16], &block[16..144]);
        for (j, sub) in out[..256].chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(scales, j);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            for (y, &b) in sub.iter_mut().zip(bytes) {
                *y = dl * ((b >> (4 * (j % 2))) & 0x0F) as f32 - ml;
            }
        }
    }
}

impl BlockFormat for Q5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 176;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
        let (scales, qh, qs) = (&block[4..16], &block[16..48], &block[48..176]);
        for (j, sub) in out[..256].chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(scales, j);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            for ((y, &b), &h) in sub.iter_mut().zip(bytes).zip(qh) {
                let q = ((b >> (4 * (j % 2))) & 0x0F) | (((h >> j) & 1) << 4);
                *y = dl * q as f32 - ml;
            }
        }
    }
}

impl BlockFormat for Q6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const BLOCK_LEN: usize = 256;
    const BLOCK_BYTES: usize = 210;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (ql, qh, scales) = (&block[..128], &block[128..192], &block[192..208]);
        let d = f16_at(block, 208);
        let out: &mut [f32; 256] = out.try_into().unwrap();
        for (e, y) in out.iter_mut().enumerate() {
            let (half, l) = (e / 128, e % 128);
            let low = (ql[64 * half + l % 64] >> (4 * (l / 64))) & 0x0F;
            let high = (qh[32 * half + l % 32] >> (2 * (l / 32))) & 3;
            let dl = d * (scales[e / 16] as i8) as f32;
            *y = dl * ((low | (high << 4)) as i32 - 32) as f32;
        }
    }
}
