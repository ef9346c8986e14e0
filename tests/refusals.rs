//! What the engine does not implement is refused at load with one line that names it, never
//! run silently wrong: unknown tensors, RoPE scaling types, logit soft-capping, an architecture
//! field that contradicts the tensors, an unknown pre-tokenizer, a SentencePiece vocabulary
//! without scores, a truncated K-quant tensor, what the encoders and T5 carry beyond their
//! graphs. Each is a real (or fixture) model file changed in one place.

mod common;
#[path = "common/gguf_writer.rs"]
#[allow(dead_code)]
mod gguf_writer;

use common::*;
use gguf_writer::{f32_val, str_val, GgufFile, Val};

/// The tiny synthetic Llama model, ready to be changed.
fn tiny() -> GgufFile {
    GgufFile::parse(&std::fs::read(golden_model_dir().join("synthetic/tiny32_q4_1.gguf")).unwrap())
}

/// Loading `file` (natively, on the CPU) fails with an error that mentions every needle.
fn refused(file: &GgufFile, needles: &[&str]) {
    refused_by(file, &["generate", "--prompt", "hi"], needles)
}

/// As [`refused`], the CLI's line from `command` (`hearth embed` for an encoder).
fn refused_by(file: &GgufFile, command: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, file.bytes()).unwrap();
    let err = match hearth::cpu::CpuWeights::load_file(&path, |_| {}) {
        Ok(_) => panic!("expected a refusal mentioning {needles:?}"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    // The CLI says the same in one line.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth")).arg(command[0]).arg(&path).args(&command[1..]).args(["--backend", "cpu"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.trim().lines().count() == 1 && stderr.contains(needles[0]), "{stderr}");
}

#[test]
fn the_unchanged_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, tiny().bytes()).unwrap();
    hearth::cpu::CpuWeights::load_file(&path, |_| {}).expect("a parsed and rewritten file loads");
}

#[test]
fn unknown_tensors_are_refused() {
    let mut f = tiny();
    f.add_f32_tensor("blk.0.attn_qkv.weight", &[0.0; 32]);
    refused(&f, &["blk.0.attn_qkv.weight", "llama"]);
    // Gemma's extra norms in a file that says llama: the architecture contradicts the tensors.
    let mut f = tiny();
    f.add_f32_tensor("blk.1.post_attention_norm.weight", &[1.0; 32]);
    refused(&f, &["blk.1.post_attention_norm.weight"]);
}

#[test]
fn an_architecture_the_tensors_do_not_fit_is_refused() {
    let mut f = tiny();
    f.set("general.architecture", str_val("gemma3"));
    // Re-key the hyper-parameters so that only the tensors disagree.
    for kv in f.kvs.iter_mut() {
        if let Some(rest) = kv.0.strip_prefix("llama.") {
            kv.0 = format!("gemma3.{rest}");
        }
    }
    refused(&f, &["attn_q_norm", "missing"]);
}

#[test]
fn unimplemented_rope_scaling_and_soft_capping_are_refused() {
    let mut f = tiny();
    f.set("llama.rope.scaling.type", str_val("longrope"));
    refused(&f, &["RoPE scaling type \"longrope\"", "llama.rope.scaling.type"]);
    let mut f = tiny();
    f.set("llama.final_logit_softcapping", f32_val(30.0));
    refused(&f, &["final logit soft-capping", "llama.final_logit_softcapping = 30"]);
    let mut f = tiny();
    f.set("llama.attn_logit_softcapping", f32_val(50.0));
    refused(&f, &["attention logit soft-capping"]);
    let mut f = tiny();
    f.set("llama.expert_count", Val::U32(8));
    refused(&f, &["mixture of experts"]);
    // Neutral values change nothing and load.
    let mut f = tiny();
    f.set("llama.final_logit_softcapping", f32_val(0.0));
    f.set("llama.rope.scaling.type", str_val("none"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.gguf"), f.bytes()).unwrap();
    hearth::cpu::CpuWeights::load_file(&dir.path().join("m.gguf"), |_| {}).expect("neutral values load");
}

#[test]
fn tokenizer_gaps_are_refused() {
    let mut f = tiny();
    f.set("tokenizer.ggml.pre", str_val("mystery-pre"));
    refused(&f, &["mystery-pre", "tokenizer.ggml.pre"]);
    // A SentencePiece vocabulary without its scores.
    let mut f = tiny();
    f.set("tokenizer.ggml.model", str_val("llama"));
    f.kvs.retain(|(k, _)| k != "tokenizer.ggml.scores");
    refused(&f, &["tokenizer.ggml.scores is missing"]);
}

#[test]
fn a_truncated_kquant_tensor_is_refused() {
    let bytes = std::fs::read(golden_dir().join("synthetic-kquants/tiny256_q4_k_m.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    std::fs::write(&path, &bytes[..bytes.len() - 5000]).unwrap();
    let err = hearth::cpu::CpuWeights::load_file(&path, |_| {}).err().expect("a cut file is refused").to_string();
    assert!(err.contains("past the end of the file"), "{err}");
}

#[test]
fn encoder_and_encoder_decoder_gaps_are_refused() {
    let fixture = |path: &str| GgufFile::parse(&std::fs::read(path).unwrap());
    let embed = ["embed", "--text", "hi"];
    // A reranker's rank pooling needs its classifier head.
    let mut f = fixture("tests/fixtures/families/bert/bert-f32.gguf");
    f.set("bert.pooling_type", Val::U32(4));
    refused_by(&f, &embed, &["rank pooling", "bert.pooling_type = 4"]);
    // FFN biases in nomic-bert: llama.cpp loads them and its graph never adds them.
    let mut f = fixture("tests/fixtures/families/nomic-bert/nomic-bert-f32.gguf");
    f.add_f32_tensor("blk.0.ffn_up.bias", &[0.5; 256]);
    refused_by(&f, &embed, &["blk.0.ffn_up.bias"]);
    // A relative bucket count below llama.cpp's formula's range.
    let mut f = fixture("tests/fixtures/families/t5/t5-f32.gguf");
    f.set("t5.attention.relative_buckets_count", Val::U32(1));
    refused(&f, &["t5.attention.relative_buckets_count = 1"]);
    // A decoder asking for bidirectional attention.
    let mut f = tiny();
    f.set("llama.attention.causal", Val::Bool(0));
    refused(&f, &["bidirectional attention in a decoder", "llama.attention.causal"]);
}

/// A decoder marked for rank pooling (a reranker conversion) still generates; only its
/// embeddings, which would need the classifier head, are refused.
#[test]
fn rank_pooling_refuses_only_a_decoders_embeddings() {
    let mut f = tiny();
    f.set("llama.pooling_type", Val::U32(4));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, f.bytes()).unwrap();
    let (model, mut session) = load_cpu(&path);
    assert_eq!(model.config().pooling, hearth::model::Pooling::Rank);
    session.append(&[1, 2, 3], hearth::backend::LogitsFor::Last).expect("it generates");
    let err = session.embed(&[1, 2, 3]).unwrap_err().to_string();
    assert!(err.contains("rank pooling") && err.contains("llama.pooling_type = 4"), "{err}");
}
