// RoPE for the batch's queries (in place) and keys, with the rotated keys and the values
// written straight into the layer's cache at positions start_pos + t: what rope.wgsl twice and
// kv_store.wgsl do, in one dispatch. Threads per token: query pairs, then key elements, then
// value elements.

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    // Rotated pairs per head (rope dims / 2).
    half: u32,
    // 0: adjacent pairs (x[2i], x[2i+1]); 1: NeoX pairs (x[i], x[i + half]).
    neox: u32,
    kv_dim: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(5) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> p: Params;
@group(0) @binding(7) var<uniform> step: Step;

// Element indices (within a head) of rotation pair `i`.
fn pair(i: u32) -> vec2<u32> {
    return select(vec2<u32>(2u * i, 2u * i + 1u), vec2<u32>(i, i + p.half), p.neox == 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    let n_q = p.n_head * p.half;
    let per_token = n_q + 2u * p.kv_dim;
    if (i >= step.n_tokens * per_token) {
        return;
    }
    let t = i / per_token;
    let j = i % per_token;
    let pos = step.start_pos + t;
    let hd = p.head_dim;
    if (j < n_q) {
        let h = j / p.half;
        let k_i = j % p.half;
        let cs = table[pos * p.half + k_i];
        let ab = (t * p.n_head + h) * hd + pair(k_i);
        let x0 = q[ab.x];
        let x1 = q[ab.y];
        q[ab.x] = x0 * cs.x - x1 * cs.y;
        q[ab.y] = x0 * cs.y + x1 * cs.x;
        return;
    }
    let e = j - n_q;
    if (e < p.kv_dim) {
        // One key element: rotated with its partner, or copied where RoPE covers fewer dims.
        let d = e % hd;
        let head = e - d;
        var out = k[t * p.kv_dim + e];
        if (d < 2u * p.half) {
            let k_i = select(d / 2u, d % p.half, p.neox == 1u);
            let ab = pair(k_i);
            let cs = table[pos * p.half + k_i];
            let x0 = k[t * p.kv_dim + head + ab.x];
            let x1 = k[t * p.kv_dim + head + ab.y];
            out = select(x0 * cs.y + x1 * cs.x, x0 * cs.x - x1 * cs.y, d == ab.x);
        }
        k_cache[pos * p.kv_dim + e] = out;
        return;
    }
    let ev = e - p.kv_dim;
    v_cache[pos * p.kv_dim + ev] = v[t * p.kv_dim + ev];
}
