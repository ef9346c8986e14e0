//! The logit processors, each a plain function over logits or a candidate list, applied by
//! [`Sampler`](super::Sampler) in this order:
//!
//! 1. logit bias (added to the named ids),
//! 2. repetition penalty (CTRL / llama.cpp: a positive logit is divided by the penalty, a
//!    negative one multiplied) over the distinct tokens of the last `repeat_last_n`,
//! 3. frequency and presence penalties (OpenAI: `count * frequency + (count > 0) * presence`
//!    subtracted) over the same window,
//! 4. top-k, 5. top-p (nucleus), 6. min-p — truncations computed on the softmax at
//!    temperature 1, as llama.cpp does,
//! 7. temperature, then one draw from the softmax of what is left.

/// A token id and its (processed) logit.
pub type Candidate = (u32, f32);

pub fn apply_logit_bias(logits: &mut [f32], bias: &[(u32, f32)]) {
    for &(id, b) in bias {
        if let Some(l) = logits.get_mut(id as usize) {
            *l += b;
        }
    }
}

/// Repetition, frequency and presence penalties over `window` (the most recent tokens).
pub fn apply_penalties(logits: &mut [f32], window: &[u32], repeat: f32, frequency: f32, presence: f32) {
    if window.is_empty() || (repeat == 1.0 && frequency == 0.0 && presence == 0.0) {
        return;
    }
    let mut counts: Vec<(u32, u32)> = Vec::new();
    let mut sorted = window.to_vec();
    sorted.sort_unstable();
    for id in sorted {
        match counts.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => counts.push((id, 1)),
        }
    }
    for (id, n) in counts {
        let Some(l) = logits.get_mut(id as usize) else { continue };
        if repeat != 1.0 {
            *l = if *l > 0.0 { *l / repeat } else { *l * repeat };
        }
        *l -= n as f32 * frequency + presence;
    }
}

/// Every logit as a candidate, sorted by descending logit (ties: lower id first).
pub fn candidates(logits: &[f32]) -> Vec<Candidate> {
    best_candidates(logits, 0)
}

/// The `k` best candidates, sorted (0: all). Selecting before sorting keeps top-k sampling
/// from sorting the whole vocabulary every token.
pub fn best_candidates(logits: &[f32], k: usize) -> Vec<Candidate> {
    let mut c: Vec<Candidate> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    if k > 0 && k < c.len() {
        c.select_nth_unstable_by(k - 1, order);
        c.truncate(k);
    }
    c.sort_by(order);
    c
}

fn order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Keeps the `k` largest (0: all). `c` must be sorted.
pub fn top_k(c: &mut Vec<Candidate>, k: usize) {
    if k > 0 {
        c.truncate(k.max(1));
    }
}

/// Softmax probabilities of sorted candidates at temperature 1.
pub fn probabilities(c: &[Candidate]) -> Vec<f64> {
    tempered(c, 1.0)
}

/// Keeps the smallest prefix whose probability reaches `p` (1: all). `c` must be sorted.
pub fn top_p(c: &mut Vec<Candidate>, p: f32) {
    if p >= 1.0 || c.len() <= 1 {
        return;
    }
    let probs = probabilities(c);
    let mut acc = 0.0;
    let keep = probs
        .iter()
        .position(|&q| {
            acc += q;
            acc >= p as f64
        })
        .map_or(c.len(), |i| i + 1);
    c.truncate(keep.max(1));
}

/// Keeps candidates whose probability is at least `p` times the largest (0: all). `c` must
/// be sorted.
pub fn min_p(c: &mut Vec<Candidate>, p: f32) {
    if p <= 0.0 || c.len() <= 1 {
        return;
    }
    let max = c[0].1;
    // p_i / p_max = exp(l_i - l_max).
    let floor = max + (p as f64).ln() as f32;
    let keep = c.iter().take_while(|&&(_, l)| l >= floor).count();
    c.truncate(keep.max(1));
}

/// The probabilities a draw at `temperature` uses for sorted candidates.
pub fn tempered(c: &[Candidate], temperature: f32) -> Vec<f64> {
    let Some(&(_, max)) = c.first() else { return Vec::new() };
    let inv_t = 1.0 / temperature as f64;
    let w: Vec<f64> = c.iter().map(|&(_, l)| ((l - max) as f64 * inv_t).exp()).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}
