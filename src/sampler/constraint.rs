//! Structured output (OpenAI's `response_format`). The grammar engine is the `hearth-grammar`
//! crate: natively it is linked in and a [`Constraint`] asks it for each mask; in the browser it
//! is a wasm module of its own, loaded on the first reply that asks for a format, and a
//! constraint applies the mask JavaScript hands over for each draw (see `web`), so that pages
//! that never ask for one do not load the grammar engine.

use crate::tokenizer::{TokenType, Tokenizer};
use crate::{Error, Result};

pub use hearth_grammar::{ConstraintStats, JsonSchemaFormat, ResponseFormat, Word, MAX_DIGIT_RUN};

fn invalid(e: hearth_grammar::Error) -> Error {
    e.into()
}

/// What the grammar sees of each id of the model's logits (`n_vocab` may exceed the
/// tokenizer's vocabulary; the extra ids are never allowed): a token's bytes, or for a control
/// token its name, which text never matches.
pub fn vocabulary(tokenizer: &Tokenizer, n_vocab: usize) -> Vec<Word> {
    (0..n_vocab as u32)
        .map(|id| match tokenizer.token_type(id) {
            Some(TokenType::Control | TokenType::Unknown) => Word::Control(tokenizer.token_str(id).unwrap_or("").as_bytes().to_vec()),
            Some(_) => Word::Text(tokenizer.token_bytes(id).unwrap_or_default()),
            None => Word::Absent,
        })
        .collect()
}

/// The token that ends a constrained reply (end of sequence, else end of turn) and the
/// end-of-turn token, if any.
fn end_tokens(tokenizer: &Tokenizer, n_vocab: usize) -> (Option<u32>, Option<u32>) {
    (tokenizer.eos_id().or(tokenizer.eot_id()).filter(|&id| (id as usize) < n_vocab), tokenizer.eot_id())
}

/// The vocabulary packed for the browser's grammar module (`hearth_grammar::unpack_vocab`).
pub fn packed_vocabulary(tokenizer: &Tokenizer, n_vocab: usize) -> Vec<u8> {
    let (end, eot) = end_tokens(tokenizer, n_vocab);
    hearth_grammar::pack_vocab(&vocabulary(tokenizer, n_vocab), end, eot)
}

/// The vocabulary side of constraints, built once per model: every token's bytes in a trie.
#[cfg(not(target_arch = "wasm32"))]
pub struct Grammars(hearth_grammar::Grammars);

#[cfg(not(target_arch = "wasm32"))]
impl Grammars {
    /// `n_vocab` is the width of the model's logits.
    pub fn new(tokenizer: &Tokenizer, n_vocab: usize) -> Result<Self> {
        let (end, eot) = end_tokens(tokenizer, n_vocab);
        hearth_grammar::Grammars::new(&vocabulary(tokenizer, n_vocab), end, eot).map(Self).map_err(invalid)
    }

    /// A fresh constraint for one reply; `None` for free text. An invalid or unsatisfiable
    /// schema is an error.
    pub fn constrain(&self, format: &ResponseFormat) -> Result<Option<Constraint>> {
        let c = self.0.constrain(format).map_err(invalid)?;
        Ok(c.map(|c| Constraint(Source::Engine(Box::new(c)))))
    }
}

/// The grammar state of one reply.
pub struct Constraint(Source);

enum Source {
    #[cfg(not(target_arch = "wasm32"))]
    Engine(Box<hearth_grammar::Constraint>),
    /// Masks supplied from outside, one per draw ([`Constraint::supply`]).
    External(Option<Vec<u32>>),
}

impl Constraint {
    /// A constraint whose masks come from outside (the browser's grammar module): one
    /// [`supply`](Self::supply) before every draw.
    pub fn external() -> Self {
        Self(Source::External(None))
    }

    /// The mask for the next draw of an external constraint (token `id` is bit `id % 32` of
    /// word `id / 32`); ignored by one that asks the grammar engine itself.
    pub fn supply(&mut self, bits: Vec<u32>) {
        #[allow(irrefutable_let_patterns)] // on wasm there is no other kind
        if let Source::External(next) = &mut self.0 {
            *next = Some(bits);
        }
    }

    /// Sets the logits of every token the grammar forbids now, or that would write more than
    /// [`MAX_DIGIT_RUN`] digits in a row, to −∞.
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let bits = match &mut self.0 {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Engine(c) => c.allowed().map_err(invalid)?,
            Source::External(next) => {
                next.take().ok_or_else(|| Error::InvalidArgument("structured output: no grammar mask was supplied for this token".into()))?
            }
        };
        hearth_grammar::apply_mask(&bits, logits).map_err(invalid)
    }

    /// Advances the grammar past the drawn token (an external grammar is advanced outside).
    pub fn commit(&mut self, id: u32) -> Result<()> {
        match &mut self.0 {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Engine(c) => c.commit(id).map_err(invalid),
            Source::External(_) => {
                let _ = id;
                Ok(())
            }
        }
    }

    /// Time spent on masks (an external grammar's is measured outside: zero here).
    pub fn stats(&self) -> ConstraintStats {
        match &self.0 {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Engine(c) => c.stats(),
            Source::External(_) => ConstraintStats::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_constraint_applies_each_supplied_mask_once() {
        let mut c = Constraint::external();
        let mut logits = vec![1.0f32; 40];
        let e = c.mask(&mut logits).unwrap_err();
        assert!(e.to_string().contains("no grammar mask was supplied"), "{e}");
        c.supply(vec![0, 1 << 3]); // token 35 only
        c.mask(&mut logits).unwrap();
        assert_eq!(logits.iter().position(|l| l.is_finite()), Some(35));
        assert_eq!(logits.iter().filter(|l| l.is_finite()).count(), 1);
        c.commit(35).unwrap();
        assert!(c.mask(&mut logits).is_err(), "a mask serves one draw");
        c.supply(vec![0, 0]);
        assert!(c.mask(&mut [1.0f32; 40]).unwrap_err().to_string().contains("allows no token"));
    }
}
