//! Every WGSL kernel against a plain CPU loop, on fresh random inputs each run (the seed is
//! printed; `HEARTH_SEED` replays it), with sizes that do not divide the workgroup and every weight format. Output
//! buffers are poisoned with NaN first, so an element the kernel fails to write fails the test.

mod common;

use bytemuck::{bytes_of, cast_slice};
use common::gpu_context;
use half::{bf16, f16};
use hearth::gpu::harness::{run_kernel, Binding};
use hearth::gpu::params;
use hearth::gpu::{matmul_groups, GpuContext, Kernel};
use hearth::quant::gpu_layout::to_gpu_layout;
use hearth::quant::{dequantize_row, GgmlType};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};


/// Fresh random inputs each run; `HEARTH_SEED=N` replays the run that printed seed N.
fn rng() -> ChaCha8Rng {
    let seed = match std::env::var("HEARTH_SEED") {
        Ok(s) => s.parse().expect("HEARTH_SEED is a u64"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    // Straight to stderr (not captured), so a failure's seed is in the log: HEARTH_SEED={seed}.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{}: random seed {seed} (replay with HEARTH_SEED={seed})", std::thread::current().name().unwrap_or("?"));
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
}

fn floats(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| uniform(rng)).collect()
}

fn poison(n: usize) -> Vec<u8> {
    cast_slice(&vec![f32::NAN; n]).to_vec()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(bytes)
}

/// The cos/sin table of `positions` positions for `half` rotated pairs of a `rope_dim`-wide
/// rotation (base 10000), as the backend uploads it.
fn rope_table(positions: usize, half: usize, rope_dim: usize) -> Vec<f32> {
    (0..positions)
        .flat_map(|p| (0..half).flat_map(move |i| {
            let a = p as f64 * 10000f64.powf(-2.0 * i as f64 / rope_dim as f64);
            [a.cos() as f32, a.sin() as f32]
        }))
        .collect()
}

fn step(n_tokens: u32, start_pos: u32) -> Binding {
    Binding::Uniform(bytes_of(&params::Step { n_tokens, start_pos, draw: [0; 2] }).to_vec())
}

/// Random rows of `ty` in file layout: random quant bits with sane f16 scales.
fn random_rows(rng: &mut ChaCha8Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let n = rows * cols;
    match ty {
        GgmlType::F32 => cast_slice(&floats(rng, n)).to_vec(),
        GgmlType::F16 => floats(rng, n).iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::BF16 => floats(rng, n).iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
        _ => {
            // Where each format keeps its f16 scale and, if it has one, its f16 minimum.
            let (d_at, m_at) = match ty {
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => (0, Some(2)),
                GgmlType::Q2_K => (80, Some(82)),
                GgmlType::Q3_K => (108, None),
                GgmlType::Q6_K => (208, None),
                _ => (0, None),
            };
            // Super-block scales multiply 6-bit sub-scales: keep the weights near ±1 anyway.
            let range = if ty.block_len() == 256 { 0.005 } else { 0.1 };
            let mut out = Vec::new();
            for _ in 0..n / ty.block_len() {
                let mut block: Vec<u8> = (0..ty.block_bytes()).map(|_| rng.next_u32() as u8).collect();
                block[d_at..d_at + 2].copy_from_slice(&f16::from_f32(uniform(rng) * range).to_le_bytes());
                if let Some(m_at) = m_at {
                    block[m_at..m_at + 2].copy_from_slice(&f16::from_f32(uniform(rng) * range).to_le_bytes());
                }
                out.extend(block);
            }
            out
        }
    }
}

fn dequant(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    let rb = bytes.len() / rows;
    for r in 0..rows {
        dequantize_row(ty, &bytes[r * rb..(r + 1) * rb], &mut out[r * cols..(r + 1) * cols]);
    }
    out
}

/// |got - want| within 1e-4 of the magnitude that went into `want`.
fn assert_close(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = 1e-4 * s.max(1e-3);
        assert!((g as f64 - w).abs() <= tol, "{what}[{i}]: gpu {g} vs cpu {w} (tolerance {tol:e})");
    }
}

/// The decode and prefill matmul kernels, which must agree on every option.
const MATMULS: [Kernel; 2] = [Kernel::MatMul, Kernel::MatMulTiled];

/// `cols` above the kernel's 3840-element input tile exercises the staged-input loop; 77 rows
/// and 19 tokens leave partial workgroups in both kernels.
#[allow(clippy::too_many_arguments)]
fn matmul_case(ctx: &GpuContext, rng: &mut ChaCha8Rng, kernel: Kernel, ty: GgmlType, accumulate: bool, last_only: bool, norm: bool, cols: usize) {
    let (rows, n) = (77usize, 19usize);
    let w = random_rows(rng, ty, rows, cols);
    let wf = dequant(ty, &w, rows, cols);
    let x_in = floats(rng, n * cols);
    let gain = floats(rng, cols);
    // The input the matmul sees: RMSNorm(x) * gain when the norm is folded in.
    let x: Vec<f32> = if norm {
        x_in.chunks(cols)
            .flat_map(|xs| {
                let ms = xs.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / cols as f64;
                let s = 1.0 / (ms + 1e-5).sqrt();
                xs.iter().zip(&gain).map(move |(&v, &g)| (v as f64 * s * g as f64) as f32).collect::<Vec<_>>()
            })
            .collect()
    } else {
        x_in.clone()
    };
    let y0 = floats(rng, n * rows);
    let n_out = if last_only { 1 } else { n };
    let row_words = (to_gpu_layout(ty, &w).len() / rows / 4) as u32;
    let p = params::MatMul {
        accumulate: accumulate as u32,
        last_only: last_only as u32,
        norm: norm as u32,
        eps: 1e-5,
        ..params::MatMul::plain(rows as u32, cols as u32, row_words, rows as u32)
    };
    let y_init = if accumulate { cast_slice(&y0[..n_out * rows]).to_vec() } else { poison(n_out * rows) };
    let out = run_kernel(
        ctx,
        kernel,
        Some(ty),
        &[
            Binding::Storage(to_gpu_layout(ty, &w)),
            Binding::Storage(cast_slice(&x_in).to_vec()),
            Binding::Storage(y_init),
            Binding::Uniform(bytes_of(&p).to_vec()),
            step(n as u32, 0),
            Binding::Storage(cast_slice(&gain).to_vec()),
            Binding::Storage(vec![0; 16]),
            Binding::Storage(vec![0; 16]),
            Binding::Storage(vec![0; 16]),
            Binding::Storage(vec![0; 16]),
        ],
        matmul_groups(kernel, rows as u32, n_out as u32),
    )
    .unwrap();
    let (mut want, mut scale) = (Vec::new(), Vec::new());
    for t in 0..n_out {
        let ti = if last_only { n - 1 } else { t };
        for r in 0..rows {
            let terms = (0..cols).map(|c| wf[r * cols + c] as f64 * x[ti * cols + c] as f64);
            let base = if accumulate { y0[t * rows + r] as f64 } else { 0.0 };
            want.push(base + terms.clone().sum::<f64>());
            scale.push(base.abs() + terms.map(f64::abs).sum::<f64>());
        }
    }
    assert_close(&format!("{kernel:?} {ty:?} cols={cols} acc={accumulate} last={last_only} norm={norm}"), &f32s(&out[2]), &want, &scale);
}

