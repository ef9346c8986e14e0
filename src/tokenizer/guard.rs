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

use std::collections::HashMap;

use super::{TokenType, Tokenizer};

fn is_control(tok: &Tokenizer, id: u32) -> bool {
    matches!(tok.types[id as usize], TokenType::Control | TokenType::Unknown)
}

/// A break no special token is matched across, removed before tokenizing: U+FDD0, a Unicode
/// noncharacter.
pub const NO_SPECIAL: char = '\u{FDD0}';

/// The control and unknown tokens' texts (the ones only parse_special reads out of text):
/// Gemma 3 has 6,249 of them.
#[derive(Clone, Debug)]
pub(crate) struct Controls {
    texts: Vec<String>,
    /// Every character of every text: where it stands, as (text, byte offset).
    at_char: HashMap<char, Vec<(u32, u32)>>,
}

impl Controls {
    fn new(tok: &Tokenizer) -> Self {
        let texts: Vec<String> = tok
            .specials
            .iter()
            .filter(|&&id| is_control(tok, id))
            .map(|&id| tok.tokens[id as usize].clone())
            .filter(|t| !t.is_empty())
            .collect();
        let mut at_char: HashMap<char, Vec<(u32, u32)>> = HashMap::new();
        for (n, t) in texts.iter().enumerate() {
            for (i, c) in t.char_indices() {
                at_char.entry(c).or_default().push((n as u32, i as u32));
            }
        }
        Self { texts, at_char }
    }

    /// The control texts with character `c` at byte `i`, as (text, i).
    fn with_char(&self, c: char) -> impl Iterator<Item = (&str, usize)> {
        self.at_char.get(&c).into_iter().flatten().map(|&(n, i)| (self.texts[n as usize].as_str(), i as usize))
    }

    /// Whether text before `core` could end with the start of a control text that `core`
    /// continues: some proper suffix of a control text and `core` agree on their common length.
    fn completes_before(&self, core: &str) -> bool {
        let Some(c) = core.chars().next() else { return false };
        self.with_char(c).filter(|&(_, i)| i > 0).any(|(t, i)| core.starts_with(&t[i..]) || t[i..].starts_with(core))
    }

    /// Whether text after `core` could complete a control text that `core` ends the start of.
    fn completes_after(&self, core: &str) -> bool {
        let Some(c) = core.chars().next_back() else { return false };
        self.with_char(c).any(|(t, i)| {
            let end = i + c.len_utf8();
            end < t.len() && (core.ends_with(&t[..end]) || t[..end].ends_with(core))
        })
    }
}

impl Tokenizer {
    /// `text` (a message's role or content, before it goes into a chat template) with every
    /// control-token text broken, and its edges broken where they could complete one together
    /// with the text around them. See the module documentation.
    pub fn guard(&self, text: &str) -> String {
        let controls = self.controls.get_or_init(|| Controls::new(self));
        let text: String = text.chars().filter(|&c| c != NO_SPECIAL).collect();
        if controls.texts.is_empty() {
            return text;
        }
        // The first and last non-space characters, where a template's text (after any
        // trimming) meets the message.
        let start = text.len() - text.trim_start().len();
        let end = start + text.trim().len();
        let core = &text[start..end];
        let (before, after) = (controls.completes_before(core), controls.completes_after(core));
        let mut out = String::with_capacity(text.len() + 8);
        for (at, c) in text.char_indices() {
            if at == start && before {
                out.push(NO_SPECIAL);
            }
            out.push(c);
            // After the first character of every control text that starts here.
            if self.special_index().starting_at(&text, at).any(|id| is_control(self, id)) {
                out.push(NO_SPECIAL);
            }
            if at + c.len_utf8() == end && after {
                out.push(NO_SPECIAL);
            }
        }
        out
    }
}
