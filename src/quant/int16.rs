//! Integer dot products of quantized rows with activations quantized to int16: the wasm CPU
//! path's decode kernels (`i32x4.dot_i16x8_s` does 8 multiply-adds per instruction, where
//! wasm's f32 SIMD, without FMA, does 4 in two).
//!
//! Each block of 32 activations is stored as 32 `i16` with one f32 scale `s = max|x| / 32767`,
//! plus the block's exact f32 sum (for the formats with a minimum). A weight block with
//! integer quants `q`, scale `d` and minimum `m` then contributes
//! `d · s · Σ q·xq + m · Σ x`, the integer sum exact. Rounding the activations to 16 bits
//! moves each by at most `s / 2`, a relative 1.5e-5 of the block's largest: logits move by
//! ~1e-5, three orders of magnitude inside the oracle's bounds (llama.cpp rounds them to 8
//! bits).
//!
//! One algorithm, two instruction sets: on wasm with `simd128` the 32-element integer dot runs
//! on `i32x4.dot_i16x8_s`; elsewhere (and in the tests) plain Rust computes the same four
//! exact i32 lane sums, and everything after them is the same f32 arithmetic in the same
//! order, so both give bit-identical results.


use super::blocks::{f16_at, u32_at};
use super::GgmlType;

/// Activations per scale: the block length of the formats with an integer kernel.
pub const QBLOCK: usize = 32;

/// Activations quantized for [`dot_row`]; reused across calls to avoid reallocating.
#[derive(Default)]
pub struct QuantizedActs {
    q: Vec<i16>,
    scale: Vec<f32>,
    sum: Vec<f32>,
}

