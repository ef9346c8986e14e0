//! Hand-written AVX2 + FMA + F16C kernels; callers must have checked [`has_avx2`]. (The
//! portable kernels compiled with `#[target_feature]` instead ran several times slower: LLVM
//! vectorises their byte-to-float unpacking poorly, which `vpmovzxbd` / `vcvtph2ps` do here.)
//!
//! Each format decodes 32 consecutive elements (a block, 32 plain floats, or one 32-element
//! group of a 256-element super-block) into four `__m256`, bit-identical to its
//! `dequantize_block`, which are multiplied into four accumulators with FMA. The K-quant and
//! IQ4 decoders are in `avx2_kquants.rs`.
//!
//! Everything here is `#[inline(always)]` into the `#[target_feature]` kernel, and uses plain
//! loops rather than closures (`array::map`): closures are not inlined reliably, and an
//! intrinsic outside a function with the feature enabled becomes a slow out-of-line call.

use crate::quant::blocks::{self as b, BlockFormat};
use crate::quant::GgmlType;
use std::arch::x86_64::*;
use std::ptr::read_unaligned;

/// Dot of a row of type `ty` with `x`.
///
/// # Safety
/// The CPU must support avx2, fma and f16c.
pub(crate) unsafe fn dot_row(ty: GgmlType, bytes: &[u8], x: &[f32]) -> f32 {
    // SAFETY (all arms): the caller guarantees the features `kernel` is compiled for.
    unsafe {
        match ty {
            GgmlType::F32 => kernel::<b::F32>(bytes, x),
            GgmlType::F16 => kernel::<b::F16>(bytes, x),
            GgmlType::BF16 => kernel::<b::BF16>(bytes, x),
            GgmlType::Q4_0 => kernel::<b::Q4_0>(bytes, x),
            GgmlType::Q4_1 => kernel::<b::Q4_1>(bytes, x),
            GgmlType::Q5_0 => kernel::<b::Q5_0>(bytes, x),
            GgmlType::Q5_1 => kernel::<b::Q5_1>(bytes, x),
            GgmlType::Q8_0 => kernel::<b::Q8_0>(bytes, x),
            GgmlType::Q2_K => kernel::<b::Q2_K>(bytes, x),
            GgmlType::Q3_K => kernel::<b::Q3_K>(bytes, x),
            GgmlType::Q4_K => kernel::<b::Q4_K>(bytes, x),
            GgmlType::Q5_K => kernel::<b::Q5_K>(bytes, x),
            GgmlType::Q6_K => kernel::<b::Q6_K>(bytes, x),
            GgmlType::IQ4_NL => kernel::<b::IQ4_NL>(bytes, x),
            GgmlType::IQ4_XS => kernel::<b::IQ4_XS>(bytes, x),
        }
    }
}

/// Dot of two equally long f32 slices.
///
/// # Safety
/// The CPU must support avx2, fma and f16c.
/// 4×3 dot-product tile; the caller guarantees equal lengths.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_f32_tile(rows: [&[f32]; 4], xs: [&[f32]; 3]) -> [[f32; 3]; 4] {
    let k = rows[0].len();
    let body = k / 8 * 8;
    let (w0, w1, w2, w3) = (rows[0].as_ptr(), rows[1].as_ptr(), rows[2].as_ptr(), rows[3].as_ptr());
    let (x0, x1, x2) = (xs[0].as_ptr(), xs[1].as_ptr(), xs[2].as_ptr());
    // Twelve accumulators, three vectors and one row register: all sixteen ymm registers.
    let z = _mm256_setzero_ps();
    let (mut a00, mut a01, mut a02, mut a10, mut a11, mut a12) = (z, z, z, z, z, z);
    let (mut a20, mut a21, mut a22, mut a30, mut a31, mut a32) = (z, z, z, z, z, z);
    let mut i = 0;
    while i < body {
        let v0 = _mm256_loadu_ps(x0.add(i));
        let v1 = _mm256_loadu_ps(x1.add(i));
        let v2 = _mm256_loadu_ps(x2.add(i));
        let w = _mm256_loadu_ps(w0.add(i));
        a00 = _mm256_fmadd_ps(w, v0, a00);
        a01 = _mm256_fmadd_ps(w, v1, a01);
        a02 = _mm256_fmadd_ps(w, v2, a02);
        let w = _mm256_loadu_ps(w1.add(i));
        a10 = _mm256_fmadd_ps(w, v0, a10);
        a11 = _mm256_fmadd_ps(w, v1, a11);
        a12 = _mm256_fmadd_ps(w, v2, a12);
        let w = _mm256_loadu_ps(w2.add(i));
        a20 = _mm256_fmadd_ps(w, v0, a20);
        a21 = _mm256_fmadd_ps(w, v1, a21);
        a22 = _mm256_fmadd_ps(w, v2, a22);
        let w = _mm256_loadu_ps(w3.add(i));
        a30 = _mm256_fmadd_ps(w, v0, a30);
        a31 = _mm256_fmadd_ps(w, v1, a31);
        a32 = _mm256_fmadd_ps(w, v2, a32);
        i += 8;
    }
    let mut out = [
        [hsum(a00), hsum(a01), hsum(a02)],
        [hsum(a10), hsum(a11), hsum(a12)],
        [hsum(a20), hsum(a21), hsum(a22)],
        [hsum(a30), hsum(a31), hsum(a32)],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, x) in xs.iter().enumerate() {
            for j in body..k {
                out[r][c] += row[j] * x[j];
            }
        }
    }
    out
}

