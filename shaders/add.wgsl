// y += x element-wise over the batch: a residual add (x as wide as y), or a bias added to
// every token (`broadcast`: x holds one vector of `width`).

struct Params {
    width: u32,
    broadcast: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    if (i >= step.n_tokens * p.width) {
        return;
    }
    y[i] += x[select(i, i % p.width, p.broadcast == 1u)];
}
