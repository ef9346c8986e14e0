//! The browser's grammar module: the engine's worker loads it on the first reply with a
//! `response_format`, builds [`Vocabulary`] from the engine's packed vocabulary once per model,
//! and per step passes the mask of a [`Reply`] to the engine and the drawn token back.

use wasm_bindgen::prelude::*;

use crate::{unpack_vocab, Grammars, ResponseFormat};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// One model's vocabulary, ready to compile formats against.
#[wasm_bindgen]
pub struct Vocabulary(Grammars);

#[wasm_bindgen]
impl Vocabulary {
    /// `packed`: the engine's `grammarVocab()`.
    #[wasm_bindgen(constructor)]
    pub fn new(packed: &[u8]) -> Result<Vocabulary, JsError> {
        let (words, end, eot) = unpack_vocab(packed).map_err(js_err)?;
        Ok(Vocabulary(Grammars::new(&words, end, eot).map_err(js_err)?))
    }

    /// The grammar state for one reply to `response_format` (OpenAI's, as JSON); `undefined`
    /// for `{"type": "text"}`. An invalid or unsatisfiable schema is an error.
    pub fn constrain(&self, response_format: &str) -> Result<Option<Reply>, JsError> {
        let format = ResponseFormat::from_json(response_format).map_err(js_err)?;
        Ok(self.0.constrain(&format).map_err(js_err)?.map(Reply))
    }
}

/// The grammar state of one reply.
#[wasm_bindgen]
pub struct Reply(crate::Constraint);

#[wasm_bindgen]
impl Reply {
    /// The tokens allowed next, as bits (token `id` is bit `id % 32` of word `id / 32`).
    pub fn allowed(&mut self) -> Result<Vec<u32>, JsError> {
        self.0.allowed().map_err(js_err)
    }

    /// Advances past the drawn token.
    pub fn commit(&mut self, id: u32) -> Result<(), JsError> {
        self.0.commit(id).map_err(js_err)
    }

    /// Milliseconds spent computing masks so far.
    #[wasm_bindgen(js_name = maskMs)]
    pub fn mask_ms(&self) -> f64 {
        self.0.stats().seconds * 1e3
    }
}
