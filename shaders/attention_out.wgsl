// Attention (attention.wgsl) writing each head's output.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = linear_group(wid, nwg);
    if (!attend(group, lid)) {
        return;
    }
    // Each thread reads back the elements it wrote: no barrier needed.
    for (var d = lid; d < p.head_dim; d += WG) {
        out[group * p.head_dim + d] = x[d];
    }
}
