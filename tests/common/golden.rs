//! The model-level correctness checks against `../shared/golden`, written once for any
//! backend: teacher-forced logits, greedy chat, perplexity.

use super::*;
use hearth::backend::LogitsFor;
use hearth::sampler::Sampler;
use hearth::session::{generate, GenerateOptions};

/// Teacher-forced over prompt + float64 continuation: argmax equal to float64's wherever its
/// margin exceeds 0.1, and the centered logit RMS over the probe ids at most `max_rms`.
pub fn teacher_forced(session: &mut Session, n_vocab: usize, max_rms: f64) {
    teacher_forced_on(session, &golden_json("chat_greedy.json"), n_vocab, max_rms, None);
}

/// [`teacher_forced`] against any golden greedy file, over its first `limit` positions (all
/// when `None`): the model is causal, so a prefix of the sequence gives the same logits there.
pub fn teacher_forced_on(session: &mut Session, gold: &serde_json::Value, n_vocab: usize, max_rms: f64, limit: Option<usize>) {
    let tf = &gold["teacher_forced"];
    let all = ids(&tf["sequence"]);
    let seq = &all[..limit.unwrap_or(all.len()).min(all.len())];
    let probes = ids(&tf["probe_ids"]);
    session.clear();
    let logits = session.append(seq, LogitsFor::All).expect("forward pass");
    assert_eq!(logits.len(), seq.len() * n_vocab);
    let (mut worst_rms, mut sum_rms, mut worst_lp, mut checked) = (0.0f64, 0.0f64, 0.0f64, 0);
    let positions = &tf["positions"].as_array().unwrap()[..seq.len()];
    for (p, pos) in positions.iter().enumerate() {
        let row = &logits[p * n_vocab..(p + 1) * n_vocab];
        let f64_top = top_list(&pos["f64_top10"]);
        if pos["f64_margin"].as_f64().unwrap() > 0.1 {
            assert_eq!(argmax(row), f64_top[0].0, "argmax differs from float64 at position {p}");
            checked += 1;
        }
        let ours: Vec<f64> = probes.iter().map(|&i| row[i as usize] as f64).collect();
        let rms = centered_rms(&ours, &f64s(&pos["f64_probe_logits"]));
        worst_rms = worst_rms.max(rms);
        sum_rms += rms;
        let (lse, f64_lse) = (logsumexp(row), pos["f64_logsumexp"].as_f64().unwrap());
        for (id, l) in f64_top {
            worst_lp = worst_lp.max(((row[id as usize] as f64 - lse) - (l - f64_lse)).abs());
        }
    }
    eprintln!(
        "teacher-forced: argmax equal at {checked}/{checked} positions with margin > 0.1; centered RMS vs float64 \
         max {worst_rms:.2e} mean {:.2e} (llama.cpp: max 0.234); top-10 log-prob error max {worst_lp:.2e}",
        sum_rms / positions.len() as f64
    );
    assert!(worst_rms <= max_rms, "centered logit RMS {worst_rms} exceeds {max_rms}");
    assert!(worst_lp <= 0.05, "top-10 log-prob error {worst_lp}");
}

/// Greedy decoding through the KV cache, one token per forward call, against float64's greedy
/// continuation: at every step whose float64 margin exceeds 0.1 the argmax must be float64's
/// token; every step then appends float64's token, so a near-tie (where any f32 engine may pick
/// either) cannot derail the steps after it. (Free-running text past a near-tie is not an
/// oracle check: SmolLM2's very first step is one, margin 0.082.)
pub fn greedy_steps_match_float64(session: &mut Session, gold: &serde_json::Value) {
    let prompt = ids(&gold["prompt_ids"]);
    let expected = ids(&gold["f64_greedy"]["ids"]);
    let margins = f64s(&gold["f64_greedy"]["top1_minus_top2_margin"]);
    session.clear();
    let mut logits = session.append(&prompt, LogitsFor::Last).expect("prompt");
    let mut checked = 0;
    for (k, &want) in expected.iter().enumerate() {
        if margins[k] > 0.1 {
            assert_eq!(argmax(&logits), want, "greedy step {k} (float64 margin {})", margins[k]);
            checked += 1;
        }
        if k + 1 < expected.len() {
            logits = session.append(&[want], LogitsFor::Last).expect("decode step");
        }
    }
    eprintln!("greedy steps: argmax = float64's at {checked}/{checked} steps with margin > 0.1 (of {})", expected.len());
    assert!(checked * 2 > expected.len(), "most steps are checked");
}

/// The generation loop (`generate`: sampler, stop at the end-of-generation token) on the golden
/// chat prompt, greedy: the ids the CPU engine gives, and the reply text they decode to. Not an
/// oracle check: `reference` is the native CPU engine's output.
pub fn greedy_generation(session: &mut Session, model: &hearth::model::Model) -> hearth::session::Generation {
    let gold = golden_json("chat_greedy.json");
    session.clear();
    generate(session, &model.tokenizer, &ids(&gold["prompt_ids"]), &GenerateOptions { max_tokens: 64, stop: Vec::new() }, &mut Sampler::greedy(), |_| true)
        .expect("generation")
}

/// Perplexity over the golden paragraph within `max_rel` of float64's.
pub fn perplexity(session: &mut Session, n_vocab: usize, max_rel: f64) {
    perplexity_on(session, &golden_json("ppl.json"), n_vocab, max_rel, None);
}

/// [`perplexity`] against any golden `ppl.json`, over its first `limit` tokens (the reference
/// then from float64's per-token NLL of those tokens).
pub fn perplexity_on(session: &mut Session, gold: &serde_json::Value, n_vocab: usize, max_rel: f64, limit: Option<usize>) {
    let all = ids(&gold["token_ids"]);
    let toks = &all[..limit.unwrap_or(all.len()).min(all.len())];
    session.clear();
    let logits = session.append(toks, LogitsFor::All).expect("forward pass");
    let nll: f64 = (1..toks.len())
        .map(|i| {
            let row = &logits[(i - 1) * n_vocab..i * n_vocab];
            logsumexp(row) - row[toks[i] as usize] as f64
        })
        .sum::<f64>()
        / (toks.len() - 1) as f64;
    let ppl = nll.exp();
    let per_token = f64s(&gold["f64"]["per_token_nll"]);
    let reference = if toks.len() == all.len() {
        gold["f64"]["ppl"].as_f64().unwrap()
    } else {
        (per_token[..toks.len() - 1].iter().sum::<f64>() / (toks.len() - 1) as f64).exp()
    };
    let rel = (ppl - reference).abs() / reference;
    eprintln!("perplexity {ppl:.4} vs float64 {reference:.4} ({:+.4} %)", 100.0 * (ppl - reference) / reference);
    assert!(rel <= max_rel, "perplexity {ppl} is {rel:.4} away from {reference}");
}
