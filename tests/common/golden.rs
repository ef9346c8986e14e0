//! The model-level correctness checks against `../shared/golden`, written once for any
//! backend: teacher-forced logits, greedy chat, perplexity.

use super::*;
use hearth::backend::LogitsFor;
use hearth::sampler::Sampler;
use hearth::session::{generate, GenerateOptions, StopReason};

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

/// Greedy free-running generation on the golden chat prompt reproduces float64's continuation.
pub fn greedy_chat(session: &mut Session, model: &hearth::model::Model) {
    let gold = golden_json("chat_greedy.json");
    let prompt = ids(&gold["prompt_ids"]);
    let expected = ids(&gold["f64_greedy"]["ids"]);
    session.clear();
    let out = generate(
        session,
        &model.tokenizer,
        &prompt,
        &GenerateOptions { max_tokens: 64, stop: Vec::new() },
        &mut Sampler::greedy(),
        |_| true,
    )
    .expect("generation");
    eprintln!("greedy: {:?} ({:?})", out.text, out.stop_reason);
    assert_eq!(out.ids, expected, "greedy ids differ from float64's");
    assert_eq!(out.stop_reason, StopReason::Eos);
    assert_eq!(out.text, gold["f64_greedy"]["text_until_eos"].as_str().unwrap().trim_end_matches("<|im_end|>"));
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

/// Greedy free-running generation from the golden prompt equals float64's continuation up to
/// its first near-tie (a float64 margin below 0.1, where any f32 engine may pick either token;
/// the teacher-forced check covers what follows).
pub fn greedy_until_near_tie(session: &mut Session, model: &hearth::model::Model, gold: &serde_json::Value) {
    let prompt = ids(&gold["prompt_ids"]);
    let expected = ids(&gold["f64_greedy"]["ids"]);
    let margins = f64s(&gold["f64_greedy"]["top1_minus_top2_margin"]);
    let n = margins.iter().position(|&m| m < 0.1).unwrap_or(expected.len());
    assert!(n >= 4, "the golden continuation has a near-tie at step {n}");
    session.clear();
    let out = generate(session, &model.tokenizer, &prompt, &GenerateOptions { max_tokens: n, stop: Vec::new() }, &mut Sampler::greedy(), |_| true)
        .expect("generation");
    eprintln!("greedy, {n} steps to float64's first near-tie: {:?}", out.text);
    assert_eq!(out.ids, expected[..n], "greedy ids differ from float64's before its first near-tie");
}
