// Causal attention of each query head over the layer's cache (one workgroup per token and
// head, online softmax over tiles), or with `bidirectional` (an encoder) over every position
// of the batch, or with `keys` over that many (cross-attention); T5 adds relative position
// biases (`rel_span`). With `window` > 0, a query at position p sees only the
// keys at p − window < p' <= p (sliding-window layers). With ALiBi (`alibi_heads` > 0) each
// score gets its head's slope times (p' − p).
//
// With `fused` (decoding one token) it also does rope_kv.wgsl's work, saving that dispatch:
// it rotates its query head and the new key in workgroup memory, the first query head of
// each KV group stores the rotated key and the value at the new position, and every head
// attends to the new position from workgroup memory (the cache row is being written in this
// very dispatch) and to the earlier ones from the cache.
//
// This file holds the attention itself (`attend`); the entry point follows it:
// attention_out.wgsl writes the heads' outputs, attention_proj.wgsl multiplies each by its
// slice of the output projection instead.

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    kv_dim: u32,
    scale: f32,
    window: u32,
    fused: u32,
    // RoPE (with `fused`): rotated pairs per head; 0: adjacent pairs, 1: NeoX pairs.
    half: u32,
    neox: u32,
    // attention_proj.wgsl: the output projection's rows, words per row, first word.
    proj_rows: u32,
    proj_row_words: u32,
    proj_w_base: u32,
    // ALiBi: slopes m0^(h+1) for the first alibi_heads heads, m1^(2(h − alibi_heads) + 1) after.
    alibi_m0: f32,
    alibi_m1: f32,
    alibi_heads: u32,
    // 1: every query sees every position of the batch (an encoder).
    bidirectional: u32,
    // > 0: every query sees keys 0 .. keys − 1 (cross-attention over an encoded input).
    keys: u32,
    // > 0 (T5): each score gets table[h · rel_span + (key − query) + (rel_span − 1) / 2], the
    // head's learned bias for that relative position.
    rel_span: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(2) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;
// With `fused`: the new token's keys and values (before RoPE) and the cos/sin table (pairs);
// with `rel_span` (never fused: T5 has no RoPE), the relative position biases instead. One
// binding for both keeps the kernel within WebGPU's 8 storage buffers per stage.
@group(0) @binding(6) var<storage, read> k_new: array<f32>;
@group(0) @binding(7) var<storage, read> v_new: array<f32>;
@group(0) @binding(8) var<storage, read> table: array<f32>;

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;
var<workgroup> kn: array<f32, 256>;
var<workgroup> vn: array<f32, 256>;
// The head's output (named x: the weight decoders' block_dot reads x).
var<workgroup> x: array<f32, 256>;

// Element indices (within a head) of rotation pair `i`.
fn pair(i: u32) -> vec2<u32> {
    return select(vec2<u32>(2u * i, 2u * i + 1u), vec2<u32>(i, i + p.half), p.neox == 1u);
}

// Rotates the pairs of a head held in `qs` (which = 0) or `kn` (which = 1) for position `pos`.
fn rotate(which: u32, pos: u32, lid: u32) {
    for (var i = lid; i < p.half; i += WG) {
        let ab = pair(i);
        let t = 2u * (pos * p.half + i);
        let cs = vec2<f32>(table[t], table[t + 1u]);
        if (which == 0u) {
            let x0 = qs[ab.x];
            let x1 = qs[ab.y];
            qs[ab.x] = x0 * cs.x - x1 * cs.y;
            qs[ab.y] = x0 * cs.y + x1 * cs.x;
        } else {
            let x0 = kn[ab.x];
            let x1 = kn[ab.y];
            kn[ab.x] = x0 * cs.x - x1 * cs.y;
            kn[ab.y] = x0 * cs.y + x1 * cs.x;
        }
    }
}

// Attends for workgroup `group` (token group / n_head, head group % n_head) and leaves the
// head's output in x: element d is written by thread d % WG. False when the group has no token.
fn attend(group: u32, lid: u32) -> bool {
    let t = group / p.n_head;
    if (t >= step.n_tokens) {
        return false;
    }
    let h = group % p.n_head;
    let hd = p.head_dim;
    let group_size = p.n_head / p.n_head_kv;
    let kv_off = (h / group_size) * hd;
    let pos = step.start_pos + t;
    let fused = p.fused == 1u;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[(t * p.n_head + h) * hd + d];
        if (fused) {
            kn[d] = k_new[kv_off + d];
            vn[d] = v_new[kv_off + d];
        }
    }
    workgroupBarrier();
    if (fused) {
        rotate(0u, pos, lid);
        rotate(1u, pos, lid);
        workgroupBarrier();
        if (h % group_size == 0u) {
            for (var d = lid; d < hd; d += WG) {
                k_cache[pos * p.kv_dim + kv_off + d] = kn[d];
                v_cache[pos * p.kv_dim + kv_off + d] = vn[d];
            }
        }
    }
    var slope = 0.0;
    if (p.alibi_heads > 0u) {
        if (h < p.alibi_heads) {
            slope = pow(p.alibi_m0, f32(h + 1u));
        } else {
            slope = pow(p.alibi_m1, f32(2u * (h - p.alibi_heads) + 1u));
        }
    }
    var m = -3.0e38;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    let first = select(0u, pos + 1u - p.window, p.window > 0u && pos + 1u > p.window);
    // The last key seen: the query's own, (bidirectional) the batch's last, or the encoded
    // input's last.
    let last = select(select(pos, step.start_pos + step.n_tokens - 1u, p.bidirectional == 1u), p.keys - 1u, p.keys > 0u);
    let rel_base = h * p.rel_span + (p.rel_span - 1u) / 2u;
    for (var base = first; base <= last; base += WG) {
        let j = base + lid;
        var s = -3.0e38;
        if (j <= last) {
            var dot = 0.0;
            let kb = j * p.kv_dim + kv_off;
            if (fused && j == pos) {
                for (var d = 0u; d < hd; d++) {
                    dot += qs[d] * kn[d];
                }
            } else {
                for (var d = 0u; d < hd; d++) {
                    dot += qs[d] * k_cache[kb + d];
                }
            }
            s = dot * p.scale + slope * (f32(j) - f32(pos));
            if (p.rel_span > 0u) {
                s += table[rel_base + j - pos];
            }
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
        let count = min(WG, last + 1u - base);
        for (var jj = 0u; jj < count; jj++) {
            let e = exp(sc[jj] - tmax);
            l += e;
            let vb = (base + jj) * p.kv_dim + kv_off;
            let from_new = fused && base + jj == pos;
            for (var c = 0u; c < 4u; c++) {
                let d = lid + c * WG;
                if (d < hd) {
                    // Not a select: the cache row of the new position is being written now.
                    if (from_new) {
                        acc[c] += e * vn[d];
                    } else {
                        acc[c] += e * v_cache[vb + d];
                    }
                }
            }
        }
        m = tmax;
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        let d = lid + c * WG;
        if (d < hd) {
            x[d] = acc[c] / l;
        }
    }
    return true;
}
