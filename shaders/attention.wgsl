// Causal attention of each query head over the layer's cache (one workgroup per token and
// head, online softmax over tiles). With `window` > 0, a query at position p sees only the
// keys at p − window < p' <= p (sliding-window layers).

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    kv_dim: u32,
    scale: f32,
    window: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k_cache: array<f32>;
@group(0) @binding(2) var<storage, read> v_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let group = linear_group(wid, nwg);
    let t = group / p.n_head;
    if (t >= step.n_tokens) {
        return;
    }
    let h = group % p.n_head;
    let hd = p.head_dim;
    let kv_off = (h / (p.n_head / p.n_head_kv)) * hd;
    let pos = step.start_pos + t;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[(t * p.n_head + h) * hd + d];
    }
    workgroupBarrier();
    var m = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    let first = select(0u, pos + 1u - p.window, p.window > 0u && pos + 1u > p.window);
    for (var base = first; base <= pos; base += WG) {
        let j = base + lid;
        var s = -3.0e38;
        if (j <= pos) {
            var dot = 0.0;
            let kb = j * p.kv_dim + kv_off;
            for (var d = 0u; d < hd; d++) {
                dot += qs[d] * k_cache[kb + d];
            }
            s = dot * p.scale;
        }
        sc[lid] = s;
        workgroupBarrier();
        var tmax = m;
        for (var jj = 0u; jj < WG; jj++) {
            tmax = max(tmax, sc[jj]);
        }
        let corr = exp(m - tmax);
        l *= corr;
        acc *= corr;
        let count = min(WG, pos + 1u - base);
        for (var jj = 0u; jj < count; jj++) {
            let e = exp(sc[jj] - tmax);
            l += e;
            let vb = (base + jj) * p.kv_dim + kv_off;
            for (var c = 0u; c < 4u; c++) {
                let d = lid + c * WG;
                if (d < hd) {
                    acc[c] += e * v_cache[vb + d];
                }
            }
        }
        m = tmax;
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        let d = lid + c * WG;
        if (d < hd) {
            out[(t * p.n_head + h) * hd + d] = acc[c] / l;
        }
    }
}
