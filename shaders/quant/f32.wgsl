// F32 weights: one element per word.
const BLOCK_LEN: u32 = 1u;
const BLOCK_WORDS: u32 = 1u;

fn block_get(wo: u32, j: u32) -> f32 {
    return bitcast<f32>(w[wo]);
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    return bitcast<f32>(w[wo]) * x[xo];
}
