// Byte-level access to a block in the weight buffer `w` (blocks start on a word, `wo`), for
// the decoders whose fields are not whole words.

fn byte_at(wo: u32, i: u32) -> u32 {
    return (w[wo + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

// The f16 at byte `i` (even) of the block.
fn f16_at(wo: u32, i: u32) -> f32 {
    return unpack2x16float(w[wo + i / 4u] >> (8u * (i % 4u))).x;
}

// The four bytes of a word as floats.
fn bytes4(word: u32) -> vec4<f32> {
    return vec4<f32>(f32(word & 0xffu), f32((word >> 8u) & 0xffu), f32((word >> 16u) & 0xffu), f32(word >> 24u));
}

// x[xo .. xo + 4] as a vector.
fn x4(xo: u32) -> vec4<f32> {
    return vec4<f32>(x[xo], x[xo + 1u], x[xo + 2u], x[xo + 3u]);
}
