//! T5 (an encoder-decoder) on tiny synthetic models (tests/fixtures/families/t5, made by
//! tools/make_families.py): the encoder reads `encoder_ids` once, then the decoder's
//! teacher-forced logits over `decoder_ids` on the CPU and the GPU are compared with llama.cpp
//! 0.3.36 (F32 KV cache) and an independent float64 pass, with the decoder families'
//! tolerances (F32: centered RMS ≤ 1e-3 against llama.cpp, ≤ 1e-4 against float64; Q8_0: ≤ 0.03
//! against float64). `t5` has a ReLU MLP and one relative bias table per stack; `flan-t5` a
//! gated GELU MLP and a table in every layer. Also: the relative position buckets against
//! llama.cpp's own function, and the Unigram tokenizer against llama.cpp's ids.

mod common;

use std::path::PathBuf;

use common::*;
use hearth::backend::LogitsFor;
use hearth::model::relative;
use hearth::session::Session;

const STEMS: &[&str] = &["t5", "flan-t5"];

fn fixture(stem: &str, kind: &str) -> (PathBuf, serde_json::Value) {
    let dir = PathBuf::from("tests/fixtures/families/t5");
    let json = std::fs::read_to_string(dir.join(format!("{stem}-{kind}.json"))).expect("fixture JSON");
    (dir.join(format!("{stem}-{kind}.gguf")), serde_json::from_str(&json).unwrap())
}

/// The encoder input encoded, then every decoder position's logits against the references.
fn check(stem: &str, kind: &str, backend: &str, session: &mut Session, n_vocab: usize) {
    let (_, fx) = fixture(stem, kind);
    session.encode(&ids(&fx["encoder_ids"])).unwrap();
    let logits = session.append(&ids(&fx["decoder_ids"]), LogitsFor::All).unwrap();
    let (vs_llamacpp, vs_f64) = logits_vs_references(&logits, &fx, n_vocab);
    assert_family_bounds(&format!("{stem} {kind} on {backend}"), kind, vs_llamacpp, vs_f64);
}

#[test]
fn t5_matches_llama_cpp_and_float64_on_the_cpu() {
    for stem in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, _) = fixture(stem, kind);
            let (model, mut session) = load_cpu(&path);
            check(stem, kind, "cpu", &mut session, model.config().n_vocab);
        }
    }
}

#[test]
fn t5_matches_llama_cpp_and_float64_on_the_gpu() {
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    for stem in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, fx) = fixture(stem, kind);
            let (model, mut session) = load_gpu(ctx.clone(), &path);
            let n_vocab = model.config().n_vocab;
            check(stem, kind, "gpu", &mut session, n_vocab);
            // Decoding token by token gives the batch's logits too (against the encoded input).
            assert_decode_equals_batch(&mut session, &ids(&fx["decoder_ids"]), n_vocab, &format!("{stem} {kind}"));
        }
    }
}

#[test]
fn relative_buckets_match_llama_cpp() {
    let (_, fx) = fixture("t5", "f32");
    let rb = &fx["relative_buckets"];
    let (offset, n) = (rb["offset"].as_i64().unwrap(), rb["n_buckets"].as_u64().unwrap() as usize);
    for (mode, bidirectional) in [("bidirectional", true), ("causal", false)] {
        let want = rb[mode].as_array().unwrap();
        assert!(want.len() > 256);
        for (i, b) in want.iter().enumerate() {
            let rel = offset + i as i64;
            assert_eq!(relative::bucket(rel, n, bidirectional), b.as_u64().unwrap() as usize, "{mode} bucket of {rel}");
        }
    }
}

#[test]
fn unigram_matches_llama_cpp() {
    for stem in STEMS {
        let (path, fx) = fixture(stem, "f32");
        let model = hearth::model::Model::from_header(hearth::gguf::read_header_file(&path).unwrap()).unwrap();
        let cases = fx["tokenize_cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            // As plain text (`</s>` typed in it is text), then the end token </s>.
            let mut got = model.tokenizer.encode(text, false).unwrap();
            got.extend(model.tokenizer.end_id());
            assert_eq!(got, ids(&case["ids"]), "{stem}: {text:?}");
        }
        assert_eq!(model.decoder_prompt().unwrap(), vec![0], "the decoder starts from <pad>");
    }
}

