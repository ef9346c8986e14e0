//! SentencePiece Unigram (`tokenizer.ggml.model = "t5"`: T5 and its descendants) with
//! llama.cpp's semantics (`llm_tokenizer_ugm`), written by hand like [`super::spm`].
//!
//! Why not HF `tokenizers`' Unigram: llama.cpp normalizes the whole text fragment with the
//! file's `precompiled_charsmap` (SentencePiece's compiled normalization rules: NFKC and
//! friends, as a double-array trie of replacements) and its whitespace switches, then runs one
//! Viterbi pass over it, with an unknown token for any character no piece covers (runs of
//! them merged into one) and user-defined tokens matched first. HF's pipeline splits the text
//! into words first and handles unknowns and user tokens its own way; this follows llama.cpp.

use super::spm::SPACE;
use super::trie::Trie;
use super::TokenType;
use crate::{Error, Result};

#[derive(Clone)]
pub(crate) struct Ugm {
    /// Normal, user-defined and unused pieces (llama.cpp's `token_matcher`).
    pieces: Trie,
    /// Each id's score (user-defined pieces count 0).
    scores: Vec<f64>,
    /// User-defined pieces, matched in the text before normalization.
    user_defined: Trie,
    unk: u32,
    /// The lowest normal score minus 10: the cost of a character no piece covers.
    unknown_score: f64,
    charsmap: Option<Charsmap>,
    add_space_prefix: bool,
    remove_extra_whitespaces: bool,
}

impl std::fmt::Debug for Ugm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ugm").field("charsmap", &self.charsmap.is_some()).finish()
    }
}

/// The precompiled charsmap: a XOR-compressed compact double array over input bytes whose
/// leaves index NUL-terminated replacement strings.
#[derive(Clone)]
struct Charsmap {
    xcda: Vec<u32>,
    replacements: Vec<u8>,
}

impl Charsmap {
    fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::Tokenizer(format!("tokenizer.ggml.precompiled_charsmap: {what}"));
        if bytes.len() < 4 {
            return Err(bad("shorter than its 4-byte header"));
        }
        let size = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if size % 4 != 0 || size > bytes.len() - 4 {
            return Err(bad(&format!("a trie of {size} bytes in {} bytes", bytes.len())));
        }
        let xcda = bytes[4..4 + size].chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        Ok(Charsmap { xcda, replacements: bytes[4 + size..].to_vec() })
    }

    fn node(&self, i: usize) -> Result<u32> {
        self.xcda.get(i).copied().ok_or_else(|| Error::Tokenizer("tokenizer.ggml.precompiled_charsmap: a trie index out of bounds".into()))
    }

    /// The replacement of the longest prefix of `input` the trie holds: `(replacement,
    /// bytes consumed)`.
    fn longest(&self, input: &[u8]) -> Result<Option<(&[u8], usize)>> {
        let base = |n: u32| (n >> 10) << ((n & (1 << 9)) >> 6);
        let mut node = base(self.node(0)?) as usize;
        let mut best = None;
        for (i, &c) in input.iter().enumerate() {
            if c == 0 {
                break;
            }
            node ^= c as usize;
            let n = self.node(node)?;
            if n & ((1 << 31) | 0xff) != c as u32 {
                break;
            }
            let leaf = (n >> 8) & 1 == 1;
            node ^= base(n) as usize;
            if leaf {
                best = Some((i + 1, (self.node(node)? & ((1 << 31) - 1)) as usize));
            }
        }
        let Some((len, at)) = best else { return Ok(None) };
        let rest = self.replacements.get(at..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::Tokenizer("tokenizer.ggml.precompiled_charsmap: a replacement without its terminating NUL".into())
        })?;
        Ok(Some((&rest[..end], len)))
    }
}

