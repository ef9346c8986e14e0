//! Shared helpers for the integration tests: where the golden data and the model live, and
//! the comparison metrics the golden README defines.
#![allow(dead_code)]

pub mod golden;

use std::path::PathBuf;
use std::sync::Arc;

use hearth::cpu::{CpuBackend, CpuWeights};
use hearth::model::Model;
use hearth::session::Session;

pub fn golden_dir() -> PathBuf {
    std::env::var_os("HEARTH_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"))
}

pub fn golden_model_dir() -> PathBuf {
    golden_dir().join("smollm2-135m-instruct-q4_1")
}

pub fn golden_json(rel: &str) -> serde_json::Value {
    let path = golden_model_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} is missing ({e}); set HEARTH_GOLDEN", path.display()));
    serde_json::from_str(&text).expect("golden JSON parses")
}

/// The default model; tests fail loudly rather than skip when it is absent.
pub fn model_path() -> PathBuf {
    let path = std::env::var_os("HEARTH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(path.exists(), "model {} is missing: run `./build.sh model` first", path.display());
    path
}

/// One of the real models `./build.sh model NAME` fetches, with its golden directory.
pub struct RealModel {
    pub file: &'static str,
    /// The name `./build.sh model` takes.
    pub fetch: &'static str,
    /// Its directory under `../shared/golden`.
    pub golden: &'static str,
}

pub const QWEN: RealModel =
    RealModel { file: "qwen2.5-coder-0.5b-instruct.gguf", fetch: "qwen2.5-coder", golden: "qwen2.5-coder-0.5b-instruct" };
pub const GEMMA: RealModel = RealModel { file: "gemma-3-270m-q4_k_m.gguf", fetch: "gemma3", golden: "gemma-3-270m" };

impl RealModel {
    /// The model file; tests fail loudly rather than skip when it is absent.
    pub fn path(&self) -> PathBuf {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(self.file);
        assert!(path.exists(), "model {} is missing: run `./build.sh model {}` first", path.display(), self.fetch);
        path
    }

    /// A file of its golden directory, parsed.
    pub fn json(&self, file: &str) -> serde_json::Value {
        let path = golden_dir().join(self.golden).join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("golden file {} is missing ({e}); set HEARTH_GOLDEN", path.display()));
        serde_json::from_str(&text).expect("golden JSON parses")
    }
}

pub fn load_cpu(path: &std::path::Path) -> (Model, Session) {
    let (model, weights) = CpuWeights::load_file(path, |_| {}).expect("model loads");
    let backend = CpuBackend::new(model.plan.clone(), Arc::new(weights), 4096);
    let session = Session::new(Box::new(backend), model.config().n_vocab);
    (model, session)
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("array of ids").iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array of numbers").iter().map(|x| x.as_f64().unwrap()).collect()
}

/// `[[id, logit], ...]` pairs.
pub fn top_list(v: &serde_json::Value) -> Vec<(u32, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap()))
        .collect()
}

/// RMS of the difference after removing each vector's mean (softmax ignores a constant shift).
pub fn centered_rms(ours: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let d: Vec<f64> = ours.iter().zip(reference).map(|(a, b)| a - b).collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt()
}

/// Centered RMS over every position of row-major `logits` (`n_vocab` a row) against a
/// families fixture's `llamacpp_logits` and `f64_logits` rows (tests/fixtures/families).
pub fn logits_vs_references(logits: &[f32], fx: &serde_json::Value, n_vocab: usize) -> (f64, f64) {
    let ours: Vec<f64> = logits.iter().map(|&x| x as f64).collect();
    let rms = |key: &str| {
        let rows = fx[key].as_array().unwrap();
        assert_eq!(rows.len() * n_vocab, ours.len(), "{key}: one row per position");
        let sq: f64 = rows.iter().enumerate().map(|(t, row)| centered_rms(&ours[t * n_vocab..(t + 1) * n_vocab], &f64s(row)).powi(2)).sum();
        (sq / rows.len() as f64).sqrt()
    };
    (rms("llamacpp_logits"), rms("f64_logits"))
}

/// The families fixtures' bounds: on F32 weights centered RMS ≤ 1e-3 against llama.cpp and
/// ≤ 1e-4 against float64, on quantized ones ≤ 0.03 against float64.
pub fn assert_family_bounds(label: &str, kind: &str, vs_llamacpp: f64, vs_f64: f64) {
    println!("{label}: centered RMS {vs_llamacpp:.2e} against llama.cpp, {vs_f64:.2e} against float64");
    match kind {
        "f32" => assert!(vs_llamacpp <= 1e-3 && vs_f64 <= 1e-4, "{label}: {vs_llamacpp:.2e} / {vs_f64:.2e}"),
        _ => assert!(vs_f64 <= 0.03, "{label}: {vs_f64:.2e} against float64"),
    }
}

/// Decoding `ids` one token at a time gives each position the batch's logits (centered RMS
/// below 1e-4). The session is cleared before and after.
pub fn assert_decode_equals_batch(session: &mut Session, ids: &[u32], n_vocab: usize, label: &str) {
    use hearth::backend::LogitsFor;
    session.clear();
    let batch = session.append(ids, LogitsFor::All).unwrap();
    session.clear();
    for t in 0..ids.len() {
        let one = session.append(&ids[t..t + 1], LogitsFor::Last).unwrap();
        let row: Vec<f64> = batch[t * n_vocab..(t + 1) * n_vocab].iter().map(|&x| x as f64).collect();
        let d = centered_rms(&one.iter().map(|&x| x as f64).collect::<Vec<_>>(), &row);
        assert!(d < 1e-4, "{label}: position {t} decoded alone differs from the batch by {d}");
    }
    session.clear();
}

pub fn logsumexp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln()
}

pub fn argmax(logits: &[f32]) -> u32 {
    hearth::sampler::argmax(logits)
}

/// The GPU adapter. Without one, a test that needs it fails when `HEARTH_REQUIRE_GPU=1` (which
/// `./build.sh test` sets, having installed Mesa lavapipe), and otherwise skips: the skip is
/// written to the run's stderr (libtest does not capture that) and counted in
/// `target/tmp/gpu-skips.txt` (`./build.sh test` prints its lines).
pub fn gpu_context() -> Option<Arc<hearth::gpu::GpuContext>> {
    match hearth::gpu::GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) => {
            let test = std::thread::current().name().unwrap_or("a test").to_string();
            if std::env::var_os("HEARTH_REQUIRE_GPU").is_some_and(|v| v == "1") {
                panic!("{test}: no GPU adapter ({e}) although HEARTH_REQUIRE_GPU=1: install mesa-vulkan-drivers for lavapipe");
            }
            use std::io::Write;
            let line = format!("SKIPPED {test}: no GPU adapter ({e})");
            let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
            let skips = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gpu-skips.txt");
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(skips) {
                let _ = writeln!(f, "{line}");
            }
            None
        }
    }
}

pub fn load_gpu(ctx: Arc<hearth::gpu::GpuContext>, path: &std::path::Path) -> (Model, Session) {
    let (model, weights) = hearth::gpu::GpuWeights::load_file(ctx, path, |_| {}).expect("model uploads");
    let backend = hearth::gpu::GpuBackend::new(model.plan.clone(), Arc::new(weights), 64, 512).expect("GPU backend");
    let session = Session::new(Box::new(backend), model.config().n_vocab);
    (model, session)
}
