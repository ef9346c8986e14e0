// The k best of n entries, best first (largest logit; the lower id among equals), as a tree
// of workgroup sorts: each workgroup sorts 1024 entries in workgroup memory and keeps its best
// k; the host runs it again over the survivors until one workgroup remains. Level 0 reads the
// logits, later levels the (key, id) pairs of the previous one.

struct Params {
    n: u32,
    k: u32,
    from_logits: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> cand_in: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> cand_out: array<vec2<u32>>;
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;
const TILE: u32 = 1024u;
var<workgroup> keys: array<u32, 1024>;
var<workgroup> ids: array<u32, 1024>;

// Orders like f32::total_cmp: flip all bits of negatives, the sign bit of the rest.
fn sort_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn ranks_first(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wg.x * TILE;
    for (var j = 0u; j < TILE / WG; j++) {
        let slot = lid + j * WG;
        let i = base + slot;
        // Padding ranks after every real entry.
        var key = 0u;
        var id = 0xffffffffu;
        if (i < p.n) {
            if (p.from_logits == 1u) {
                key = sort_key(logits[i]);
                id = i;
            } else {
                let c = cand_in[i];
                key = c.x;
                id = c.y;
            }
        }
        keys[slot] = key;
        ids[slot] = id;
    }
    workgroupBarrier();
    // Bitonic sort, best first: blocks of `size` alternate direction until the last merge.
    for (var size = 2u; size <= TILE; size = size * 2u) {
        for (var stride = size / 2u; stride > 0u; stride = stride / 2u) {
            for (var j = 0u; j < TILE / 2u / WG; j++) {
                let t = lid + j * WG;
                let a = (t / stride) * stride * 2u + t % stride;
                let b = a + stride;
                let best_first = (a & size) == 0u;
                if (ranks_first(keys[a], ids[a], keys[b], ids[b]) != best_first) {
                    let k = keys[a];
                    let d = ids[a];
                    keys[a] = keys[b];
                    ids[a] = ids[b];
                    keys[b] = k;
                    ids[b] = d;
                }
            }
            workgroupBarrier();
        }
    }
    for (var j = 0u; j < TILE / WG; j++) {
        let slot = lid + j * WG;
        if (slot < p.k) {
            cand_out[wg.x * p.k + slot] = vec2<u32>(keys[slot], ids[slot]);
        }
    }
}
