// Index of the largest of the first n logits (the lowest index among equals), in one
// workgroup: each thread scans a strided slice, then a tree reduction.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var v = -3.4e38;
    var idx = 0xffffffffu;
    for (var i = lid; i < p.n; i += WG) {
        let l = logits[i];
        if (l > v) {
            v = l;
            idx = i;
        }
    }
    best_v[lid] = v;
    best_i[lid] = idx;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            let ov = best_v[lid + off];
            let oi = best_i[lid + off];
            if (ov > best_v[lid] || (ov == best_v[lid] && oi < best_i[lid])) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        result[0] = select(best_i[0], 0u, best_i[0] == 0xffffffffu);
    }
}
