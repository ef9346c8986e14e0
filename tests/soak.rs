//! Soak runs (not part of the test command: `cargo test --release --test soak -- --ignored
//! --nocapture`): thousands of generations in a row on one engine, with random aborts, cache
//! resets and n > 1 replies to one prompt, then the greedy golden reply once more. Resident
//! memory must come back to its level after warm-up, and the last reply must still be the
//! native engine's greedy ids. `HEARTH_SOAK` sets the number of generations (CPU: 2,000,
//! GPU: 200); `HEARTH_SEED` replays a run.

mod common;

use common::*;
use hearth::sampler::{Sampler, SamplerConfig};
use hearth::session::{generate, GenerateOptions, Session};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Resident memory of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    kb / 1024.0
}

fn soak(model: &hearth::model::Model, session: &mut Session, default_n: usize) {
    let n: usize = std::env::var("HEARTH_SOAK").ok().and_then(|s| s.parse().ok()).unwrap_or(default_n);
    let seed: u64 = std::env::var("HEARTH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    eprintln!("soak: {n} generations, seed {seed}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let questions = ["What is the capital of France?", "Tell me a story about a dragon.", "List three colors.", "Explain rain in one sentence."];
    let prompts: Vec<Vec<u32>> = questions.iter().map(|q| model.chat_prompt(&[hearth::chat::ChatMessage::new("user", *q)]).unwrap()).collect();
    let (mut aborts, mut resets, mut multi, mut tokens) = (0, 0, 0, 0);
    let mut baseline = 0.0;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        if i == n / 10 {
            baseline = rss_mib();
        }
        let prompt = &prompts[rng.next_u32() as usize % prompts.len()];
        match rng.next_u32() % 10 {
            0 => {
                session.clear();
                resets += 1;
            }
            1 => {
                // n = 3 replies to one prompt: the later ones reuse its cache.
                for k in 0..3 {
                    let config = SamplerConfig { temperature: 0.8, seed: i as u64 * 3 + k, ..Default::default() };
                    let out = generate(session, &model.tokenizer, prompt, &GenerateOptions { max_tokens: 8, stop: vec![] }, &mut Sampler::from_config(config).unwrap(), |_| true).unwrap();
                    tokens += out.ids.len();
                }
                multi += 1;
            }
            r => {
                // An abort after a random number of text pieces for some.
                let limit = if r < 4 { Some(1 + rng.next_u32() as usize % 6) } else { None };
                let mut pieces = 0;
                let config = SamplerConfig { temperature: 0.8, top_k: 40, seed: i as u64, ..Default::default() };
                let max_tokens = 1 + rng.next_u32() as usize % 24;
                let out = generate(session, &model.tokenizer, prompt, &GenerateOptions { max_tokens, stop: vec![] }, &mut Sampler::from_config(config).unwrap(), |_| {
                    pieces += 1;
                    limit.is_none_or(|l| pieces < l)
                })
                .unwrap();
                tokens += out.ids.len();
                aborts += usize::from(limit.is_some());
            }
        }
    }
    let end = rss_mib();
    let secs = t0.elapsed().as_secs_f64();
    // The golden greedy reply, on the same engine after all of that.
    let last = golden::greedy_generation(session, model);
    let (_, mut fresh) = load_cpu(&model_path());
    let want = golden::greedy_generation(&mut fresh, model);
    eprintln!(
        "soak: {n} generations ({tokens} tokens, {aborts} aborted, {resets} resets, {multi} with n = 3) in {secs:.0} s; \
         resident memory {baseline:.1} MiB after warm-up, {end:.1} MiB at the end; last greedy reply {:?}",
        last.text
    );
    assert_eq!(last.ids, want.ids, "the last greedy reply differs from a fresh engine's");
    assert!(end <= baseline + 16.0, "resident memory grew from {baseline:.1} to {end:.1} MiB");
}

#[test]
#[ignore = "a soak run: minutes"]
fn soak_cpu() {
    let (model, mut session) = load_cpu(&model_path());
    soak(&model, &mut session, 2000);
}

#[test]
#[ignore = "a soak run: minutes"]
fn soak_gpu() {
    let Some(ctx) = gpu_context() else { return };
    let (model, mut session) = load_gpu(ctx, &model_path());
    soak(&model, &mut session, 200);
}