impl QuantizedActs {
    /// Quantizes `x`, whose length must be a multiple of [`QBLOCK`].
    pub fn quantize(&mut self, x: &[f32]) {
        assert!(
            x.len().is_multiple_of(QBLOCK),
            "int16 activations: length not a multiple of {QBLOCK}"
        );
        let blocks = x.len() / QBLOCK;
        self.q.resize(x.len(), 0);
        self.scale.resize(blocks, 0.0);
        self.sum.resize(blocks, 0.0);
        for (b, (xs, qs)) in x
            .chunks_exact(QBLOCK)
            .zip(self.q.chunks_exact_mut(QBLOCK))
            .enumerate()
        {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let inv = if amax > 0.0 { 32767.0 / amax } else { 0.0 };
            for (q, &v) in qs.iter_mut().zip(xs) {
                *q = (v * inv).round().clamp(-32767.0, 32767.0) as i16;
            }
            self.scale[b] = amax / 32767.0;
            self.sum[b] = xs.iter().sum();
        }
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

/// Whether `ty` has an integer kernel.
pub fn supports(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 | GgmlType::Q4_K | GgmlType::Q6_K
    )
}

/// Dot product of one quantized row with the quantized activations. Panics on a format without
/// an integer kernel (see [`supports`]) or a size mismatch.
pub fn dot_row(ty: GgmlType, bytes: &[u8], x: &QuantizedActs) -> f32 {
    match ty {
        GgmlType::Q4_K => dot_k::<144>(bytes, x, q4_k_sub),
        GgmlType::Q6_K => dot_k::<210>(bytes, x, q6_k_sub),
        GgmlType::Q4_0 => dot::<18>(bytes, x, |b| (f16_at(b, 0), 0.0, nibbles(&b[2..18], 0, 8))),
        GgmlType::Q4_1 => dot::<20>(bytes, x, |b| {
            (f16_at(b, 0), f16_at(b, 2), nibbles(&b[4..20], 0, 0))
        }),
        GgmlType::Q5_0 => dot::<22>(bytes, x, |b| {
            (f16_at(b, 0), 0.0, nibbles(&b[6..22], u32_at(b, 2), 16))
        }),
        GgmlType::Q5_1 => dot::<24>(bytes, x, |b| {
            (
                f16_at(b, 0),
                f16_at(b, 2),
                nibbles(&b[8..24], u32_at(b, 4), 0),
            )
        }),
        GgmlType::Q8_0 => dot::<34>(bytes, x, |b| {
            (
                f16_at(b, 0),
                0.0,
                std::array::from_fn(|i| b[2 + i] as i8 as i16),
            )
        }),
        _ => panic!("int16 dot: {} has no integer kernel", ty.name()),
    }
}

/// The shared loop: `decode` gives a block's scale, minimum and integer quants.
#[inline(always)]
fn dot<const BYTES: usize>(
    bytes: &[u8],
    x: &QuantizedActs,
    decode: impl Fn(&[u8]) -> (f32, f32, [i16; 32]),
) -> f32 {
    assert!(
        bytes.len().is_multiple_of(BYTES) && bytes.len() / BYTES * QBLOCK == x.len(),
        "int16 dot: size mismatch"
    );
    let mut acc = lanes::ZERO;
    let mut min_acc = 0f32;
    for (b, block) in bytes.chunks_exact(BYTES).enumerate() {
        let (d, m, q) = decode(block);
        let xs: &[i16; 32] = x.q[b * QBLOCK..(b + 1) * QBLOCK].try_into().unwrap();
        acc = lanes::madd(acc, lanes::dot_i16x32(&q, xs), d * x.scale[b]);
        min_acc += m * x.sum[b];
    }
    lanes::sum(acc) + min_acc
}

/// The K-quants' loop over 256-element super-blocks: `decode(block, j)` gives activation block
/// `j`'s 32 integer quants, the scales of its two halves (`d · sc`, equal where a sub-block
/// has 32 elements) and the term per unit of activation (`−dmin · m`, or 0).
#[inline(always)]
fn dot_k<const BYTES: usize>(bytes: &[u8], x: &QuantizedActs, decode: impl Fn(&[u8], usize) -> ([f32; 2], f32, [i16; 32])) -> f32 {
    assert!(bytes.len().is_multiple_of(BYTES) && bytes.len() / BYTES * 256 == x.len(), "int16 dot: size mismatch");
    let mut acc = lanes::ZERO;
    let mut min_acc = 0f32;
    for (sb, block) in bytes.chunks_exact(BYTES).enumerate() {
        for j in 0..8 {
            let b = sb * 8 + j;
            let ([da, db], m, q) = decode(block, j);
            let xs = &x.q[b * QBLOCK..(b + 1) * QBLOCK];
            let (qa, qb) = q.split_at(16);
            acc = lanes::madd(acc, lanes::dot_i16x16(qa.try_into().unwrap(), xs[..16].try_into().unwrap()), da * x.scale[b]);
            acc = lanes::madd(acc, lanes::dot_i16x16(qb.try_into().unwrap(), xs[16..].try_into().unwrap()), db * x.scale[b]);
            min_acc += m * x.sum[b];
        }
    }
    lanes::sum(acc) + min_acc
}

/// Q4_K (see `blocks::kquants`): sub-block `j` of 32 is the low (even `j`) or high nibbles of
/// bytes `32·(j/2)..` of `qs`, with 6-bit scale and minimum.
#[inline(always)]
fn q4_k_sub(block: &[u8], j: usize) -> ([f32; 2], f32, [i16; 32]) {
    let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
    let (sc, m) = crate::quant::blocks::kquants::scale_min_k4(&block[4..16], j);
    let bytes: &[u8; 32] = block[16 + 32 * (j / 2)..][..32].try_into().unwrap();
    let shift = 4 * (j % 2);
    let dl = d * sc as f32;
    // The minimum is subtracted: `d·sc·q − dmin·m`.
    ([dl, dl], -(dmin * m as f32), std::array::from_fn(|i| ((bytes[i] >> shift) & 0x0F) as i16))
}

/// Q6_K (see `blocks::kquants`): elements `32·j..` are 4 low bits from `ql` and 2 high bits
/// from `qh`, less 32, in two sub-blocks of 16 with signed 8-bit scales.
#[inline(always)]
fn q6_k_sub(block: &[u8], j: usize) -> ([f32; 2], f32, [i16; 32]) {
    let (ql, qh, scales) = (&block[..128], &block[128..192], &block[192..208]);
    let d = f16_at(block, 208);
    let (half, quarter) = (j / 4, j % 4);
    let low: &[u8; 32] = ql[64 * half + 32 * (quarter % 2)..][..32].try_into().unwrap();
    let high: &[u8; 32] = qh[32 * half..][..32].try_into().unwrap();
    let (ls, hs) = (4 * (quarter / 2), 2 * quarter);
    let q = std::array::from_fn(|i| (((low[i] >> ls) & 0x0F) | (((high[i] >> hs) & 3) << 4)) as i16 - 32);
    ([d * (scales[2 * j] as i8) as f32, d * (scales[2 * j + 1] as i8) as f32], 0.0, q)
}

/// Four i32 / f32 lanes, as `i32x4.dot_i16x8_s` produces them: lane `l` of a 32-element dot
/// sums the products of elements `8v + 2l` and `8v + 2l + 1` (exact: |q| ≤ 128,
/// |xq| ≤ 32767). Each lane then adds `lane · ds` to its f32 accumulator (no fused multiply-add
/// on either side), and the four are summed as `(a0 + a1) + (a2 + a3)`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod lanes {
    pub type F32x4 = [f32; 4];
    pub const ZERO: F32x4 = [0.0; 4];