#[test]
fn matmul_every_format() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    for ty in GgmlType::ALL {
        let cols = 3 * ty.block_len().max(32) + if ty.block_len() == 1 { 2 } else { 0 };
        for kernel in MATMULS {
            matmul_case(&ctx, &mut rng, kernel, ty, false, false, false, cols);
            matmul_case(&ctx, &mut rng, kernel, ty, true, false, false, cols);
            matmul_case(&ctx, &mut rng, kernel, ty, false, false, true, cols);
            // Longer than one staged tile of the input.
            matmul_case(&ctx, &mut rng, kernel, ty, true, false, true, 128 * 32 + ty.block_len().max(64));
        }
        // Logits of the last token only: a decode-kernel option.
        matmul_case(&ctx, &mut rng, Kernel::MatMul, ty, false, true, false, cols);
    }
}

#[test]
fn embed_every_format() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    for ty in GgmlType::ALL {
        let (rows, cols) = (13usize, 2 * ty.block_len().max(32) + if ty.block_len() == 1 { 6 } else { 0 });
        let table = random_rows(&mut rng, ty, rows, cols);
        let tf = dequant(ty, &table, rows, cols);
        let tokens: Vec<u32> = vec![5, 0, 12, (rng.next_u32() % 13)];
        let row_words = (to_gpu_layout(ty, &table).len() / rows / 4) as u32;
        // The table split in two parts, as a tensor over the binding limit would be.
        let split = 7usize;
        let gpu = to_gpu_layout(ty, &table);
        let part_bytes = gpu.len() / rows * split;
        let mut y = poison(tokens.len() * cols);
        for (offset, part) in [(0usize, &gpu[..part_bytes]), (split, &gpu[part_bytes..])] {
            let p = params::Embed {
                dim: cols as u32,
                row_words,
                row_offset: offset as u32,
                rows: (part.len() / (row_words as usize * 4)) as u32,
                scale: 1.75,
                positions: 0,
                _pad: [0; 2],
            };
            let out = run_kernel(
                &ctx,
                Kernel::Embed,
                Some(ty),
                &[
                    Binding::Storage(part.to_vec()),
                    Binding::Storage(cast_slice(&tokens).to_vec()),
                    Binding::Storage(y),
                    Binding::Uniform(bytes_of(&p).to_vec()),
                    step(tokens.len() as u32, 0),
                ],
                (tokens.len() * cols).div_ceil(64) as u32,
            )
            .unwrap();
            y = out[2].clone();
        }
        let want: Vec<f64> = tokens.iter().flat_map(|&t| tf[t as usize * cols..(t as usize + 1) * cols].iter().map(|&v| v as f64 * 1.75)).collect();
        let scale: Vec<f64> = want.iter().map(|v| v.abs()).collect();
        assert_close(&format!("embed {ty:?}"), &f32s(&y), &want, &scale);
    }
}

#[test]
fn rms_norm_odd_width() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (dim, n) = (97usize, 3usize);
    let x = floats(&mut rng, n * dim);
    let w = floats(&mut rng, dim);
    let y0 = floats(&mut rng, n * dim);
    for accumulate in [false, true] {
    let p = params::Norm { dim: dim as u32, eps: 1e-5, accumulate: accumulate as u32, mode: 0 };
    let out = run_kernel(
        &ctx,
        Kernel::Norm,
        None,
        &[
            Binding::Storage(cast_slice(&x).to_vec()),
            Binding::Storage(cast_slice(&w).to_vec()),
            Binding::Storage(if accumulate { cast_slice(&y0).to_vec() } else { poison(n * dim) }),
            Binding::Uniform(bytes_of(&p).to_vec()),
            step(n as u32, 0),
            Binding::Storage(vec![0; 16]),
        ],
        n as u32,
    )
    .unwrap();
    let mut want = Vec::new();
    for t in 0..n {
        let xs = &x[t * dim..(t + 1) * dim];
        let ms = xs.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
        let s = 1.0 / (ms + 1e-5).sqrt();
        let base = |i: usize| if accumulate { y0[t * dim + i] as f64 } else { 0.0 };
        want.extend(xs.iter().zip(&w).enumerate().map(|(i, (&v, &g))| base(i) + v as f64 * s * g as f64));
    }
    let scale: Vec<f64> = want.iter().map(|v| v.abs().max(1.0)).collect();
    assert_close(&format!("rms_norm accumulate={accumulate}"), &f32s(&out[2]), &want, &scale);
    }
}

/// Per-head RMSNorm in place: 5 heads of 40 per token with one weight, and 2 heads of a second
/// tensor with another in the same dispatch (Q's and K's norms).
#[test]
fn head_norm_every_head() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (n, heads, heads2, hd) = (3usize, 5usize, 2usize, 40usize);
    let x: Vec<f32> = floats(&mut rng, n * heads * hd).iter().map(|v| v * 100.0).collect();
    let x2: Vec<f32> = floats(&mut rng, n * heads2 * hd).iter().map(|v| v * 0.01).collect();
    let (w, w2) = (floats(&mut rng, hd), floats(&mut rng, hd));
    let want = |x: &[f32], w: &[f32]| -> Vec<f64> {
        x.chunks(hd)
            .flat_map(|h| {
                let s = 1.0 / (h.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / hd as f64 + 1e-6).sqrt();
                h.iter().zip(w).map(move |(&v, &g)| v as f64 * s * g as f64).collect::<Vec<_>>()
            })
            .collect()
    };
    for second in [0, heads2] {
        let p = params::HeadNorm { n_heads: heads as u32, n_heads2: second as u32, head_dim: hd as u32, eps: 1e-6 };
        let out = run_kernel(
            &ctx,
            Kernel::HeadNorm,
            None,
            &[
                Binding::Storage(cast_slice(&x).to_vec()),
                Binding::Storage(cast_slice(&w).to_vec()),
                Binding::Storage(cast_slice(&x2).to_vec()),
                Binding::Storage(cast_slice(&w2).to_vec()),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, 0),
            ],
            (n * (heads + second)) as u32,
        )
        .unwrap();
        let wx = want(&x, &w);
        assert_close("head_norm", &f32s(&out[0]), &wx, &vec![1.0; wx.len()]);
        if second > 0 {
            let wx2 = want(&x2, &w2);
            assert_close("head_norm second tensor", &f32s(&out[2]), &wx2, &vec![1.0; wx2.len()]);
        } else {
            assert_eq!(f32s(&out[2]), x2, "the second tensor is left alone");
        }
    }
}

