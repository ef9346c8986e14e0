// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, or y[t] += that with `accumulate` (a
// post-norm joining the residual stream); one workgroup per token.

struct Params {
    dim: u32,
    eps: f32,
    accumulate: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = linear_group(wid, nwg);
    if (t >= step.n_tokens) {
        return;
    }
    let base = t * p.dim;
    var s = 0.0;
    for (var i = lid; i < p.dim; i += WG) {
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
    let scale = inverseSqrt(red[0] / f32(p.dim) + p.eps);
    for (var i = lid; i < p.dim; i += WG) {
        let v = x[base + i] * scale * weight[i];
        if (p.accumulate == 1u) {
            y[base + i] += v;
        } else {
            y[base + i] = v;
        }
    }
}
