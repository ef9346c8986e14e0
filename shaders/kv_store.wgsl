// Copies the batch's key and value vectors into the cache at positions start_pos + t.

struct Params {
    kv_dim: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    if (i >= step.n_tokens * p.kv_dim) {
        return;
    }
    let o = step.start_pos * p.kv_dim + i;
    k_cache[o] = k[i];
    v_cache[o] = v[i];
}
