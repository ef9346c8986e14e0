//! The grammar engine proper (llguidance): a vocabulary trie per model, a matcher per reply.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use web_time::Instant;

use crate::{bad, ConstraintStats, Error, ResponseFormat, Result, Word, MAX_DIGIT_RUN};

/// The vocabulary side of constraints, built once per model: every token's bytes in a trie.
pub struct Grammars {
    factory: ParserFactory,
    digits: Arc<DigitRuns>,
    n_vocab: usize,
}

impl Grammars {
    /// `words[id]` for every id of the model's logits; `end` is the token that ends a reply
    /// (end of sequence, else end of turn) and `eot` the end-of-turn token if there is one.
    pub fn new(words: &[Word], end: Option<u32>, eot: Option<u32>) -> Result<Self> {
        let n_vocab = words.len();
        let words: Vec<Vec<u8>> = words
            .iter()
            .map(|w| match w {
                Word::Text(b) => b.clone(),
                Word::Control(name) => [&[TokTrie::SPECIAL_TOKEN_MARKER][..], name].concat(),
                Word::Absent => Vec::new(),
            })
            .collect();
        let digits = Arc::new(DigitRuns::new(&words));
        let end = end.filter(|&id| (id as usize) < n_vocab);
        let end = end.ok_or_else(|| bad("the model has no end-of-turn or end-of-sequence token"))?;
        let info = TokRxInfo { tok_end_of_turn: eot, ..TokRxInfo::new(n_vocab as u32, end) };
        let env = Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
        let mut factory = ParserFactory::new_simple(&(env as _)).map_err(bad)?;
        factory.quiet();
        Ok(Self { factory, digits, n_vocab })
    }

    /// A fresh constraint for one reply; `None` for free text. An invalid or unsatisfiable
    /// schema is an error.
    pub fn constrain(&self, format: &ResponseFormat) -> Result<Option<Constraint>> {
        let Some(schema) = format.grammar_schema() else {
            return Ok(None);
        };
        let parser = self.factory.create_parser(TopLevelGrammar::from_json_schema(schema)).map_err(bad)?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(bad(e));
        }
        Ok(Some(Constraint {
            matcher,
            digits: self.digits.clone(),
            run: 0,
            n_vocab: self.n_vocab,
            stats: ConstraintStats::default(),
        }))
    }
}

/// How each token starts and ends in digits, to cap digit runs at [`MAX_DIGIT_RUN`].
struct DigitRuns {
    /// (leading digits, token id) of the tokens that start with a digit, most digits first.
    leading: Vec<(usize, u32)>,
    /// Per token: its trailing digits, and whether it is digits only (it extends the run).
    trailing: Vec<(usize, bool)>,
}

impl DigitRuns {
    fn new(words: &[Vec<u8>]) -> Self {
        let digits = |w: &mut dyn Iterator<Item = &u8>| w.take_while(|b| b.is_ascii_digit()).count();
        let mut leading: Vec<(usize, u32)> = words
            .iter()
            .enumerate()
            .map(|(id, w)| (digits(&mut w.iter()), id as u32))
            .filter(|&(n, _)| n > 0)
            .collect();
        leading.sort_unstable_by(|a, b| b.cmp(a));
        let trailing =
            words.iter().map(|w| (digits(&mut w.iter().rev()), !w.is_empty() && w.iter().all(u8::is_ascii_digit))).collect();
        Self { leading, trailing }
    }

    /// The run of digits after `id` follows a run of `run`.
    fn after(&self, run: usize, id: u32) -> usize {
        match self.trailing.get(id as usize) {
            Some(&(n, true)) => run + n,
            Some(&(n, false)) => n,
            None => 0,
        }
    }

    /// The tokens whose leading digits would make the run longer than the cap.
    fn capped(&self, run: usize) -> impl Iterator<Item = u32> + '_ {
        self.leading.iter().take_while(move |&&(n, _)| run + n > MAX_DIGIT_RUN).map(|&(_, id)| id)
    }
}

/// The grammar state of one reply.
pub struct Constraint {
    matcher: Matcher,
    digits: Arc<DigitRuns>,
    /// Digits at the end of the reply so far.
    run: usize,
    n_vocab: usize,
    stats: ConstraintStats,
}

impl Constraint {
    /// The tokens allowed next, as bits (token `id` is bit `id % 32` of word `id / 32`):
    /// what the grammar allows, less the tokens that would write more than
    /// [`MAX_DIGIT_RUN`] digits in a row.
    pub fn allowed(&mut self) -> Result<Vec<u32>> {
        let t0 = Instant::now();
        let vob = self.matcher.compute_mask_or_eos().map_err(|e| self.failure(e))?;
        let mut bits = vec![0u32; self.n_vocab.div_ceil(32)];
        for id in (0..self.n_vocab as u32).filter(|&id| vob.is_allowed(id)) {
            bits[id as usize / 32] |= 1 << (id % 32);
        }
        for id in self.digits.capped(self.run) {
            if let Some(w) = bits.get_mut(id as usize / 32) {
                *w &= !(1 << (id % 32));
            }
        }
        self.stats.masks += 1;
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(bits)
    }

    /// Advances the grammar past the drawn token.
    pub fn commit(&mut self, id: u32) -> Result<()> {
        if self.matcher.is_stopped() {
            return Ok(());
        }
        self.run = self.digits.after(self.run, id);
        self.matcher.consume_token(id).map_err(|e| self.failure(e))
    }

    /// Whether the document is complete and nothing more may follow.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    pub fn stats(&self) -> ConstraintStats {
        self.stats
    }

    /// The first line of llguidance's message (the rest is a dump of its parser state).
    fn failure(&self, e: impl std::fmt::Display) -> Error {
        let why = self.matcher.get_error().unwrap_or_else(|| e.to_string());
        Error(format!("structured output: {}", why.lines().next().unwrap_or("")))
    }
}
