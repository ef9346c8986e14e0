// Q5_K: [d: f16, dmin: f16] [scales: 12 bytes] [qh: 32 bytes] [qs: 128 bytes] (176 bytes,
// 44 words). As Q4_K, with bit j of qh[i] as the fifth bit of element i of sub-block j.
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 44u;

fn block_get(wo: u32, j: u32) -> f32 {
    let sub = j / 32u;
    let dm = q45k_scale_min(wo, sub);
    let low = (byte_at(wo, 48u + 32u * (sub / 2u) + j % 32u) >> (4u * (sub % 2u))) & 15u;
    let high = (byte_at(wo, 16u + j % 32u) >> sub) & 1u;
    return dm.x * f32(low | (high << 4u)) - dm.y;
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var sub = 0u; sub < 8u; sub++) {
        let shift = 4u * (sub % 2u);
        let qw = wo + 12u + 8u * (sub / 2u);
        var qx = 0.0;
        var sx = 0.0;
        for (var i = 0u; i < 8u; i++) {
            let xv = x4(xo + 32u * sub + 4u * i);
            let q = ((w[qw + i] >> shift) & 0x0f0f0f0fu) | (((w[wo + 4u + i] >> sub) & 0x01010101u) << 4u);
            qx += dot(bytes4(q), xv);
            sx += xv.x + xv.y + xv.z + xv.w;
        }
        let dm = q45k_scale_min(wo, sub);
        s += dm.x * qx - dm.y * sx;
    }
    return s;
}
