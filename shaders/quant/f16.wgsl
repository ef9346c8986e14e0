// F16 weights: two elements per word, unpacked without the shader-f16 feature.
const BLOCK_LEN: u32 = 2u;
const BLOCK_WORDS: u32 = 1u;

fn block_get(wo: u32, j: u32) -> f32 {
    return unpack2x16float(w[wo])[j];
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    let v = unpack2x16float(w[wo]);
    return v.x * x[xo] + v.y * x[xo + 1u];
}
