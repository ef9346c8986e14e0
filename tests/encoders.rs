//! Encoders (BERT) on tiny synthetic models (tests/fixtures/families/bert, made by
//! tools/make_families.py): every token's final state and the pooled, normalised sentence
//! embedding on the CPU and the GPU against an independent float64 pass, and against llama.cpp
//! 0.3.36; the WordPiece tokenizer against llama.cpp's ids. Tolerances as the fixtures' README
//! suggests for a float32 runtime: token states RMS ≤ 2e-5 and embedding max abs ≤ 1e-5 against
//! float64 (a plain f32 forward reaches 2e-7 / 6e-7; a causal mask, a pre-norm block or a
//! missing token type move them by 0.3 or more); against llama.cpp, whose GELU goes through an
//! f16 table (and on Q8_0 its activations through 8 bits), 1e-4 on F32 and 5e-3 on Q8_0.

mod common;

use std::path::PathBuf;

use common::*;
use hearth::backend::LogitsFor;
use hearth::model::{Model, Pooling};
use hearth::session::Session;

/// The encoder fixtures, as (directory, stem).
const STEMS: &[(&str, &str)] = &[("bert", "bert"), ("bert", "bert-cls"), ("nomic-bert", "nomic-bert")];

/// `<stem>-<kind>.gguf` and its JSON (`kind` empty: `<stem>.gguf`).
fn fixture(dir: &str, stem: &str, kind: &str) -> (PathBuf, serde_json::Value) {
    let dir = PathBuf::from("tests/fixtures/families").join(dir);
    let name = if kind.is_empty() { stem.to_string() } else { format!("{stem}-{kind}") };
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("fixture JSON");
    (dir.join(format!("{name}.gguf")), serde_json::from_str(&json).unwrap())
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

fn check(label: &str, kind: &str, model: &Model, session: &mut Session, fx: &serde_json::Value) {
    let ids = ids(&fx["ids"]);
    let pooling = match fx["model"]["pooling_type"].as_u64().unwrap() {
        1 => Pooling::Mean,
        2 => Pooling::Cls,
        other => panic!("fixture pooling type {other}"),
    };
    assert_eq!(model.config().pooling, pooling, "{label}: the file's pooling_type");
    let states = session.states(&ids).unwrap();
    let want: Vec<f64> = fx["f64_token_states"].as_array().unwrap().iter().flat_map(f64s).collect();
    let rms = (states.iter().zip(&want).map(|(&a, b)| (a as f64 - b).powi(2)).sum::<f64>() / want.len() as f64).sqrt();
    let embedding = session.embed(&ids).unwrap();
    let key = match pooling {
        Pooling::Mean => "f64_embedding_mean_normalized",
        _ => "f64_embedding_cls_normalized",
    };
    let vs_f64 = max_abs(&embedding, &f64s(&fx[key]));
    let vs_llamacpp = max_abs(&embedding, &f64s(&fx["llamacpp_embedding_normalized"]));
    println!("{label}: token states RMS {rms:.2e}, embedding max abs {vs_f64:.2e} against float64, {vs_llamacpp:.2e} against llama.cpp");
    assert!(rms <= 2e-5, "{label}: token states RMS {rms:.2e} against float64");
    assert!(vs_f64 <= 1e-5, "{label}: embedding max abs {vs_f64:.2e} against float64");
    let llamacpp_bound = if kind == "f32" { 1e-4 } else { 5e-3 };
    assert!(vs_llamacpp <= llamacpp_bound, "{label}: embedding max abs {vs_llamacpp:.2e} against llama.cpp");
}

#[test]
fn encoders_match_float64_and_llama_cpp_on_the_cpu() {
    for &(dir, stem) in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, fx) = fixture(dir, stem, kind);
            let (model, mut session) = load_cpu(&path);
            check(&format!("{stem} {kind} on the cpu"), kind, &model, &mut session, &fx);
        }
    }
}

#[test]
fn encoders_match_float64_and_llama_cpp_on_the_gpu() {
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    for &(dir, stem) in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, fx) = fixture(dir, stem, kind);
            let (model, mut session) = load_gpu(ctx.clone(), &path);
            // The whole input in one batch, however small the decoder batch asked for (64).
            assert_eq!(session.backend().max_batch(), session.backend().max_context(), "an encoder's batch is its context");
            check(&format!("{stem} {kind} on the gpu"), kind, &model, &mut session, &fx);
        }
    }
}

#[test]
fn wordpiece_matches_llama_cpp() {
    for &(dir, stem) in STEMS {
        let (path, fx) = fixture(dir, stem, "f32");
        let model = Model::from_header(hearth::gguf::read_header_file(&path).unwrap()).unwrap();
        let cases = fx["tokenize_cases"].as_array().unwrap();
        assert!(cases.len() >= 6);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            assert_eq!(model.embedding_prompt(text).unwrap(), ids(&case["ids"]), "{stem}: {text:?}");
        }
        // Pieces decode with their word-initial ▁ as a space; [CLS] and [SEP] only when rendered.
        let t = &model.tokenizer;
        let ids = model.embedding_prompt("Tokenizers are unbelievable").unwrap();
        assert_eq!(t.decode(&ids, false).unwrap(), " tokenizers are unbelievable");
        assert_eq!(t.decode(&ids, true).unwrap(), "[CLS] tokenizers are unbelievable[SEP]");
    }
}