/// Residual adds (as wide as the output) and biases (one vector for every token).
#[test]
fn add_plain_and_broadcast() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (n, width) = (3usize, 101usize);
    let y = floats(&mut rng, n * width);
    for broadcast in [false, true] {
        let x = floats(&mut rng, if broadcast { width } else { n * width });
        let p = params::Add { width: width as u32, broadcast: broadcast as u32, _pad: [0; 2] };
        let out = run_kernel(
            &ctx,
            Kernel::Add,
            None,
            &[Binding::Storage(cast_slice(&x).to_vec()), Binding::Storage(cast_slice(&y).to_vec()), Binding::Uniform(bytes_of(&p).to_vec()), step(n as u32, 0)],
            (n * width).div_ceil(64) as u32,
        )
        .unwrap();
        let want: Vec<f32> = y.iter().enumerate().map(|(i, &v)| v + x[if broadcast { i % width } else { i }]).collect();
        assert_eq!(f32s(&out[1]), want, "add broadcast={broadcast}");
    }
}

#[test]
fn rope_both_styles() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (n, heads, hd, rope_dim, start) = (3usize, 3usize, 10usize, 8usize, 7usize);
    let half = rope_dim / 2;
    let table = rope_table(start + n, half, rope_dim);
    for neox in [false, true] {
        let x = floats(&mut rng, n * heads * hd);
        let p = params::Rope { n_heads: heads as u32, head_dim: hd as u32, half: half as u32, neox: neox as u32 };
        let out = run_kernel(
            &ctx,
            Kernel::Rope,
            None,
            &[Binding::Storage(cast_slice(&x).to_vec()), Binding::Storage(cast_slice(&table).to_vec()), Binding::Uniform(bytes_of(&p).to_vec()), step(n as u32, start as u32)],
            (n * heads * half).div_ceil(64) as u32,
        )
        .unwrap();
        let mut want: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for t in 0..n {
            for h in 0..heads {
                let base = (t * heads + h) * hd;
                for i in 0..half {
                    let (c, s) = (table[((start + t) * half + i) * 2] as f64, table[((start + t) * half + i) * 2 + 1] as f64);
                    let (a, b) = if neox { (base + i, base + i + half) } else { (base + 2 * i, base + 2 * i + 1) };
                    let (x0, x1) = (x[a] as f64, x[b] as f64);
                    want[a] = x0 * c - x1 * s;
                    want[b] = x0 * s + x1 * c;
                }
            }
        }
        let scale = vec![1.0; want.len()];
        assert_close(&format!("rope neox={neox}"), &f32s(&out[0]), &want, &scale);
    }
}

#[test]
fn kv_store_and_attention_over_several_tiles() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    // 70 cached positions + 3 new ones: more than one 64-position tile, causal within the batch;
    // 6 heads, not a power of two, so ALiBi uses both slope series.
    let (n_head, n_kv, hd, start, n) = (6usize, 2usize, 12usize, 70usize, 3usize);
    let kv_dim = n_kv * hd;
    let total = start + n;
    let mut k_cache = floats(&mut rng, total * kv_dim);
    let mut v_cache = floats(&mut rng, total * kv_dim);
    let k_new = floats(&mut rng, n * kv_dim);
    let v_new = floats(&mut rng, n * kv_dim);
    // The positions the batch will write start out poisoned.
    let mut kc: Vec<u8> = cast_slice(&k_cache[..start * kv_dim]).to_vec();
    kc.extend(poison(n * kv_dim));
    let mut vc: Vec<u8> = cast_slice(&v_cache[..start * kv_dim]).to_vec();
    vc.extend(poison(n * kv_dim));
    let pw = params::Width { width: kv_dim as u32, _pad: [0; 3] };
    let stored = run_kernel(
        &ctx,
        Kernel::KvStore,
        None,
        &[
            Binding::Storage(cast_slice(&k_new).to_vec()),
            Binding::Storage(cast_slice(&v_new).to_vec()),
            Binding::Storage(kc),
            Binding::Storage(vc),
            Binding::Uniform(bytes_of(&pw).to_vec()),
            step(n as u32, start as u32),
        ],
        (n * kv_dim).div_ceil(64) as u32,
    )
    .unwrap();
    k_cache[start * kv_dim..].copy_from_slice(&k_new);
    v_cache[start * kv_dim..].copy_from_slice(&v_new);
    assert_eq!(f32s(&stored[2]), k_cache, "kv_store keys");
    assert_eq!(f32s(&stored[3]), v_cache, "kv_store values");

    let q = floats(&mut rng, n * n_head * hd);
    let scale_f = 1.0 / (hd as f32).sqrt();
    // Full causal attention, then sliding windows (gemma3's local layers): shorter than one
    // tile, and longer than one (the first tile starts mid-cache); then ALiBi (BLOOM: 4 heads
    // of the first slope series, 2 of the second, max bias 8).
    let (alibi_heads, m0, m1) = (4usize, 2f64.powf(-8.0 / 4.0), 2f64.powf(-4.0 / 4.0));
    let slope = |h: usize| if h < alibi_heads { m0.powi(h as i32 + 1) } else { m1.powi(2 * (h - alibi_heads) as i32 + 1) };
    // Then bidirectional (an encoder: every query sees the whole batch), T5's relative position
    // biases (causal and bidirectional), and cross-attention (a fixed key count).
    let span = 2 * total - 1;
    let rel_table = floats(&mut rng, n_head * span);
    let cases = [
        (0usize, false, false, false, 0usize),
        (3, false, false, false, 0),
        (70, false, false, false, 0),
        (0, true, false, false, 0),
        (3, true, false, false, 0),
        (0, false, true, false, 0),
        (0, false, false, true, 0),
        (0, false, true, true, 0),
        (0, false, false, false, total - 5),
    ];
    for (window, alibi, bidirectional, rel, keys) in cases {
    let pa = params::Attention {
        n_head: n_head as u32,
        n_head_kv: n_kv as u32,
        head_dim: hd as u32,
        kv_dim: kv_dim as u32,
        scale: scale_f,
        window: window as u32,
        fused: 0,
        half: 0,
        neox: 0,
        proj_rows: 0,
        proj_row_words: 0,
        proj_w_base: 0,
        alibi_m0: if alibi { m0 as f32 } else { 0.0 },
        alibi_m1: if alibi { m1 as f32 } else { 0.0 },
        alibi_heads: if alibi { alibi_heads as u32 } else { 0 },
        bidirectional: bidirectional as u32,
        keys: keys as u32,
        rel_span: if rel { span as u32 } else { 0 },
        _pad: [0; 2],
    };
    let out = run_kernel(
        &ctx,
        Kernel::Attention,
        None,
        &[
            Binding::Storage(cast_slice(&q).to_vec()),
            Binding::Storage(stored[2].clone()),
            Binding::Storage(stored[3].clone()),
            Binding::Storage(poison(n * n_head * hd)),
            Binding::Uniform(bytes_of(&pa).to_vec()),
            step(n as u32, start as u32),
            Binding::Storage(poison(4)),
            Binding::Storage(poison(4)),
            // The relative biases share the RoPE table's binding (unused here otherwise).
            Binding::Storage(if rel { cast_slice(&rel_table).to_vec() } else { poison(4) }),
        ],
        (n * n_head) as u32,
    )
    .unwrap();
    let mut want = Vec::new();
    for t in 0..n {
        for h in 0..n_head {
            let kvo = (h / (n_head / n_kv)) * hd;
            let qv = &q[(t * n_head + h) * hd..(t * n_head + h + 1) * hd];
            let pos = start + t;
            let len = if keys > 0 { keys } else if bidirectional { start + n } else { pos + 1 };
            let first = if window > 0 { len.saturating_sub(window) } else { 0 };
            let bias = |j: usize| match (alibi, rel) {
                (true, _) => slope(h) * (j as f64 - pos as f64),
                (_, true) => rel_table[h * span + j + total - 1 - pos] as f64,
                _ => 0.0,
            };
            let s: Vec<f64> = (first..len)
                .map(|j| (0..hd).map(|d| qv[d] as f64 * k_cache[j * kv_dim + kvo + d] as f64).sum::<f64>() * scale_f as f64 + bias(j))
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                want.push((first..len).zip(&e).map(|(j, e)| e / z * v_cache[j * kv_dim + kvo + d] as f64).sum::<f64>());
            }
        }
    }
    assert_close(&format!("attention window={window} alibi={alibi} bidirectional={bidirectional} rel={rel} keys={keys}"), &f32s(&out[3]), &want, &vec![1.0; want.len()]);
    }
}

