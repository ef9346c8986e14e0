//! The CPU backend on the default model against the float64 reference in `../shared/golden`.

mod common;

use common::*;

#[test]
fn teacher_forced_logits_match_float64() {
    let (model, mut session) = load_cpu(&model_path());
    golden::teacher_forced(&mut session, model.config().n_vocab, 0.05);
}

#[test]
fn greedy_chat_reproduces_float64() {
    let (model, mut session) = load_cpu(&model_path());
    golden::greedy_chat(&mut session, &model);
}

#[test]
fn perplexity_matches_float64() {
    let (model, mut session) = load_cpu(&model_path());
    golden::perplexity(&mut session, model.config().n_vocab, 0.005);
}
