//! Single-thread speed of the decode dot products over a matrix larger than the caches:
//! `cargo run --release --example dot_speed [MB]`.
use hearth::quant::{dot_row, GgmlType};
use std::time::Instant;

fn main() {
    let mb: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let k = 896;
    let x: Vec<f32> = (0..k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        let k = if ty.block_len() == 256 { 1024 } else { k };
        let x = &x.iter().cycle().take(k).copied().collect::<Vec<_>>();
        let row = ty.bytes_for(k as u64).unwrap() as usize;
        let rows = mb * 1_000_000 / row;
        // Scales that are ordinary halves (0x3c00 = 1.0) in every block's first bytes.
        let mut data: Vec<u8> = (0..rows * row).map(|i| (i * 7 % 251) as u8).collect();
        let bb = ty.block_bytes();
        for b in data.chunks_exact_mut(bb) {
            b[0] = 0x00;
            b[1] = 0x3c;
            if bb > 4 {
                b[2] = 0x00;
                b[3] = 0x3c;
            }
        }
        let mut best = f64::MAX;
        let mut sink = 0f32;
        for _ in 0..5 {
            let t = Instant::now();
            for r in 0..rows {
                sink += dot_row(ty, &data[r * row..(r + 1) * row], x);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{:>6}: {:5.2} GB/s, {:5.2} Gelem/s ({sink:e})", ty.name(), (rows * row) as f64 / best / 1e9, (rows * k) as f64 / best / 1e9);
    }
}
