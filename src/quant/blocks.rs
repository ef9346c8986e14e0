//! ggml's block formats: one unit struct implementing [`BlockFormat`] per [`GgmlType`], and the
//! row-level entry points [`dequantize_row`], [`dot_row`] and [`dot_f32`].
//!
//! Layouts follow ggml exactly (all fields little-endian, scales are IEEE half floats):
//!
//! | format | block | bytes | layout | element `i` |
//! | --- | --- | --- | --- | --- |
//! | F32 / F16 / BF16 | 1 | 4 / 2 / 2 | the value | as stored |
//! | Q4_0 | 32 | 18 | `d: f16, qs: [u8; 16]` | `d * (q_i - 8)` |
//! | Q4_1 | 32 | 20 | `d: f16, m: f16, qs: [u8; 16]` | `d * q_i + m` |
//! | Q5_0 | 32 | 22 | `d: f16, qh: u32, qs: [u8; 16]` | `d * (q_i - 16)` |
//! | Q5_1 | 32 | 24 | `d: f16, m: f16, qh: u32, qs: [u8; 16]` | `d * q_i + m` |
//! | Q8_0 | 32 | 34 | `d: f16, qs: [i8; 32]` | `d * q_i` |
//!
//! In the 4- and 5-bit formats, the low nibble of `qs[j]` is element `j` and the high nibble
//! element `j + 16`; in the 5-bit formats bit `i` of `qh` is the fifth (high) bit of element `i`.
//! The K-quants (Q2_K … Q6_K) are in [`kquants`], IQ4_NL and IQ4_XS in [`iq4`].
//!
//! Adding a format means one more [`BlockFormat`] impl, one more arm in the `with_format!`
//! dispatch below, and one in `simd::avx2::dot_row` (a hand-written decoder, or the portable
//! kernel); callers of the row functions do not change. Blocks may be up to
//! [`MAX_BLOCK_LEN`] elements long.
//!
//! [`dot_row`] and [`dot_f32`] pick hand-written AVX2 + FMA kernels at run time on x86_64 CPUs
//! that have them (see `simd`); everywhere else, and in [`dot_row_scalar`] /
//! [`dot_f32_scalar`], portable code that LLVM vectorises for the build's target.

use half::f16;

use super::GgmlType;

pub mod iq4;
pub mod kquants;
mod simd;

pub use iq4::{IQ4_NL, IQ4_XS};
pub use kquants::{Q2_K, Q3_K, Q4_K, Q5_K, Q6_K};

/// The longest block any format may have (a K-quant super-block); the kernels unpack a block
/// into a stack buffer of this many `f32`.
pub const MAX_BLOCK_LEN: usize = 256;

/// One ggml element format, described by its block geometry and how to decode a block.
pub trait BlockFormat {
    const TYPE: GgmlType;
    /// Elements per block.
    const BLOCK_LEN: usize;
    /// Bytes per block.
    const BLOCK_BYTES: usize;

    /// Decodes one block: `block` is `BLOCK_BYTES` long, `out` is `BLOCK_LEN` long.
    ///
    /// Implementations are `#[inline(always)]` so that the row kernels, which call this once
    /// per block, get it inlined into their SIMD-compiled copies.
    fn dequantize_block(block: &[u8], out: &mut [f32]);

    /// Dot product of one block with `x` (`BLOCK_LEN` values), accumulated in f32.
    fn dot_block(block: &[u8], x: &[f32]) -> f32 {
        let mut buf = [0f32; MAX_BLOCK_LEN];
        let buf = &mut buf[..Self::BLOCK_LEN];
        Self::dequantize_block(block, buf);
        simd::dot_f32_portable(buf, x)
    }
}

/// Reads the little-endian f16 at `block[at..at + 2]` as f32 (exact).
///
/// `to_f32_const` is `half`'s portable conversion. Its `to_f32` would pick F16C at run time,
/// but through an out-of-line call, which forces the kernels to spill their accumulators.
#[inline(always)]
pub(crate) fn f16_at(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32_const()
}

/// Reads the little-endian u32 at `block[at..at + 4]`.
#[inline(always)]
pub(crate) fn u32_at(block: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
}