#[test]
fn the_decoder_needs_an_encoded_input() {
    let (path, fx) = fixture("t5", "f32");
    let (model, mut session) = load_cpu(&path);
    let dec = ids(&fx["decoder_ids"]);
    let err = session.append(&dec, LogitsFor::Last).unwrap_err().to_string();
    assert!(err.contains("encode its input before decoding"), "{err}");
    // An input past the context, then ids outside the vocabulary: errors, the session usable.
    let err = session.encode(&vec![5; 4097]).unwrap_err().to_string();
    assert!(err.starts_with("context_length_exceeded"), "{err}");
    let err = session.encode(&[5, 100_000]).unwrap_err().to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
    let err = session.encode(&[]).unwrap_err().to_string();
    assert!(err.contains("no tokens"), "{err}");
    // Another input gives other logits; the same one again the same.
    let enc = ids(&fx["encoder_ids"]);
    session.encode(&enc).unwrap();
    let first = session.append(&dec, LogitsFor::Last).unwrap();
    session.encode(&enc[3..]).unwrap();
    assert!(session.tokens().is_empty(), "a new input starts the decoder over");
    let other = session.append(&dec, LogitsFor::Last).unwrap();
    session.encode(&enc).unwrap();
    let again = session.append(&dec, LogitsFor::Last).unwrap();
    assert_ne!(first, other);
    assert_eq!(first, again);
    // A context shift needs RoPE positions.
    let err = hearth::backend::check_shift_positions(model.config()).unwrap_err().to_string();
    assert!(err.contains("RoPE"), "{err}");
    // A decoder-only model has no encoder.
    let (_, mut llama) = load_cpu(&model_path());
    let err = llama.encode(&[1, 2]).unwrap_err().to_string();
    assert!(err.contains("only an encoder-decoder"), "{err}");
}

/// Text to text: the prompt through the tokenizer and the encoder, then 12 greedy steps from
/// the decoder's start token, one token at a time through the cache, equal llama.cpp's ids
/// (which the float64 pass also picks, by margins of 0.068 or more) on the CPU and the GPU.
#[test]
fn t5_greedy_text_to_text_equals_llama_cpp() {
    let ctx = gpu_context().expect("a GPU adapter (lavapipe in CI)");
    for stem in STEMS {
        for kind in ["f32", "q8_0"] {
            let (path, fx) = fixture(stem, kind);
            let g = &fx["greedy"];
            let want = ids(&g["decoder_ids"]);
            assert_eq!(want, ids(&g["f64_decoder_ids"]), "the fixture's float64 pass picks llama.cpp's ids");
            for backend in ["cpu", "gpu"] {
                let (model, mut session) = if backend == "cpu" { load_cpu(&path) } else { load_gpu(ctx.clone(), &path) };
                let input = model.text_prompt(g["text"].as_str().unwrap()).unwrap();
                assert_eq!(input, ids(&g["encoder_ids"]), "{stem}: the prompt's ids");
                session.encode(&input).unwrap();
                let mut next = model.decoder_prompt().unwrap();
                let mut got = Vec::new();
                for _ in 0..want.len() {
                    let id = session.append_greedy(&next).unwrap();
                    got.push(id);
                    next = vec![id];
                }
                assert_eq!(got, want, "{stem} {kind} on the {backend}");
            }
        }
    }
}

/// The relative bias table of the decoder's first cross-attention, which the original T5
/// checkpoints carry and neither T5 nor llama.cpp reads, is skipped: the file loads and its
/// logits are those of the file without it.
#[test]
fn an_unused_cross_attention_bias_is_skipped() {
    #[path = "common/gguf_writer.rs"]
    #[allow(dead_code)]
    mod gguf_writer;
    let (path, fx) = fixture("t5", "f32");
    let mut f = gguf_writer::GgufFile::parse(&std::fs::read(&path).unwrap());
    f.add_f32_tensor("dec.blk.0.cross_attn_rel_b.weight", &[3.0; 4 * 32]);
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("t5-with-cross-bias.gguf");
    std::fs::write(&with, f.bytes()).unwrap();
    let logits = |p: &std::path::Path| {
        let (_, mut s) = load_cpu(p);
        s.encode(&ids(&fx["encoder_ids"])).unwrap();
        s.append(&ids(&fx["decoder_ids"]), LogitsFor::All).unwrap()
    };
    assert_eq!(logits(&with), logits(&path));
}
