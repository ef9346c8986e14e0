//! The fuzz targets' smoke run, part of the test command: each target of
//! `fuzz/fuzz_targets/targets.rs` over its seeds (`fuzz/seeds/<target>/`), the inputs of every
//! crash found so far (`fuzz/regressions/<target>/`), then random mutations of them for a few
//! seconds (`HEARTH_FUZZ_SECONDS`, default 3; the seed is printed and `HEARTH_SEED` replays it).
//! The long coverage-guided runs use cargo-fuzz and libFuzzer (`fuzz/README.md`).

#[path = "../fuzz/fuzz_targets/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            out.extend(paths.iter().map(|p| std::fs::read(p).unwrap()));
        }
    }
    assert!(!out.is_empty(), "fuzz/seeds/{target} is empty");
    out
}

/// One random mutation of `input` (with `other` for splices).
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let n = |rng: &mut ChaCha8Rng, max: usize| (rng.next_u32() as usize) % max.max(1);
    for _ in 0..1 + n(rng, 4) {
        match n(rng, 6) {
            0 if !v.is_empty() => {
                let i = n(rng, v.len());
                v[i] ^= 1 << n(rng, 8);
            }
            1 if !v.is_empty() => {
                let i = n(rng, v.len());
                v[i] = [0, 0xff, 0x7f, 0x80, b'<', b'{', b'"', b'\n'][n(rng, 8)];
            }
            2 => {
                let i = n(rng, v.len() + 1);
                let bytes: Vec<u8> = (0..1 + n(rng, 16)).map(|_| rng.next_u32() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if !v.is_empty() => {
                let i = n(rng, v.len());
                let j = (i + 1 + n(rng, 64)).min(v.len());
                v.drain(i..j);
            }
            4 if !other.is_empty() => {
                let i = n(rng, v.len() + 1);
                let j = n(rng, other.len());
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            _ => v.truncate(n(rng, v.len() + 1)),
        }
    }
    v
}

/// Runs `f` on every input and then on mutations until the time is up; a panic saves the
/// input to `target/tmp/` and fails with its path.
fn smoke(target: &str, f: fn(&[u8])) {
    let seed = std::env::var("HEARTH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let _ = writeln!(std::io::stderr(), "fuzz smoke {target}: seed {seed} (replay with HEARTH_SEED={seed})");
    let secs: u64 = std::env::var("HEARTH_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let corpus = inputs(target);
    targets::init();
    let run = |input: &[u8]| {
        let t0 = Instant::now();
        if std::panic::catch_unwind(|| f(input)).is_err() {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-smoke-{target}-crash"));
            std::fs::write(&path, input).unwrap();
            panic!("{target} panicked on the input saved at {} (seed {seed})", path.display());
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{target}: one input took {:?}", t0.elapsed());
    };
    for input in &corpus {
        run(input);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut runs = corpus.len();
    while Instant::now() < deadline {
        let a = &corpus[(rng.next_u32() as usize) % corpus.len()];
        let b = &corpus[(rng.next_u32() as usize) % corpus.len()];
        run(&mutate(&mut rng, a, b));
        runs += 1;
    }
    let _ = writeln!(std::io::stderr(), "fuzz smoke {target}: {runs} inputs, no panic");
}

#[test]
fn gguf_reader() {
    smoke("gguf_reader", targets::gguf_reader);
}

#[test]
fn tokenizer() {
    smoke("tokenizer", targets::tokenizer);
}

#[test]
fn chat_template() {
    smoke("chat_template", targets::chat_template);
}

#[test]
fn json_schema() {
    smoke("json_schema", targets::json_schema);
}