/// GELU, tanh approximation, in f64.
fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

#[test]
fn glu_odd_width_both_activations() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (width, n) = (101usize, 3usize);
    // Gates up to ±60: GELU's tanh saturates (and must not overflow to NaN).
    let g: Vec<f32> = floats(&mut rng, n * width).iter().map(|v| v * 60.0).collect();
    let u = floats(&mut rng, n * width);
    for gelu in [false, true] {
        let p = params::Glu { width: width as u32, act: gelu as u32, unary: 0, _pad: 0 };
        let out = run_kernel(
            &ctx,
            Kernel::Glu,
            None,
            &[Binding::Storage(cast_slice(&g).to_vec()), Binding::Storage(cast_slice(&u).to_vec()), Binding::Uniform(bytes_of(&p).to_vec()), step(n as u32, 0)],
            (n * width).div_ceil(64) as u32,
        )
        .unwrap();
        let act = |g: f64| if gelu { gelu_tanh(g) } else { g / (1.0 + (-g).exp()) };
        let want: Vec<f64> = g.iter().zip(&u).map(|(&g, &u)| act(g as f64) * u as f64).collect();
        let scale: Vec<f64> = g.iter().map(|g| g.abs().max(1.0) as f64).collect();
        assert_close(&format!("glu gelu={gelu}"), &f32s(&out[0]), &want, &scale);
    }
}

#[test]
fn argmax_takes_the_lowest_index_among_equals() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let n = 49_157usize;
    let mut logits = floats(&mut rng, n);
    let top = (rng.next_u32() as usize) % (n - 10);
    logits[top] = 5.0;
    logits[top + 7] = 5.0;
    let run = |logits: &[f32]| {
        let p = params::Width { width: n as u32, _pad: [0; 3] };
        let out = run_kernel(
            &ctx,
            Kernel::Argmax,
            None,
            &[Binding::Storage(cast_slice(logits).to_vec()), Binding::Storage(vec![0xff; 4]), Binding::Uniform(bytes_of(&p).to_vec())],
            1,
        )
        .unwrap();
        u32::from_le_bytes(out[1][..4].try_into().unwrap())
    };
    assert_eq!(run(&logits), top as u32);
    assert_eq!(hearth::sampler::argmax(&logits), top as u32);
    logits[n - 1] = 6.0;
    assert_eq!(run(&logits), (n - 1) as u32);
}

#[test]
fn top_k_selects_like_the_cpu_sampler() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    // The vocabulary (several levels of workgroup sorts), a partial last tile, and one tile.
    for (n, ks) in [(49_152usize, &[1usize, 40, 256][..]), (5_000, &[3, 64]), (700, &[1, 256])] {
        let mut logits = floats(&mut rng, n);
        // Ties across tiles (lower id first), negative zero against zero, an infinity.
        for i in 0..8 {
            logits[(rng.next_u32() as usize) % n] = 2.5 + (i % 2) as f32;
        }
        logits[(rng.next_u32() as usize) % n] = -0.0;
        logits[(rng.next_u32() as usize) % n] = 0.0;
        logits[(rng.next_u32() as usize) % n] = f32::NEG_INFINITY;
        for &k in ks {
            let got = hearth::gpu::harness::top_k(&ctx, &logits, k).unwrap();
            let want = hearth::sampler::processors::best_candidates(&logits, k);
            assert_eq!(got.len(), k.min(n), "n {n}, k {k}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(g.0 == w.0 && g.1.to_bits() == w.1.to_bits(), "n {n}, k {k}, rank {i}: {g:?} != {w:?}");
            }
        }
    }
    assert!(hearth::gpu::harness::top_k(&ctx, &[1.0], 257).is_err());
}

