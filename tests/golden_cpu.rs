//! The CPU backend on the default model against the float64 reference in `../shared/golden`
//! (tolerances from its README: centered logit RMS ≤ 0.03, perplexity within 0.1 %).

mod common;

use common::*;
use hearth::backend::LogitsFor;
use hearth::session::StopReason;

#[test]
fn teacher_forced_logits_match_float64() {
    let (model, mut session) = load_cpu(&model_path());
    golden::teacher_forced(&mut session, model.config().n_vocab, 0.03);
}

#[test]
fn greedy_steps_match_float64() {
    let (_, mut session) = load_cpu(&model_path());
    golden::greedy_steps_match_float64(&mut session, &golden_json("chat_greedy.json"));
}

/// The generation loop does what greedy steps do: its ids are the argmax of each step's logits
/// up to and including the end-of-generation token, and its text is theirs decoded. (The
/// native engine checked against itself, through two paths.)
#[test]
fn greedy_generation_is_the_argmax_chain() {
    let (model, mut session) = load_cpu(&model_path());
    let out = golden::greedy_generation(&mut session, &model);
    eprintln!("greedy: {:?} ({:?})", out.text, out.stop_reason);
    let mut chain = Vec::new();
    session.clear();
    let mut logits = session.append(&out.prompt_ids, LogitsFor::Last).unwrap();
    while chain.len() < out.ids.len() {
        let id = argmax(&logits);
        chain.push(id);
        logits = session.append(&[id], LogitsFor::Last).unwrap();
    }
    assert_eq!(out.ids, chain);
    assert_eq!(out.stop_reason, StopReason::Eos);
    assert!(model.tokenizer.is_end_of_generation(*out.ids.last().unwrap()));
    assert_eq!(out.text, model.tokenizer.decode(&out.ids[..out.ids.len() - 1], false).unwrap());
}

#[test]
fn perplexity_matches_float64() {
    let (model, mut session) = load_cpu(&model_path());
    golden::perplexity(&mut session, model.config().n_vocab, 0.001);
}
