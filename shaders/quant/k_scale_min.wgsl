// The 6-bit sub-block scales and minimums of Q4_K and Q5_K (12 packed bytes at byte 4 of the
// block), prepended to both decoders.

// (d · sc, dmin · m) of sub-block j (ggml's get_scale_min_k4 over bytes 4..16).
fn q45k_scale_min(wo: u32, j: u32) -> vec2<f32> {
    var sc: u32;
    var m: u32;
    if (j < 4u) {
        sc = byte_at(wo, 4u + j) & 63u;
        m = byte_at(wo, 8u + j) & 63u;
    } else {
        sc = (byte_at(wo, 8u + j) & 15u) | ((byte_at(wo, j) >> 6u) << 4u);
        m = (byte_at(wo, 8u + j) >> 4u) | ((byte_at(wo, 4u + j) >> 6u) << 4u);
    }
    return vec2<f32>(f16_at(wo, 0u) * f32(sc), f16_at(wo, 2u) * f32(m));
}
