// Rotates every head of x in place by its token's position, from a host-computed cos/sin table.

struct Params {
    n_heads: u32,
    head_dim: u32,
    // Rotated pairs per head (rope dims / 2).
    half: u32,
    // 0: adjacent pairs (x[2i], x[2i+1]); 1: NeoX pairs (x[i], x[i + half]).
    neox: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    let per_token = p.n_heads * p.half;
    if (i >= step.n_tokens * per_token) {
        return;
    }
    let t = i / per_token;
    let h = (i % per_token) / p.half;
    let k = i % p.half;
    let cs = table[(step.start_pos + t) * p.half + k];
    let base = (t * p.n_heads + h) * p.head_dim;
    let a = base + select(2u * k, k, p.neox == 1u);
    let b = base + select(2u * k + 1u, k + p.half, p.neox == 1u);
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * cs.x - x1 * cs.y;
    x[b] = x0 * cs.y + x1 * cs.x;
}