/// `y += a · x`; the caller guarantees equal lengths.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let body = n / 8 * 8;
    let av = _mm256_set1_ps(a);
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i < body {
        _mm256_storeu_ps(yp.add(i), _mm256_fmadd_ps(av, _mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(yp.add(i))));
        i += 8;
    }
    for j in body..n {
        y[j] += a * x[j];
    }
}

pub(crate) unsafe fn dot_f32(a: &[f32], x: &[f32]) -> f32 {
    assert_eq!(a.len(), x.len(), "dot_f32: length mismatch");
    // SAFETY: any initialised memory may be viewed as bytes; the caller guarantees the
    // features `kernel` is compiled for.
    unsafe {
        let bytes = std::slice::from_raw_parts(a.as_ptr().cast::<u8>(), size_of_val(a));
        kernel::<b::F32>(bytes, x)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn kernel<G: Group32>(bytes: &[u8], x: &[f32]) -> f32 {
    let (bl, bb) = (G::BLOCK_LEN, G::BLOCK_BYTES);
    assert!(
        x.len().is_multiple_of(bl) && bytes.len() == x.len() / bl * bb,
        "dot_row: size mismatch"
    );
    let mut acc = [_mm256_setzero_ps(); 4];
    if bl >= 32 {
        // Blocks of 32 or more elements: each is `bl / 32` groups.
        for (block, xs) in bytes.chunks_exact(bb).zip(x.chunks_exact(bl)) {
            prefetch(block.as_ptr());
            for (i, xs) in xs.chunks_exact(32).enumerate() {
                // SAFETY: `block` is one block, `xs` 32 floats; the features are enabled.
                unsafe { madd4(&mut acc, G::decode(block, i), xs) };
            }
        }
        return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    }
    // Shorter blocks: a group is `32 / bl` of them.
    let group_bytes = 32 / bl * bb;
    let (gc, xc) = (bytes.chunks_exact(group_bytes), x.chunks_exact(32));
    let (gr, xr) = (gc.remainder(), xc.remainder());
    for (g, xs) in gc.zip(xc) {
        prefetch(g.as_ptr());
        // SAFETY: `g` holds one group, `xs` 32 floats; the features are enabled.
        unsafe { madd4(&mut acc, G::decode(g, 0), xs) };
    }
    if !xr.is_empty() {
        // Only formats with blocks shorter than 32 elements (the plain floats) leave a
        // tail: decode it with the scalar code into zero-padded arrays.
        let (mut a, mut t) = ([0f32; 32], [0f32; 32]);
        for (block, out) in gr.chunks_exact(bb).zip(a.chunks_exact_mut(bl)) {
            G::dequantize_block(block, out);
        }
        t[..xr.len()].copy_from_slice(xr);
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: both arrays hold 32 floats.
            let (av, tv) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(8 * k)),
                    _mm256_loadu_ps(t.as_ptr().add(8 * k)),
                )
            };
            *acc = _mm256_fmadd_ps(av, tv, *acc);
        }
    }
    hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
}

/// How far ahead of the bytes being read a row kernel prefetches. A decode step streams every
/// weight once; the hardware prefetcher alone left these kernels waiting on memory (decode ran
/// at 3–4 GB/s per core; with this, about twice as fast).
pub(super) const PREFETCH: usize = 4096;

/// Asks for the cache line [`PREFETCH`] bytes past `p` (never faults, even past the end).
#[inline(always)]
pub(super) fn prefetch(p: *const u8) {
    // SAFETY: a prefetch is a hint; any address is allowed.
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(PREFETCH).cast()) };
}

/// `acc[k] += v[k] * xs[8k..8k + 8]`.
#[inline(always)]
unsafe fn madd4(acc: &mut [__m256; 4], v: [__m256; 4], xs: &[f32]) {
    let xs = &xs[..32];
    for k in 0..4 {
        let xv = _mm256_loadu_ps(xs.as_ptr().add(8 * k));
        acc[k] = _mm256_fmadd_ps(v[k], xv, acc[k]);
    }
}

/// Sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// A format whose 32-element groups decode straight to vectors.
pub(super) trait Group32: BlockFormat {
    /// Decodes elements `32·i .. 32·i + 32` of the block at `g` (formats with blocks of 32
    /// or more elements), or, for shorter blocks, the 32 elements of the `32 / BLOCK_LEN`
    /// blocks at `g` (`i` is then 0), into elements 0..8, ..., 24..32.
    ///
    /// # Safety
    /// avx2, fma and f16c must be available; `g` must hold at least a block or a group.
    unsafe fn decode(g: &[u8], i: usize) -> [__m256; 4];
}

