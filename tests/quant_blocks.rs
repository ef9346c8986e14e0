//! Block formats against independent reference values: tests/fixtures/quant/<fmt>.json, made
//! by tests/fixtures/quant/make_fixtures.py from gguf-py's `gguf.quants.dequantize`.
//!
//! Dequantization must match gguf-py bit for bit (not merely within 1 ulp): every format decodes
//! with exact conversions (integer → f32, f16 → f32, bf16 → f32) and at most one rounding step,
//! the same one numpy performs. `d * q` is exact in f32 (an 11-bit significand times an integer
//! of at most 8 bits), so `d * q` and `d * (q - 8)` need no rounding at all, and `d * q + m`
//! rounds once whether or not the add is fused. Signed zeros must match too; NaNs only need to
//! be NaN (numpy keeps a signalling f16 NaN signalling, ggml's F16C path and `half` quiet it).
//!
//! Dot products are checked against an f64 dot of the reference values: the error must stay
//! within max(1e-5, (n/32 + 8)·2^-24) · Σ|a_i·x_i|. The kernels accumulate in 32 independent
//! f32 lanes and sum them pairwise, so each result carries at most about (n/32 + 6) roundings
//! of relative size 2^-24 on that scale (below 6e-6 for rows of up to 2688 elements, 2.1e-5 for
//! the 11,264-element K-quant edge rows): the bound holds deterministically, fused or unfused,
//! and would catch any wrong element. (Plus an absolute allowance for f32 underflow, which only
//! the F32 fixture's subnormal values reach.)
//!
//! The K-quant and IQ4 fixtures hold hand-set scale edges over random payloads, random blocks
//! under typical scales, and (Q2_K … Q6_K) blocks written by llama.cpp's own quantizer.

use hearth::quant::blocks::{self, dot_f32, dot_f32_scalar, dot_row_scalar};
use hearth::quant::{dequantize_row, dot_row, BlockFormat, GgmlType};


/// Calls the generic function `$f::<B>()` for every block format `B`.
macro_rules! for_every_format {
    ($f:ident) => {{
        use blocks::*;
        $f::<F32>();
        $f::<F16>();
        $f::<BF16>();
        $f::<Q4_0>();
        $f::<Q4_1>();
        $f::<Q5_0>();
        $f::<Q5_1>();
        $f::<Q8_0>();
        $f::<Q2_K>();
        $f::<Q3_K>();
        $f::<Q4_K>();
        $f::<Q5_K>();
        $f::<Q6_K>();
        $f::<IQ4_NL>();
        $f::<IQ4_XS>();
    }};
}

struct Row {
    name: String,
    dot: bool,
    bytes: Vec<u8>,
    expected: Vec<f32>,
}

struct Fixture {
    block_len: usize,
    block_bytes: usize,
    rows: Vec<Row>,
    x: Vec<f32>,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn load(ty: GgmlType) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/quant/{}.json",
        env!("CARGO_MANIFEST_DIR"),
        ty.name().to_lowercase()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], ty.name());
    assert_eq!(
        v["gguf_version"], "0.19.0",
        "{path}: regenerate with gguf 0.19.0"
    );
    let rows = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let row = Row {
                name: r["name"].as_str().unwrap().to_string(),
                dot: r["dot"].as_bool().unwrap(),
                bytes: unhex(r["hex"].as_str().unwrap()),
                expected: f32s(&unhex(r["expected_hex"].as_str().unwrap())),
            };
            assert_eq!(row.expected.len() as u64, r["n"].as_u64().unwrap());
            row
        })
        .collect();
    Fixture {
        block_len: v["block_len"].as_u64().unwrap() as usize,
        block_bytes: v["block_bytes"].as_u64().unwrap() as usize,
        rows,
        x: f32s(&unhex(v["x_hex"].as_str().unwrap())),
    }
}

fn same_value(got: f32, want: f32) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else {
        got.to_bits() == want.to_bits()
    }
}

/// Checks `got` against the f64 dot of `a` and `x` (see the module comment for the bound).
fn check_dot(what: &str, got: f32, a: &[f32], x: &[f32]) {
    let want: f64 = a.iter().zip(x).map(|(&a, &x)| a as f64 * x as f64).sum();
    let scale: f64 = a
        .iter()
        .zip(x)
        .map(|(&a, &x)| (a as f64 * x as f64).abs())
        .sum();
    let err = (got as f64 - want).abs();
    let rel = 1e-5f64.max((a.len() as f64 / 32.0 + 8.0) * 2f64.powi(-24));
    // Products and sums in f32's subnormal range lose relative precision; each rounding there
    // is off by at most half the smallest subnormal, 2^-150.
    let underflow = (a.len() as f64 + 32.0) * 2f64.powi(-150);
    assert!(
        err <= rel * scale + underflow,
        "{what}: got {got}, want {want} (error {err:e}, Σ|a·x| = {scale:e})"
    );
}

#[test]
fn geometry_matches_ggml() {
    fn check<B: BlockFormat>() {
        assert_eq!(B::BLOCK_LEN, B::TYPE.block_len(), "{}", B::TYPE.name());
        assert_eq!(B::BLOCK_BYTES, B::TYPE.block_bytes(), "{}", B::TYPE.name());
        let f = load(B::TYPE);
        assert_eq!((f.block_len, f.block_bytes), (B::BLOCK_LEN, B::BLOCK_BYTES));
    }
    for_every_format!(check);
}

