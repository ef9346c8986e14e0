//! The GPU backend on the default model against the float64 reference (lavapipe in CI).

mod common;

use common::*;

fn gpu_session() -> Option<(hearth::model::Model, hearth::session::Session)> {
    gpu_context().map(|ctx| load_gpu(ctx, &model_path()))
}

#[test]
fn teacher_forced_logits_match_float64_on_gpu() {
    let Some((model, mut session)) = gpu_session() else { return };
    golden::teacher_forced(&mut session, model.config().n_vocab, 0.03);
}

#[test]
fn greedy_steps_match_float64_on_gpu() {
    let Some((_, mut session)) = gpu_session() else { return };
    golden::greedy_steps_match_float64(&mut session, &golden_json("chat_greedy.json"));
}

/// The greedy reply on the GPU (argmax on the device) is the CPU engine's, token for token:
/// the native engine checked against itself, not an oracle check.
#[test]
fn greedy_chat_on_gpu_gives_the_cpu_engines_ids() {
    let Some((model, mut session)) = gpu_session() else { return };
    let gpu = golden::greedy_generation(&mut session, &model);
    let (_, mut cpu_session) = load_cpu(&model_path());
    let cpu = golden::greedy_generation(&mut cpu_session, &model);
    eprintln!("greedy on the GPU: {:?} ({:?})", gpu.text, gpu.stop_reason);
    assert_eq!(gpu.ids, cpu.ids);
    assert_eq!(gpu.stop_reason, cpu.stop_reason);
}

#[test]
fn perplexity_matches_float64_on_gpu() {
    let Some((model, mut session)) = gpu_session() else { return };
    golden::perplexity(&mut session, model.config().n_vocab, 0.001);
}

#[test]
fn profile_times_every_dispatch_and_leaves_the_sequence_alone() {
    let Some(ctx) = gpu_context() else { return };
    let (model, weights) = hearth::gpu::GpuWeights::load_file(ctx, &model_path(), |_| {}).unwrap();
    let backend = hearth::gpu::GpuBackend::new(model.plan.clone(), std::sync::Arc::new(weights), 64, 512).unwrap();
    let per_token = backend.dispatches_per_token();
    let mut session = hearth::session::Session::new(Box::new(backend), model.config().n_vocab);
    let ids = model.tokenizer.encode("The capital of France is", false).unwrap();
    let next = session.append_greedy(&ids).unwrap();
    match session.profile(&[next]) {
        Ok(kernels) => {
            let dispatches: usize = kernels.iter().map(|k| k.dispatches).sum();
            assert_eq!(dispatches, per_token, "{kernels:?}");
            assert!(kernels.iter().any(|k| k.kernel == "MatMul" && k.seconds > 0.0), "{kernels:?}");
            // A prefill-sized batch runs the tiled matmul.
            let prefill = session.profile(&ids).unwrap();
            assert!(prefill.iter().any(|k| k.kernel == "MatMulTiled"), "{prefill:?}");
        }
        Err(e) => eprintln!("SKIPPED the profile checks: {e}"),
    }
    // Profiling did not disturb the cached sequence: the next greedy steps are unchanged.
    assert_eq!(session.tokens(), &ids[..]);
    let mut fresh = gpu_session().unwrap().1;
    fresh.lookahead = 1; // one forward call per token: the host in the loop
    fresh.append_greedy(&ids).unwrap();
    let before = session.backend().traffic().unwrap();
    let (mut a, mut b) = (next, next);
    let n = 2 * hearth::gpu::DECODE_RUN;
    for _ in 0..n {
        a = session.append_greedy(&[a]).unwrap();
        b = fresh.append_greedy(&[b]).unwrap();
        assert_eq!(a, b);
    }
    assert_eq!(session.tokens(), fresh.tokens());
    // What a greedy token cost the host: every dispatch of the plan, but one submission and
    // one readback (of the run's 4-byte ids) per run of DECODE_RUN tokens.
    let step = session.backend().traffic().unwrap().per(&before, n);
    let per_run = 1.0 / hearth::gpu::DECODE_RUN as f64;
    assert_eq!((step.dispatches, step.submits, step.readbacks, step.readback_bytes), (per_token as f64, per_run, per_run, 4.0), "{step:?}");
    assert!(step.submits <= 0.25 && step.encode_us > 0.0);
}

