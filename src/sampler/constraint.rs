//! Structured output: a grammar compiled from a JSON schema allows, at every step, only the
//! tokens that keep the reply a prefix of some valid document, and only the end token once the
//! document is complete. llguidance does the grammar work: its lexer walks a trie of the
//! vocabulary's bytes, and the token sets of common lexemes (string bodies, numbers, …) are
//! precomputed once per vocabulary, so one mask costs a fraction of a forward pass.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, SimpleVob, TokRxInfo, TokTrie};
use llguidance::{Matcher, ParserFactory};
use web_time::Instant;

use crate::tokenizer::{TokenType, Tokenizer};
use crate::{Error, Result};

/// OpenAI's `response_format`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormat {
    /// Free text (no constraint).
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// A JSON value valid under `json_schema.schema`.
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub schema: serde_json::Value,
    /// Accepted for compatibility; the schema is always enforced.
    #[serde(default)]
    pub strict: Option<bool>,
}

impl ResponseFormat {
    /// Parses the JSON form (`{"type": "json_schema", "json_schema": {"schema": …}}`).
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| bad(format!("{e}")))
    }

    /// A `json_schema` format around a bare schema.
    pub fn schema(schema: serde_json::Value) -> Self {
        Self::JsonSchema { json_schema: JsonSchemaFormat { name: None, description: None, schema, strict: None } }
    }

    /// The schema the reply must follow, `None` for free text. Unless the schema sets its own
    /// `x-guidance` options, JSON is written on one line with ", " and ": " separators: free
    /// whitespace would let a small model pad the reply with newlines until `max_tokens`.
    fn grammar_schema(&self) -> Option<serde_json::Value> {
        let mut schema = match self {
            Self::Text => return None,
            Self::JsonObject => serde_json::json!({ "type": "object" }),
            Self::JsonSchema { json_schema } => json_schema.schema.clone(),
        };
        if let Some(obj) = schema.as_object_mut() {
            obj.entry("x-guidance").or_insert_with(|| {
                serde_json::json!({ "whitespace_flexible": false, "item_separator": ", ", "key_separator": ": " })
            });
        }
        Some(schema)
    }
}

/// One line: llguidance's messages may span several (a regex error draws a caret under the
/// pattern).
fn bad(why: impl std::fmt::Display) -> Error {
    let why = why.to_string();
    let lines: Vec<&str> = why.lines().map(str::trim).filter(|l| !l.is_empty() && l.chars().any(char::is_alphanumeric)).collect();
    Error::InvalidArgument(format!("response_format: {}", lines.join(" ")))
}

/// Longest run of digits a constrained reply may write. JSON sets no limit on a number's
/// length, and a small model that starts repeating a digit (greedy `"population": 1111…`)
/// would write digits until `max_tokens`, leaving a reply that never parses. 20 digits hold
/// any 64-bit integer and a double's 17 significant digits.
pub const MAX_DIGIT_RUN: usize = 20;

/// The vocabulary side of constraints, built once per model: every token's bytes in a trie.
pub struct Grammars {
    factory: ParserFactory,
    digits: Arc<DigitRuns>,
}

impl Grammars {
    /// `n_vocab` is the width of the model's logits (it may exceed the tokenizer's vocabulary;
    /// the extra ids are never allowed).
    pub fn new(tokenizer: &Tokenizer, n_vocab: usize) -> Result<Self> {
        let words: Vec<Vec<u8>> = (0..n_vocab as u32).map(|id| token_word(tokenizer, id)).collect();
        let digits = Arc::new(DigitRuns::new(&words));
        let end = tokenizer.eos_id().or(tokenizer.eot_id()).filter(|&id| (id as usize) < n_vocab);
        let end = end.ok_or_else(|| bad("the model has no end-of-turn or end-of-sequence token"))?;
        let info = TokRxInfo { tok_end_of_turn: tokenizer.eot_id(), ..TokRxInfo::new(n_vocab as u32, end) };
        let env = Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
        let mut factory = ParserFactory::new_simple(&(env as _)).map_err(bad)?;
        factory.quiet();
        Ok(Self { factory, digits })
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
        Ok(Some(Constraint { matcher, digits: self.digits.clone(), run: 0, stats: ConstraintStats::default() }))
    }
}

/// What the grammar sees of a token: its bytes; control tokens carry llguidance's special
/// marker so that text never matches them.
fn token_word(tokenizer: &Tokenizer, id: u32) -> Vec<u8> {
    match tokenizer.token_type(id) {
        Some(TokenType::Control | TokenType::Unknown) => {
            let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
            w.extend_from_slice(tokenizer.token_str(id).unwrap_or("").as_bytes());
            w
        }
        Some(_) => tokenizer.token_bytes(id).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Time spent on constraint masks, for reporting the per-token overhead.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ConstraintStats {
    pub masks: usize,
    pub seconds: f64,
}

impl ConstraintStats {
    pub fn ms_per_token(&self) -> f64 {
        if self.masks == 0 {
            0.0
        } else {
            self.seconds * 1e3 / self.masks as f64
        }
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
        let mut leading: Vec<(usize, u32)> =
            words.iter().enumerate().map(|(id, w)| (digits(&mut w.iter()), id as u32)).filter(|&(n, _)| n > 0).collect();
        leading.sort_unstable_by(|a, b| b.cmp(a));
        let trailing = words.iter().map(|w| (digits(&mut w.iter().rev()), !w.is_empty() && w.iter().all(u8::is_ascii_digit))).collect();
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

    /// Forbids the tokens whose leading digits would make the run longer than the cap.
    fn cap(&self, run: usize, logits: &mut [f32]) {
        for &(_, id) in self.leading.iter().take_while(|&&(n, _)| run + n > MAX_DIGIT_RUN) {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// The grammar state of one reply.
pub struct Constraint {
    matcher: Matcher,
    digits: Arc<DigitRuns>,
    /// Digits at the end of the reply so far.
    run: usize,
    stats: ConstraintStats,
}

impl Constraint {
    /// Sets the logits of every token the grammar forbids now, or that would write more than
    /// [`MAX_DIGIT_RUN`] digits in a row, to −∞.
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let t0 = Instant::now();
        let allowed = self.matcher.compute_mask_or_eos().map_err(|e| self.failure(e))?;
        self.digits.cap(self.run, logits);
        apply_mask(&allowed, logits)?;
        self.stats.masks += 1;
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(())
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
        Error::InvalidArgument(format!("structured output: {}", why.lines().next().unwrap_or("")))
    }
}

fn apply_mask(allowed: &SimpleVob, logits: &mut [f32]) -> Result<()> {
    let mut any = false;
    for (id, l) in logits.iter_mut().enumerate() {
        if allowed.is_allowed(id as u32) && *l > f32::NEG_INFINITY {
            any = true;
        } else {
            *l = f32::NEG_INFINITY;
        }
    }
    if any {
        Ok(())
    } else {
        Err(Error::InvalidArgument("structured output: the grammar allows no token here".into()))
    }
}
