// Q4_K: [d: f16, dmin: f16] [scales: 12 bytes] [qs: 128 bytes] (144 bytes, 36 words).
// Sub-block j (32 elements) has a 6-bit scale and minimum packed as in q45k_scale_min; its
// element i is nibble j%2 of qs[32·(j/2) + i]: value = (d · sc) · q − dmin · m.
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 36u;

fn block_get(wo: u32, j: u32) -> f32 {
    let sub = j / 32u;
    let dm = q45k_scale_min(wo, sub);
    let q = (byte_at(wo, 16u + 32u * (sub / 2u) + j % 32u) >> (4u * (sub % 2u))) & 15u;
    return dm.x * f32(q) - dm.y;
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var sub = 0u; sub < 8u; sub++) {
        let shift = 4u * (sub % 2u);
        let qw = wo + 4u + 8u * (sub / 2u);
        var qx = 0.0;
        var sx = 0.0;
        for (var i = 0u; i < 8u; i++) {
            let xv = x4(xo + 32u * sub + 4u * i);
            qx += dot(bytes4((w[qw + i] >> shift) & 0x0f0f0f0fu), xv);
            sx += xv.x + xv.y + xv.z + xv.w;
        }
        let dm = q45k_scale_min(wo, sub);
        s += dm.x * qx - dm.y * sx;
    }
    return s;
}
