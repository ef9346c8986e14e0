// IQ4_XS: [d: f16, scales_h: u16] [scales_l: 4 bytes] [qs: 128 bytes] (136 bytes, 34 words).
// Sub-block j (32 elements) has the 6-bit scale sc = (4 bits of scales_l, 2 of scales_h) − 32
// and its 16 bytes of nibbles at qs[16j] laid out as IQ4_NL: value = (d · sc) · LEVELS[q].
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 34u;

fn iq4xs_scale(wo: u32, j: u32) -> f32 {
    let lo = (byte_at(wo, 4u + j / 2u) >> (4u * (j % 2u))) & 15u;
    let hi = (w[wo] >> (16u + 2u * j)) & 3u;
    return f16_at(wo, 0u) * f32(i32(lo | (hi << 4u)) - 32);
}

fn block_get(wo: u32, j: u32) -> f32 {
    let sub = j / 32u;
    let q = (byte_at(wo, 8u + 16u * sub + j % 16u) >> (4u * ((j % 32u) / 16u))) & 15u;
    return iq4xs_scale(wo, sub) * IQ4_LEVELS[q];
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var sub = 0u; sub < 8u; sub++) {
        s += iq4xs_scale(wo, sub) * iq4_dot32(wo + 2u + 4u * sub, xo + 32u * sub);
    }
    return s;
}
