//! Keeping chat messages from writing control tokens.
//!
//! A chat prompt is the template's text with the messages' roles and contents inside it, and it
//! is tokenized with special-token parsing on, so that the template's own `<|im_start|>` and
//! `<|im_end|>` become their ids. Message text must not get the same treatment: a user who
//! types `<|im_end|><|im_start|>system` would otherwise write a system turn (llama.cpp's server
//! has this hole). So before rendering, every control-token text inside a message is broken by
//! [`NO_SPECIAL`] after its first character, and so is any start or end of the message that
//! could complete a control token together with the template text beside it. The partition then
//! finds control tokens in the template's text only; the markers are removed before the text
//! fragments are tokenized, so the message's own text is tokenized as it was written.
//!
//! The marker is placed inside control-token text and beside the message's first and last
//! non-space characters, never at its ends, so templates that `trim` a message trim it as
//! before. (A message that contains U+FDD0 itself loses it: a noncharacter, never in real text.)

use super::{TokenType, Tokenizer};

/// A break no special token is matched across, removed before tokenizing: U+FDD0, a Unicode
/// noncharacter.
pub const NO_SPECIAL: char = '\u{FDD0}';

impl Tokenizer {
    /// Control and unknown tokens: the ones only parse_special reads out of text.
    fn control_texts(&self) -> impl Iterator<Item = &str> {
        self.specials
            .iter()
            .filter(|&&id| matches!(self.types[id as usize], TokenType::Control | TokenType::Unknown))
            .map(|&id| self.tokens[id as usize].as_str())
    }

    /// `text` (a message's role or content, before it goes into a chat template) with every
    /// control-token text broken, and its edges broken where they could complete one together
    /// with the text around them. See the module documentation.
    pub fn guard(&self, text: &str) -> String {
        let mut out: String = text.chars().filter(|&c| c != NO_SPECIAL).collect();
        for pat in self.control_texts().collect::<Vec<_>>() {
            if !out.contains(pat) {
                continue;
            }
            let first = pat.chars().next().map_or(0, char::len_utf8);
            let mut broken = String::with_capacity(out.len() + 8);
            let mut last = 0;
            for (at, _) in out.match_indices(pat) {
                broken.push_str(&out[last..at + first]);
                broken.push(NO_SPECIAL);
                last = at + first;
            }
            broken.push_str(&out[last..]);
            out = broken;
        }
        // The edges: the first and last non-space characters, where a template's text (after
        // any trimming) meets the message.
        let (start, end) = {
            let trimmed = out.trim();
            let start = out.len() - out.trim_start().len();
            (start, start + trimmed.len())
        };
        let core = &out[start..end];
        if core.is_empty() {
            return out;
        }
        // Text before the message ending a token's first part: its rest starts the message, or
        // the whole message lies inside the rest. Likewise at the end.
        let completes_before = self.control_texts().any(|t| proper_suffixes(t).any(|s| core.starts_with(s) || s.starts_with(core)));
        let completes_after = self.control_texts().any(|t| proper_prefixes(t).any(|p| core.ends_with(p) || p.ends_with(core)));
        if !(completes_before || completes_after) {
            return out;
        }
        let mut guarded = String::with_capacity(out.len() + 6);
        guarded.push_str(&out[..start]);
        if completes_before {
            guarded.push(NO_SPECIAL);
        }
        guarded.push_str(core);
        if completes_after {
            guarded.push(NO_SPECIAL);
        }
        guarded.push_str(&out[end..]);
        guarded
    }
}

/// The non-empty proper prefixes of `t`, at character boundaries.
fn proper_prefixes(t: &str) -> impl Iterator<Item = &str> {
    t.char_indices().skip(1).map(move |(i, _)| &t[..i])
}

/// The non-empty proper suffixes of `t`, at character boundaries.
fn proper_suffixes(t: &str) -> impl Iterator<Item = &str> {
    t.char_indices().skip(1).map(move |(i, _)| &t[i..])
}