/// The f16 at `p`, converted and broadcast.
#[inline(always)]
unsafe fn splat_f16(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16(read_unaligned(p.cast::<i16>())))
}

/// The 32 quants of a 4/5-bit block as i32 lanes: low nibbles of `qs[0..16]` are elements
/// 0..16, high nibbles 16..32; bit `i` of `qh` (if any) becomes bit 4 of element `i`.
#[inline(always)]
unsafe fn nibbles(qs: *const u8, qh: Option<u32>) -> [__m256i; 4] {
    let v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(qs.cast()));
    let v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(qs.add(8).cast()));
    let lo = _mm256_set1_epi32(0x0F);
    let mut q = [
        _mm256_and_si256(v0, lo),
        _mm256_and_si256(v1, lo),
        _mm256_srli_epi32(v0, 4),
        _mm256_srli_epi32(v1, 4),
    ];
    if let Some(qh) = qh {
        let qh = _mm256_set1_epi32(qh as i32);
        let bit4 = _mm256_set1_epi32(0x10);
        for (k, q) in q.iter_mut().enumerate() {
            let k = 8 * k as i32;
            let shift = _mm256_setr_epi32(k, k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7);
            let high = _mm256_slli_epi32(_mm256_srlv_epi32(qh, shift), 4);
            *q = _mm256_or_si256(*q, _mm256_and_si256(high, bit4));
        }
    }
    q
}

/// 32 signed bytes widened to i32 lanes (bytes 0..8, 8..16, 16..24, 24..32).
#[inline(always)]
unsafe fn widen_i8(v: __m256i) -> [__m256i; 4] {
    let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    [
        _mm256_cvtepi8_epi32(lo),
        _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(lo)),
        _mm256_cvtepi8_epi32(hi),
        _mm256_cvtepi8_epi32(_mm_srli_si128::<8>(hi)),
    ]
}

/// `d * (q - offset)` per lane.
#[inline(always)]
unsafe fn scale_offset(q: [__m256i; 4], d: __m256, offset: i32) -> [__m256; 4] {
    let o = _mm256_set1_epi32(offset);
    let mut v = [_mm256_setzero_ps(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        *v = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], o)));
    }
    v
}

/// `d * q + m` per lane (fused: `d * q` is exact, so this matches the unfused scalar code).
#[inline(always)]
unsafe fn scale_min(q: [__m256i; 4], d: __m256, m: __m256) -> [__m256; 4] {
    let mut v = [_mm256_setzero_ps(); 4];
    for (k, v) in v.iter_mut().enumerate() {
        *v = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q[k]), m);
    }
    v
}

impl Group32 for b::F32 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..128].as_ptr().cast::<f32>();
        let mut v = [_mm256_setzero_ps(); 4];
        for (k, v) in v.iter_mut().enumerate() {
            *v = _mm256_loadu_ps(p.add(8 * k));
        }
        v
    }
}

impl Group32 for b::F16 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..64].as_ptr();
        let mut v = [_mm256_setzero_ps(); 4];
        for (k, v) in v.iter_mut().enumerate() {
            *v = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * k).cast()));
        }
        v
    }
}

impl Group32 for b::BF16 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..64].as_ptr();
        let mut v = [_mm256_setzero_ps(); 4];
        for (k, v) in v.iter_mut().enumerate() {
            let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(16 * k).cast()));
            *v = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
        }
        v
    }
}

impl Group32 for b::Q4_0 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..18].as_ptr();
        scale_offset(nibbles(p.add(2), None), splat_f16(p), 8)
    }
}

impl Group32 for b::Q4_1 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..20].as_ptr();
        scale_min(nibbles(p.add(4), None), splat_f16(p), splat_f16(p.add(2)))
    }
}

impl Group32 for b::Q5_0 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..22].as_ptr();
        let qh = u32::from_le(read_unaligned(p.add(2).cast::<u32>()));
        scale_offset(nibbles(p.add(6), Some(qh)), splat_f16(p), 16)
    }
}

impl Group32 for b::Q5_1 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..24].as_ptr();
        let qh = u32::from_le(read_unaligned(p.add(4).cast::<u32>()));
        scale_min(
            nibbles(p.add(8), Some(qh)),
            splat_f16(p),
            splat_f16(p.add(2)),
        )
    }
}

impl Group32 for b::Q8_0 {
    #[inline(always)]
    unsafe fn decode(g: &[u8], _: usize) -> [__m256; 4] {
        let p = g[..34].as_ptr();
        let d = splat_f16(p);
        let mut v = [_mm256_setzero_ps(); 4];
        for (k, v) in v.iter_mut().enumerate() {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(2 + 8 * k).cast()));
            *v = _mm256_mul_ps(d, _mm256_cvtepi32_ps(q));
        }
        v
    }
}

#[path = "avx2_kquants.rs"]
mod kquants;
