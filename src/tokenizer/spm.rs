//! SentencePiece BPE (`tokenizer.ggml.model = "llama"`: Gemma, Llama 2, Mistral, TinyLlama) with
//! llama.cpp's semantics (`llm_tokenizer_spm`), written by hand.
//!
//! Why not HF `tokenizers`: its BPE model merges the adjacent pair of lowest rank from an
//! explicit merge list. SentencePiece BPE as llama.cpp runs it has no merge list: it merges the
//! adjacent pair whose concatenation is *any* vocabulary piece (of any token type), highest
//! score first and leftmost among equal scores; characters that are no piece become `<0xNN>`
//! byte tokens. A merge list derived from the scores reproduces this on typical text but not
//! its tie-breaking, so the merge loop below follows llama.cpp line by line instead. (llama.cpp
//! also re-splits merged symbols that are not pieces along a reverse merge map; since a pair
//! is only ever merged into a piece, only single characters can miss the vocabulary and that
//! path never runs, so it is left out.) Everything around it — splitting out special tokens, BOS — is shared with
//! the BPE tokenizer in `mod.rs`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tokenizers::models::bpe::Vocab;

use crate::{Error, Result};

/// The SentencePiece space marker, U+2581 "▁".
pub(crate) const SPACE: char = '\u{2581}';

pub(crate) struct Spm {
    /// Every vocabulary piece, of any token type, to its id (llama.cpp's `token_to_id`).
    ids: Vocab,
    scores: Vec<f32>,
    /// `<0xNN>` (or, failing that, the byte itself as a piece) for every byte.
    byte_tokens: [Option<u32>; 256],
    /// Prepend a space to text at the start and after every special token
    /// (`tokenizer.ggml.add_space_prefix`, default true).
    pub(crate) add_space_prefix: bool,
}

/// A symbol of the text being merged: bytes `start..start + len`, linked to its neighbours.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge of two adjacent symbols into a piece with `score`.
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// The heap's top is the highest score, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl std::fmt::Debug for Spm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spm({} pieces)", self.ids.len())
    }
}

impl Clone for Spm {
    fn clone(&self) -> Self {
        Self { ids: self.ids.clone(), scores: self.scores.clone(), byte_tokens: self.byte_tokens, add_space_prefix: self.add_space_prefix }
    }
}

impl Spm {
    /// `ids` maps every piece to its id (checked free of duplicates), `scores` holds one finite
    /// score per id.
    pub(crate) fn new(ids: Vocab, scores: Vec<f32>, add_space_prefix: bool) -> Result<Self> {
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(Error::Tokenizer(format!("tokenizer.ggml.scores[{i}] = {} is not a finite number", scores[i])));
        }
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = ids.get(format!("<0x{b:02X}>").as_str()).copied();
            if slot.is_none() && b < 0x80 {
                *slot = ids.get(char::from(b as u8).to_string().as_str()).copied();
            }
        }
        Ok(Self { ids, scores, byte_tokens, add_space_prefix })
    }

    pub(crate) fn id(&self, piece: &str) -> Option<u32> {
        self.ids.get(piece).copied()
    }

    /// The byte a `<0xNN>` piece stands for.
    pub(crate) fn byte_of(piece: &str) -> Option<u8> {
        let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
        (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
    }

    /// Tokenizes one fragment of text (no special tokens in it): spaces become `▁`, then the
    /// score-ordered merges.
    pub(crate) fn tokenize(&self, text: &str, space_prefix: bool, out: &mut Vec<u32>) -> Result<()> {
        let mut escaped = String::with_capacity(text.len() + 3);
        if space_prefix {
            escaped.push(SPACE);
        }
        escaped.extend(text.chars().map(|c| if c == ' ' { SPACE } else { c }));
        let text = escaped.as_str();
        if text.is_empty() {
            return Ok(());
        }
        // One symbol per UTF-8 character.
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        let n_chars = text.chars().count();
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: i.checked_sub(1),
                next: (i + 1 < n_chars).then_some(i + 1),
            });
        }
        let mut queue = BinaryHeap::new();
        let try_add = |left: Option<usize>, right: Option<usize>, symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>| {
            let (Some(l), Some(r)) = (left, right) else { return };
            let (a, b) = (symbols[l], symbols[r]);
            let piece = &text[a.start..a.start + a.len + b.len];
            if let Some(&id) = self.ids.get(piece) {
                queue.push(Bigram { left: l, right: r, score: self.scores[id as usize], len: piece.len() });
            }
        };
        for i in 1..symbols.len() {
            try_add(Some(i - 1), Some(i), &symbols, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (bigram.left, bigram.right);
            // Skip pairs one of whose symbols has merged since.
            if symbols[l].len == 0 || symbols[r].len == 0 || symbols[l].len + symbols[r].len != bigram.len {
                continue;
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(n) = symbols[r].next {
                symbols[n].prev = Some(l);
            }
            let (prev, next) = (symbols[l].prev, symbols[l].next);
            try_add(prev, Some(l), &symbols, &mut queue);
            try_add(Some(l), next, &symbols, &mut queue);
        }
        let mut i = Some(0);
        while let Some(s) = i {
            let piece = &text[symbols[s].start..symbols[s].start + symbols[s].len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        let id = self.byte_tokens[b as usize].ok_or_else(|| {
                            Error::Tokenizer(format!("the vocabulary has no token for byte 0x{b:02X} (<0x{b:02X}>)"))
                        })?;
                        out.push(id);
                    }
                }
            }
            i = symbols[s].next;
        }
        Ok(())
    }
}
