// gate = act(gate) * up, or with `unary` gate = act(gate), element-wise over the batch (act: 0
// SiLU, 1 GELU tanh approximation, 2 ReLU).

struct Params {
    width: u32,
    act: u32,
    unary: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    if (i >= step.n_tokens * p.width) {
        return;
    }
    let a = activate(gate[i], p.act);
    if (p.unary == 1u) {
        gate[i] = a;
    } else {
        gate[i] = a * up[i];
    }
}
