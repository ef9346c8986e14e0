//! Sessions on the tiny synthetic model: chunked prefill, prefix reuse, greedy shortcut and
//! context limits give the same numbers as plain evaluation and leave the session usable.

mod common;

use std::sync::Arc;

use common::*;
use hearth::backend::LogitsFor;
use hearth::cpu::{CpuBackend, CpuWeights};
use hearth::session::Session;
use hearth::Error;

fn tiny(max_context: usize) -> Session {
    let path = golden_model_dir().join("synthetic/tiny32_q4_1.gguf");
    let (model, weights) = CpuWeights::load_file(&path, |_| {}).unwrap();
    let backend = CpuBackend::new(model.plan.clone(), Arc::new(weights), max_context);
    Session::new(Box::new(backend), model.config().n_vocab)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

const SEQ: [u32; 12] = [1, 4093, 198, 504, 2365, 5, 77, 900, 12, 13, 14, 2];

#[test]
fn chunked_prefill_equals_one_batch() {
    let mut s = tiny(64);
    let whole = s.append(&SEQ, LogitsFor::All).unwrap();
    for chunk in [1, 5, 7] {
        let mut c = tiny(64);
        c.prefill_chunk = chunk;
        assert!(max_diff(&c.append(&SEQ, LogitsFor::All).unwrap(), &whole) < 1e-4, "chunk {chunk}, all rows");
        c.clear();
        let last = c.append(&SEQ, LogitsFor::Last).unwrap();
        assert!(max_diff(&last, &whole[whole.len() - last.len()..]) < 1e-4, "chunk {chunk}, last row");
    }
}

#[test]
fn prefix_reuse_equals_fresh_evaluation() {
    let mut s = tiny(64);
    s.set_tokens(&SEQ).unwrap();
    // Diverge after 6 tokens: only the new suffix is evaluated, the numbers match a fresh run.
    let mut other = SEQ.to_vec();
    other.truncate(6);
    other.extend([300, 301, 302]);
    let reused = s.set_tokens(&other).unwrap();
    assert_eq!(s.tokens(), &other[..]);
    let fresh = tiny(64).set_tokens(&other).unwrap();
    assert!(max_diff(&reused, &fresh) < 1e-5);
    // A strict prefix of the cache still yields its last token's logits.
    let prefix = s.set_tokens(&other[..4]).unwrap();
    assert!(max_diff(&prefix, &tiny(64).set_tokens(&other[..4]).unwrap()) < 1e-5);
}

#[test]
fn greedy_shortcut_equals_argmax_of_logits() {
    let mut s = tiny(64);
    let logits = s.append(&SEQ[..6], LogitsFor::Last).unwrap();
    let mut g = tiny(64);
    assert_eq!(g.append_greedy(&SEQ[..6]).unwrap(), argmax(&logits));
    assert_eq!(g.tokens(), &SEQ[..6]);
}

#[test]
fn context_overflow_is_an_error_and_the_session_stays_usable() {
    let mut s = tiny(10);
    s.append(&SEQ[..8], LogitsFor::None).unwrap();
    match s.append(&SEQ[..3], LogitsFor::Last) {
        Err(Error::ContextLengthExceeded { needed: 11, limit: 10 }) => {}
        other => panic!("expected context_length_exceeded, got {other:?}"),
    }
    assert_eq!(s.tokens().len(), 8);
    let next = s.append(&SEQ[8..10], LogitsFor::Last).unwrap();
    let fresh = tiny(10).append(&SEQ[..10], LogitsFor::Last).unwrap();
    assert!(max_diff(&next, &fresh) < 1e-4);
    let mut s = tiny(64);
    s.append(&SEQ[..3], LogitsFor::None).unwrap();
    assert!(matches!(s.append(&[5, 99_999_999], LogitsFor::Last), Err(Error::InvalidArgument(_))));
    assert_eq!(s.tokens(), &SEQ[..3]);
    let after = s.append(&SEQ[3..5], LogitsFor::Last).unwrap();
    assert!(max_diff(&after, &tiny(64).append(&SEQ[..5], LogitsFor::Last).unwrap()) < 1e-4);
}

#[test]
fn beam_search_of_width_one_is_greedy_and_wider_beams_score_no_lower() {
    let (model, mut session) = common::load_cpu(&common::model_path());
    let gold = common::golden_json("chat_greedy.json");
    let prompt: Vec<u32> = gold["prompt_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let greedy: Vec<u32> = gold["f64_greedy"]["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let opts = |num_beams| hearth::session::BeamOptions { num_beams, max_tokens: 12, length_penalty: 0.0, early_stopping: true };
    let one = hearth::session::beam_search(&mut session, &model.tokenizer, &prompt, &opts(1)).unwrap();
    assert_eq!(one.ids, greedy[..greedy.len().min(12)]);
    assert_eq!(one.text, "The capital of France is Paris.");
    for width in [2, 4] {
        let wide = hearth::session::beam_search(&mut session, &model.tokenizer, &prompt, &opts(width)).unwrap();
        // Within float noise: the same tokens evaluated in different batch shapes differ by ~1e-6.
        assert!(wide.logprob >= one.logprob - 1e-4, "{width} beams: {} < greedy {}", wide.logprob, one.logprob);
        eprintln!("{width} beams: {:?} logprob {:.4} (greedy {:.4})", wide.text, wide.logprob, one.logprob);
    }
    assert!(hearth::session::beam_search(&mut session, &model.tokenizer, &prompt, &opts(0)).is_err());
    // An open-ended prompt, where wider beams find likelier continuations than greedy.
    let story = model.chat_prompt(&[hearth::chat::ChatMessage { role: "user".into(), content: "Tell me a story about a dragon.".into() }]).unwrap();
    let greedy = hearth::session::beam_search(&mut session, &model.tokenizer, &story, &opts(1)).unwrap();
    let wide = hearth::session::beam_search(&mut session, &model.tokenizer, &story, &opts(4)).unwrap();
    eprintln!("story: greedy {:?} {:.4}; 4 beams {:?} {:.4}", greedy.text, greedy.logprob, wide.text, wide.logprob);
    assert!(wide.logprob >= greedy.logprob - 1e-4);
}

#[test]
fn windowed_perplexity_scores_each_token_once_with_its_window_as_context() {
    let (model, mut session) = common::load_cpu(&common::model_path());
    let text = common::golden_json("ppl.json")["text"].as_str().unwrap().to_string();
    let tokens: Vec<u32> = model.tokenizer.encode(&text, false).unwrap().into_iter().take(70).collect();
    let whole = session.perplexity(&tokens).unwrap();
    assert_eq!(whole.n_scored, tokens.len() - 1);
    let same = session.perplexity_windowed(&tokens, 100, 50).unwrap();
    assert!((same.mean_nll - whole.mean_nll).abs() < 1e-9, "a window longer than the text is one window");
    // By hand: windows of 24 every 10 tokens; each target scored in the first window holding it
    // after its first position.
    let (window, stride) = (24, 10);
    let (mut nll, mut n, mut done, mut begin) = (0.0, 0, 1, 0);
    while done < tokens.len() {
        let end = (begin + window).min(tokens.len());
        session.clear();
        let logits = session.append(&tokens[begin..end - 1], LogitsFor::All).unwrap();
        for (p, row) in logits.chunks_exact(model.config().n_vocab).enumerate() {
            let t = begin + p + 1;
            if t >= done {
                nll += hearth::session::logsumexp(row) - row[tokens[t] as usize] as f64;
                n += 1;
            }
        }
        done = end;
        begin += stride;
    }
    let got = session.perplexity_windowed(&tokens, window, stride).unwrap();
    assert_eq!(got.n_scored, tokens.len() - 1, "overlapping windows score every token");
    assert_eq!(n, got.n_scored);
    assert!((got.mean_nll - nll / n as f64).abs() < 1e-9);
    assert!(got.mean_nll > whole.mean_nll, "less context, less certainty");
    // Disjoint windows leave each window's first token unscored.
    let disjoint = session.perplexity_windowed(&tokens, 20, 20).unwrap();
    assert_eq!(disjoint.n_scored, tokens.len() - tokens.len().div_ceil(20));
    assert!(session.perplexity_windowed(&tokens, 10, 11).is_err());
}

/// Evaluates 20 tokens, drops positions 4..10 and evaluates one more token: the logits
/// after the shift (the CPU's shift is checked exactly in its unit test).
fn after_shift(backend: &mut dyn hearth::backend::Backend) -> Vec<f32> {
    let tokens: Vec<u32> = (0..20u32).map(|i| 300 + i * 37).collect();
    backend.forward(&tokens, 0, LogitsFor::None).unwrap();
    backend.shift(4, 6).unwrap();
    assert!(backend.shift(10, 10).is_err(), "dropping past the end is an error");
    backend.forward(&[4242], 14, LogitsFor::Last).unwrap()
}

#[test]
fn gpu_cache_shift_matches_the_cpu() {
    let Some(ctx) = gpu_context() else { return };
    let (model, weights) = CpuWeights::load_file(&model_path(), |_| {}).unwrap();
    let want = after_shift(&mut CpuBackend::new(model.plan.clone(), Arc::new(weights), 64));
    let (model, weights) = hearth::gpu::GpuWeights::load_file(ctx, &model_path(), |_| {}).unwrap();
    let got = after_shift(&mut hearth::gpu::GpuBackend::new(model.plan.clone(), Arc::new(weights), 64, 64).unwrap());
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("GPU vs CPU logits after a shift differ by at most {diff:.2e}");
    assert!(diff < 1e-3, "{diff}");
}

#[test]
fn context_shift_keeps_the_sinks_and_generation_going() {
    let (model, weights) = CpuWeights::load_file(&model_path(), |_| {}).unwrap();
    let weights = Arc::new(weights);
    let new_session = |shift| {
        let mut s = Session::new(Box::new(CpuBackend::new(model.plan.clone(), weights.clone(), 48)), model.config().n_vocab);
        s.context_shift = shift;
        s
    };
    let prompt = model.text_prompt("Once upon a time, in a land far away, there lived a").unwrap();
    let opts = hearth::session::GenerateOptions { max_tokens: 80, stop: Vec::new() };
    let mut greedy = hearth::sampler::Sampler::greedy();
    // Off by default: the reply ends when the context is full, the token sampled from the
    // full context being its last.
    let full = hearth::session::generate(&mut new_session(None), &model.tokenizer, &prompt, &opts, &mut greedy, |_| true).unwrap();
    assert_eq!((full.stop_reason, full.ids.len()), (hearth::session::StopReason::Length, 48 - prompt.len() + 1));
    let mut session = new_session(Some(4));
    let out = hearth::session::generate(&mut session, &model.tokenizer, &prompt, &opts, &mut greedy, |_| true).unwrap();
    assert_eq!(out.ids.len(), 80, "80 tokens generated in a 48-token context");
    assert!(session.tokens().len() <= 48);
    assert_eq!(&session.tokens()[..4], &prompt[..4], "the attention sinks stay");
    eprintln!("with a 48-token context: {:?}", out.text);
    // A prompt longer than the context is evaluated in chunks that shift as they go.
    let long: Vec<u32> = prompt.iter().copied().cycle().take(100).collect();
    assert!(session.set_tokens(&long).is_ok());
}

/// The rules "How a reply ends" in the README gives, natively; the browser test `reply-rules`
/// checks that the wasm engine, driven a token at a time, ends the same replies the same way.
#[test]
fn a_reply_ends_by_the_documented_rules() {
    use hearth::chat::ChatMessage;
    use hearth::sampler::Sampler;
    use hearth::session::{generate, GenerateOptions, Generation, StopReason};
    let (model, weights) = CpuWeights::load_file(&model_path(), |_| {}).unwrap();
    let weights = Arc::new(weights);
    let prompt = model.chat_prompt(&[ChatMessage::new("user", "What is the capital of France?")]).unwrap();
    let run = |ctx: usize, max_tokens: usize, stop: &[&str], cancel_after: usize| -> Generation {
        let mut session = Session::new(Box::new(CpuBackend::new(model.plan.clone(), weights.clone(), ctx)), model.config().n_vocab);
        let opts = GenerateOptions { max_tokens, stop: stop.iter().map(|s| s.to_string()).collect() };
        let (mut shown, mut calls) = (String::new(), 0);
        let out = generate(&mut session, &model.tokenizer, &prompt, &opts, &mut Sampler::greedy(), |t| {
            shown.push_str(t);
            calls += 1;
            calls < cancel_after
        })
        .unwrap();
        assert_eq!(shown, out.text, "the streamed text is the reply's text");
        out
    };
    // An end token ends it and is the last id, with no text of its own.
    let eos = run(256, 64, &[], usize::MAX);
    assert_eq!(eos.stop_reason, StopReason::Eos);
    assert!(model.tokenizer.is_end_of_generation(*eos.ids.last().unwrap()));
    assert_eq!(eos.text, "The capital of France is Paris.");
    // max_tokens.
    let length = run(256, 3, &[], usize::MAX);
    assert_eq!((length.stop_reason, &length.ids[..]), (StopReason::Length, &eos.ids[..3]));
    assert!(eos.text.starts_with(&length.text) && !length.text.is_empty());
    // A stop string: the id that completes it is the last; the text ends before it.
    let stop = run(256, 64, &["Paris"], usize::MAX);
    assert_eq!(stop.stop_reason, StopReason::Stop);
    assert_eq!(stop.text, "The capital of France is ");
    assert_eq!(&stop.ids[..], &eos.ids[..stop.ids.len()]);
    assert!(model.tokenizer.decode(&stop.ids, false).unwrap().contains("Paris"));
    // A full context: two free positions after the prompt give three tokens.
    let full = run(prompt.len() + 2, 64, &[], usize::MAX);
    assert_eq!((full.stop_reason, &full.ids[..]), (StopReason::Length, &eos.ids[..3]));
    // Cancelled after the second piece of text.
    let cancelled = run(256, 64, &[], 2);
    assert_eq!((cancelled.stop_reason, &cancelled.ids[..]), (StopReason::Cancelled, &eos.ids[..2]));
    // A prompt that does not fit is refused before anything is generated.
    let mut small = Session::new(Box::new(CpuBackend::new(model.plan.clone(), weights.clone(), prompt.len() - 1)), model.config().n_vocab);
    let err = generate(&mut small, &model.tokenizer, &prompt, &GenerateOptions { max_tokens: 4, stop: vec![] }, &mut Sampler::greedy(), |_| true).unwrap_err();
    assert!(err.to_string().starts_with("context_length_exceeded: "), "{err}");
}
