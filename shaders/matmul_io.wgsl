// What both matmul kernels (matmul.wgsl for decode, matmul_tiled.wgsl for prefill) share:
// their parameters (params::MatMul), bindings, and where an output row goes.

struct Params {
    rows: u32,
    cols: u32,
    row_words: u32,
    accumulate: u32,
    // 1: read only the batch's last token and write one output row (logits for generation).
    last_only: u32,
    y_stride: u32,
    row_offset: u32,
    norm: u32,
    eps: f32,
    // Word offset of this weight's first row in the bound buffer.
    w_base: u32,
    glu: u32,
    glu_rows: u32,
    split1: u32,
    split2: u32,
    stride2: u32,
    stride3: u32,
    // 1: add bias[row_offset + r] to every output row (Q/K/V biases, stacked like the weights).
    bias: u32,
    // For one token: add the heads' partial output projections (attention_proj.wgsl) to the
    // input (parts_in of them) or, when accumulating, to the output (parts_out).
    parts_in: u32,
    parts_out: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;
// The RMSNorm weight when `norm` is set (any small buffer otherwise).
@group(0) @binding(5) var<storage, read> norm_w: array<f32>;
@group(0) @binding(6) var<storage, read_write> y2: array<f32>;
@group(0) @binding(7) var<storage, read_write> y3: array<f32>;
// The bias when `bias` is set (any small buffer otherwise).
@group(0) @binding(8) var<storage, read> bias: array<f32>;
// The partial projections, [head][element], when parts_in or parts_out is set.
@group(0) @binding(9) var<storage, read> parts: array<f32>;

// The sum of the first n partials of element i (of `width` per head).
fn parts_sum(n: u32, width: u32, i: u32) -> f32 {
    var s = 0.0;
    for (var h = 0u; h < n; h++) {
        s += parts[h * width + i];
    }
    return s;
}

// Input element i of the token whose row starts at `base`: with `parts_in`, the residual the
// attention's output projection has not been added to yet, plus that projection.
fn input_at(base: u32, i: u32) -> f32 {
    if (p.parts_in > 0u && step.n_tokens == 1u) {
        return src[base + i] + parts_sum(p.parts_in, p.cols, i);
    }
    return src[base + i];
}

// Stores output row `r` of token `t` (plus its bias): rows from `split2` on go to `y3`, from
// `split1` on to `y2`, the rest to `y` (added to it with `accumulate`).
fn store(t: u32, r: u32, value: f32) {
    var v = value;
    if (p.bias == 1u) {
        v += bias[p.row_offset + r];
    }
    if (r >= p.split2) {
        y3[t * p.stride3 + r - p.split2] = v;
    } else if (r >= p.split1) {
        y2[t * p.stride2 + r - p.split1] = v;
    } else {
        let o = t * p.y_stride + p.row_offset + r;
        if (p.accumulate == 1u) {
            if (p.parts_out > 0u && step.n_tokens == 1u) {
                v += parts_sum(p.parts_out, p.y_stride, p.row_offset + r);
            }
            y[o] += v;
        } else {
            y[o] = v;
        }
    }
}
