// y[t][row_offset + r] (+)= W[r] · x'[t] for the rows of one weight part, where x' is x or,
// with `norm` set, RMSNorm(x) (the norm fused in, saving its dispatch). With `glu` set, W
// holds gate rows and, `glu_rows` further on, up rows, and the output is
// act(gate · x') * (up · x') with act SiLU (glu 1) or GELU (glu 2): the gated activation and
// the second matmul fused in. Rows from `split1`
// on go to `y2` and from `split2` on to `y3` (Q, K and V from one stacked weight). One workgroup
// handles ROWS rows of one token: the (normalised) input is staged in workgroup memory in
// tiles, and LANES threads per row stride over the blocks of each tile.
// Needs a quant prelude (BLOCK_LEN, BLOCK_WORDS, block_dot reading `x`), matmul_io.wgsl and
// common.wgsl.

const ROWS: u32 = 16u;
const LANES: u32 = 4u;
const WG: u32 = 64u;
// Elements of the input staged at a time (16 KiB, WebGPU's guaranteed workgroup storage).
const TILE: u32 = 3840u;
var<workgroup> x: array<f32, 3840>;
var<workgroup> partial: array<f32, 64>;
var<workgroup> partial_up: array<f32, 64>;

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
    let t_in = select(t, step.n_tokens - 1u, p.last_only == 1u);
    let base = t_in * p.cols;
    // An input that fits one tile is read once: the norm's pass stages it, and each thread
    // later rescales the elements it staged itself.
    let staged = p.norm == 1u && p.cols <= TILE;
    var scale = 1.0;
    if (p.norm == 1u) {
        var ss = 0.0;
        for (var i = lid; i < p.cols; i += WG) {
            let v = input_at(base, i);
            if (staged) {
                x[i] = v;
            }
            ss += v * v;
        }
        partial[lid] = ss;
        workgroupBarrier();
        for (var off = WG / 2u; off > 0u; off = off / 2u) {
            if (lid < off) {
                partial[lid] += partial[lid + off];
            }
            workgroupBarrier();
        }
        scale = inverseSqrt(partial[0] / f32(p.cols) + p.eps);
        workgroupBarrier();
    }
    let r = (group % n_groups) * ROWS + lid / LANES;
    let lane = lid % LANES;
    var s = 0.0;
    var s_up = 0.0;
    for (var t0 = 0u; t0 < p.cols; t0 += TILE) {
        let len = min(TILE, p.cols - t0);
        for (var i = lid; i < len; i += WG) {
            var v: f32;
            if (staged) {
                v = x[i];
            } else {
                v = input_at(base, t0 + i);
            }
            if (p.norm == 1u) {
                v = v * scale * norm_w[t0 + i];
            }
            x[i] = v;
        }
        workgroupBarrier();
        if (r < p.rows) {
            let b0 = t0 / BLOCK_LEN;
            let row = p.w_base + r * p.row_words;
            for (var b = lane; b < len / BLOCK_LEN; b += LANES) {
                s += block_dot(row + (b0 + b) * BLOCK_WORDS, b * BLOCK_LEN);
            }
            if (p.glu != 0u) {
                let up_row = row + p.glu_rows * p.row_words;
                for (var b = lane; b < len / BLOCK_LEN; b += LANES) {
                    s_up += block_dot(up_row + (b0 + b) * BLOCK_WORDS, b * BLOCK_LEN);
                }
            }
        }
        workgroupBarrier();
    }
    partial[lid] = s;
    partial_up[lid] = s_up;
    workgroupBarrier();
    for (var off = LANES / 2u; off > 0u; off = off / 2u) {
        if (lane < off) {
            partial[lid] += partial[lid + off];
            partial_up[lid] += partial_up[lid + off];
        }
        workgroupBarrier();
    }
    if (lane == 0u && r < p.rows) {
        var v = partial[lid];
        if (p.glu != 0u) {
            v = activate(v, p.glu - 1u) * partial_up[lid];
        }
        store(t, r, v);
    }
}
