// One sampled token from the top-k selection (shaders/top_k.wgsl's (key, id) pairs, best
// first), in one workgroup: the draw the CPU sampler makes (src/sampler), step for step —
// top-p, then min-p on the temperature-1 softmax, then an inverse-CDF draw at the temperature,
// walking the kept tokens in id order, with Philox4x32-10's number for (seed, the step's draw
// counter). The id goes where the next step's embedding reads it; the Philox words follow it,
// for tests.

struct Params {
    k: u32,
    seed_lo: u32,
    seed_hi: u32,
    top_p: f32,
    ln_min_p: f32,
    inv_temp: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> cand: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> result: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

const WG: u32 = 256u;
const PADDING: u32 = 0xffffffffu;
// exp(l - max) at temperature 1 (for the truncations) and at the draw's temperature.
var<workgroup> w1: array<f32, 256>;
var<workgroup> wt: array<f32, 256>;
// How many candidates the truncations keep, and the kept ones' weights and ids in id order.
var<workgroup> kept: u32;
var<workgroup> by_id_w: array<f32, 256>;
var<workgroup> by_id: array<u32, 256>;

// The inverse of top_k.wgsl's sort_key.
fn logit_of_key(key: u32) -> f32 {
    return bitcast<f32>(select(~key, key & 0x7fffffffu, (key >> 31u) == 1u));
}

// The high word of a 32x32-bit product, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_hi(a: u32, b: u32) -> u32 {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let hl = ah * bl;
    // Cannot overflow: < 2^16 + 2^16 + (2^16 - 1)^2.
    let mid = ((al * bl) >> 16u) + (hl & 0xffffu) + al * bh;
    return ah * bh + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var key = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            key = key + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let m0 = 0xD2511F53u;
        let m1 = 0xCD9E8D57u;
        c = vec4<u32>(mul_hi(m1, c.z) ^ c.y ^ key.x, m1 * c.z, mul_hi(m0, c.x) ^ c.w ^ key.y, m0 * c.x);
    }
    return c;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let top = logit_of_key(cand[0].x);
    if (lid < p.k && cand[lid].y != PADDING) {
        let d = logit_of_key(cand[lid].x) - top;
        w1[lid] = exp(d);
        wt[lid] = exp(d * p.inv_temp);
    }
    workgroupBarrier();
    if (lid == 0u) {
        kept = truncate();
    }
    let n = workgroupUniformLoad(&kept);
    // Each kept candidate's place in id order: how many kept ones have a smaller id.
    if (lid < n) {
        let id = cand[lid].y;
        var rank = 0u;
        for (var j = 0u; j < n; j++) {
            rank += u32(cand[j].y < id);
        }
        by_id_w[rank] = wt[lid];
        by_id[rank] = id;
    }
    workgroupBarrier();
    if (lid != 0u) {
        return;
    }
    let bits = philox4x32_10(vec4<u32>(step.draw_lo, step.draw_hi, 0u, 0u), vec2<u32>(p.seed_lo, p.seed_hi));
    // 24 bits: the same number in f32 as in the CPU's f64.
    let u = f32(bits.x >> 8u) / 16777216.0;
    var total = 0.0;
    for (var i = 0u; i < n; i++) {
        total += by_id_w[i];
    }
    var id = by_id[n - 1u];
    var acc = 0.0;
    for (var i = 0u; i < n; i++) {
        acc += by_id_w[i] / total;
        if (u < acc) {
            id = by_id[i];
            break;
        }
    }
    result[0] = id;
    result[1] = bits.x;
    result[2] = bits.y;
    result[3] = bits.z;
    result[4] = bits.w;
}

// The candidates the truncations keep (a prefix of the sorted ones; at least one).
fn truncate() -> u32 {
    var n = p.k;
    for (var i = 0u; i < p.k; i++) {
        if (cand[i].y == PADDING) {
            n = i;
            break;
        }
    }
    // Top-p: the smallest prefix whose probability reaches top_p.
    if (p.top_p < 1.0 && n > 1u) {
        var total = 0.0;
        for (var i = 0u; i < n; i++) {
            total += w1[i];
        }
        var acc = 0.0;
        for (var i = 0u; i < n; i++) {
            acc += w1[i] / total;
            if (acc >= p.top_p) {
                n = i + 1u;
                break;
            }
        }
    }
    // Min-p: logits at least max + ln(min_p) (p_i / p_max = exp(l_i - l_max)).
    let floor = logit_of_key(cand[0].x) + p.ln_min_p;
    var keep = 0u;
    while (keep < n && logit_of_key(cand[keep].x) >= floor) {
        keep++;
    }
    return max(keep, 1u);
}
