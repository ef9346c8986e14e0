//! Qwen2.5-Coder-0.5B-Instruct (qwen2, K-quant mix, chat) and Gemma 3 270M (gemma3,
//! SentencePiece, base model) against the float64 references in `../shared/golden/<model>/`:
//! prompts rendered as the references rendered them, teacher-forced logits (argmax where the
//! float64 margin exceeds 0.1, centered RMS at most 0.03), perplexity within 0.1 %, greedy
//! decoding steps equal to float64's wherever its margin exceeds 0.1. The CPU runs the whole texts; the GPU (lavapipe in CI, much
//! slower) a few positions of each, with the 128 MiB storage-binding limit splitting the
//! embedding and output tables into parts.

mod common;

use std::sync::Arc;

use common::*;
use hearth::model::Model;
use hearth::session::Session;

/// The oracle's guidance for f32 runtimes (the golden READMEs).
const MAX_RMS: f64 = 0.03;
const MAX_PPL_REL: f64 = 0.001;
/// Positions (tokens) the GPU checks run over on lavapipe.
const GPU_POSITIONS: usize = 16;

fn cpu(m: &RealModel) -> (Model, Session) {
    load_cpu(&m.path())
}

/// The model on the GPU, with every tensor over the adapter's binding limit split into parts
/// (on lavapipe's 128 MiB: Qwen's 145 MB output matrix and Gemma's 189 MB embedding).
fn gpu(m: &RealModel) -> Option<(Model, Session)> {
    let ctx = gpu_context()?;
    let limit = ctx.max_binding();
    let (model, weights) = hearth::gpu::GpuWeights::load_file(ctx, &m.path(), |_| {}).expect("model uploads");
    let mut split = 0;
    for (i, spec) in model.plan.weights.iter().enumerate() {
        let t = weights.get(hearth::model::WeightId(i));
        let bytes = t.rows as u64 * t.row_words as u64 * 4;
        if bytes > limit {
            assert!(t.parts.len() > 1, "{}: {bytes} bytes over a {limit}-byte binding limit must be split", spec.name);
            eprintln!("{}: {bytes} bytes in {} parts (binding limit {limit})", spec.name, t.parts.len());
            split += 1;
        }
    }
    if limit <= 128 << 20 {
        assert!(split > 0, "{}: some table exceeds a 128 MiB binding limit", m.file);
    }
    let backend = hearth::gpu::GpuBackend::new(model.plan.clone(), Arc::new(weights), GPU_POSITIONS, 512).expect("GPU backend");
    let session = Session::new(Box::new(backend), model.config().n_vocab);
    Some((model, session))
}

#[test]
fn qwen2_renders_the_chat_prompt_like_the_reference() {
    let model = hearth::model::Model::from_header(hearth::gguf::read_header_file(&QWEN.path()).unwrap()).unwrap();
    let gold = QWEN.json("chat_greedy.json");
    let messages: Vec<hearth::chat::ChatMessage> = serde_json::from_value(gold["messages"].clone()).unwrap();
    assert_eq!(model.chat_prompt(&messages).unwrap(), ids(&gold["prompt_ids"]));
}

#[test]
fn qwen2_teacher_forced_logits_match_float64() {
    let (model, mut session) = cpu(&QWEN);
    golden::teacher_forced_on(&mut session, &QWEN.json("chat_greedy.json"), model.config().n_vocab, MAX_RMS, None);
}

#[test]
fn qwen2_perplexity_matches_float64() {
    let (model, mut session) = cpu(&QWEN);
    golden::perplexity_on(&mut session, &QWEN.json("ppl.json"), model.config().n_vocab, MAX_PPL_REL, None);
}

#[test]
fn qwen2_greedy_steps_match_float64() {
    let (_, mut session) = cpu(&QWEN);
    golden::greedy_steps_match_float64(&mut session, &QWEN.json("chat_greedy.json"));
}

#[test]
fn gemma3_renders_the_prompt_like_the_reference() {
    let model = hearth::model::Model::from_header(hearth::gguf::read_header_file(&GEMMA.path()).unwrap()).unwrap();
    let gold = GEMMA.json("greedy.json");
    assert_eq!(model.text_prompt(gold["prompt"].as_str().unwrap()).unwrap(), ids(&gold["prompt_ids"]));
    assert!(model.chat_template.is_none(), "a base model without a chat template");
}

#[test]
fn gemma3_teacher_forced_logits_match_float64() {
    let (model, mut session) = cpu(&GEMMA);
    golden::teacher_forced_on(&mut session, &GEMMA.json("greedy.json"), model.config().n_vocab, MAX_RMS, None);
}

#[test]
fn gemma3_perplexity_matches_float64() {
    let (model, mut session) = cpu(&GEMMA);
    golden::perplexity_on(&mut session, &GEMMA.json("ppl.json"), model.config().n_vocab, MAX_PPL_REL, None);
}

#[test]
fn gemma3_greedy_steps_match_float64() {
    let (_, mut session) = cpu(&GEMMA);
    golden::greedy_steps_match_float64(&mut session, &GEMMA.json("greedy.json"));
}

#[test]
fn qwen2_on_gpu_matches_float64_on_a_few_positions() {
    let Some((model, mut session)) = gpu(&QWEN) else { return };
    let n_vocab = model.config().n_vocab;
    golden::teacher_forced_on(&mut session, &QWEN.json("chat_greedy.json"), n_vocab, MAX_RMS, Some(GPU_POSITIONS));
    golden::perplexity_on(&mut session, &QWEN.json("ppl.json"), n_vocab, MAX_PPL_REL, Some(GPU_POSITIONS));
}

#[test]
fn gemma3_on_gpu_matches_float64_on_a_few_positions() {
    let Some((model, mut session)) = gpu(&GEMMA) else { return };
    let n_vocab = model.config().n_vocab;
    golden::teacher_forced_on(&mut session, &GEMMA.json("greedy.json"), n_vocab, MAX_RMS, Some(GPU_POSITIONS));
    golden::perplexity_on(&mut session, &GEMMA.json("ppl.json"), n_vocab, MAX_PPL_REL, Some(GPU_POSITIONS));
}
