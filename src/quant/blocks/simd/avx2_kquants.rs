//! AVX2 group decoders of the 256-element formats (K-quants, IQ4_XS) and IQ4_NL. Group `i` of
//! a super-block is its elements `32·i .. 32·i + 32`; the scales are decoded with the scalar
//! helpers and the element bits with vector shifts, in the same f32 operations as
//! `dequantize_block` (`d · sc` first, then `· q`, then `− min`), so the values are identical.

use super::{widen_i8, Group32};
use crate::quant::blocks::iq4::{scale_iq4xs, IQ4_LEVELS};
use crate::quant::blocks::kquants::{scale_min_k4, scale_q3k};
use crate::quant::blocks::{self as b};
use std::arch::x86_64::*;

/// The little-endian f16 at `g[at..at + 2]`, converted with F16C (exact, like `f16_at`).
#[inline(always)]
unsafe fn f16_at(g: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([g[at], g[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// 32 bytes from `p` widened to i32 lanes (bytes 0..8, 8..16, 16..24, 24..32).
#[inline(always)]
unsafe fn widen32(p: *const u8) -> [__m256i; 4] {
    let mut v = [_mm256_setzero_si256(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        *v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8 * k).cast()));
    }
    v
}

/// `(v >> shift) & mask` per lane.
#[inline(always)]
unsafe fn bits(v: [__m256i; 4], shift: usize, mask: i32) -> [__m256i; 4] {
    let (count, m) = (_mm_cvtsi32_si128(shift as i32), _mm256_set1_epi32(mask));
    let mut out = v;
    for o in out.iter_mut() {
        *o = _mm256_and_si256(_mm256_srl_epi32(*o, count), m);
    }
    out
}

/// `dl[k/2] · q − ml[k/2]` for lanes of 8 (two sub-blocks of 16, each with its own scale),
/// or `dl · q` when `ml` is `None`.
#[inline(always)]
unsafe fn scale16(q: [__m256i; 4], dl: [f32; 2], ml: Option<[f32; 2]>) -> [__m256; 4] {
    let mut v = [_mm256_setzero_ps(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        let prod = _mm256_mul_ps(_mm256_set1_ps(dl[k / 2]), _mm256_cvtepi32_ps(q[k]));
        *v = match ml {
            Some(ml) => _mm256_sub_ps(prod, _mm256_set1_ps(ml[k / 2])),
            None => prod,
        };
    }
    v
}

/// `dl · q − ml` for all 32 lanes (sub-blocks of 32).
#[inline(always)]
unsafe fn scale32(q: [__m256i; 4], dl: f32, ml: f32) -> [__m256; 4] {
    scale16(q, [dl, dl], Some([ml, ml]))
}

impl Group32 for b::Q2_K {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..84];
        let (d, dmin) = (f16_at(g, 80), f16_at(g, 82));
        let (s0, s1) = (g[2 * i], g[2 * i + 1]);
        let dl = [d * (s0 & 0x0F) as f32, d * (s1 & 0x0F) as f32];
        let ml = [dmin * (s0 >> 4) as f32, dmin * (s1 >> 4) as f32];
        let q = bits(widen32(g.as_ptr().add(16 + 32 * (i / 4))), 2 * (i % 4), 3);
        scale16(q, dl, Some(ml))
    }
}

impl Group32 for b::Q3_K {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..110];
        let d = f16_at(g, 108);
        let scales = &g[96..108];
        let dl = [d * scale_q3k(scales, 2 * i) as f32, d * scale_q3k(scales, 2 * i + 1) as f32];
        let low = bits(widen32(g.as_ptr().add(32 + 32 * (i / 4))), 2 * (i % 4), 3);
        let high = bits(widen32(g.as_ptr()), i, 1);
        let mut q = low;
        for k in 0..4 {
            // q = low − 4 + 4·high
            let h4 = _mm256_slli_epi32(high[k], 2);
            q[k] = _mm256_add_epi32(_mm256_sub_epi32(low[k], _mm256_set1_epi32(4)), h4);
        }
        scale16(q, dl, None)
    }
}

