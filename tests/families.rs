//! Decoder families beyond llama on tiny synthetic models (tests/fixtures/families, made by
//! tools/make_families.py): teacher-forced logits on the CPU and the GPU against llama.cpp
//! 0.3.36 with an F32 KV cache and against an independent float64 pass. Tolerances: on F32
//! weights centered RMS ≤ 1e-3 against llama.cpp (whose GELU goes through an f16 table) and
//! ≤ 1e-4 against float64 (a plain f32 forward is within 5e-7; a wrong GELU form or norm ε moves
//! it by 1.5e-4 or more); on Q8_0 weights ≤ 0.03 against float64.

mod common;

use std::path::PathBuf;

use common::*;
use hearth::backend::LogitsFor;
use hearth::session::Session;

/// The families this engine runs, as fixture stems.
const STEMS: &[&str] = &["gpt2", "gptneox", "gptneox-seqres", "bloom", "phi2", "falcon", "stablelm", "starcoder2", "phi3", "glm4", "chatglm"];

fn fixture(stem: &str, kind: &str) -> (PathBuf, serde_json::Value) {
    let dir = PathBuf::from("tests/fixtures/families").join(stem.split('-').next().unwrap());
    let json = std::fs::read_to_string(dir.join(format!("{stem}-{kind}.json"))).expect("fixture JSON");
    (dir.join(format!("{stem}-{kind}.gguf")), serde_json::from_str(&json).unwrap())
}

/// Every position's logits of the fixture's ids against its references.
fn check(stem: &str, kind: &str, backend: &str, session: &mut Session, n_vocab: usize) {
    let (_, fx) = fixture(stem, kind);
    let logits = session.append(&ids(&fx["ids"]), LogitsFor::All).unwrap();
    session.clear();
    let (vs_llamacpp, vs_f64) = logits_vs_references(&logits, &fx, n_vocab);
    assert_family_bounds(&format!("{stem} {kind} on {backend}"), kind, vs_llamacpp, vs_f64);
}

#[test]
fn families_match_llama_cpp_and_float64_on_the_cpu() {
    for stem in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, _) = fixture(stem, kind);
            let (model, mut session) = load_cpu(&path);
            check(stem, kind, "cpu", &mut session, model.config().n_vocab);
        }
    }
}

#[test]
fn families_match_llama_cpp_and_float64_on_the_gpu() {
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    for stem in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, _) = fixture(stem, kind);
            let (model, mut session) = load_gpu(ctx.clone(), &path);
            check(stem, kind, "gpu", &mut session, model.config().n_vocab);
            // Decoding token by token gives the batch's logits too.
            let (_, fx) = fixture(stem, kind);
            let ids = ids(&fx["ids"]);
            assert_decode_equals_batch(&mut session, &ids[..6], model.config().n_vocab, &format!("{stem} {kind}"));
            // Embeddings (the final norm computed on its own) equal the CPU's.
            let gpu = session.embed(&ids).unwrap();
            let (_, mut cpu_session) = load_cpu(&path);
            let cpu = cpu_session.embed(&ids).unwrap();
            let max_abs = gpu.iter().zip(&cpu).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(max_abs < 1e-5, "{stem} {kind}: GPU embedding differs from the CPU's by {max_abs}");
        }
    }
}

#[test]
fn a_learned_position_table_ends_the_context() {
    let (path, _) = fixture("gpt2", "f32");
    let (_, mut session) = load_cpu(&path);
    assert_eq!(session.backend().max_context(), 128, "the table's 128 rows, not the 4096 asked for");
    let err = session.append(&vec![5u32; 129], LogitsFor::Last).unwrap_err().to_string();
    assert!(err.starts_with("context_length_exceeded: 129 tokens do not fit in the context of 128"), "{err}");
}