impl Ugm {
    pub(crate) fn new(
        tokens: &[String],
        types: &[TokenType],
        scores: Vec<f32>,
        unk: Option<u32>,
        charsmap: Option<&[u8]>,
        add_space_prefix: bool,
        remove_extra_whitespaces: bool,
    ) -> Result<Self> {
        let unk = unk.ok_or_else(|| Error::Tokenizer("a Unigram vocabulary needs an unknown token (tokenizer.ggml.unknown_token_id)".into()))?;
        let matched = |t: TokenType| matches!(t, TokenType::Normal | TokenType::UserDefined | TokenType::Unused);
        let of_type = |keep: &dyn Fn(TokenType) -> bool| {
            Trie::new(tokens.iter().zip(types).enumerate().filter(|(_, (_, &ty))| keep(ty)).map(|(id, (t, _))| (t.as_str(), id as u32)))
        };
        let min_score = scores.iter().zip(types).filter(|(_, &ty)| ty == TokenType::Normal).map(|(&s, _)| s).fold(f32::MAX, f32::min);
        let scores = scores.iter().zip(types).map(|(&s, &ty)| if ty == TokenType::UserDefined { 0.0 } else { s as f64 }).collect();
        Ok(Ugm {
            pieces: of_type(&matched),
            scores,
            user_defined: of_type(&|ty| ty == TokenType::UserDefined),
            unk,
            unknown_score: (min_score - 10.0) as f64,
            charsmap: charsmap.map(Charsmap::parse).transpose()?,
            add_space_prefix,
            remove_extra_whitespaces,
        })
    }

    pub(crate) fn id(&self, piece: &str) -> Option<u32> {
        self.pieces.get(piece)
    }

    /// The normalized form of `text`: the charsmap's replacements (user-defined pieces kept as
    /// they are), spaces as `▁`, with the space prefix and space merging the file asks for.
    fn normalize(&self, text: &str) -> Result<Vec<u8>> {
        let input = text.as_bytes();
        let mut out = Vec::with_capacity(input.len() * 3);
        let space = SPACE.encode_utf8(&mut [0; 4]).as_bytes().to_vec();
        let (mut prepended, mut in_word) = (false, false);
        let mut at = 0;
        while at < input.len() {
            let rest = &input[at..];
            let user = self.user_defined.longest(rest).map(|(len, _)| len);
            let (chunk, used): (&[u8], usize) = match (user, &self.charsmap) {
                (Some(n), _) => (&rest[..n], n),
                (None, Some(map)) => match map.longest(rest)? {
                    Some(hit) => hit,
                    None => one_char(text, at),
                },
                (None, None) => one_char(text, at),
            };
            for &c in chunk {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (self.add_space_prefix && !prepended) || self.remove_extra_whitespaces {
                            out.extend_from_slice(&space);
                            prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !self.remove_extra_whitespaces {
                        out.extend_from_slice(&space);
                    }
                }
            }
            at += used;
        }
        Ok(out)
    }

    /// Appends the ids of `text`: the best-scoring segmentation of its normalized form.
    pub(crate) fn tokenize(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let norm = self.normalize(text)?;
        let n = norm.len();
        if n == 0 {
            return Ok(());
        }
        // best[end]: the best segmentation of norm[..end] as (last token, its start, score).
        let mut best = vec![(self.unk, 0usize, f64::MIN); n + 1];
        best[0].2 = 0.0;
        let mut at = 0;
        while at < n {
            let char_len = utf8_len(norm[at]).min(n - at);
            let score = best[at].2;
            let mut whole_char = false;
            for (len, id) in self.pieces.prefixes(&norm[at..]) {
                let end = at + len;
                whole_char |= len == char_len;
                let s = score + self.scores[id as usize];
                if s > best[end].2 {
                    best[end] = (id, at, s);
                }
            }
            if !whole_char {
                let end = at + char_len;
                let s = score + self.unknown_score;
                if s > best[end].2 {
                    best[end] = (self.unk, at, s);
                }
            }
            at += char_len;
        }
        // Back from the end; a run of unknown characters is one unknown token.
        let first = out.len();
        let (mut end, mut prev_unknown) = (n, false);
        loop {
            let (id, start, _) = best[end];
            let unknown = id == self.unk;
            if !(prev_unknown && unknown) {
                out.push(id);
            }
            if start == 0 {
                break;
            }
            prev_unknown = unknown;
            end = start;
        }
        out[first..].reverse();
        Ok(())
    }
}

/// The character of `text` at byte `at`, unchanged (U+FFFD for one byte if `at` is inside a
/// character, which a malformed charsmap could leave, as llama.cpp does for invalid UTF-8).
fn one_char(text: &str, at: usize) -> (&[u8], usize) {
    match text.get(at..).and_then(|t| t.chars().next()) {
        Some(c) => (&text.as_bytes()[at..at + c.len_utf8()], c.len_utf8()),
        None => ("\u{FFFD}".as_bytes(), 1),
    }
}

/// The length of a UTF-8 sequence from its first byte (1 for a stray continuation byte).
fn utf8_len(b: u8) -> usize {
    match b >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}