/// The device draw: Philox on the GPU gives Random123's known answer and the CPU's words for
/// any seed and counter; the token drawn is the CPU sampler's, except where the random number
/// lies within f32 rounding of a cumulative-probability boundary.
#[test]
fn draw_picks_the_cpu_samplers_token_with_the_same_philox_numbers() {
    use hearth::sampler::{draw_candidates, philox, processors as p, DeviceDraw};
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let d0 = DeviceDraw { top_k: 1, top_p: 1.0, min_p: 0.0, temperature: 1.0, seed: 0, counter: 0 };
    let mut cases = vec![(vec![(5, 1.0)], d0)];
    for case in 0..60 {
        let k = [1usize, 2, 7, 40, 256][case % 5];
        let spread = [0.5f32, 2.0, 8.0][case % 3];
        let logits: Vec<f32> = (0..k + 50).map(|_| uniform(&mut rng) * spread).collect();
        let cands = p::best_candidates(&logits, k);
        let (top_p, min_p) = [(1.0, 0.0), (0.9, 0.0), (1.0, 0.05), (0.7, 0.1)][case % 4];
        let temperature = [0.3f32, 0.8, 1.0, 1.7][(case / 4) % 4];
        for _ in 0..8 {
            let seed = (rng.next_u32() as u64) << (rng.next_u32() % 33);
            let counter = [rng.next_u32() as u64 % 100, (rng.next_u32() as u64) << 32 | 9][rng.next_u32() as usize % 2];
            cases.push((cands.clone(), DeviceDraw { top_k: k, top_p, min_p, temperature, seed, counter }));
        }
    }
    let got = hearth::gpu::harness::draws(&ctx, &cases).unwrap();
    assert_eq!(got[0].1, [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8], "Random123's zero vector");
    let (draws, mut near_boundary) = (cases.len(), 0);
    for ((cands, d), (id, words)) in cases.iter().zip(got) {
        assert_eq!(words, philox::block(d.seed, d.counter), "{d:?}");
        let want = draw_candidates(cands.clone(), d).unwrap();
        if id != want {
            // The draw's cumulative probabilities (f64, in id order): u must sit on a boundary.
            let mut c = cands.clone();
            p::top_p(&mut c, d.top_p);
            p::min_p(&mut c, d.min_p);
            let mut by_id: Vec<(u32, f64)> = c.iter().map(|x| x.0).zip(p::tempered(&c, d.temperature)).collect();
            by_id.sort_by_key(|x| x.0);
            let u = philox::uniform(d.seed, d.counter);
            let mut acc = 0.0;
            let gap = by_id.iter().map(|(_, q)| { acc += q; (acc - u).abs() }).fold(f64::MAX, f64::min);
            assert!(gap < 1e-5, "drew {id}, the CPU {want}: u {u} is {gap} from a boundary ({d:?})");
            near_boundary += 1;
        }
    }
    assert!(near_boundary * 100 <= draws, "{near_boundary} of {draws} draws differ");
}

#[test]
fn rope_kv_rotates_queries_and_caches_keys_and_values() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    // RoPE over 8 of 10 head dims: the last two key dims are copied unrotated.
    let (n, n_head, n_kv, hd, rope_dim, start) = (3usize, 4usize, 2usize, 10usize, 8usize, 5usize);
    let (half, kv_dim) = (rope_dim / 2, n_kv * hd);
    let total = start + n;
    let table = rope_table(total, half, rope_dim);
    let rotate = |x: &mut [f32], t: usize, neox: bool| {
        for i in 0..half {
            let (c, s) = (table[((start + t) * half + i) * 2], table[((start + t) * half + i) * 2 + 1]);
            let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    };
    for neox in [false, true] {
        let q = floats(&mut rng, n * n_head * hd);
        let k = floats(&mut rng, n * kv_dim);
        let v = floats(&mut rng, n * kv_dim);
        let old = floats(&mut rng, start * kv_dim);
        let mut cache: Vec<u8> = cast_slice(&old).to_vec();
        cache.extend(poison(n * kv_dim));
        let p = params::RopeKv { n_head: n_head as u32, n_head_kv: n_kv as u32, head_dim: hd as u32, half: half as u32, neox: neox as u32, kv_dim: kv_dim as u32, _pad: [0; 2] };
        let out = run_kernel(
            &ctx,
            Kernel::RopeKv,
            None,
            &[
                Binding::Storage(cast_slice(&q).to_vec()),
                Binding::Storage(cast_slice(&k).to_vec()),
                Binding::Storage(cast_slice(&v).to_vec()),
                Binding::Storage(cache.clone()),
                Binding::Storage(cache),
                Binding::Storage(cast_slice(&table).to_vec()),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, start as u32),
            ],
            (n * (n_head * half + 2 * kv_dim)).div_ceil(64) as u32,
        )
        .unwrap();
        let (mut want_q, mut want_k) = (q.clone(), old.clone());
        let mut want_v = old.clone();
        for t in 0..n {
            for h in want_q[t * n_head * hd..(t + 1) * n_head * hd].chunks_mut(hd) {
                rotate(h, t, neox);
            }
            let mut kt = k[t * kv_dim..(t + 1) * kv_dim].to_vec();
            for h in kt.chunks_mut(hd) {
                rotate(h, t, neox);
            }
            want_k.extend(kt);
            want_v.extend_from_slice(&v[t * kv_dim..(t + 1) * kv_dim]);
        }
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let ones = |n: usize| vec![1.0; n];
        assert_close(&format!("rope_kv q neox={neox}"), &f32s(&out[0]), &f64s(&want_q), &ones(want_q.len()));
        assert_close(&format!("rope_kv k cache neox={neox}"), &f32s(&out[3]), &f64s(&want_k), &ones(want_k.len()));
        assert_eq!(f32s(&out[4]), want_v, "rope_kv v cache neox={neox}");
    }
}

