//! Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
//! counter-based generator of Random123, cuRAND and PyTorch: the n-th random number of a seed
//! is a pure function of (seed, n), so a GPU kernel (`shaders/draw.wgsl`, the same rounds) and
//! the CPU sampler draw the same numbers without sharing any state.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// The ten-round block function: four output words for a counter and a key.
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            key = [key[0].wrapping_add(W0), key[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mul_hi_lo(M0, ctr[0]);
        let (hi1, lo1) = mul_hi_lo(M1, ctr[2]);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
    }
    ctr
}

/// The block of draw `counter` under `seed`: key = the seed's two words, counter = the draw
/// index's two words then zeros (low words first).
pub fn block(seed: u64, counter: u64) -> [u32; 4] {
    philox4x32_10([counter as u32, (counter >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32])
}

/// Draw `counter`'s uniform number in [0, 1): the first word's top 24 bits, so that it is the
/// same number in a GPU's f32 as in f64.
pub fn uniform(seed: u64, counter: u64) -> f64 {
    (block(seed, counter)[0] >> 8) as f64 / (1u32 << 24) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors (`tests/kat_vectors`, "philox4x32 10").
    #[test]
    fn matches_the_random123_known_answers() {
        let cases = [
            ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
        ];
        for (ctr, key, want) in cases {
            assert_eq!(philox4x32_10(ctr, key), want, "counter {ctr:08x?} key {key:08x?}");
        }
    }

    #[test]
    fn seed_and_counter_map_to_key_and_counter_words() {
        assert_eq!(block(0xa4093822_299f31d0u64.rotate_left(32), 0x85a308d3_243f6a88), philox4x32_10([0x243f6a88, 0x85a308d3, 0, 0], [0xa4093822, 0x299f31d0]));
        assert_eq!(uniform(0, 0), (0x6627e8d5u32 >> 8) as f64 / 16_777_216.0);
    }
}
