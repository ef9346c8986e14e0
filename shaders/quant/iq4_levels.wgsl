// The 16 non-linear levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl), prepended to both
// decoders.

var<private> IQ4_LEVELS: array<f32, 16> = array<f32, 16>(
    -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

// Levels of the low (hi = 0) or high (hi = 4) nibbles of a word's four bytes.
fn iq4_levels4(word: u32, hi: u32) -> vec4<f32> {
    return vec4<f32>(IQ4_LEVELS[(word >> hi) & 15u], IQ4_LEVELS[(word >> (8u + hi)) & 15u],
                     IQ4_LEVELS[(word >> (16u + hi)) & 15u], IQ4_LEVELS[(word >> (24u + hi)) & 15u]);
}

// Dot of 16 bytes of nibbles at word `qw` with x[xo .. xo + 32].
fn iq4_dot32(qw: u32, xo: u32) -> f32 {
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let word = w[qw + i];
        s += dot(iq4_levels4(word, 0u), x4(xo + 4u * i)) + dot(iq4_levels4(word, 4u), x4(xo + 16u + 4u * i));
    }
    return s;
}
