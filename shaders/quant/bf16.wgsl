// BF16 weights: two elements per word; a bf16 is the top half of an f32.
const BLOCK_LEN: u32 = 2u;
const BLOCK_WORDS: u32 = 1u;

fn bf16_pair(word: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

fn block_get(wo: u32, j: u32) -> f32 {
    return bf16_pair(w[wo])[j];
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let v = bf16_pair(w[wo]);
    return v.x * x[xo] + v.y * x[xo + 1u];
}
