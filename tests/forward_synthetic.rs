//! The forward pass on the tiny synthetic GGUFs against the float64 reference logits: every
//! position's top-10, and the full logit vector at the last position. The legacy-quant models
//! (`tiny32_*`) come from gguf-py's quantizer, the K-quant mixes (`tiny256_*`, Q2_K … Q6_K with
//! Q3_K … Q6_K inside) from llama.cpp's own.

mod common;

use std::path::PathBuf;

use common::*;
use hearth::backend::LogitsFor;

/// The K-quant synthetic models, by file stem.
const KQUANT_FILES: [&str; 5] = ["tiny256_q2_k", "tiny256_q3_k_m", "tiny256_q4_k_m", "tiny256_q5_k_m", "tiny256_q6_k"];

/// Where a synthetic model and its reference JSON live.
fn synthetic(file: &str) -> (PathBuf, serde_json::Value) {
    let dir = if file.starts_with("tiny256") {
        golden_dir().join("synthetic-kquants")
    } else {
        golden_model_dir().join("synthetic")
    };
    let json = dir.join(format!("{file}.json"));
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("golden file {} is missing ({e})", json.display()));
    (dir.join(format!("{file}.gguf")), serde_json::from_str(&text).unwrap())
}

fn check(file: &str) {
    let (path, gold) = synthetic(file);
    let (model, mut session) = load_cpu(&path);
    check_session(file, &gold, &model, &mut session);
}

fn check_gpu(file: &str) {
    let Some(ctx) = gpu_context() else { return };
    let (path, gold) = synthetic(file);
    let (model, mut session) = load_gpu(ctx, &path);
    check_session(file, &gold, &model, &mut session);
}

fn check_session(file: &str, gold: &serde_json::Value, model: &hearth::model::Model, session: &mut hearth::session::Session) {
    let n_vocab = model.config().n_vocab;
    let input = ids(&gold["input_ids"]);
    let logits = session.append(&input, LogitsFor::All).unwrap();
    assert_eq!(logits.len(), input.len() * n_vocab);
    let mut worst_lp = 0.0f64;
    for (p, pos) in gold["positions"].as_array().unwrap().iter().enumerate() {
        let row = &logits[p * n_vocab..(p + 1) * n_vocab];
        let lse = logsumexp(row);
        let f64_lse = pos["f64_logsumexp"].as_f64().unwrap();
        for (id, l) in top_list(&pos["f64_top10"]) {
            let err = ((row[id as usize] as f64 - lse) - (l - f64_lse)).abs();
            worst_lp = worst_lp.max(err);
        }
        // Random weights give small margins; a plain f32 forward still agrees everywhere.
        if pos["f64_margin"].as_f64().unwrap() > 1e-3 {
            assert_eq!(argmax(row), pos["f64_top10"][0][0].as_u64().unwrap() as u32, "{file} position {p}");
        }
    }
    let last = &logits[(input.len() - 1) * n_vocab..];
    let ours: Vec<f64> = last.iter().map(|&x| x as f64).collect();
    let rms = centered_rms(&ours, &f64s(&gold["last_position_full_logits"]["f64"]));
    eprintln!("{file}: centered RMS at last position {rms:.2e}, worst top-10 log-prob error {worst_lp:.2e}");
    assert!(rms < 1e-3, "{file}: centered RMS {rms}");
    assert!(worst_lp < 1e-3, "{file}: log-prob error {worst_lp}");

    // Token-by-token decoding through the KV cache gives the same logits as one batch.
    session.clear();
    let mut last_step = Vec::new();
    for &t in &input {
        last_step = session.append(&[t], LogitsFor::Last).unwrap();
    }
    let max_diff = last_step.iter().zip(last).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "{file}: incremental vs batch differ by {max_diff}");
}

#[test]
fn tiny_q8_0_matches_float64() {
    check("tiny32_q8_0");
}

#[test]
fn tiny_q4_0_matches_float64() {
    check("tiny32_q4_0");
}

#[test]
fn tiny_q4_1_matches_float64() {
    check("tiny32_q4_1");
}

#[test]
fn tiny_models_on_gpu_match_float64() {
    for file in ["tiny32_q8_0", "tiny32_q4_0", "tiny32_q4_1"] {
        check_gpu(file);
    }
}

/// Tensors split into many row parts (a tiny binding limit) and uploaded in pieces that
/// straddle the parts: the split paths of the upload, the embedding and the matmuls.
#[test]
fn tiny_models_on_gpu_with_split_tensors_match_float64() {
    let Some(ctx) = gpu_context() else { return };
    for file in ["tiny32_q4_1"] {
        let path = synthetic(file).0;
        let bytes = std::fs::read(&path).unwrap();
        let c = ctx.clone();
        let new = Box::new(move |plan: &_| Ok(hearth::gpu::GpuWeights::with_part_limit(c.clone(), plan, 1024)));
        let mut stream = hearth::model::ModelStream::new(Some(bytes.len() as u64), new, Box::new(hearth::gpu::GpuWeights::put)).in_pieces(700);
        for chunk in bytes.chunks(4096) {
            stream.push(chunk).unwrap();
        }
        let (model, weights) = stream.finish().unwrap();
        let parts = weights.get(model.plan.weight_index(hearth::model::TOKEN_EMBD).unwrap()).parts.len();
        assert!(parts > 3, "{file}: the embedding is split ({parts} parts)");
        let backend = hearth::gpu::GpuBackend::new(model.plan.clone(), std::sync::Arc::new(weights), 64, 64).unwrap();
        let mut session = hearth::session::Session::new(Box::new(backend), model.config().n_vocab);
        let gold = synthetic(file).1;
        check_session(file, &gold, &model, &mut session);
    }
}

#[test]
fn kquant_models_match_float64() {
    for file in KQUANT_FILES {
        check(file);
    }
}

#[test]
fn kquant_models_on_gpu_match_float64() {
    for file in KQUANT_FILES {
        check_gpu(file);
    }
}