/// Decoding one token, attention also rotates its query and the new key and stores the key
/// and value (rope_kv.wgsl's work, fused): against f64 RoPE and attention, with grouped
/// queries, partial rotary dims, both pair layouts, a cache longer than one tile and windows.
#[test]
fn fused_decode_attention_rotates_stores_and_attends() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (n_head, n_kv, hd, rope_dim, start) = (4usize, 2usize, 10usize, 8usize, 70usize);
    let (half, kv_dim) = (rope_dim / 2, n_kv * hd);
    let table = rope_table(start + 1, half, rope_dim);
    let rotate = |x: &[f32], neox: bool| -> Vec<f64> {
        let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for i in 0..half {
            let (c, s) = (table[(start * half + i) * 2] as f64, table[(start * half + i) * 2 + 1] as f64);
            let (a, b) = if neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (x[a] as f64, x[b] as f64);
            y[a] = x0 * c - x1 * s;
            y[b] = x0 * s + x1 * c;
        }
        y
    };
    let scale_f = 1.0 / (hd as f32).sqrt();
    for neox in [false, true] {
        for window in [0usize, 3] {
            let q = floats(&mut rng, n_head * hd);
            let (k, v) = (floats(&mut rng, kv_dim), floats(&mut rng, kv_dim));
            let (old_k, old_v) = (floats(&mut rng, start * kv_dim), floats(&mut rng, start * kv_dim));
            let with_poison = |old: &[f32]| {
                let mut c: Vec<u8> = cast_slice(old).to_vec();
                c.extend(poison(kv_dim));
                c
            };
            let pa = params::Attention {
                n_head: n_head as u32,
                n_head_kv: n_kv as u32,
                head_dim: hd as u32,
                kv_dim: kv_dim as u32,
                scale: scale_f,
                window: window as u32,
                fused: 1,
                half: half as u32,
                neox: neox as u32,
                proj_rows: 0,
                proj_row_words: 0,
                proj_w_base: 0,
                alibi_m0: 0.0,
                alibi_m1: 0.0,
                alibi_heads: 0,
                bidirectional: 0,
                keys: 0,
                rel_span: 0,
                _pad: [0; 2],
            };
            let out = run_kernel(
                &ctx,
                Kernel::Attention,
                None,
                &[
                    Binding::Storage(cast_slice(&q).to_vec()),
                    Binding::Storage(with_poison(&old_k)),
                    Binding::Storage(with_poison(&old_v)),
                    Binding::Storage(poison(n_head * hd)),
                    Binding::Uniform(bytes_of(&pa).to_vec()),
                    step(1, start as u32),
                    Binding::Storage(cast_slice(&k).to_vec()),
                    Binding::Storage(cast_slice(&v).to_vec()),
                    Binding::Storage(cast_slice(&table).to_vec()),
                ],
                n_head as u32,
            )
            .unwrap();
            let new_k: Vec<f64> = k.chunks(hd).flat_map(|h| rotate(h, neox)).collect();
            let key = |j: usize, i: usize| if j == start { new_k[i] } else { old_k[j * kv_dim + i] as f64 };
            let value = |j: usize, i: usize| if j == start { v[i] as f64 } else { old_v[j * kv_dim + i] as f64 };
            let what = format!("neox={neox} window={window}");
            let stored_k = &f32s(&out[1])[start * kv_dim..];
            assert_close(&format!("fused attention: stored key, {what}"), stored_k, &new_k, &vec![1.0; kv_dim]);
            assert_eq!(&f32s(&out[2])[start * kv_dim..], &v[..], "fused attention: stored value, {what}");
            let mut want = Vec::new();
            for h in 0..n_head {
                let kvo = (h / (n_head / n_kv)) * hd;
                let qh = rotate(&q[h * hd..(h + 1) * hd], neox);
                let first = if window > 0 { (start + 1).saturating_sub(window) } else { 0 };
                let s: Vec<f64> = (first..=start).map(|j| (0..hd).map(|d| qh[d] * key(j, kvo + d)).sum::<f64>() * scale_f as f64).collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..hd {
                    want.push((first..=start).zip(&e).map(|(j, e)| e / z * value(j, kvo + d)).sum::<f64>());
                }
            }
            assert_close(&format!("fused attention: output, {what}"), &f32s(&out[3]), &want, &vec![1.0; want.len()]);
        }
    }
}

#[test]
fn matmul_glu_with_stacked_weights() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let cases = MATMULS.into_iter().flat_map(|k| [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::F16, GgmlType::Q4_K].map(|t| (k, t)));
    for ((kernel, ty), gelu) in cases.flat_map(|c| [(c, false), (c, true)]) {
        let (rows, cols, n, skip) = (77usize, ty.block_len().max(96), 19usize, 5usize);
        // [5 unrelated rows][gate rows][up rows]: w_base skips the first, glu_rows finds up.
        let all = random_rows(&mut rng, ty, skip + 2 * rows, cols);
        let wf = dequant(ty, &all, skip + 2 * rows, cols);
        let gpu = to_gpu_layout(ty, &all);
        let row_words = (gpu.len() / (skip + 2 * rows) / 4) as u32;
        let x = floats(&mut rng, n * cols);
        let p = params::MatMul {
            w_base: skip as u32 * row_words,
            glu: 1 + gelu as u32,
            glu_rows: rows as u32,
            ..params::MatMul::plain(rows as u32, cols as u32, row_words, rows as u32)
        };
        let out = run_kernel(
            &ctx,
            kernel,
            Some(ty),
            &[
                Binding::Storage(gpu),
                Binding::Storage(cast_slice(&x).to_vec()),
                Binding::Storage(poison(n * rows)),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, 0),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
            ],
            matmul_groups(kernel, rows as u32, n as u32),
        )
        .unwrap();
        let dot = |r: usize, t: usize| (0..cols).map(|c| wf[r * cols + c] as f64 * x[t * cols + c] as f64).sum::<f64>();
        let (mut want, mut scale) = (Vec::new(), Vec::new());
        for t in 0..n {
            for r in 0..rows {
                let (g, u) = (dot(skip + r, t), dot(skip + rows + r, t));
                want.push(if gelu { gelu_tanh(g) } else { g / (1.0 + (-g).exp()) } * u);
                scale.push((g.abs() + 1.0) * (u.abs() + 1.0));
            }
        }
        assert_close(&format!("glu {kernel:?} {ty:?} gelu={gelu}"), &f32s(&out[2]), &want, &scale);
    }
}

