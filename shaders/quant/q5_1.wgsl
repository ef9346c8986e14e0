// Q5_1: [d: f16, m: f16] [qh: u32] [16 bytes of nibbles]; value = d * q + m.
const BLOCK_LEN: u32 = 32u;
const BLOCK_WORDS: u32 = 6u;

fn q5(wo: u32, j: u32) -> u32 {
    let byte = (w[wo + 2u + (j & 15u) / 4u] >> (8u * (j & 3u))) & 0xffu;
    let lo = select(byte & 0xfu, byte >> 4u, j >= 16u);
    return lo | (((w[wo + 1u] >> j) & 1u) << 4u);
}

fn block_get(wo: u32, j: u32) -> f32 {
    let dm = unpack2x16float(w[wo]);
    return dm.x * f32(q5(wo, j)) + dm.y;
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[wo]);
    var s = 0.0;
    var sx = 0.0;
    for (var j = 0u; j < 32u; j++) {
        let xv = x[xo + j];
        s += f32(q5(wo, j)) * xv;
        sx += xv;
    }
    return dm.x * s + dm.y * sx;
}