/// Splits the 16 nibble bytes of a 4/5-bit block into 32 quant values (low nibbles first),
/// adding the fifth bits from `qh` (0 for the 4-bit formats).
#[inline(always)]
fn unpack_nibbles(qs: &[u8], qh: u32) -> [u8; 32] {
    let qs: &[u8; 16] = qs.try_into().unwrap();
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0x0F) | (((qh >> j) as u8 & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (((qh >> (j + 16)) as u8 & 1) << 4);
    }
    q
}

/// `out[i] = d * (q[i] - offset)`, the symmetric formats (Q4_0, Q5_0).
#[inline(always)]
fn scale_offset(q: &[u8; 32], d: f32, offset: i32, out: &mut [f32]) {
    let out: &mut [f32; 32] = out.try_into().unwrap();
    for i in 0..32 {
        out[i] = d * (q[i] as i32 - offset) as f32;
    }
}

/// `out[i] = d * q[i] + m`, the formats with a minimum (Q4_1, Q5_1). `d * q` is exact in f32
/// (an 11-bit significand times a 5-bit integer), so this rounds once, fused or not.
#[inline(always)]
fn scale_min(q: &[u8; 32], d: f32, m: f32, out: &mut [f32]) {
    let out: &mut [f32; 32] = out.try_into().unwrap();
    for i in 0..32 {
        out[i] = d * q[i] as f32 + m;
    }
}

/// Plain little-endian IEEE single precision.
pub struct F32;
/// IEEE half precision.
pub struct F16;
/// bfloat16: the upper half of an f32.
pub struct BF16;
/// 32 × 4-bit, one scale.
pub struct Q4_0;
/// 32 × 4-bit, scale and minimum.
pub struct Q4_1;
/// 32 × 5-bit, one scale.
pub struct Q5_0;
/// 32 × 5-bit, scale and minimum.
pub struct Q5_1;
/// 32 × 8-bit, one scale.
pub struct Q8_0;

impl BlockFormat for F32 {
    const TYPE: GgmlType = GgmlType::F32;
    const BLOCK_LEN: usize = 1;
    const BLOCK_BYTES: usize = 4;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f32::from_le_bytes(block[..4].try_into().unwrap());
    }
}

impl BlockFormat for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLOCK_LEN: usize = 1;
    const BLOCK_BYTES: usize = 2;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f16_at(block, 0);
    }
}

impl BlockFormat for BF16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const BLOCK_LEN: usize = 1;
    const BLOCK_BYTES: usize = 2;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f32::from_bits((u16::from_le_bytes([block[0], block[1]]) as u32) << 16);
    }
}

impl BlockFormat for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 18;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        scale_offset(&unpack_nibbles(&block[2..18], 0), f16_at(block, 0), 8, out);
    }
}

impl BlockFormat for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 20;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (d, m) = (f16_at(block, 0), f16_at(block, 2));
        scale_min(&unpack_nibbles(&block[4..20], 0), d, m, out);
    }
}

impl BlockFormat for Q5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 22;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let q = unpack_nibbles(&block[6..22], u32_at(block, 2));
        scale_offset(&q, f16_at(block, 0), 16, out);
    }
}

impl BlockFormat for Q5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 24;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (d, m) = (f16_at(block, 0), f16_at(block, 2));
        scale_min(&unpack_nibbles(&block[8..24], u32_at(block, 4)), d, m, out);
    }
}

impl BlockFormat for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLOCK_LEN: usize = 32;
    const BLOCK_BYTES: usize = 34;
    #[inline(always)]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let block = &block[..Self::BLOCK_BYTES];
        let (d, qs) = (f16_at(block, 0), &block[2..34]);
        let out: &mut [f32; 32] = out.try_into().unwrap();
        for i in 0..32 {
            out[i] = d * (qs[i] as i8) as f32;
        }
    }
}

