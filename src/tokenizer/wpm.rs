//! WordPiece (`tokenizer.ggml.model = "bert"`: BERT and its sentence encoders) with
//! llama.cpp's semantics (`llm_tokenizer_wpm_session`).
//!
//! Why not HF `tokenizers`' WordPiece: the GGUF stores the vocabulary as llama.cpp reads it
//! (word-initial pieces with a `▁` prefix, continuations without `##`), and llama.cpp's
//! pre-processing differs from HF's BertNormalizer in details that change ids: every mark
//! (`\p{M}`, not only `Mn`) goes with the accents, every `\p{C}` character is dropped, and
//! there is no longest-word limit (HF gives `[UNK]` past 100 characters). The Unicode data
//! comes from what the engine already links: canonical decompositions from `tokenizers`'
//! Unicode normalization crate, the general categories from its regex engine's `\p{…}`
//! classes. One deliberate difference: llama.cpp maps each character to
//! the first character of its decomposition, which loses the vowel and final consonant of a
//! Hangul syllable; this uses the full canonical decomposition, as BERT's own tokenizer does.

use std::sync::OnceLock;

use tokenizers::models::bpe::Vocab;
use tokenizers::utils::SysRegex;

use super::trie::Trie;
use unicode_normalization_alignments::char::decompose_canonical;

use super::spm::SPACE;
use crate::{Error, Result};

#[derive(Clone)]
pub(crate) struct Wpm {
    /// Every vocabulary entry, of any token type (llama.cpp's `token_to_id`).
    pieces: Trie,
    unk: u32,
    lowercase: bool,
    strip_accents: bool,
}

impl std::fmt::Debug for Wpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wpm").field("lowercase", &self.lowercase).field("strip_accents", &self.strip_accents).finish()
    }
}

impl Wpm {
    pub(crate) fn new(ids: Vocab, unk: Option<u32>, lowercase: bool, strip_accents: bool) -> Result<Self> {
        let unk = unk.ok_or_else(|| Error::Tokenizer("a WordPiece vocabulary needs an unknown token (tokenizer.ggml.unknown_token_id)".into()))?;
        let pieces = Trie::new(ids.iter().map(|(t, &id)| (t.as_str(), id)));
        Ok(Wpm { pieces, unk, lowercase, strip_accents })
    }

    pub(crate) fn id(&self, piece: &str) -> Option<u32> {
        self.pieces.get(piece)
    }

    /// Appends the ids of `text` (no [CLS]/[SEP]: the caller frames the whole input).
    pub(crate) fn tokenize(&self, text: &str, out: &mut Vec<u32>) {
        let mut word = String::from(SPACE);
        for w in self.words(text) {
            word.truncate(SPACE.len_utf8());
            word.push_str(&w);
            self.word_pieces(&word, out);
        }
    }

    /// Greedy longest match from the left over `word` (with its `▁`); a word with a position
    /// no piece starts at is one unknown token.
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let first = out.len();
        let mut i = 0;
        while i < word.len() {
            match self.pieces.longest(&word.as_bytes()[i..]) {
                Some((len, id)) => {
                    out.push(id);
                    i += len;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }

    /// llama.cpp's `preprocess`: whitespace ends a word; NUL, U+FFFD and other-category
    /// characters are dropped, as are marks when stripping accents; punctuation, ASCII symbols
    /// and CJK ideographs are words of their own.
    fn words(&self, text: &str) -> Vec<String> {
        let decomposed;
        let text = if self.strip_accents {
            // Canonical decompositions without NFD's reordering of marks: the marks go anyway.
            let mut d = String::with_capacity(text.len() + 8);
            text.chars().for_each(|c| decompose_canonical(c, |x| d.push(x)));
            decomposed = d;
            decomposed.as_str()
        } else {
            text
        };
        let classes = Class::of(text);
        let mut words = vec![String::new()];
        let end_word = |words: &mut Vec<String>| {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
        };
        for (at, c) in text.char_indices() {
            let class = classes[at];
            if c.is_whitespace() {
                end_word(&mut words);
                continue;
            }
            if c == '\0' || c == '\u{FFFD}' || class == Class::Other || (self.strip_accents && class == Class::Mark) {
                continue;
            }
            // llama.cpp lower-cases one character to one (İ to i), after classifying it.
            let lower = if self.lowercase { c.to_lowercase().next().unwrap_or(c) } else { c };
            if class == Class::Punctuation || (c.is_ascii() && class == Class::Symbol) || is_cjk(c) {
                end_word(&mut words);
                words.last_mut().expect("never empty").push(lower);
                words.push(String::new());
            } else {
                words.last_mut().expect("never empty").push(lower);
            }
        }
        words.retain(|w| !w.is_empty());
        words
    }
}

/// The Unicode general categories WordPiece tells apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Plain,
    /// `\p{C}`: control, format, surrogate, private-use and unassigned code points.
    Other,
    /// `\p{M}`: combining marks.
    Mark,
    /// `\p{P}`.
    Punctuation,
    /// `\p{S}`.
    Symbol,
}

impl Class {
    /// The class of the character at each byte offset of `text` (`Plain` elsewhere).
    fn of(text: &str) -> Vec<Class> {
        static PATTERNS: OnceLock<Vec<(Class, SysRegex)>> = OnceLock::new();
        let patterns = PATTERNS.get_or_init(|| {
            [(Class::Other, r"\p{C}"), (Class::Mark, r"\p{M}"), (Class::Punctuation, r"\p{P}"), (Class::Symbol, r"\p{S}")]
                .into_iter()
                .map(|(class, p)| (class, SysRegex::new(p).expect("a valid character class")))
                .collect()
        });
        let mut classes = vec![Class::Plain; text.len()];
        for (class, re) in patterns {
            for (start, _) in re.find_iter(text) {
                classes[start] = *class;
            }
        }
        classes
    }
}

/// The CJK ideograph blocks BERT splits into single characters (llama.cpp's list, which
/// follows HF's, including its 0x2B920 where the block starts at 0x2B820).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}