#[test]
fn an_encoder_gives_no_logits_and_reads_its_input_at_once() {
    let (path, fx) = fixture("bert", "bert", "f32");
    let ids = ids(&fx["ids"]);
    let (_, mut session) = load_cpu(&path);
    let err = session.append(&ids, LogitsFor::Last).unwrap_err().to_string();
    assert!(err.contains("an encoder: it makes embeddings, not text"), "{err}");
    assert!(session.tokens().is_empty(), "a failed call leaves the session empty");
    // Past its 128 positions.
    let err = session.embed(&vec![7u32; 129]).unwrap_err().to_string();
    assert!(err.starts_with("context_length_exceeded: 129 tokens"), "{err}");
    // The engine stays usable.
    assert_eq!(session.embed(&ids).unwrap().len(), 64);
}

/// nomic-embed-text-v1.5 (F16, `./build.sh model nomic-embed`) against its float64 pass
/// (tests/fixtures/embeddings/nomic-embed-text-v1.5.json, made by tools/golden_nomic.py):
/// each case's text through the WordPiece tokenizer gives llama.cpp's ids, and the
/// normalised mean embedding is within the fixture's bound for a float32 runtime that keeps
/// activations in f32 (max abs 2e-6, 1 − cosine 5e-11; llama.cpp, rounding its matmul inputs
/// to f16, is at 1e-4). The query lands nearer its answer than the unrelated document.
#[test]
fn nomic_embed_text_matches_float64() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/nomic-embed-text-v1.5.f16.gguf");
    assert!(path.exists(), "{} is missing: run `./build.sh model nomic-embed`", path.display());
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/embeddings/nomic-embed-text-v1.5.json").unwrap()).unwrap();
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    let (model, cpu) = load_cpu(&path);
    let (_, gpu) = load_gpu(ctx, &path);
    for case in fx["tokenize_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(model.embedding_prompt(text).unwrap(), ids(&case["ids"]), "{text:?}");
    }
    for (backend, mut session) in [("cpu", cpu), ("gpu", gpu)] {
        let mut embeddings = Vec::new();
        for case in fx["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids = model.embedding_prompt(text).unwrap();
            assert_eq!(ids, common::ids(&case["ids"]), "{text:?}");
            let e = session.embed(&ids).unwrap();
            let want = f64s(&case["f64_embedding_mean_normalized"]);
            let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
            let dot: f64 = e.iter().zip(&want).map(|(&a, b)| a as f64 * b).sum();
            let cos = dot / norm(&mut e.iter().map(|&x| x as f64)) / norm(&mut want.iter().copied());
            let d = max_abs(&e, &want);
            println!("nomic-embed on the {backend}, {} tokens: max abs {d:.2e}, 1 - cos {:.1e}", ids.len(), 1.0 - cos);
            assert!(d <= 2e-6 && 1.0 - cos <= 5e-11, "{backend}: {text:?}: max abs {d:.2e}, 1 - cos {:.1e}", 1.0 - cos);
            embeddings.push(e);
        }
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!(cos(&embeddings[0], &embeddings[1]) > cos(&embeddings[0], &embeddings[2]) + 0.3, "the query is nearer Paris");
    }
}

/// T5's encoder alone (`t5encoder`, as text encoders ship): the T5 fixtures rewritten as one
/// (their `enc.*` tensors, keys renamed, the decoder dropped, the output head kept: never
/// read). Every token's final state (after `enc.output_norm`) against the fixtures' float64
/// encoder states, on the CPU and the GPU, with the encoders' bound.
#[test]
fn t5_encoder_alone_matches_float64() {
    #[path = "common/gguf_writer.rs"]
    #[allow(dead_code)]
    mod gguf_writer;
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    let dir = tempfile::tempdir().unwrap();
    for stem in ["t5-f32", "flan-t5-q8_0"] {
        let (path, fx) = fixture("t5", stem, "");
        let mut f = gguf_writer::GgufFile::parse(&std::fs::read(&path).unwrap());
        f.tensors.retain(|t| !t.name.starts_with("dec."));
        for kv in f.kvs.iter_mut() {
            if let Some(rest) = kv.0.strip_prefix("t5.") {
                kv.0 = format!("t5encoder.{rest}");
            }
        }
        f.set("general.architecture", gguf_writer::str_val("t5encoder"));
        let file = dir.path().join(format!("{stem}-encoder.gguf"));
        std::fs::write(&file, f.bytes()).unwrap();
        let want: Vec<f64> = fx["f64_encoder_states"].as_array().unwrap().iter().flat_map(f64s).collect();
        let llamacpp: Vec<f64> = fx["llamacpp_encoder_states"].as_array().unwrap().iter().flat_map(f64s).collect();
        let rms = |a: &[f32], b: &[f64]| (a.iter().zip(b).map(|(&x, y)| (x as f64 - y).powi(2)).sum::<f64>() / b.len() as f64).sqrt();
        for (backend, (model, mut session)) in [("cpu", load_cpu(&file)), ("gpu", load_gpu(ctx.clone(), &file))] {
            assert!(model.config().encoder && !model.config().encoder_decoder);
            let states = session.states(&ids(&fx["encoder_ids"])).unwrap();
            let (vs_f64, vs_llamacpp) = (rms(&states, &want), rms(&states, &llamacpp));
            println!("t5encoder {stem} on the {backend}: states RMS {vs_f64:.2e} against float64, {vs_llamacpp:.2e} against llama.cpp");
            assert!(vs_f64 <= 2e-5, "{stem} on the {backend}: {vs_f64:.2e}");
            let embedding = session.embed(&ids(&fx["encoder_ids"])).unwrap();
            assert_eq!(embedding.len(), 64);
        }
    }
}
