//! RoPE scaling against llama.cpp on tiny random Llama models (`tests/fixtures/rope/`, made by
//! `tools/golden_rope.py`): Llama 3.1's `rope_freqs` frequency factors, linear scaling and
//! YaRN, and the unscaled model beside them. llama.cpp ran them with F32 weights and an F32 KV
//! cache, so its logits are f32-exact; the variants differ from each other by centered logit
//! RMS ≈ 3, so a scaling applied wrongly (or not at all) cannot pass.

mod common;

use common::*;
use hearth::backend::LogitsFor;

fn fixtures() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rope")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("rope.json")).unwrap()).unwrap()
}

/// Every position's top-10 (as differences to the top logit) and the whole last row.
fn check(name: &str, session: &mut hearth::session::Session, n_vocab: usize) {
    let gold = reference();
    let input = ids(&gold["input_ids"]);
    let v = &gold["variants"][name];
    let logits = session.append(&input, LogitsFor::All).unwrap();
    let mut worst = 0.0f64;
    for (p, top) in v["top10"].as_array().unwrap().iter().enumerate() {
        let row = &logits[p * n_vocab..(p + 1) * n_vocab];
        let top = top_list(top);
        assert_eq!(argmax(row), top[0].0, "{name} position {p}");
        for &(id, l) in &top {
            let err = ((row[id as usize] - row[top[0].0 as usize]) as f64 - (l - top[0].1)).abs();
            worst = worst.max(err);
        }
    }
    let last: Vec<f64> = logits[(input.len() - 1) * n_vocab..].iter().map(|&x| x as f64).collect();
    let rms = centered_rms(&last, &f64s(&v["last_position_full_logits"]));
    eprintln!("{name}: last-position centered RMS vs llama.cpp {rms:.2e}, worst top-10 difference {worst:.2e}");
    assert!(rms < 1e-3 && worst < 1e-3, "{name}: RMS {rms}, top-10 {worst}");
    // Token by token through the KV cache: the same rotations.
    session.clear();
    let mut step = Vec::new();
    for &t in &input {
        step = session.append(&[t], LogitsFor::Last).unwrap();
    }
    let stepped: Vec<f64> = step.iter().map(|&x| x as f64).collect();
    assert!(centered_rms(&stepped, &last) < 1e-4, "{name}: incremental differs from batch");
}

const VARIANTS: [&str; 4] = ["none", "llama3", "linear", "yarn"];

#[test]
fn scaled_rope_matches_llama_cpp() {
    for name in VARIANTS {
        let (model, mut session) = load_cpu(&fixtures().join(format!("{name}.gguf")));
        let r = &model.config().rope;
        match name {
            "llama3" => assert!(r.freq_factors.as_ref().is_some_and(|f| f.len() == 16 && f[0] == 1.0 && f[15] == 8.0), "{r:?}"),
            "linear" => assert_eq!(r.freq_scale, 0.25),
            "yarn" => assert!(r.yarn.is_some() && r.freq_scale == 0.25),
            _ => assert!(r.freq_factors.is_none() && r.yarn.is_none() && r.freq_scale == 1.0),
        }
        check(name, &mut session, model.config().n_vocab);
    }
}

#[test]
fn scaled_rope_on_gpu_matches_llama_cpp() {
    let Some(ctx) = gpu_context() else { return };
    for name in VARIANTS {
        let (model, mut session) = load_gpu(ctx.clone(), &fixtures().join(format!("{name}.gguf")));
        check(name, &mut session, model.config().n_vocab);
    }
}
