// The prefill form of matmul.wgsl: the same parameters, bindings and fused options (norm, glu,
// split outputs, accumulate), but each workgroup computes ROWS rows for TOKS tokens at once.
// Each thread owns one row and decodes each of its weights once for all TOKS tokens, so a
// batch of n tokens reads the weights n / TOKS times instead of n times. `last_only` is not
// supported here: one output token is the decode kernel's job.
// Needs a quant prelude (BLOCK_LEN, BLOCK_WORDS, block_get), matmul_io.wgsl and common.wgsl.

const ROWS: u32 = 64u;
const TOKS: u32 = 16u;
const WG: u32 = 64u;
// Input columns staged per token; a multiple of 4 (blocks may be longer: weights are located
// by absolute column).
const TILE: u32 = 128u;
// TOKS * TILE floats (8 KiB), four columns per element so each weight quad meets each token's
// inputs in one dot product.
var<workgroup> xq: array<vec4<f32>, 512>;
// Only so the quant prelude's `block_dot`, which this kernel does not call, compiles.
var<workgroup> x: array<f32, 1>;
var<workgroup> partial: array<f32, 64>;
var<workgroup> scales: array<f32, 16>;

// Weights c..c+3 of the row starting at word `row` (zero from column `end` on, where f32 and
// f16 rows may end mid-quad).
fn weight_quad(row: u32, c: u32, end: u32) -> vec4<f32> {
    var q = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) {
        let j = c + k;
        if (j < end) {
            q[k] = block_get(row + (j / BLOCK_LEN) * BLOCK_WORDS, j % BLOCK_LEN);
        }
    }
    return q;
}

// acc[tt] += the weight quad · token tt's inputs at quad xo (rows of TILE / 4 = 32 quads in xq),
// for the TOKS = 16 tokens. Written out:
// llvmpipe (software Vulkan) keeps the accumulators in registers only then (prefill ~20 %
// faster there); GPU compilers unroll the loop this replaces anyway.
fn accumulate(acc: ptr<function, array<f32, 16>>, wv: vec4<f32>, xo: u32) {
    (*acc)[0] += dot(wv, xq[0u + xo]);
    (*acc)[1] += dot(wv, xq[32u + xo]);
    (*acc)[2] += dot(wv, xq[64u + xo]);
    (*acc)[3] += dot(wv, xq[96u + xo]);
    (*acc)[4] += dot(wv, xq[128u + xo]);
    (*acc)[5] += dot(wv, xq[160u + xo]);
    (*acc)[6] += dot(wv, xq[192u + xo]);
    (*acc)[7] += dot(wv, xq[224u + xo]);
    (*acc)[8] += dot(wv, xq[256u + xo]);
    (*acc)[9] += dot(wv, xq[288u + xo]);
    (*acc)[10] += dot(wv, xq[320u + xo]);
    (*acc)[11] += dot(wv, xq[352u + xo]);
    (*acc)[12] += dot(wv, xq[384u + xo]);
    (*acc)[13] += dot(wv, xq[416u + xo]);
    (*acc)[14] += dot(wv, xq[448u + xo]);
    (*acc)[15] += dot(wv, xq[480u + xo]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = linear_group(wid, nwg);
    let n_groups = (p.rows + ROWS - 1u) / ROWS;
    let n = step.n_tokens;
    let t_base = (group / n_groups) * TOKS;
    if (t_base >= n) {
        return;
    }
    let n_here = min(TOKS, n - t_base);
    if (p.norm == 1u) {
        // WG / TOKS threads per token sum its squares.
        let tt = lid / (WG / TOKS);
        var ss = 0.0;
        if (tt < n_here) {
            let base = (t_base + tt) * p.cols;
            for (var i = lid % (WG / TOKS); i < p.cols; i += WG / TOKS) {
                let v = src[base + i];
                ss += v * v;
            }
        }
        partial[lid] = ss;
        workgroupBarrier();
        if (lid < TOKS) {
            var s = 0.0;
            for (var k = 0u; k < WG / TOKS; k++) {
                s += partial[lid * (WG / TOKS) + k];
            }
            scales[lid] = inverseSqrt(s / f32(p.cols) + p.eps);
        }
        workgroupBarrier();
    }
    let r = (group % n_groups) * ROWS + lid;
    var acc: array<f32, 16>;
    var acc_up: array<f32, 16>;
    for (var t0 = 0u; t0 < p.cols; t0 += TILE) {
        let len = min(TILE, p.cols - t0);
        for (var i = lid; i < TOKS * TILE / 4u; i += WG) {
            let tt = i / (TILE / 4u);
            let c = (i % (TILE / 4u)) * 4u;
            var v = vec4<f32>(0.0);
            if (tt < n_here) {
                for (var k = 0u; k < 4u; k++) {
                    if (c + k < len) {
                        var e = src[(t_base + tt) * p.cols + t0 + c + k];
                        if (p.norm == 1u) {
                            e = e * scales[tt] * norm_w[t0 + c + k];
                        }
                        v[k] = e;
                    }
                }
            }
            xq[i] = v;
        }
        workgroupBarrier();
        if (r < p.rows) {
            let row = p.w_base + r * p.row_words;
            for (var c = 0u; c < len; c += 4u) {
                accumulate(&acc, weight_quad(row, t0 + c, t0 + len), c / 4u);
                if (p.glu != 0u) {
                    accumulate(&acc_up, weight_quad(row + p.glu_rows * p.row_words, t0 + c, t0 + len), c / 4u);
                }
            }
        }
        workgroupBarrier();
    }
    if (r >= p.rows) {
        return;
    }
    for (var tt = 0u; tt < n_here; tt++) {
        let t = t_base + tt;
        var v = acc[tt];
        if (p.glu != 0u) {
            v = activate(v, p.glu - 1u) * acc_up[tt];
        }
        store(t, r, v);
    }
}
