//! Incremental detokenization for streaming output.

use super::Tokenizer;
use crate::Result;

/// Turns ids into text as they are generated, returning only complete UTF-8: a character whose
/// bytes are split across tokens (common for emoji and CJK in byte-level BPE) comes out once
/// its last byte has arrived. Bytes that can never become valid UTF-8 come out as U+FFFD.
///
/// `T` is anything that derefs to a [`Tokenizer`] via `AsRef`: `&Tokenizer`, `Arc<Tokenizer>`, …
#[derive(Clone, Debug)]
pub struct StreamDecoder<T: AsRef<Tokenizer>> {
    tok: T,
    render_special: bool,
    /// Bytes of an incomplete UTF-8 sequence at the end of the output so far (at most 3).
    pending: Vec<u8>,
}

impl<T: AsRef<Tokenizer>> StreamDecoder<T> {
    /// A decoder that does not render control tokens (`<|im_end|>` produces no text).
    pub fn new(tok: T) -> Self {
        Self::with_render_special(tok, false)
    }

    pub fn with_render_special(tok: T, render_special: bool) -> Self {
        Self { tok, render_special, pending: Vec::new() }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.tok.as_ref()
    }

    /// Adds one token; returns the text that is now complete (possibly empty). An id outside
    /// the vocabulary is an error and leaves the decoder unchanged.
    pub fn push(&mut self, id: u32) -> Result<String> {
        let tok = self.tok.as_ref();
        let before = self.pending.len();
        if !tok.piece_into(id, self.render_special, &mut self.pending) {
            self.pending.truncate(before);
            return Err(tok.out_of_range(id));
        }
        Ok(self.take_complete())
    }

    /// Flushes whatever is left (an incomplete sequence becomes U+FFFD) and resets the decoder.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Drops any pending bytes.
    pub fn reset(&mut self) {
        self.pending.clear();
    }

    /// Whether bytes of an incomplete character are waiting for the next token.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // from_utf8 validated this prefix, so this cannot fail.
                    out.push_str(std::str::from_utf8(&self.pending[start..start + valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            start += valid;
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start += valid + bad;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }
}
