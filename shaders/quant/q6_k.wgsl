// Q6_K, GPU layout: [ql: 128 bytes] [qh: 64 bytes] [scales: 16 × i8] [d: f16, pad: u16]
// (212 bytes, 53 words). In half h = e/128 at l = e%128: low 4 bits are nibble l/64 of
// ql[64h + l%64], high 2 bits are bits 2·(l/32) of qh[32h + l%32]; value = (d · sc) · (q − 32)
// with the signed scale of sub-block e/16.
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 53u;

fn q6k_scale(wo: u32, k: u32) -> f32 {
    let sc = i32(byte_at(wo, 192u + k) << 24u) >> 24u;
    return f16_at(wo, 208u) * f32(sc);
}

fn block_get(wo: u32, j: u32) -> f32 {
    let h = j / 128u;
    let l = j % 128u;
    let low = (byte_at(wo, 64u * h + l % 64u) >> (4u * (l / 64u))) & 15u;
    let high = (byte_at(wo, 128u + 32u * h + l % 32u) >> (2u * (l / 32u))) & 3u;
    return q6k_scale(wo, j / 16u) * f32(i32(low | (high << 4u)) - 32);
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var g = 0u; g < 8u; g++) {
        let h = g / 4u;
        let lg = g % 4u;
        let lw = wo + 16u * h + 8u * (lg % 2u);
        let lshift = 4u * (lg / 2u);
        let hw = wo + 32u + 8u * h;
        for (var half = 0u; half < 2u; half++) {
            var qx = 0.0;
            var sx = 0.0;
            for (var i = 4u * half; i < 4u * half + 4u; i++) {
                let xv = x4(xo + 32u * g + 4u * i);
                let q = ((w[lw + i] >> lshift) & 0x0f0f0f0fu) | (((w[hw + i] >> (2u * lg)) & 0x03030303u) << 4u);
                qx += dot(bytes4(q), xv);
                sx += xv.x + xv.y + xv.z + xv.w;
            }
            s += q6k_scale(wo, 2u * g + half) * (qx - 32.0 * sx);
        }
    }
    return s;
}
