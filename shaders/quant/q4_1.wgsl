// Q4_1: [d: f16, m: f16] [16 bytes of nibbles]; value = d * q + m.
const BLOCK_LEN: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;

fn block_get(wo: u32, j: u32) -> f32 {
    let dm = unpack2x16float(w[wo]);
    let byte = (w[wo + 1u + (j & 15u) / 4u] >> (8u * (j & 3u))) & 0xffu;
    let q = select(byte & 0xfu, byte >> 4u, j >= 16u);
    return dm.x * f32(q) + dm.y;
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let dm = unpack2x16float(w[wo]);
    var s = 0.0;
    var sx = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = w[wo + 1u + i];
        for (var b = 0u; b < 4u; b++) {
            let byte = (q >> (8u * b)) & 0xffu;
            let j = xo + i * 4u + b;
            let x0 = x[j];
            let x1 = x[j + 16u];
            s += f32(byte & 0xfu) * x0 + f32(byte >> 4u) * x1;
            sx += x0 + x1;
        }
    }
    return dm.x * s + dm.y * sx;
}