    #[inline(always)]
    pub fn dot_i16x16(q: &[i16; 16], x: &[i16; 16]) -> [i32; 4] {
        let mut lanes = [0i32; 4];
        for v in 0..2 {
            for (l, lane) in lanes.iter_mut().enumerate() {
                let i = 8 * v + 2 * l;
                *lane += q[i] as i32 * x[i] as i32 + q[i + 1] as i32 * x[i + 1] as i32;
            }
        }
        lanes
    }

    #[inline(always)]
    pub fn dot_i16x32(q: &[i16; 32], x: &[i16; 32]) -> [i32; 4] {
        let half = |a: &[i16; 32], h: usize| -> [i16; 16] { a[16 * h..16 * h + 16].try_into().unwrap() };
        let (a, b) = (dot_i16x16(&half(q, 0), &half(x, 0)), dot_i16x16(&half(q, 1), &half(x, 1)));
        std::array::from_fn(|l| a[l] + b[l])
    }

    #[inline(always)]
    pub fn madd(mut acc: F32x4, lanes: [i32; 4], ds: f32) -> F32x4 {
        for l in 0..4 {
            acc[l] += lanes[l] as f32 * ds;
        }
        acc
    }

    #[inline(always)]
    pub fn sum(a: F32x4) -> f32 {
        (a[0] + a[1]) + (a[2] + a[3])
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use std::arch::wasm32::*;

    pub type F32x4 = v128;
    pub const ZERO: F32x4 = f32x4(0.0, 0.0, 0.0, 0.0);

    #[inline(always)]
    pub fn dot_i16x16(q: &[i16; 16], x: &[i16; 16]) -> v128 {
        // SAFETY: each load reads 8 i16 (16 bytes) inside a 16-element array.
        let ld = |a: &[i16; 16], v: usize| unsafe { v128_load(a.as_ptr().add(8 * v) as *const v128) };
        i32x4_add(i32x4_dot_i16x8(ld(q, 0), ld(x, 0)), i32x4_dot_i16x8(ld(q, 1), ld(x, 1)))
    }

    #[inline(always)]
    pub fn dot_i16x32(q: &[i16; 32], x: &[i16; 32]) -> v128 {
        // SAFETY: each load reads 8 i16 (16 bytes) inside a 32-element array.
        let ld =
            |a: &[i16; 32], v: usize| unsafe { v128_load(a.as_ptr().add(8 * v) as *const v128) };
        let mut s = i32x4_dot_i16x8(ld(q, 0), ld(x, 0));
        for v in 1..4 {
            s = i32x4_add(s, i32x4_dot_i16x8(ld(q, v), ld(x, v)));
        }
        s
    }

    #[inline(always)]
    pub fn madd(acc: F32x4, lanes: v128, ds: f32) -> F32x4 {
        f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(lanes), f32x4_splat(ds)))
    }

    #[inline(always)]
    pub fn sum(a: F32x4) -> f32 {
        (f32x4_extract_lane::<0>(a) + f32x4_extract_lane::<1>(a))
            + (f32x4_extract_lane::<2>(a) + f32x4_extract_lane::<3>(a))
    }
}

/// The 32 quants of a 4/5-bit block (low nibbles first, fifth bits from `qh`), less `offset`.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn nibbles(qs: &[u8], qh: u32, offset: i16) -> [i16; 32] {
    let qs: &[u8; 16] = qs.try_into().unwrap();
    let mut q = [0i16; 32];
    for j in 0..16 {
        q[j] = ((qs[j] & 0x0F) | (((qh >> j) as u8 & 1) << 4)) as i16 - offset;
        q[j + 16] = ((qs[j] >> 4) | (((qh >> (j + 16)) as u8 & 1) << 4)) as i16 - offset;
    }
    q
}