/// Runs `$body` with the type alias `$B` bound to the [`BlockFormat`] of `$ty`.
#[rustfmt::skip]
macro_rules! with_format {
    ($ty:expr, $B:ident => $body:expr) => {
        match $ty {
            GgmlType::F32 => { type $B = F32; $body }
            GgmlType::F16 => { type $B = F16; $body }
            GgmlType::BF16 => { type $B = BF16; $body }
            GgmlType::Q4_0 => { type $B = Q4_0; $body }
            GgmlType::Q4_1 => { type $B = Q4_1; $body }
            GgmlType::Q5_0 => { type $B = Q5_0; $body }
            GgmlType::Q5_1 => { type $B = Q5_1; $body }
            GgmlType::Q8_0 => { type $B = Q8_0; $body }
            GgmlType::Q2_K => { type $B = Q2_K; $body }
            GgmlType::Q3_K => { type $B = Q3_K; $body }
            GgmlType::Q4_K => { type $B = Q4_K; $body }
            GgmlType::Q5_K => { type $B = Q5_K; $body }
            GgmlType::Q6_K => { type $B = Q6_K; $body }
            GgmlType::IQ4_NL => { type $B = IQ4_NL; $body }
            GgmlType::IQ4_XS => { type $B = IQ4_XS; $body }
        }
    };
}

fn dequantize_row_with<B: BlockFormat>(bytes: &[u8], out: &mut [f32]) {
    assert!(
        out.len().is_multiple_of(B::BLOCK_LEN),
        "dequantize_row: partial block"
    );
    for (block, o) in bytes
        .chunks_exact(B::BLOCK_BYTES)
        .zip(out.chunks_exact_mut(B::BLOCK_LEN))
    {
        B::dequantize_block(block, o);
    }
}

/// Decodes `out.len()` elements of type `ty` from `bytes`, which must hold exactly that many
/// (whole blocks; callers validate sizes, this only checks them in debug builds).
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(Some(bytes.len() as u64), ty.bytes_for(out.len() as u64));
    with_format!(ty, B => dequantize_row_with::<B>(bytes, out))
}

/// Dot product of one row of type `ty` (`bytes`, exactly `x.len()` elements) with `x`,
/// accumulated in f32 without materialising the dequantized row. Uses the AVX2 + FMA kernels
/// when the CPU has them.
pub fn dot_row(ty: GgmlType, bytes: &[u8], x: &[f32]) -> f32 {
    debug_assert_eq!(Some(bytes.len() as u64), ty.bytes_for(x.len() as u64));
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports avx2, fma and f16c (checked just above).
        return unsafe { simd::avx2::dot_row(ty, bytes, x) };
    }
    dot_row_scalar(ty, bytes, x)
}

/// [`dot_row`] without run-time SIMD dispatch: the portable kernel, compiled for the build's
/// baseline target (LLVM still vectorises it with e.g. SSE2). For tests and benchmarks.
#[doc(hidden)]
pub fn dot_row_scalar(ty: GgmlType, bytes: &[u8], x: &[f32]) -> f32 {
    debug_assert_eq!(Some(bytes.len() as u64), ty.bytes_for(x.len() as u64));
    with_format!(ty, B => simd::dot_row_portable::<B>(bytes, x))
}

/// Dot product of two equally long f32 slices, accumulated in f32 (AVX2 + FMA when available).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports avx2, fma and f16c (checked just above).
        return unsafe { simd::avx2::dot_f32(a, b) };
    }
    dot_f32_scalar(a, b)
}

/// `y += a · x` for equally long slices (AVX2 + FMA when available): the attention's sum of
/// value rows.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports avx2 and fma (checked just above).
        return unsafe { simd::avx2::axpy(a, x, y) };
    }
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// [`dot_f32`] without run-time SIMD dispatch (see [`dot_row_scalar`]).
#[doc(hidden)]
/// Rows of a [`dot_f32_tile`].
pub const TILE_ROWS: usize = 4;
/// Vectors of a [`dot_f32_tile`].
pub const TILE_COLS: usize = 3;

/// All `TILE_ROWS × TILE_COLS` dot products of four rows with three vectors of equal length:
/// the register-blocked inner kernel of batched matmuls (each loaded value feeds 3–4 FMAs).
pub fn dot_f32_tile(rows: [&[f32]; TILE_ROWS], xs: [&[f32]; TILE_COLS]) -> [[f32; TILE_COLS]; TILE_ROWS] {
    let k = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == k) && xs.iter().all(|x| x.len() == k), "tile operands differ in length");
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: the CPU supports avx2 and fma (checked just above); lengths checked above.
        return unsafe { simd::avx2::dot_f32_tile(rows, xs) };
    }
    rows.map(|r| xs.map(|x| dot_f32(r, x)))
}

#[doc(hidden)]
pub fn dot_f32_scalar(a: &[f32], b: &[f32]) -> f32 {
    simd::dot_f32_portable(a, b)
}