#[test]
fn matmul_routes_stacked_rows_to_three_outputs() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    // Q, K and V of different heights stacked in one buffer, as the GPU backend stores them.
    let (heights, cols, n) = ([45usize, 17, 17], 64usize, 19usize);
    let total: usize = heights.iter().sum();
    for ((kernel, ty), with_bias) in MATMULS.into_iter().flat_map(|k| [GgmlType::Q4_1, GgmlType::Q8_0].map(|t| (k, t))).flat_map(|c| [(c, false), (c, true)]) {
        let w = random_rows(&mut rng, ty, total, cols);
        // Q/K/V biases stacked like the weights (Qwen2's K biases reach ±145).
        let bias: Vec<f32> = floats(&mut rng, total).iter().map(|b| b * 150.0).collect();
        let wf = dequant(ty, &w, total, cols);
        let gpu = to_gpu_layout(ty, &w);
        let x = floats(&mut rng, n * cols);
        let (h0, h1, h2) = (heights[0] as u32, heights[1] as u32, heights[2] as u32);
        let p = params::MatMul {
            split1: h0,
            split2: h0 + h1,
            stride2: h1,
            stride3: h2,
            bias: with_bias as u32,
            ..params::MatMul::plain(total as u32, cols as u32, (gpu.len() / total / 4) as u32, h0)
        };
        let out = run_kernel(
            &ctx,
            kernel,
            Some(ty),
            &[
                Binding::Storage(gpu),
                Binding::Storage(cast_slice(&x).to_vec()),
                Binding::Storage(poison(n * heights[0])),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, 0),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(poison(n * heights[1])),
                Binding::Storage(poison(n * heights[2])),
                Binding::Storage(cast_slice(&bias).to_vec()),
                Binding::Storage(vec![0; 16]),
            ],
            matmul_groups(kernel, total as u32, n as u32),
        )
        .unwrap();
        let mut base = 0;
        for (k, &h) in heights.iter().enumerate() {
            let binding = [2, 6, 7][k];
            let (mut want, mut scale) = (Vec::new(), Vec::new());
            for t in 0..n {
                for r in 0..h {
                    let terms = (0..cols).map(|c| wf[(base + r) * cols + c] as f64 * x[t * cols + c] as f64);
                    let b = if with_bias { bias[base + r] as f64 } else { 0.0 };
                    want.push(b + terms.clone().sum::<f64>());
                    scale.push(b.abs() + terms.map(f64::abs).sum::<f64>());
                }
            }
            assert_close(&format!("stacked {kernel:?} {ty:?} bias={with_bias} output {k}"), &f32s(&out[binding]), &want, &scale);
            base += h;
        }
    }
}

/// Decoding one token, attention can also multiply each head's output by its slice of the
/// output projection (attention_proj.wgsl), writing one partial product per head; the matmuls
/// that read the residual next add them (matmul_io.wgsl's `parts`). Both against f64.
#[test]
fn decode_attention_times_its_output_projection_and_matmuls_add_the_partials() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (n_head, n_kv, hd, start, n_embd) = (4usize, 2usize, 64usize, 70usize, 40usize);
    let (half, kv_dim) = (hd / 2, n_kv * hd);
    let table = rope_table(start + 1, half, hd);
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q5_0, GgmlType::F16, GgmlType::F32] {
        let q = floats(&mut rng, n_head * hd);
        let (k, v) = (floats(&mut rng, kv_dim), floats(&mut rng, kv_dim));
        let (old_k, old_v) = (floats(&mut rng, (start + 1) * kv_dim), floats(&mut rng, (start + 1) * kv_dim));
        let wo = random_rows(&mut rng, ty, n_embd, n_head * hd);
        let wf = dequant(ty, &wo, n_embd, n_head * hd);
        let gpu_w = to_gpu_layout(ty, &wo);
        let pa = params::Attention {
            n_head: n_head as u32,
            n_head_kv: n_kv as u32,
            head_dim: hd as u32,
            kv_dim: kv_dim as u32,
            scale: 0.125,
            window: 0,
            fused: 1,
            half: half as u32,
            neox: 1,
            proj_rows: n_embd as u32,
            proj_row_words: (gpu_w.len() / n_embd / 4) as u32,
            proj_w_base: 0,
            alibi_m0: 0.0,
            alibi_m1: 0.0,
            alibi_heads: 0,
            bidirectional: 0,
            keys: 0,
            rel_span: 0,
            _pad: [0; 2],
        };
        let mut bindings = vec![
            Binding::Storage(cast_slice(&q).to_vec()),
            Binding::Storage(cast_slice(&old_k).to_vec()),
            Binding::Storage(cast_slice(&old_v).to_vec()),
            Binding::Storage(poison(n_head * hd)),
            Binding::Uniform(bytes_of(&pa).to_vec()),
            step(1, start as u32),
            Binding::Storage(cast_slice(&k).to_vec()),
            Binding::Storage(cast_slice(&v).to_vec()),
            Binding::Storage(cast_slice(&table).to_vec()),
        ];
        // The heads' outputs from the plain kernel (checked against f64 by the test above).
        let heads = f32s(&run_kernel(&ctx, Kernel::Attention, None, &bindings, n_head as u32).unwrap()[3]);
        bindings[3] = Binding::Storage(poison(n_head * n_embd));
        bindings.push(Binding::Storage(gpu_w));
        let parts = f32s(&run_kernel(&ctx, Kernel::AttentionProj, Some(ty), &bindings, n_head as u32).unwrap()[3]);
        let mut want = Vec::new();
        for h in 0..n_head {
            for r in 0..n_embd {
                want.push((0..hd).map(|d| wf[r * n_head * hd + h * hd + d] as f64 * heads[h * hd + d] as f64).sum::<f64>());
            }
        }
        let scale: Vec<f64> = (0..n_head * n_embd).map(|i| (0..hd).map(|d| (wf[(i % n_embd) * n_head * hd + (i / n_embd) * hd + d] * heads[(i / n_embd) * hd + d]).abs() as f64).sum()).collect();
        assert_close(&format!("attention times W_o, {ty:?}"), &parts, &want, &scale);
    }

    // A matmul adds the partials to its (normalised) input and, accumulating, to its output:
    // for one token only (a batch runs the projection itself).
    let (rows, cols, n_parts) = (33usize, 96usize, 3usize);
    let ty = GgmlType::Q8_0;
    let w = random_rows(&mut rng, ty, rows, cols);
    let wf = dequant(ty, &w, rows, cols);
    let x = floats(&mut rng, 2 * cols);
    let gain = floats(&mut rng, cols);
    let y0 = floats(&mut rng, 2 * rows);
    for (parts_in, n_tokens) in [(true, 1usize), (false, 1), (true, 2), (false, 2)] {
        let width = if parts_in { cols } else { rows };
        let parts = floats(&mut rng, n_parts * width);
        let p = params::MatMul {
            accumulate: !parts_in as u32,
            norm: parts_in as u32,
            eps: 1e-5,
            parts_in: if parts_in { n_parts as u32 } else { 0 },
            parts_out: if parts_in { 0 } else { n_parts as u32 },
            ..params::MatMul::plain(rows as u32, cols as u32, (to_gpu_layout(ty, &w).len() / rows / 4) as u32, rows as u32)
        };
        let out = run_kernel(
            &ctx,
            Kernel::MatMul,
            Some(ty),
            &[
                Binding::Storage(to_gpu_layout(ty, &w)),
                Binding::Storage(cast_slice(&x[..n_tokens * cols]).to_vec()),
                Binding::Storage(if parts_in { poison(n_tokens * rows) } else { cast_slice(&y0[..n_tokens * rows]).to_vec() }),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n_tokens as u32, 0),
                Binding::Storage(cast_slice(&gain).to_vec()),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(vec![0; 16]),
                Binding::Storage(cast_slice(&parts).to_vec()),
            ],
            matmul_groups(Kernel::MatMul, rows as u32, n_tokens as u32),
        )
        .unwrap();
        let added = |i: usize| if n_tokens == 1 { (0..n_parts).map(|h| parts[h * width + i] as f64).sum::<f64>() } else { 0.0 };
        let (mut want, mut scale) = (Vec::new(), Vec::new());
        for t in 0..n_tokens {
            let xin: Vec<f64> = (0..cols).map(|c| x[t * cols + c] as f64 + if parts_in { added(c) } else { 0.0 }).collect();
            let xs: Vec<f64> = if parts_in {
                let s = 1.0 / (xin.iter().map(|v| v * v).sum::<f64>() / cols as f64 + 1e-5).sqrt();
                xin.iter().zip(&gain).map(|(v, &g)| v * s * g as f64).collect()
            } else {
                xin
            };
            for r in 0..rows {
                let terms: Vec<f64> = (0..cols).map(|c| wf[r * cols + c] as f64 * xs[c]).collect();
                let base = if parts_in { 0.0 } else { y0[t * rows + r] as f64 + added(r) };
                want.push(base + terms.iter().sum::<f64>());
                scale.push(base.abs() + terms.iter().map(|v| v.abs()).sum::<f64>());
            }
        }
        assert_close(&format!("matmul with partials, in={parts_in} tokens={n_tokens}"), &f32s(&out[2]), &want, &scale);
    }
}

