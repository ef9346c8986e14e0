//! Structured output: a grammar compiled from a JSON schema allows, at every step, only the
//! tokens that keep the reply a prefix of some valid document, and only the end token once the
//! document is complete. llguidance does the grammar work: its lexer walks a trie of the
//! vocabulary's bytes, and the token sets of common lexemes (string bodies, numbers, …) are
//! precomputed once per vocabulary, so one mask costs a fraction of a forward pass.
//!
//! A crate of its own so that the browser loads it only when a reply asks for a format: the
//! engine's wasm module stays small, and this one (see `web`) answers with a bit mask per step.
//! Natively the engine links it directly.

#[cfg(feature = "engine")]
mod engine;
#[cfg(all(feature = "engine", target_arch = "wasm32"))]
mod web;

#[cfg(feature = "engine")]
pub use engine::{Constraint, Grammars};

/// A one-line message for the user: what is wrong with the format, or why the grammar failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

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
    #[cfg_attr(not(feature = "engine"), allow(dead_code))]
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
pub(crate) fn bad(why: impl std::fmt::Display) -> Error {
    let why = why.to_string();
    let lines: Vec<&str> =
        why.lines().map(str::trim).filter(|l| !l.is_empty() && l.chars().any(char::is_alphanumeric)).collect();
    Error(format!("response_format: {}", lines.join(" ")))
}

/// Longest run of digits a constrained reply may write. JSON sets no limit on a number's
/// length, and a small model that starts repeating a digit (greedy `"population": 1111…`)
/// would write digits until `max_tokens`, leaving a reply that never parses. 20 digits hold
/// any 64-bit integer and a double's 17 significant digits.
pub const MAX_DIGIT_RUN: usize = 20;

/// What the grammar sees of one token of the vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub enum Word {
    /// Text: the bytes it writes.
    Text(Vec<u8>),
    /// A control token (its name): text never matches it.
    Control(Vec<u8>),
    /// An id the model's logits have but the vocabulary does not: never allowed.
    Absent,
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

/// Sets every logit whose token `bits` does not allow to −∞; an error when no token with a
/// finite logit is left.
pub fn apply_mask(bits: &[u32], logits: &mut [f32]) -> Result<()> {
    let mut any = false;
    for (id, l) in logits.iter_mut().enumerate() {
        let allowed = bits.get(id / 32).is_some_and(|w| w >> (id % 32) & 1 == 1);
        if allowed && *l > f32::NEG_INFINITY {
            any = true;
        } else {
            *l = f32::NEG_INFINITY;
        }
    }
    if any {
        Ok(())
    } else {
        Err(Error("structured output: the grammar allows no token here".into()))
    }
}

/// The vocabulary as bytes, for the browser's grammar module: `u32 n, u32 end, u32 eot`
/// (`u32::MAX` for none), then per token `u8 kind` (0 text, 1 control, 2 absent),
/// `u32 len` and its bytes; little-endian.
pub fn pack_vocab(words: &[Word], end: Option<u32>, eot: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [words.len() as u32, end.unwrap_or(u32::MAX), eot.unwrap_or(u32::MAX)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for w in words {
        let (kind, bytes): (u8, &[u8]) = match w {
            Word::Text(b) => (0, b),
            Word::Control(b) => (1, b),
            Word::Absent => (2, &[]),
        };
        out.push(kind);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The inverse of [`pack_vocab`]; malformed input is an error, never a panic.
pub fn unpack_vocab(mut b: &[u8]) -> Result<(Vec<Word>, Option<u32>, Option<u32>)> {
    let malformed = || Error("the packed vocabulary is malformed".into());
    let u32_at = |b: &mut &[u8]| -> Result<u32> {
        let (head, rest) = b.split_first_chunk::<4>().ok_or_else(malformed)?;
        *b = rest;
        Ok(u32::from_le_bytes(*head))
    };
    let n = u32_at(&mut b)? as usize;
    let opt = |v: u32| (v != u32::MAX).then_some(v);
    let (end, eot) = (opt(u32_at(&mut b)?), opt(u32_at(&mut b)?));
    // Each token takes at least 5 bytes: a claimed count beyond that is malformed.
    if n > b.len() / 5 {
        return Err(malformed());
    }
    let mut words = Vec::with_capacity(n);
    for _ in 0..n {
        let (&kind, rest) = b.split_first().ok_or_else(malformed)?;
        b = rest;
        let len = u32_at(&mut b)? as usize;
        if len > b.len() {
            return Err(malformed());
        }
        let (bytes, rest) = b.split_at(len);
        b = rest;
        words.push(match kind {
            0 => Word::Text(bytes.to_vec()),
            1 => Word::Control(bytes.to_vec()),
            2 => Word::Absent,
            _ => return Err(malformed()),
        });
    }
    if !b.is_empty() {
        return Err(malformed());
    }
    Ok((words, end, eot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_vocabulary_round_trips_and_malformed_input_is_an_error() {
        let words = vec![Word::Text(b"a".to_vec()), Word::Control(b"<end>".to_vec()), Word::Absent, Word::Text(b"12".to_vec())];
        let packed = pack_vocab(&words, Some(1), None);
        assert_eq!(unpack_vocab(&packed).unwrap(), (words, Some(1), None));
        for cut in 0..packed.len() {
            assert!(unpack_vocab(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = packed.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack_vocab(&huge).is_err());
    }

    #[cfg(feature = "engine")]
    #[test]
    fn masks_allow_what_the_schema_allows() {
        let words: Vec<Word> = ["{", "}", "\"", "a", ":", " ", "1", "<end>"]
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 7 { Word::Control(w.as_bytes().to_vec()) } else { Word::Text(w.as_bytes().to_vec()) })
            .collect();
        let g = Grammars::new(&words, Some(7), None).unwrap();
        let mut c = g.constrain(&ResponseFormat::JsonObject).unwrap().unwrap();
        let bits = c.allowed().unwrap();
        assert_eq!(bits[0], 1, "only `{{` may start an object");
        c.commit(0).unwrap();
        let bits = c.allowed().unwrap();
        assert_eq!(bits[0] & 0b110, 0b110, "then `}}` or a key");
        c.commit(1).unwrap();
        assert_eq!(c.allowed().unwrap()[0], 1 << 7, "a complete object: only the end token");
        let mut logits = vec![0.0f32; 8];
        apply_mask(&[1 << 7], &mut logits).unwrap();
        assert_eq!(logits.iter().filter(|l| l.is_finite()).count(), 1);
        assert!(apply_mask(&[0], &mut logits).is_err());
        assert!(g.constrain(&ResponseFormat::Text).unwrap().is_none());
    }
}
