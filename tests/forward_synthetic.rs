//! The CPU forward pass on the tiny synthetic GGUFs against the float64 reference logits:
//! every position's top-10, and the full logit vector at the last position.

mod common;

use common::*;
use hearth::backend::LogitsFor;

fn check(file: &str) {
    let path = golden_model_dir().join("synthetic").join(format!("{file}.gguf"));
    let (model, mut session) = load_cpu(&path);
    check_session(file, &model, &mut session);
}

fn check_gpu(file: &str) {
    let Some(ctx) = gpu_context() else { return };
    let path = golden_model_dir().join("synthetic").join(format!("{file}.gguf"));
    let (model, mut session) = load_gpu(ctx, &path);
    check_session(file, &model, &mut session);
}

fn check_session(file: &str, model: &hearth::model::Model, session: &mut hearth::session::Session) {
    let gold = golden_json(&format!("synthetic/{file}.json"));
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
        let path = golden_model_dir().join("synthetic").join(format!("{file}.gguf"));
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
        check_session(file, &model, &mut session);
    }
}
