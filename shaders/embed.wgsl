// y[t][e] = table[token[t]][e] · scale for the tokens whose row lies in this part of the table;
// with `positions`, y[t][e] += table[start + t][e] (a learned position table).
// Needs a quant prelude (BLOCK_LEN, BLOCK_WORDS, block_get) and common.wgsl.

struct Params {
    dim: u32,
    row_words: u32,
    row_offset: u32,
    rows: u32,
    scale: f32,
    positions: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;
// Declared for the prelude's block_dot, which this kernel does not call.
@group(0) @binding(5) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_thread(gid, nwg);
    if (i >= step.n_tokens * p.dim) {
        return;
    }
    let t = i / p.dim;
    let e = i % p.dim;
    var id = tokens[t];
    if (p.positions == 1u) {
        id = step.start_pos + t;
    }
    if (id < p.row_offset || id >= p.row_offset + p.rows) {
        return;
    }
    let r = id - p.row_offset;
    let v = block_get(r * p.row_words + (e / BLOCK_LEN) * BLOCK_WORDS, e % BLOCK_LEN) * p.scale;
    if (p.positions == 1u) {
        y[i] += v;
    } else {
        y[i] = v;
    }
}
