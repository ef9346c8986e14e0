// RMSNorm of every head of x in place (per-head Q/K norms): x[t][h] = x[t][h] / rms(x[t][h])
// * weight, one workgroup per (token, head).

struct Params {
    n_heads: u32,
    head_dim: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = linear_group(wid, nwg);
    if (g >= step.n_tokens * p.n_heads) {
        return;
    }
    let base = g * p.head_dim;
    var s = 0.0;
    for (var i = lid; i < p.head_dim; i += WG) {
        let v = x[base + i];
        s += v * v;
    }
    red[lid] = s;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            red[lid] += red[lid + off];
        }
        workgroupBarrier();
    }
    let scale = inverseSqrt(red[0] / f32(p.head_dim) + p.eps);
    for (var i = lid; i < p.head_dim; i += WG) {
        x[base + i] = x[base + i] * scale * weight[i];
    }
}
