// IQ4_XS: [d: f16, scales_h: u16] [scales_l: 4 bytes] [qs: 128 bytes] (136 bytes, 34 words).
// Sub-block j (32 elements) has the 6-bit scale sc = (4 bits of scales_l, 2 of scales_h) − 32
// and its 16 bytes of nibbles at qs[16j] laid out as IQ4_NL: value = (d · sc) · LEVELS[q].
const BLOCK_LEN: u32 = 256u;
const BLOCK_WORDS: u32 = 34u;

var<private> IQ4_LEVELS: array<f32, 16> = array<f32, 16>(
    -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

fn iq4_levels4(word: u32, hi: u32) -> vec4<f32> {
    return vec4<f32>(IQ4_LEVELS[(word >> hi) & 15u], IQ4_LEVELS[(word >> (8u + hi)) & 15u],
                     IQ4_LEVELS[(word >> (16u + hi)) & 15u], IQ4_LEVELS[(word >> (24u + hi)) & 15u]);
}

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
        var qx = 0.0;
        for (var i = 0u; i < 4u; i++) {
            let word = w[wo + 2u + 4u * sub + i];
            let xb = xo + 32u * sub + 4u * i;
            qx += dot(iq4_levels4(word, 0u), x4(xb)) + dot(iq4_levels4(word, 4u), x4(xb + 16u));
        }
        s += iq4xs_scale(wo, sub) * qx;
    }
    return s;
}
