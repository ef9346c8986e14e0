//! Each logit processor on hand-built logits with exactly known results, and the sampler's
//! draw frequencies over many seeded draws.

use hearth::sampler::processors as p;
use hearth::sampler::{Sampler, SamplerConfig};

fn ids(c: &[p::Candidate]) -> Vec<u32> {
    c.iter().map(|&(id, _)| id).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

/// Logits whose softmax at temperature 1 is exactly `probs`.
fn logits_of(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|&q| q.ln() as f32).collect()
}

#[test]
fn candidates_sort_by_logit_then_id() {
    let c = p::candidates(&[1.0, 3.0, 3.0, -2.0]);
    assert_eq!(ids(&c), [1, 2, 0, 3]);
}

#[test]
fn selecting_the_best_k_equals_sorting_all_then_truncating() {
    let logits: Vec<f32> = (0..1000u32).map(|i| ((i * 7919) % 101) as f32 * 0.5 - 20.0).collect();
    for k in [1, 5, 40, 999, 1000, 5000] {
        let mut all = p::candidates(&logits);
        p::top_k(&mut all, k);
        assert_eq!(p::best_candidates(&logits, k), all, "k = {k}");
    }
}

#[test]
fn top_k_keeps_the_k_largest() {
    let mut c = p::candidates(&[0.5, 2.0, 1.0, 3.0]);
    p::top_k(&mut c, 2);
    assert_eq!(ids(&c), [3, 1]);
    let mut all = p::candidates(&[0.5, 2.0]);
    p::top_k(&mut all, 0);
    assert_eq!(all.len(), 2, "0 turns top-k off");
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    let l = logits_of(&[0.5, 0.25, 0.15, 0.1]);
    let kept = |top: f32| {
        let mut c = p::candidates(&l);
        p::top_p(&mut c, top);
        ids(&c)
    };
    assert_eq!(kept(0.45), [0]);
    assert_eq!(kept(0.7), [0, 1]);
    assert_eq!(kept(0.8), [0, 1, 2]);
    assert_eq!(kept(0.95), [0, 1, 2, 3]);
    assert_eq!(kept(1.0), [0, 1, 2, 3]);
    assert_eq!(kept(0.01), [0], "always at least one");
}

#[test]
fn min_p_drops_tokens_below_a_share_of_the_best() {
    let l = logits_of(&[0.5, 0.25, 0.15, 0.1]);
    let kept = |m: f32| {
        let mut c = p::candidates(&l);
        p::min_p(&mut c, m);
        ids(&c)
    };
    // Relative probabilities 1, 0.5, 0.3, 0.2.
    assert_eq!(kept(0.0), [0, 1, 2, 3]);
    assert_eq!(kept(0.25), [0, 1, 2]);
    assert_eq!(kept(0.4), [0, 1]);
    assert_eq!(kept(0.9), [0]);
}

#[test]
fn temperature_reshapes_the_distribution() {
    let c = p::candidates(&logits_of(&[0.5, 0.25, 0.25]));
    close(&p::tempered(&c, 1.0), &[0.5, 0.25, 0.25]);
    // T = 0.5 squares the probabilities before normalising.
    close(&p::tempered(&c, 0.5), &[0.25 / 0.375, 0.0625 / 0.375, 0.0625 / 0.375]);
    // A huge temperature approaches uniform.
    let hot = p::tempered(&c, 1e6);
    assert!(hot.iter().all(|&q| (q - 1.0 / 3.0).abs() < 1e-5), "{hot:?}");
}

#[test]
fn penalties_follow_ctrl_and_openai() {
    let mut l = vec![2.0, -2.0, 1.0, 0.5];
    // Token 0 twice, token 1 once; token 2 outside the window is untouched.
    p::apply_penalties(&mut l, &[0, 1, 0], 2.0, 0.0, 0.0);
    assert_eq!(l, [1.0, -4.0, 1.0, 0.5]);
    let mut l = vec![2.0, -2.0, 1.0, 0.5];
    p::apply_penalties(&mut l, &[0, 1, 0], 1.0, 0.25, 0.5);
    // count * frequency + presence: 2 * 0.25 + 0.5 for token 0, 0.25 + 0.5 for token 1.
    assert_eq!(l, [1.0, -2.75, 1.0, 0.5]);
    let mut l = vec![1.0; 3];
    p::apply_logit_bias(&mut l, &[(2, -100.0), (99, 5.0)]);
    assert_eq!(l, [1.0, 1.0, -99.0], "out-of-vocabulary ids are ignored");
}

#[test]
fn the_window_is_the_last_n_tokens() {
    let s = Sampler::from_config(SamplerConfig { temperature: 0.0, repeat_penalty: 100.0, repeat_last_n: 2, ..Default::default() }).unwrap();
    assert!(!s.is_greedy(), "penalties change the logits, so no in-place argmax");
    let logits = [3.0, 2.0, 1.0];
    // Token 0 is outside the last 2, so it stays best.
    assert_eq!(s.distribution(&logits, &[0, 1, 1]).unwrap().1, [0]);
    // Both 0 and 1 are in the window and penalised below token 2.
    assert_eq!(s.distribution(&logits, &[1, 0]).unwrap().1, [2]);
}

