// Q2_K: [scales: 16 bytes] [qs: 64 bytes] [d: f16, dmin: f16] (84 bytes, 21 words).
// Element e: q = (qs[32·(e/128) + e%32] >> 2·((e/32)%4)) & 3, sub-block e/16 with scale byte
// sc: value = (d · (sc & 15)) · q − dmin · (sc >> 4).
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 21u;

fn q2k_scale_min(wo: u32, sub: u32) -> vec2<f32> {
    let sc = byte_at(wo, sub);
    return vec2<f32>(f16_at(wo, 80u) * f32(sc & 15u), f16_at(wo, 82u) * f32(sc >> 4u));
}

fn block_get(wo: u32, j: u32) -> f32 {
    let dm = q2k_scale_min(wo, j / 16u);
    let q = (byte_at(wo, 16u + 32u * (j / 128u) + j % 32u) >> (2u * ((j / 32u) % 4u))) & 3u;
    return dm.x * f32(q) - dm.y;
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var g = 0u; g < 8u; g++) {
        let shift = 2u * (g % 4u);
        let qw = wo + 4u + 8u * (g / 4u);
        for (var half = 0u; half < 2u; half++) {
            var qx = 0.0;
            var sx = 0.0;
            for (var i = 4u * half; i < 4u * half + 4u; i++) {
                let xv = x4(xo + 32u * g + 4u * i);
                qx += dot(bytes4((w[qw + i] >> shift) & 0x03030303u), xv);
                sx += xv.x + xv.y + xv.z + xv.w;
            }
            let dm = q2k_scale_min(wo, 2u * g + half);
            s += dm.x * qx - dm.y * sx;
        }
    }
    return s;
}
