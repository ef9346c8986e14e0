//! T5's relative position buckets, as llama.cpp computes them (`llama_relative_position_bucket`):
//! exact buckets for small distances, logarithmic ones up to 128, and (bidirectional, the
//! encoder) half of the buckets for keys after the query. The float and double steps are
//! llama.cpp's, so that a distance on a bucket boundary lands where llama.cpp puts it.

/// The bucket of a key at `rel` = key position − query position (`n_buckets` ≥ 4, as the
/// config checks: below that llama.cpp's formula has no exact buckets).
pub fn bucket(rel: i64, n_buckets: usize, bidirectional: bool) -> usize {
    const MAX_DISTANCE: i64 = 128;
    let mut n = n_buckets as i64;
    if bidirectional {
        n >>= 1;
    }
    let max_exact = n >> 1;
    let (mut bucket, distance) = if bidirectional { (if rel > 0 { n } else { 0 }, rel.abs()) } else { (0, -rel.min(0)) };
    if distance < max_exact {
        bucket += distance;
    } else {
        // floorf(max_exact + logf(1.0 * d / max_exact) * (n - max_exact) / log(1.0 * 128 / max_exact)):
        // logf of a double rounded to float, times an integer as float, over a double log.
        let log = ((distance as f64 / max_exact as f64) as f32).ln();
        let scaled = (log * (n - max_exact) as f32) as f64 / (MAX_DISTANCE as f64 / max_exact as f64).ln();
        let large = ((max_exact as f64 + scaled) as f32).floor() as i64;
        bucket += large.min(n - 1);
    }
    bucket.max(0) as usize
}

/// Each head's bias for every relative position from `−(len − 1)` to `len − 1`, at index
/// `h · (2·len − 1) + rel + len − 1`, from `table` (`n_buckets` rows of `n_head` biases).
pub fn bias_table(table: &[f32], n_head: usize, n_buckets: usize, bidirectional: bool, len: usize) -> Vec<f32> {
    let span = 2 * len - 1;
    let mut out = vec![0.0f32; n_head * span];
    for (i, rel) in (-(len as i64 - 1)..len as i64).enumerate() {
        let b = bucket(rel, n_buckets, bidirectional);
        for h in 0..n_head {
            out[h * span + i] = table[b * n_head + h];
        }
    }
    out
}