#[test]
fn layer_norm_odd_width_with_and_without_bias() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (dim, n) = (97usize, 3usize);
    // An offset the mean must remove.
    let x: Vec<f32> = floats(&mut rng, n * dim).iter().map(|v| v + 3.0).collect();
    let (w, b) = (floats(&mut rng, dim), floats(&mut rng, dim));
    for with_bias in [false, true] {
        let p = params::Norm { dim: dim as u32, eps: 1e-5, accumulate: 0, mode: 1 | (with_bias as u32) << 1 };
        let out = run_kernel(
            &ctx,
            Kernel::Norm,
            None,
            &[
                Binding::Storage(cast_slice(&x).to_vec()),
                Binding::Storage(cast_slice(&w).to_vec()),
                Binding::Storage(poison(n * dim)),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, 0),
                Binding::Storage(cast_slice(&b).to_vec()),
            ],
            n as u32,
        )
        .unwrap();
        let mut want = Vec::new();
        for t in 0..n {
            let xs: Vec<f64> = x[t * dim..(t + 1) * dim].iter().map(|&v| v as f64).collect();
            let mean = xs.iter().sum::<f64>() / dim as f64;
            let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dim as f64;
            let s = 1.0 / (var + 1e-5).sqrt();
            want.extend(xs.iter().enumerate().map(|(i, v)| (v - mean) * s * w[i] as f64 + if with_bias { b[i] as f64 } else { 0.0 }));
        }
        let scale: Vec<f64> = want.iter().map(|v| v.abs().max(1.0)).collect();
        assert_close(&format!("layer norm bias={with_bias}"), &f32s(&out[2]), &want, &scale);
    }
}

#[test]
fn unary_gelu_odd_width() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    let (width, n) = (101usize, 3usize);
    let x: Vec<f32> = floats(&mut rng, n * width).iter().map(|v| v * 60.0).collect();
    let p = params::Glu { width: width as u32, act: 1, unary: 1, _pad: 0 };
    let out = run_kernel(
        &ctx,
        Kernel::Glu,
        None,
        &[Binding::Storage(cast_slice(&x).to_vec()), Binding::Storage(vec![0; 16]), Binding::Uniform(bytes_of(&p).to_vec()), step(n as u32, 0)],
        (n * width).div_ceil(64) as u32,
    )
    .unwrap();
    let want: Vec<f64> = x.iter().map(|&v| gelu_tanh(v as f64)).collect();
    let scale: Vec<f64> = x.iter().map(|v| v.abs().max(1.0) as f64).collect();
    assert_close("unary gelu", &f32s(&out[0]), &want, &scale);
}

#[test]
fn position_embeddings_add_the_rows_of_the_batch_positions() {
    let Some(ctx) = gpu_context() else { return };
    let mut rng = rng();
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let (rows, cols) = (20usize, 64usize);
        let table = random_rows(&mut rng, ty, rows, cols);
        let tf = dequant(ty, &table, rows, cols);
        let gpu = to_gpu_layout(ty, &table);
        let row_words = (gpu.len() / rows / 4) as u32;
        let (n, start) = (3usize, 11usize);
        let y0 = floats(&mut rng, n * cols);
        let p = params::Embed { dim: cols as u32, row_words, row_offset: 0, rows: rows as u32, scale: 1.0, positions: 1, _pad: [0; 2] };
        let out = run_kernel(
            &ctx,
            Kernel::Embed,
            Some(ty),
            &[
                Binding::Storage(gpu),
                // Token ids the position form does not read.
                Binding::Storage(cast_slice(&[0u32, 0, 0]).to_vec()),
                Binding::Storage(cast_slice(&y0).to_vec()),
                Binding::Uniform(bytes_of(&p).to_vec()),
                step(n as u32, start as u32),
            ],
            (n * cols).div_ceil(64) as u32,
        )
        .unwrap();
        let want: Vec<f64> = (0..n * cols).map(|i| y0[i] as f64 + tf[(start + i / cols) * cols + i % cols] as f64).collect();
        let scale: Vec<f64> = want.iter().map(|v| v.abs().max(1.0)).collect();
        assert_close(&format!("position embeddings {ty:?}"), &f32s(&out[2]), &want, &scale);
    }
}
