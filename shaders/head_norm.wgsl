// RMSNorm of every head in place (per-head Q/K norms): x[t][h] = x[t][h] / rms(x[t][h]) * w,
// one workgroup per (token, head). Two tensors in one dispatch: the first `n_heads` heads of
// each token are x's (weight w), the next `n_heads2` are x2's (weight w2) — Q and K together.

struct Params {
    n_heads: u32,
    n_heads2: u32,
    head_dim: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> x2: array<f32>;
@group(0) @binding(3) var<storage, read> w2: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

// Sum of v over the workgroup (every thread gets it).
fn workgroup_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            red[lid] += red[lid + off];
        }
        workgroupBarrier();
    }
    return red[0];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let per_token = p.n_heads + p.n_heads2;
    let g = linear_group(wid, nwg);
    if (g >= step.n_tokens * per_token) {
        return;
    }
    let t = g / per_token;
    let h = g % per_token;
    let second = h >= p.n_heads;
    let base = select(t * p.n_heads + h, t * p.n_heads2 + h - p.n_heads, second) * p.head_dim;
    var s = 0.0;
    for (var i = lid; i < p.head_dim; i += WG) {
        let v = select(x[base + i], x2[base + i], second);
        s += v * v;
    }
    let scale = inverseSqrt(workgroup_sum(s, lid) / f32(p.head_dim) + p.eps);
    for (var i = lid; i < p.head_dim; i += WG) {
        if (second) {
            x2[base + i] = x2[base + i] * scale * w2[i];
        } else {
            x[base + i] = x[base + i] * scale * w[i];
        }
    }
}
