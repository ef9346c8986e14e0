// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight (RMSNorm), or with `layer`
// y[t] = (x[t] - mean) / sqrt(var + eps) * weight (+ bias with `has_bias`) (LayerNorm); or y[t]
// += that with `accumulate` (a post-norm joining the residual stream). One workgroup per token.

struct Params {
    dim: u32,
    eps: f32,
    accumulate: u32,
    // Bit 0: LayerNorm (else RMSNorm); bit 1: add `bias`.
    mode: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// The sum of every thread's `v` (all threads get it).
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            red[lid] += red[lid + off];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = linear_group(wid, nwg);
    if (t >= step.n_tokens) {
        return;
    }
    let base = t * p.dim;
    let layer = (p.mode & 1u) == 1u;
    var mean = 0.0;
    if (layer) {
        var s = 0.0;
        for (var i = lid; i < p.dim; i += WG) {
            s += x[base + i];
        }
        mean = workgroup_sum(lid, s) / f32(p.dim);
    }
    var s = 0.0;
    for (var i = lid; i < p.dim; i += WG) {
        let v = x[base + i] - mean;
        s += v * v;
    }
    let scale = inverseSqrt(workgroup_sum(lid, s) / f32(p.dim) + p.eps);
    for (var i = lid; i < p.dim; i += WG) {
        var v = (x[base + i] - mean) * scale * weight[i];
        if ((p.mode & 2u) == 2u) {
            v += bias[i];
        }
        if (p.accumulate == 1u) {
            y[base + i] += v;
        } else {
            y[base + i] = v;
        }
    }
}
