//! The dot-product kernels behind [`super::dot_row`] and [`super::dot_f32`].
//!
//! Two implementations of each, which must agree to rounding:
//!
//! * a portable one, for every target (wasm32 included) and for x86_64 CPUs without AVX2:
//!   plain Rust shaped so that LLVM vectorises it for whatever the build targets (SSE2 on
//!   baseline x86_64, NEON on aarch64, simd128 on wasm when enabled). Products go into
//!   [`LANES`] independent f32 accumulators, summed pairwise at the end;
//! * on x86_64, hand-written AVX2 + FMA + F16C kernels ([`avx2`]), picked at run time.

use super::{BlockFormat, MAX_BLOCK_LEN};

/// Independent f32 accumulators of the portable kernels: enough to hide the add latency with
/// 4-wide vectors, and a fixed summation order (so results do not depend on the target).
const LANES: usize = 32;

/// `acc[l] += a[l] * b[l]` for every lane.
#[inline(always)]
fn madd_lanes(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let a: &[f32; LANES] = a.try_into().unwrap();
    let b: &[f32; LANES] = b.try_into().unwrap();
    for l in 0..LANES {
        acc[l] += a[l] * b[l];
    }
}

/// `acc[i % LANES] += a[i] * b[i]` for equally long `a` and `b`.
#[inline(always)]
fn madd_slices(acc: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (ca, cb) in ac.zip(bc) {
        madd_lanes(acc, ca, cb);
    }
    if !ar.is_empty() {
        // Zero-padded, so that `acc` is only ever indexed by constants and stays in registers.
        let (mut ta, mut tb) = ([0f32; LANES], [0f32; LANES]);
        ta[..ar.len()].copy_from_slice(ar);
        tb[..br.len()].copy_from_slice(br);
        madd_lanes(acc, &ta, &tb);
    }
}

/// Pairwise sum of the accumulators.
#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Portable dot of two equally long f32 slices.
#[inline(always)]
pub(crate) fn dot_f32_portable(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32: length mismatch");
    let mut acc = [0f32; LANES];
    madd_slices(&mut acc, a, b);
    reduce(acc)
}

/// Portable dot of a row of `B` blocks (`bytes`) with `x`, the row `x.len()` elements long.
///
/// Works in chunks of up to [`MAX_BLOCK_LEN`] elements: dequantize a chunk's blocks into a
/// stack buffer, then multiply that into the accumulators, so the dequantized row never exists
/// in full. Keeping the two phases apart matters: LLVM vectorises each of them well, but fused
/// into one fully unrolled expression per block it only manages 2-wide code.
#[inline(always)]
pub(crate) fn dot_row_portable<B: BlockFormat>(bytes: &[u8], x: &[f32]) -> f32 {
    let (bl, bb) = (B::BLOCK_LEN, B::BLOCK_BYTES);
    const { assert!(B::BLOCK_LEN <= MAX_BLOCK_LEN) };
    assert!(
        x.len().is_multiple_of(bl) && bytes.len() == x.len() / bl * bb,
        "dot_row: size mismatch"
    );
    let per_chunk = MAX_BLOCK_LEN / bl;
    let mut acc = [0f32; LANES];
    let mut buf = [0f32; MAX_BLOCK_LEN];
    for (xs, blocks) in x.chunks(per_chunk * bl).zip(bytes.chunks(per_chunk * bb)) {
        let buf = &mut buf[..xs.len()];
        for (block, out) in blocks.chunks_exact(bb).zip(buf.chunks_exact_mut(bl)) {
            B::dequantize_block(block, out);
        }
        madd_slices(&mut acc, buf, xs);
    }
    reduce(acc)
}

/// Whether the AVX2 + FMA + F16C kernels can run here; detected once, then a relaxed load.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0: not yet detected, 1: no, 2: yes
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let yes = std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c");
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        s => s == 2,
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
