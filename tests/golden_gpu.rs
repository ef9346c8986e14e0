//! The GPU backend on the default model against the float64 reference (lavapipe in CI).

mod common;

use common::*;

fn gpu_session() -> Option<(hearth::model::Model, hearth::session::Session)> {
    gpu_context().map(|ctx| load_gpu(ctx, &model_path()))
}

#[test]
fn teacher_forced_logits_match_float64_on_gpu() {
    let Some((model, mut session)) = gpu_session() else { return };
    golden::teacher_forced(&mut session, model.config().n_vocab, 0.1);
}

#[test]
fn greedy_chat_reproduces_float64_on_gpu() {
    let Some((model, mut session)) = gpu_session() else { return };
    golden::greedy_chat(&mut session, &model);
}

#[test]
fn perplexity_matches_float64_on_gpu() {
    let Some((model, mut session)) = gpu_session() else { return };
    golden::perplexity(&mut session, model.config().n_vocab, 0.005);
}