#[test]
fn draws_follow_the_truncated_distribution() {
    let logits = logits_of(&[0.4, 0.3, 0.2, 0.1]);
    let cfg = SamplerConfig { temperature: 1.0, top_k: 3, seed: 7, ..Default::default() };
    let mut s = Sampler::from_config(cfg.clone()).unwrap();
    let n = 40_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[s.sample(&logits, &[]).unwrap() as usize] += 1;
    }
    assert_eq!(counts[3], 0, "top-k 3 never draws the fourth token");
    for (i, want) in [4.0 / 9.0, 3.0 / 9.0, 2.0 / 9.0].iter().enumerate() {
        let got = counts[i] as f64 / n as f64;
        // Five standard deviations of a binomial proportion.
        let sd = (want * (1.0 - want) / n as f64).sqrt();
        assert!((got - want).abs() < 5.0 * sd, "token {i}: {got} vs {want}");
    }
    // The same seed gives the same draws.
    let mut a = Sampler::from_config(cfg.clone()).unwrap();
    let mut b = Sampler::from_config(cfg).unwrap();
    let da: Vec<u32> = (0..50).map(|_| a.sample(&logits, &[]).unwrap()).collect();
    let db: Vec<u32> = (0..50).map(|_| b.sample(&logits, &[]).unwrap()).collect();
    assert_eq!(da, db);
}

#[test]
fn drawing_from_the_top_k_candidates_equals_drawing_from_all_logits() {
    let logits: Vec<f32> = (0..5000u32).map(|i| ((i * 7919) % 1000) as f32 / 150.0).collect();
    let config = SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.9, min_p: 0.02, seed: 3, ..SamplerConfig::default() };
    let (mut all, mut top) = (Sampler::from_config(config.clone()).unwrap(), Sampler::from_config(config).unwrap());
    assert_eq!(top.top_k_only(), Some(40));
    let drawn: Vec<u32> = (0..200).map(|_| all.sample(&logits, &[]).unwrap()).collect();
    let from_top: Vec<u32> = (0..200).map(|_| top.sample_top_k(p::best_candidates(&logits, 40)).unwrap()).collect();
    assert_eq!(drawn, from_top);
    assert!(drawn.iter().collect::<std::collections::HashSet<_>>().len() > 5);
    // Penalties, bias, no top-k or greedy need the whole row.
    for config in [
        SamplerConfig { top_k: 40, repeat_penalty: 1.1, ..SamplerConfig::default() },
        SamplerConfig { top_k: 40, logit_bias: vec![(1, 2.0)], ..SamplerConfig::default() },
        SamplerConfig { top_k: 0, ..SamplerConfig::default() },
        SamplerConfig { top_k: 40, temperature: 0.0, ..SamplerConfig::default() },
    ] {
        assert_eq!(Sampler::from_config(config.clone()).unwrap().top_k_only(), None, "{config:?}");
    }
}

#[test]
fn bad_settings_are_errors() {
    for cfg in [
        SamplerConfig { temperature: -1.0, ..Default::default() },
        SamplerConfig { temperature: f32::NAN, ..Default::default() },
        SamplerConfig { top_p: 0.0, ..Default::default() },
        SamplerConfig { min_p: 1.5, ..Default::default() },
        SamplerConfig { repeat_penalty: 0.0, ..Default::default() },
        SamplerConfig { frequency_penalty: 3.0, ..Default::default() },
        SamplerConfig { logit_bias: vec![(1, f32::INFINITY)], ..Default::default() },
    ] {
        assert!(Sampler::from_config(cfg.clone()).is_err(), "{cfg:?}");
    }
    let json: Result<SamplerConfig, _> = serde_json::from_str(r#"{"temprature": 0.5}"#);
    assert!(json.is_err(), "unknown settings are rejected, not ignored");
}

/// The draw's random number is Philox4x32-10 of (seed, draw index): draw 0 under seed 0 is
/// Random123's zero vector, 0x6627e8d5 → u = 0x6627e8 / 2^24 = 0.39904. The draw walks the
/// tokens in id order: probabilities 0.33, 0.35, 0.32 (cumulative 0.33, 0.68), so u falls in
/// token 1's bin.
#[test]
fn the_first_draw_of_seed_zero_uses_the_philox_zero_vector() {
    let logits = logits_of(&[0.33, 0.35, 0.32]);
    let mut s = Sampler::from_config(SamplerConfig { temperature: 1.0, seed: 0, ..Default::default() }).unwrap();
    assert_eq!(s.sample(&logits, &[]).unwrap(), 1);
    assert_eq!(s.draws(), 1);
    // The same draw from the top-k path, and every draw advances the counter, even a certain one.
    let mut t = Sampler::from_config(SamplerConfig { temperature: 1.0, top_k: 3, seed: 0, ..Default::default() }).unwrap();
    assert_eq!(t.device_draw().unwrap().counter, 0);
    assert_eq!(t.sample_top_k(p::best_candidates(&logits, 3)).unwrap(), 1);
    // Top-k 2 keeps tokens 1 and 0 (0.35 and 0.33 of 0.68): token 0's bin is [0, 0.485).
    let mut two = Sampler::from_config(SamplerConfig { temperature: 1.0, top_k: 2, seed: 0, ..Default::default() }).unwrap();
    assert_eq!(two.sample(&logits, &[]).unwrap(), 0);
    t.sample_top_k(vec![(2, 1.0)]).unwrap();
    assert_eq!(t.device_draw().unwrap().counter, 2);
}
