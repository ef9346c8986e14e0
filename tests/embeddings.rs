//! Sentence embeddings (final normed hidden states, mean-pooled, L2-normalised) of the default
//! model against the float64 reference in tests/fixtures/embeddings (made by
//! tools/golden_embed.py from the golden float64 forward pass). The GPU's tolerance is the
//! fixture's guidance for an f32 runtime that may round matmul inputs to f16 (max abs component
//! difference ≤ 0.002, cosine ≥ 0.99998); the CPU computes in f32 throughout, within a few
//! times the guidance's pure-f32 yardstick (4e-7).

mod common;

use common::*;
use hearth::session::Session;

const GPU: (f64, f64) = (0.002, 0.99998);
const CPU: (f64, f64) = (2e-6, 0.9999999);
const MIN_COSINE: f64 = GPU.1;

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string("tests/fixtures/embeddings/smollm2-135m-instruct-q4_1.json").expect("fixture");
    serde_json::from_str(&text).unwrap()
}

fn check_against_float64(model: &hearth::model::Model, session: &mut Session, backend: &str, (max_abs_ok, min_cosine): (f64, f64)) {
    let fx = fixture();
    assert_eq!(fx["pooling"], "mean");
    for case in fx["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids = ids(&case["ids"]);
        assert_eq!(model.embedding_prompt(text).unwrap(), ids, "{text:?}: the engine's ids");
        let want = f64s(&case["embedding"]);
        let got = session.embed(&ids).unwrap();
        assert_eq!(got.len(), want.len());
        let norm: f64 = got.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let cosine: f64 = got.iter().zip(&want).map(|(&a, b)| a as f64 * b).sum::<f64>() / norm;
        let max_abs = got.iter().zip(&want).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        println!("{backend} {text:?}: cosine {cosine:.8}, max abs diff {max_abs:.2e}");
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
        assert!(max_abs <= max_abs_ok && cosine >= min_cosine, "{backend} {text:?}: cosine {cosine}, max abs diff {max_abs}");
    }
    // The conversation cache is left empty, and the next chat evaluates from scratch.
    assert!(session.tokens().is_empty());
}

#[test]
fn cpu_embeddings_match_float64() {
    let (model, mut session) = load_cpu(&model_path());
    check_against_float64(&model, &mut session, "cpu", CPU);
    // An empty input and a text longer than the context are clear errors.
    let err = session.embed(&[]).unwrap_err().to_string();
    assert!(err.contains("nothing to embed"), "{err}");
    let long = vec![504u32; 5000];
    let err = session.embed(&long).unwrap_err().to_string();
    assert!(err.starts_with("context_length_exceeded: 5000 tokens"), "{err}");
}

#[test]
fn gpu_embeddings_match_float64() {
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    let (model, mut session) = load_gpu(ctx, &model_path());
    check_against_float64(&model, &mut session, "gpu", GPU);
    // Longer than one prefill chunk: the pooled sum spans chunks.
    session.prefill_chunk = 3;
    check_against_float64(&model, &mut session, "gpu, 3-token chunks", GPU);
}

#[test]
fn the_cli_prints_openai_shaped_embeddings() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["embed", model_path().to_str().unwrap(), "--text", "The cat sat on the mat.", "--text", "hello", "--backend", "cpu", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fx = fixture();
    assert_eq!(v["object"], "list");
    assert_eq!(v["usage"]["prompt_tokens"], 8);
    for (i, case) in [0usize, 3].into_iter().enumerate() {
        assert_eq!(v["data"][i]["index"], i);
        let got = f64s(&v["data"][i]["embedding"]);
        let want = f64s(&fx["cases"][case]["embedding"]);
        let cosine: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        assert!(cosine >= MIN_COSINE, "case {case}: cosine {cosine}");
    }
    // The same from token ids (the fixture's), and a bad id list is one clear line.
    let dir = tempfile::tempdir().unwrap();
    let ids_file = dir.path().join("ids.json");
    std::fs::write(&ids_file, serde_json::to_string(&[&fx["cases"][0]["ids"], &fx["cases"][3]["ids"]]).unwrap()).unwrap();
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["embed", model_path().to_str().unwrap(), "--tokens", file.to_str().unwrap(), "--backend", "cpu", "--json"])
            .output()
            .unwrap()
    };
    let out = run(&ids_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["data"], v["data"], "embeddings from ids equal those from text");
    std::fs::write(&ids_file, "[1, 2, 99999999]").unwrap();
    let out = run(&ids_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("outside the vocabulary"), "{stderr}");
}
