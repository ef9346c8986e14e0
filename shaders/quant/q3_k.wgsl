// Q3_K, GPU layout: [hmask: 32 bytes] [qs: 64 bytes] [scales: 12 bytes] [d: f16, pad: u16]
// (112 bytes, 28 words). Element e: low = (qs[32·(e/128) + e%32] >> 2·((e/32)%4)) & 3,
// high = (hmask[e%32] >> (e/32)) & 1, value = (d · sc) · (low + 4·high − 4) with the 6-bit
// scale sc of sub-block e/16.
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 28u;

fn q3k_scale(wo: u32, k: u32) -> f32 {
    let lo = (byte_at(wo, 96u + k % 8u) >> (4u * (k / 8u))) & 15u;
    let hi = (byte_at(wo, 104u + k % 4u) >> (2u * (k / 4u))) & 3u;
    return f16_at(wo, 108u) * f32(i32(lo | (hi << 4u)) - 32);
}

fn block_get(wo: u32, j: u32) -> f32 {
    let low = (byte_at(wo, 32u + 32u * (j / 128u) + j % 32u) >> (2u * ((j / 32u) % 4u))) & 3u;
    let high = (byte_at(wo, j % 32u) >> (j / 32u)) & 1u;
    return q3k_scale(wo, j / 16u) * f32(i32(low + 4u * high) - 4);
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var g = 0u; g < 8u; g++) {
        let shift = 2u * (g % 4u);
        let qw = wo + 8u + 8u * (g / 4u);
        for (var half = 0u; half < 2u; half++) {
            var qx = 0.0;
            var sx = 0.0;
            for (var i = 4u * half; i < 4u * half + 4u; i++) {
                let xv = x4(xo + 32u * g + 4u * i);
                let q = ((w[qw + i] >> shift) & 0x03030303u) | (((w[wo + i] >> g) & 0x01010101u) << 2u);
                qx += dot(bytes4(q), xv);
                sx += xv.x + xv.y + xv.z + xv.w;
            }
            s += q3k_scale(wo, 2u * g + half) * (qx - 4.0 * sx);
        }
    }
    return s;
}
