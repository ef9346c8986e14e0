// Q8_0, GPU layout: [d: f16, pad: u16] [32 signed bytes]; value = d * q.
const BLOCK_LEN: u32 = 32u;
const BLOCK_WORDS: u32 = 9u;

fn i8_at(word: u32, b: u32) -> f32 {
    return f32(i32(word << (24u - 8u * b)) >> 24u);
}

fn block_get(wo: u32, j: u32) -> f32 {
    return unpack2x16float(w[wo]).x * i8_at(w[wo + 1u + j / 4u], j & 3u);
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let d = unpack2x16float(w[wo]).x;
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let q = w[wo + 1u + i];
        let j = xo + i * 4u;
        s += i8_at(q, 0u) * x[j] + i8_at(q, 1u) * x[j + 1u] + i8_at(q, 2u) * x[j + 2u] + i8_at(q, 3u) * x[j + 3u];
    }
    return d * s;
}
