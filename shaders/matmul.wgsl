// y[t][row_offset + r] (+)= W[r] · x[t] for the rows of one weight part; one workgroup handles
// ROWS rows of one token, LANES threads per row striding over its blocks.
// Needs a quant prelude (BLOCK_LEN, BLOCK_WORDS, block_dot) and common.wgsl.

struct Params {
    rows: u32,
    cols: u32,
    row_words: u32,
    accumulate: u32,
    // 1: read only the batch's last token and write one output row (logits for generation).
    last_only: u32,
    y_stride: u32,
    row_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

const ROWS: u32 = 4u;
const LANES: u32 = 16u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = linear_group(wid, nwg);
    let n_groups = (p.rows + ROWS - 1u) / ROWS;
    let n_out = select(step.n_tokens, 1u, p.last_only == 1u);
    let t = group / n_groups;
    if (t >= n_out) {
        return;
    }
    let r = (group % n_groups) * ROWS + lid / LANES;
    let lane = lid % LANES;
    let t_in = select(t, step.n_tokens - 1u, p.last_only == 1u);
    var s = 0.0;
    if (r < p.rows) {
        let n_blocks = p.cols / BLOCK_LEN;
        for (var b = lane; b < n_blocks; b += LANES) {
            s += block_dot(r * p.row_words + b * BLOCK_WORDS, t_in * p.cols + b * BLOCK_LEN);
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var off = LANES / 2u; off > 0u; off = off / 2u) {
        if (lane < off) {
            partial[lid] += partial[lid + off];
        }
        workgroupBarrier();
    }
    if (lane == 0u && r < p.rows) {
        let o = t * p.y_stride + p.row_offset + r;
        if (p.accumulate == 1u) {
            y[o] += partial[lid];
        } else {
            y[o] = partial[lid];
        }
    }
}