/// A greedy run computes past where a reply ends (here its end token); the next turn drops
/// those positions and continues exactly as the CPU engine does, step by step.
#[test]
fn greedy_runs_past_the_end_of_a_reply_leave_the_next_turn_unchanged() {
    let Some((model, mut gpu)) = gpu_session() else { return };
    let (_, mut cpu) = load_cpu(&model_path());
    let opts = hearth::session::GenerateOptions { max_tokens: 40, stop: Vec::new() };
    let mut turns = Vec::new();
    for session in [&mut gpu, &mut cpu] {
        let mut messages = vec![hearth::chat::ChatMessage::new("user", "What is the capital of France?")];
        let mut out = Vec::new();
        for next in ["And of Italy?", "Thanks!"] {
            let prompt = model.chat_prompt(&messages).unwrap();
            let g = hearth::session::generate(session, &model.tokenizer, &prompt, &opts, &mut hearth::sampler::Sampler::greedy(), |_| true).unwrap();
            messages.push(hearth::chat::ChatMessage::new("assistant", &g.text));
            messages.push(hearth::chat::ChatMessage::new("user", next));
            out.push((g.ids, g.stop_reason));
        }
        turns.push(out);
    }
    eprintln!("two greedy turns: {:?}", turns[0]);
    // Each turn ends on its end token; at least one mid-run, so that the run computed past it.
    assert!(turns[0].iter().all(|(_, reason)| *reason == hearth::session::StopReason::Eos), "{:?}", turns[0]);
    assert!(turns[0].iter().any(|(ids, _)| ids.len() % hearth::gpu::DECODE_RUN != 1), "{:?}", turns[0]);
    assert_eq!(turns[0], turns[1]);
}

#[test]
fn top_k_sampling_selects_on_the_gpu_and_draws_what_the_full_logits_draw() {
    let Some((model, mut session)) = gpu_session() else { return };
    assert!(session.backend().device_top_k() >= 40);
    let prompt = model.text_prompt("Once upon a time").unwrap();
    let config = hearth::sampler::SamplerConfig { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 7, ..Default::default() };
    // On the GPU path: 8 bytes per candidate come back.
    let mut sampler = hearth::sampler::Sampler::from_config(config.clone()).unwrap();
    assert_eq!(sampler.top_k_only(), Some(40));
    let mut selected = vec![session.set_tokens_and_sample(&prompt, &mut sampler).unwrap()];
    for _ in 0..7 {
        selected.push(session.append_and_sample(&[*selected.last().unwrap()], &mut sampler).unwrap());
    }
    // The same draws from the whole logits rows.
    session.clear();
    let mut sampler = hearth::sampler::Sampler::from_config(config).unwrap();
    let logits = session.set_tokens(&prompt).unwrap();
    let mut full = vec![sampler.sample(&logits, session.tokens()).unwrap()];
    for _ in 0..7 {
        let logits = session.append(&[*full.last().unwrap()], hearth::backend::LogitsFor::Last).unwrap();
        full.push(sampler.sample(&logits, session.tokens()).unwrap());
    }
    eprintln!("top-k 40 on the GPU: {selected:?} {:?}", model.tokenizer.decode(&selected, false).unwrap());
    assert_eq!(selected, full);
    assert!(selected.iter().collect::<std::collections::HashSet<_>>().len() > 2, "{selected:?}");
}

/// A seeded reply with temperature, top-k, top-p and min-p is drawn on the GPU (runs of
/// DECODE_RUN steps, one 4-byte id per token read back) and is the CPU engine's reply token for
/// token: both draw with Philox numbers of (seed, draw index).
#[test]
fn seeded_sampling_on_the_gpu_gives_the_cpu_engines_reply() {
    let Some((model, mut gpu)) = gpu_session() else { return };
    let (_, mut cpu) = load_cpu(&model_path());
    let messages = [hearth::chat::ChatMessage::new("user", "Write a short poem about the sea.")];
    let prompt = model.chat_prompt(&messages).unwrap();
    let config = hearth::sampler::SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, seed: 1234, ..Default::default() };
    let opts = hearth::session::GenerateOptions { max_tokens: 3 * hearth::gpu::DECODE_RUN + 1, stop: Vec::new() };
    let mut replies = Vec::new();
    for session in [&mut gpu, &mut cpu] {
        let mut sampler = hearth::sampler::Sampler::from_config(config.clone()).unwrap();
        let before = session.backend().traffic();
        let g = hearth::session::generate(session, &model.tokenizer, &prompt, &opts, &mut sampler, |_| true).unwrap();
        assert_eq!(sampler.draws(), g.ids.len() as u64);
        if let (Some(before), Some(after)) = (before, session.backend().traffic()) {
            // The first token comes from the prompt's forward call (its 40 candidates read back);
            // the rest from three runs.
            let decoded = g.ids.len() - 1;
            let t = after.per(&before, decoded);
            let runs = 3.0 / decoded as f64;
            assert_eq!(decoded, 3 * hearth::gpu::DECODE_RUN, "{:?}", g.stop_reason);
            assert!((t.submits - (1.0 + 3.0) / decoded as f64).abs() < 1e-9 && (t.readbacks - t.submits).abs() < 1e-9, "{t:?}");
            assert!((t.readback_bytes - (40.0 * 8.0 + 4.0 * decoded as f64) / decoded as f64).abs() < 1e-9, "{t:?} ({runs} runs per token)");
        }
        replies.push((g.ids, g.text));
    }
    eprintln!("seeded sample on the GPU: {:?}", replies[0].1);
    assert_eq!(replies[0], replies[1]);
    assert!(replies[0].0.iter().collect::<std::collections::HashSet<_>>().len() > 8, "{:?}", replies[0]);
}
