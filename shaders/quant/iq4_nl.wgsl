// IQ4_NL, GPU layout: [d: f16, pad: u16] [16 bytes of nibbles] (20 bytes, 5 words). Each
// nibble indexes the non-linear levels; element j < 16 is the low nibble of byte j, element
// j + 16 its high nibble: value = d · LEVELS[q].
const BLOCK_LEN: u32 = 32u;
const BLOCK_WORDS: u32 = 5u;

fn block_get(wo: u32, j: u32) -> f32 {
    let q = (byte_at(wo, 4u + j % 16u) >> (4u * (j / 16u))) & 15u;
    return f16_at(wo, 0u) * IQ4_LEVELS[q];
}

fn block_dot(wo: u32, xo: u32) -> f32 {
    return f16_at(wo, 0u) * iq4_dot32(wo + 1u, xo);
}
