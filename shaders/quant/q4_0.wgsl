// Q4_0, GPU layout: [d: f16, pad: u16] [16 bytes of nibbles]; value = d * (q - 8).
// Element j < 16 is the low nibble of byte j, element j + 16 its high nibble.
const BLOCK_LEN: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;

fn nibble(wo: u32, j: u32) -> u32 {
    let byte = (w[wo + 1u + (j & 15u) / 4u] >> (8u * (j & 3u))) & 0xffu;
    return select(byte & 0xfu, byte >> 4u, j >= 16u);
}

fn block_get(wo: u32, j: u32) -> f32 {
    return unpack2x16float(w[wo]).x * (f32(nibble(wo, j)) - 8.0);
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[wo]).x;
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let q = w[wo + 1u + i];
        for (var b = 0u; b < 4u; b++) {
            let byte = (q >> (8u * b)) & 0xffu;
            let j = xo + i * 4u + b;
            s += (f32(byte & 0xfu) - 8.0) * x[j] + (f32(byte >> 4u) - 8.0) * x[j + 16u];
        }
    }
    return d * s;
}