/// [`nibbles`] in wasm SIMD: wasm has no per-lane shifts, so the fifth bits are spread by
/// broadcasting each byte of `qh` to 8 lanes and testing one bit per lane.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn nibbles(qs: &[u8], qh: u32, offset: i16) -> [i16; 32] {
    use std::arch::wasm32::*;
    let qs: &[u8; 16] = qs.try_into().unwrap();
    // SAFETY: `qs` is 16 bytes; wasm loads need no alignment.
    let v = unsafe { v128_load(qs.as_ptr() as *const v128) };
    let (lo, hi) = (v128_and(v, u8x16_splat(0x0F)), u8x16_shr(v, 4));
    let h = u32x4_splat(qh);
    let bits = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let fifth = |sel: v128| v128_and(u8x16_ne(v128_and(i8x16_swizzle(h, sel), bits), u8x16_splat(0)), u8x16_splat(0x10));
    let lo = v128_or(lo, fifth(u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
    let hi = v128_or(hi, fifth(u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)));
    let off = i16x8_splat(offset);
    let mut q = [0i16; 32];
    for (i, w) in [
        u16x8_extend_low_u8x16(lo),
        u16x8_extend_high_u8x16(lo),
        u16x8_extend_low_u8x16(hi),
        u16x8_extend_high_u8x16(hi),
    ]
    .into_iter()
    .enumerate()
    {
        // SAFETY: 8 i16 at 8·i inside the 32-element array.
        unsafe { v128_store(q.as_mut_ptr().add(8 * i) as *mut v128, i16x8_sub(w, off)) };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    /// A deterministic pseudo-random stream (no RNG crate needed for fixed test data).
    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    fn random_row(ty: GgmlType, blocks: usize, seed: &mut u64) -> Vec<u8> {
        let bb = ty.block_bytes();
        let mut out = vec![0u8; blocks * bb];
        for block in out.chunks_exact_mut(bb) {
            for b in block.iter_mut() {
                *b = lcg(seed) as u8;
            }
            // Sane scales: d in ±[0.001, 0.1), m (and Q4_K's dmin) in ±0.5.
            let d = f16::from_f32((lcg(seed) % 1000) as f32 / 10_000.0 + 0.001);
            let at = if ty == GgmlType::Q6_K { 208 } else { 0 };
            block[at..at + 2].copy_from_slice(&d.to_le_bytes());
            if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K) {
                let m = f16::from_f32((lcg(seed) % 1000) as f32 / 1000.0 - 0.5);
                block[2..4].copy_from_slice(&m.to_le_bytes());
            }
        }
        out
    }

    /// Against the f32 kernels, per format, with activations of varied magnitude per block
    /// (zero blocks and a large outlier included): the relative error stays at the 16-bit
    /// rounding level.
    #[test]
    fn matches_the_f32_dot_within_int16_rounding() {
        let mut seed = 7;
        let k = 32 * 24;
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
        ] {
            assert!(supports(ty));
            for trial in 0..20 {
                let x: Vec<f32> = (0..k)
                    .map(|i| {
                        let block = i / 32;
                        let mag = [0.0, 1e-3, 1.0, 30.0][block % 4];
                        let v = (lcg(&mut seed) as f32 / u32::MAX as f32 - 0.5) * mag;
                        if i == 100 + trial {
                            400.0
                        } else {
                            v
                        }
                    })
                    .collect();
                let row = random_row(ty, k / ty.block_len(), &mut seed);
                let mut xq = QuantizedActs::default();
                xq.quantize(&x);
                let got = dot_row(ty, &row, &xq);
                let want = crate::quant::blocks::dot_row_scalar(ty, &row, &x);
                // Bound: Σ |w_i| · s_i / 2 over the row (the activation rounding), plus f32 noise.
                let mut w = vec![0f32; k];
                crate::quant::dequantize_row(ty, &row, &mut w);
                let bound: f32 = w
                    .chunks(32)
                    .zip(x.chunks(32))
                    .map(|(wb, xb)| {
                        let s = xb.iter().fold(0f32, |a, v| a.max(v.abs())) / 32767.0;
                        wb.iter().map(|v| v.abs()).sum::<f32>() * s / 2.0
                    })
                    .sum::<f32>()
                    + 1e-5 * w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum::<f32>();
                assert!(
                    (got - want).abs() <= bound,
                    "{ty:?} trial {trial}: {got} vs {want} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn zero_activations_give_the_minimum_term_only() {
        let mut seed = 3;
        let row = random_row(GgmlType::Q4_1, 2, &mut seed);
        let mut xq = QuantizedActs::default();
        xq.quantize(&[0.0; 64]);
        assert_eq!(dot_row(GgmlType::Q4_1, &row, &xq), 0.0);
    }
}