impl Group32 for b::Q4_K {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..144];
        let (sc, m) = scale_min_k4(&g[4..16], i);
        let (dl, ml) = (f16_at(g, 0) * sc as f32, f16_at(g, 2) * m as f32);
        let q = bits(widen32(g.as_ptr().add(16 + 32 * (i / 2))), 4 * (i % 2), 0x0F);
        scale32(q, dl, ml)
    }
}

impl Group32 for b::Q5_K {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..176];
        let (sc, m) = scale_min_k4(&g[4..16], i);
        let (dl, ml) = (f16_at(g, 0) * sc as f32, f16_at(g, 2) * m as f32);
        let mut q = bits(widen32(g.as_ptr().add(48 + 32 * (i / 2))), 4 * (i % 2), 0x0F);
        let high = bits(widen32(g.as_ptr().add(16)), i, 1);
        for k in 0..4 {
            q[k] = _mm256_or_si256(q[k], _mm256_slli_epi32(high[k], 4));
        }
        scale32(q, dl, ml)
    }
}

impl Group32 for b::Q6_K {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..210];
        let (half, local) = (i / 4, i % 4);
        let d = f16_at(g, 208);
        let dl = [d * (g[192 + 2 * i] as i8) as f32, d * (g[193 + 2 * i] as i8) as f32];
        // The 32 six-bit values are put together on bytes (one vector op each for all 32;
        // 16-bit shifts leak the neighbour byte's bits only into bits the masks clear), then
        // widened.
        let low = _mm256_loadu_si256(g.as_ptr().add(64 * half + 32 * (local % 2)).cast());
        let high = _mm256_loadu_si256(g.as_ptr().add(128 + 32 * half).cast());
        let low = _mm256_and_si256(_mm256_srl_epi16(low, _mm_cvtsi32_si128(4 * (local / 2) as i32)), _mm256_set1_epi8(0x0F));
        let high = _mm256_and_si256(_mm256_srl_epi16(high, _mm_cvtsi32_si128(2 * local as i32)), _mm256_set1_epi8(3));
        let six = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
        scale16(widen_i8(_mm256_sub_epi8(six, _mm256_set1_epi8(32))), dl, None)
    }
}

/// `dl · L[q]` for the 16 bytes at `qs`: low nibbles are elements 0..16, high nibbles 16..32.
#[inline(always)]
unsafe fn levels32(qs: *const u8, dl: f32) -> [__m256; 4] {
    let table = _mm_loadu_si128(IQ4_LEVELS.as_ptr().cast());
    let bytes = _mm_loadu_si128(qs.cast());
    let mask = _mm_set1_epi8(0x0F);
    let lo = _mm_shuffle_epi8(table, _mm_and_si128(bytes, mask));
    let hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(bytes, 4), mask));
    let d = _mm256_set1_ps(dl);
    [
        _mm256_mul_ps(d, i8x8_to_f32(lo)),
        _mm256_mul_ps(d, i8x8_to_f32(_mm_srli_si128(lo, 8))),
        _mm256_mul_ps(d, i8x8_to_f32(hi)),
        _mm256_mul_ps(d, i8x8_to_f32(_mm_srli_si128(hi, 8))),
    ]
}

/// The low 8 signed bytes of `v` as floats.
#[inline(always)]
unsafe fn i8x8_to_f32(v: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
}

impl Group32 for b::IQ4_NL {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let g = &g[..18];
        // The portable conversion measured faster than F16C here (one scale per 32 elements).
        levels32(g.as_ptr().add(2), b::f16_at(g, 0))
    }
}

impl Group32 for b::IQ4_XS {
    #[inline(always)]
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4] {
        let g = &g[..136];
        let dl = f16_at(g, 0) * scale_iq4xs(g, i) as f32;
        levels32(g.as_ptr().add(8 + 16 * i), dl)
    }
}
