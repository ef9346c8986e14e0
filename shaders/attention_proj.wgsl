// Attention (attention.wgsl) for one decoded token, times the output projection: head h
// multiplies its output by W_o's columns h·head_dim .. (h+1)·head_dim and writes that partial
// product, out[h][r] for every row r of W_o. The matmuls that read the residual next add the
// heads' partials (matmul_io.wgsl's `parts`), saving the projection's dispatch. Needs a weight
// format whose blocks divide head_dim.

@group(0) @binding(9) var<storage, read> w: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let h = linear_group(wid, nwg);
    if (!attend(h, lid)) {
        return;
    }
    workgroupBarrier();
    let blocks = p.head_dim / BLOCK_LEN;
    let first = h * blocks * BLOCK_WORDS;
    for (var r = lid; r < p.proj_rows; r += WG) {
        let row = p.proj_w_base + r * p.proj_row_words + first;
        var s = 0.0;
        for (var b = 0u; b < blocks; b++) {
            s += block_dot(row + b * BLOCK_WORDS, b * BLOCK_LEN);
        }
        out[h * p.proj_rows + r] = s;
    }
}