#[test]
fn dequantize_row_matches_gguf_py() {
    for ty in GgmlType::ALL {
        let f = load(ty);
        for row in &f.rows {
            let mut out = vec![f32::from_bits(0x7FC0_DEAD); row.expected.len()];
            dequantize_row(ty, &row.bytes, &mut out);
            for (i, (&got, &want)) in out.iter().zip(&row.expected).enumerate() {
                assert!(
                    same_value(got, want),
                    "{} {} element {i} (block {}): got {got:e} ({:#010x}), want {want:e} ({:#010x})",
                    ty.name(),
                    row.name,
                    i / f.block_len,
                    got.to_bits(),
                    want.to_bits()
                );
            }
        }
    }
}

#[test]
fn block_methods_match_gguf_py() {
    fn check<B: BlockFormat>() {
        let f = load(B::TYPE);
        for row in f.rows.iter().filter(|r| r.dot) {
            let blocks = row.bytes.chunks_exact(B::BLOCK_BYTES);
            let (want, x) = (row.expected.chunks(B::BLOCK_LEN), f.x.chunks(B::BLOCK_LEN));
            for (i, ((block, want), x)) in blocks.zip(want).zip(x).enumerate() {
                let mut out = vec![0f32; B::BLOCK_LEN];
                B::dequantize_block(block, &mut out);
                assert!(out.iter().zip(want).all(|(&g, &w)| same_value(g, w)));
                let what = format!("{} {} dot_block {i}", B::TYPE.name(), row.name);
                check_dot(&what, B::dot_block(block, x), want, x);
            }
        }
    }
    for_every_format!(check);
}

#[test]
fn dot_row_matches_reference() {
    for ty in GgmlType::ALL {
        let f = load(ty);
        let (bl, bb) = (f.block_len, f.block_bytes);
        for row in f.rows.iter().filter(|r| r.dot) {
            let n_blocks = row.expected.len() / bl;
            // (first block, block count): whole rows, single blocks, lengths that leave a tail
            // in the 32-lane kernels, and rows starting at an odd byte offset.
            let mut spans = vec![(0, n_blocks), (0, 1), (1, n_blocks - 1), (n_blocks - 1, 1)];
            spans.extend([3, 5, 18, 33, 100, 577].map(|n| (0, n)));
            spans.extend([(1, 2), (3, 7), (2, 18)]);
            for (first, count) in spans
                .into_iter()
                .filter(|&(s, c)| c > 0 && s + c <= n_blocks)
            {
                let bytes = &row.bytes[first * bb..(first + count) * bb];
                let a = &row.expected[first * bl..(first + count) * bl];
                let x = &f.x[first * bl..(first + count) * bl];
                let what = format!("{} {} blocks {first}+{count}", ty.name(), row.name);
                check_dot(&format!("{what} dot_row"), dot_row(ty, bytes, x), a, x);
                check_dot(
                    &format!("{what} scalar"),
                    dot_row_scalar(ty, bytes, x),
                    a,
                    x,
                );
                check_dot(&format!("{what} dot_f32"), dot_f32(a, x), a, x);
                check_dot(
                    &format!("{what} dot_f32 scalar"),
                    dot_f32_scalar(a, x),
                    a,
                    x,
                );
            }
        }
    }
}

/// A small deterministic generator (xorshift), so the test needs no dependency.
fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn dot_f32_odd_and_long_lengths() {
    assert_eq!(dot_f32(&[], &[]), 0.0);
    assert_eq!(dot_f32_scalar(&[], &[]), 0.0);
    let lengths = (1..=70).chain([95, 97, 127, 129, 575, 576, 577, 1535, 1536, 1537, 4099]);
    for n in lengths {
        let (a, b) = (random_vec(n, n as u64), random_vec(n, 1000 + n as u64));
        check_dot(&format!("dot_f32 n={n}"), dot_f32(&a, &b), &a, &b);
        check_dot(
            &format!("dot_f32_scalar n={n}"),
            dot_f32_scalar(&a, &b),
            &a,
            &b,
        );
        // Same values through the F32 row kernel, from a byte buffer at an odd address.
        let mut bytes = vec![0u8];
        bytes.extend(a.iter().flat_map(|v| v.to_le_bytes()));
        check_dot(
            &format!("dot_row F32 n={n}"),
            dot_row(GgmlType::F32, &bytes[1..], &b),
            &a,
            &b,
        );
    }
    // Exactly representable inputs give exact results.
    let ones = vec![1.0f32; 1001];
    assert_eq!(dot_f32(&ones, &ones), 1001.0);
    assert_eq!(dot_f32_scalar(&ones, &ones), 1001.0);
}

#[test]
fn dot_f32_tile_matches_separate_dots() {
    for k in [1usize, 7, 8, 13, 64, 576, 1537] {
        let rows: Vec<Vec<f32>> = (0..4).map(|r| random_vec(k, 100 + r)).collect();
        let xs: Vec<Vec<f32>> = (0..3).map(|c| random_vec(k, 200 + c)).collect();
        let tile = hearth::quant::dot_f32_tile(
            std::array::from_fn(|r| rows[r].as_slice()),
            std::array::from_fn(|c| xs[c].as_slice()),
        );
        for r in 0..4 {
            for c in 0..3 {
                check_dot(&format!("tile k={k} [{r}][{c}]"), tile[r][c], &rows[r], &xs[c]);
            }
        }
    }
}
