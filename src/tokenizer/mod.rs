//! Text ↔ token ids, built from the vocabulary a GGUF file carries, with llama.cpp's semantics.
//!
//! Four tokenizer models: `tokenizer.ggml.model = "gpt2"` (byte-level BPE: SmolLM2, Qwen2,
//! Llama 3), whose merges and pre-tokenizer regexes run on HF `tokenizers`; `"llama"`
//! (SentencePiece BPE: Gemma, Llama 2, Mistral), whose score-ordered merges are in [`spm`];
//! `"bert"` (WordPiece, [`wpm`]) and `"t5"` (SentencePiece Unigram, [`ugm`]). Special tokens
//! are split out of the text here, for all of them, the way llama.cpp's
//! `tokenizer_st_partition` does it:
//!
//! * candidates are the control, user-defined and unknown tokens, longest text first;
//! * user-defined tokens are always matched; control and unknown tokens only with
//!   `parse_special = true` (otherwise `<|im_start|>` in text is tokenized as plain text);
//! * the text between matches goes through the pre-tokenizer and BPE separately.
//!
//! SentencePiece text fragments are prefixed with a space at the start of the text and after
//! every special token when `tokenizer.ggml.add_space_prefix` is set (its default), and every
//! space becomes `▁`.
//!
//! Decoding follows llama.cpp's `token_to_piece`: normal tokens are mapped back from the
//! byte-level alphabet (BPE) or have `▁` turned back into spaces (SentencePiece), byte tokens
//! `<0xNN>` are their byte (SentencePiece), user-defined tokens are copied as written, control
//! and unknown tokens are copied only when special tokens are rendered, other types (unused,
//! undefined) produce nothing. No "clean up tokenization spaces" pass is applied.

mod bytes;
mod guard;
mod pre;
mod special_index;
mod spm;
mod stream;
mod trie;
mod ugm;
mod wpm;

pub use guard::NO_SPECIAL;
pub use stream::StreamDecoder;

use std::collections::BTreeSet;

use tokenizers::models::bpe::{Vocab, BPE};

use crate::gguf::{Metadata, Value};
use crate::{Error, Result};

use bytes::ByteDecoder;
use pre::PreConfig;
use spm::Spm;
use ugm::Ugm;
use wpm::Wpm;

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// 0, or any value llama.cpp does not know.
    Undefined,
    /// 1
    Normal,
    /// 2
    Unknown,
    /// 3: special tokens such as `<|im_start|>`; matched in text only with `parse_special`.
    Control,
    /// 4: added tokens that are always matched in text and stored un-mapped.
    UserDefined,
    /// 5
    Unused,
    /// 6: `<0xAB>` byte tokens of SentencePiece vocabularies.
    Byte,
}

impl TokenType {
    fn from_gguf(v: i64) -> Self {
        match v {
            1 => Self::Normal,
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Undefined,
        }
    }
}

/// Token texts llama.cpp treats as end of generation (`special_eog_ids`), besides the ids
/// the GGUF names.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];

/// The tokenizer models `tokenizer.ggml.model` names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    /// "gpt2": byte-level BPE.
    Bpe,
    /// "llama": SentencePiece BPE.
    Spm,
    /// "bert": WordPiece.
    Wpm,
    /// "t5": SentencePiece Unigram.
    Ugm,
}

/// How text fragments become ids.
#[derive(Clone, Debug)]
enum Kind {
    /// Byte-level BPE on HF `tokenizers`.
    Bpe { hf: Box<pre::HfBpe>, bytes: Box<ByteDecoder> },
    /// SentencePiece BPE.
    Spm(Box<Spm>),
    /// WordPiece (BERT).
    Wpm(Box<Wpm>),
    /// SentencePiece Unigram (T5).
    Ugm(Box<Ugm>),
}

/// A tokenizer built from GGUF metadata. Cheap to share (`Send + Sync`); wrap it in an `Arc`.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    kind: Kind,
    /// Vocabulary strings by id (empty strings replaced by `[EMPTY_<id>]`, as llama.cpp does).
    tokens: Vec<String>,
    /// Token types by id, after llama.cpp's overrides (EOG/EOT/FIM-looking tokens become control).
    types: Vec<TokenType>,
    /// Control, user-defined and unknown token ids, longest text first (ties: lower id first).
    specials: Vec<u32>,
    /// End-of-generation ids, sorted.
    eog: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    /// The token that ends every input: WordPiece's [SEP] (llama.cpp's `add_special` for WPM),
    /// or EOS where `add_eos_token` asks for it (T5).
    end: Option<u32>,
    model: String,
    pre: Option<String>,
    /// The special tokens indexed by text, built on first use.
    special_index: std::sync::OnceLock<special_index::SpecialIndex>,
    /// The control-token texts for [`Tokenizer::guard`], built on first use.
    controls: std::sync::OnceLock<guard::Controls>,
}

/// One piece of the text after splitting out special tokens.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata. Every inconsistency (missing or
    /// mistyped arrays, lengths that disagree, malformed merges, ids out of range, duplicate
    /// vocabulary strings) is an error, never a panic.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        Self::from_metadata_taking(&mut md.clone())
    }

    /// Like [`from_metadata`](Self::from_metadata), but moves the vocabulary arrays (tokens,
    /// types, merges, scores) out of `md` instead of copying them, so that a loaded model holds
    /// its vocabulary once (Qwen2's 151,936 tokens and merges are tens of MB in the browser's
    /// heap).
    pub fn from_metadata_taking(md: &mut Metadata) -> Result<Self> {
        let model = md.require_str("tokenizer.ggml.model")?.to_string();
        let model = model.as_str();
        let family = match model {
            "gpt2" => Family::Bpe,
            "llama" => Family::Spm,
            "bert" => Family::Wpm,
            "t5" => Family::Ugm,
            _ => {
                return Err(Error::Unsupported(format!(
                    "tokenizer model {model:?} (tokenizer.ggml.model); supported: \"gpt2\" (byte-level BPE), \"llama\" \
                     (SentencePiece BPE), \"bert\" (WordPiece), \"t5\" (SentencePiece Unigram)"
                )))
            }
        };
        // llama.cpp ignores the pre-tokenizer of SentencePiece and WordPiece vocabularies.
        let pre_name = md.get_str("tokenizer.ggml.pre")?.map(str::to_string);
        let pre = if family == Family::Bpe { Some(PreConfig::for_pre(pre_name.as_deref())?) } else { None };

        let mut tokens = md
            .take_strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| Error::Tokenizer("tokenizer.ggml.tokens is missing".into()))?;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("tokenizer.ggml.tokens is empty".into()));
        }
        if n > i32::MAX as usize {
            return Err(Error::Tokenizer(format!("vocabulary of {n} tokens is too large")));
        }
        for (i, t) in tokens.iter_mut().enumerate() {
            if t.is_empty() {
                *t = format!("[EMPTY_{i}]");
            }
        }

        let mut types: Vec<TokenType> = match md.get_array("tokenizer.ggml.token_type")? {
            None => vec![TokenType::Normal; n],
            Some(arr) => {
                if arr.len() != n {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {n}",
                        arr.len()
                    )));
                }
                arr.iter()
                    .map(|v| {
                        v.as_i64().map(TokenType::from_gguf).ok_or_else(|| {
                            Error::Tokenizer(format!(
                                "tokenizer.ggml.token_type holds a {}, expected integers",
                                v.type_name()
                            ))
                        })
                    })
                    .collect::<Result<_>>()?
            }
        };
        md.take("tokenizer.ggml.token_type");

        let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        if vocab.len() != n {
            let mut seen = std::collections::HashMap::with_capacity(n);
            for (i, t) in tokens.iter().enumerate() {
                if let Some(j) = seen.insert(t.as_str(), i) {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.ggml.tokens has {t:?} twice (ids {j} and {i})"
                    )));
                }
            }
        }

        // Special ids named by the GGUF (SentencePiece vocabularies default to llama.cpp's
        // BOS 1 and EOS 2; WordPiece ones to bert-base's [CLS] 101, [UNK] 100, [SEP] 102).
        let id_key = |key: &str, default: Option<u32>| -> Result<Option<u32>> {
            let Some(v) = md.get(key) else { return Ok(default.filter(|&d| (d as usize) < n)) };
            match (v.as_u64(), v.as_i64()) {
                (Some(id), _) if id < n as u64 => Ok(Some(id as u32)),
                (Some(id), _) => {
                    Err(Error::Tokenizer(format!("{key} = {id} is out of range (vocabulary of {n} tokens)")))
                }
                // -1 means "none" in some converters.
                (None, Some(_)) => Ok(None),
                (None, None) => {
                    Err(Error::Tokenizer(format!("{key} is a {}, expected an integer", v.type_name())))
                }
            }
        };
        let (bos_default, eos_default, unk_default) = match family {
            Family::Spm => (Some(1), Some(2), Some(0)),
            Family::Wpm => (Some(101), None, Some(100)),
            // T5's <pad> 0, </s> 1, <unk> 2.
            Family::Ugm => (None, Some(1), Some(2)),
            Family::Bpe => (None, None, None),
        };
        let (wpm, ugm) = (family == Family::Wpm, family == Family::Ugm);
        let mut bos = id_key("tokenizer.ggml.bos_token_id", bos_default)?;
        let eos = id_key("tokenizer.ggml.eos_token_id", eos_default)?;
        let mut eot = id_key("tokenizer.ggml.eot_token_id", None)?;
        let mut eom = id_key("tokenizer.ggml.eom_token_id", None)?;
        let pad = id_key("tokenizer.ggml.padding_token_id", if wpm || ugm { Some(0) } else { None })?;
        let unk = id_key("tokenizer.ggml.unknown_token_id", unk_default)?;
        // WordPiece frames its input as [CLS] text [SEP], whatever add_bos_token says.
        let sep = if wpm { id_key("tokenizer.ggml.seperator_token_id", Some(102))? } else { None };
        if wpm && (bos.is_none() || sep.is_none()) {
            return Err(Error::Tokenizer("a WordPiece vocabulary needs its [CLS] and [SEP] tokens (bos_token_id, seperator_token_id)".into()));
        }
        let mut fim_pad = id_key("tokenizer.ggml.fim_pad_token_id", None)?;
        let mut fim_rep = id_key("tokenizer.ggml.fim_rep_token_id", None)?;
        let mut fim_sep = id_key("tokenizer.ggml.fim_sep_token_id", None)?;
        let mut fim_pre = id_key("tokenizer.ggml.fim_pre_token_id", None)?;
        let mut fim_suf = id_key("tokenizer.ggml.fim_suf_token_id", None)?;
        let mut fim_mid = id_key("tokenizer.ggml.fim_mid_token_id", None)?;
        let kind = match (family, &pre) {
            (Family::Wpm, _) => {
                let lowercase = md.get_bool("tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
                let strip_accents = md.get_bool("tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
                Kind::Wpm(Box::new(Wpm::new(vocab, unk, lowercase, strip_accents)?))
            }
            (Family::Ugm, _) => ugm_model(md, &tokens, &types, unk)?,
            (Family::Bpe, Some(pre)) => bpe_model(md, vocab, pre)?,
            _ => spm_model(md, vocab, n)?,
        };
        let pre = match pre {
            Some(pre) => pre,
            None => PreConfig::for_pre(None)?,
        };
        if pre.no_bos {
            bos = None;
        }
        let add_bos = wpm || md.get_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(family == Family::Spm || pre.add_bos_default);
        // EOS after the text as llama.cpp's add_special puts it: by default for T5, and for the
        // rare other file that sets add_eos_token.
        let add_eos = !wpm && md.get_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(ugm);
        if add_eos && eos.is_none() {
            return Err(Error::Tokenizer("tokenizer.ggml.add_eos_token is true but there is no EOS token".into()));
        }
        let end = if wpm { sep } else { eos.filter(|_| add_eos) };
        if add_bos && bos.is_none() {
            return Err(Error::Tokenizer("tokenizer.ggml.add_bos_token is true but there is no BOS token".into()));
        }

        // llama.cpp's text-based detection: unset EOT/EOM/FIM ids are found by their text, and
        // those tokens (and every EOG-looking one) are forced to control type. llama.cpp takes
        // the first match in hash order; here the lowest id wins.
        let mut eog: BTreeSet<u32> = BTreeSet::new();
        let mut make_control = Vec::new();
        for (id, text) in tokens.iter().enumerate() {
            let id = id as u32;
            let t = text.as_str();
            for (slot, list) in [
                (&mut eot, EOT_TEXTS),
                (&mut eom, EOM_TEXTS),
                (&mut fim_pre, FIM_PRE_TEXTS),
                (&mut fim_suf, FIM_SUF_TEXTS),
                (&mut fim_mid, FIM_MID_TEXTS),
                (&mut fim_pad, FIM_PAD_TEXTS),
                (&mut fim_rep, FIM_REP_TEXTS),
                (&mut fim_sep, FIM_SEP_TEXTS),
            ] {
                if slot.is_none() && list.contains(&t) {
                    *slot = Some(id);
                    make_control.push(id);
                }
            }
            if EOG_TEXTS.contains(&t) {
                eog.insert(id);
                make_control.push(id);
            }
        }
        for id in make_control {
            types[id as usize] = TokenType::Control;
        }
        eog.extend([fim_pad, fim_rep, fim_sep, eos, eot, eom].into_iter().flatten());

        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                matches!(types[id as usize], TokenType::Control | TokenType::UserDefined | TokenType::Unknown)
            })
            .collect();
        specials.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()).then(a.cmp(&b)));

        tokens.shrink_to_fit();
        Ok(Tokenizer {
            kind,
            tokens,
            types,
            specials,
            eog: eog.into_iter().collect(),
            bos,
            eos,
            eot,
            pad,
            add_bos,
            end,
            model: model.to_string(),
            pre: pre_name,
            special_index: std::sync::OnceLock::new(),
            controls: std::sync::OnceLock::new(),
        })
    }

    /// Text to ids. `parse_special`: whether control tokens written in the text (e.g.
    /// `<|im_start|>`) become their ids; user-defined tokens always do. Never adds BOS (see
    /// [`Tokenizer::add_bos`]).
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        self.encode_fragments(text, parse_special, false)
    }

    /// Tokenizes a rendered chat prompt whose messages went in through [`Tokenizer::guard`]:
    /// control tokens of the template's own text become their ids, the messages' text stays
    /// plain text.
    pub fn encode_rendered(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_fragments(text, true, true)
    }

    /// [`encode`](Self::encode); with `unguard`, the [`NO_SPECIAL`] markers are dropped from
    /// the text between special tokens before it is tokenized.
    fn encode_fragments(&self, text: &str, parse_special: bool, unguard: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        // SentencePiece: the text after a special token (or at the start) gets a space prefix.
        let mut after_special = true;
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    let unguarded;
                    let t = if unguard && t.contains(NO_SPECIAL) {
                        unguarded = t.replace(NO_SPECIAL, "");
                        unguarded.as_str()
                    } else {
                        t
                    };
                    match &self.kind {
                        Kind::Bpe { hf, .. } => {
                            let enc = hf.encode_fast(t, false).map_err(|e| Error::Tokenizer(e.to_string()))?;
                            out.extend_from_slice(enc.get_ids());
                        }
                        Kind::Spm(spm) => spm.tokenize(t, spm.add_space_prefix && after_special, &mut out)?,
                        Kind::Wpm(wpm) => wpm.tokenize(t, &mut out),
                        Kind::Ugm(ugm) => ugm.tokenize(t, &mut out)?,
                    }
                    after_special = false;
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn special_index(&self) -> &special_index::SpecialIndex {
        self.special_index.get_or_init(|| special_index::SpecialIndex::new(&self.tokens, &self.specials))
    }

    /// llama.cpp's special-token partition: for each candidate, longest first, split every
    /// remaining text fragment at each of its occurrences.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(text));
        // Only the specials the text contains can split it (later fragments are substrings),
        // taken in the order of `specials`: longest text first, then lower id.
        let mut present: Vec<u32> = self.special_index().occurring(text).into_iter().collect();
        present.sort_by(|&a, &b| self.tokens[b as usize].len().cmp(&self.tokens[a as usize].len()).then(a.cmp(&b)));
        for id in present {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let pat = self.tokens[id as usize].as_str();
            if !frags.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(pat))) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Text(t) => {
                        let mut last = 0;
                        for (pos, _) in t.match_indices(pat) {
                            if pos > last {
                                next.push(Fragment::Text(&t[last..pos]));
                            }
                            next.push(Fragment::Token(id));
                            last = pos + pat.len();
                        }
                        if last < t.len() {
                            next.push(Fragment::Text(&t[last..]));
                        }
                    }
                    tok => next.push(tok),
                }
            }
            frags = next;
        }
        frags
    }

    /// Ids to text: the concatenated [`Tokenizer::token_bytes`] (control and unknown tokens
    /// only with `render_special`), as UTF-8 with invalid sequences replaced by U+FFFD.
    /// An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> Result<String> {
        let bytes = self.decode_bytes(ids, render_special)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Like [`Tokenizer::decode`], but the raw bytes (which need not be valid UTF-8).
    pub fn decode_bytes(&self, ids: &[u32], render_special: bool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if !self.piece_into(id, render_special, &mut out) {
                return Err(self.out_of_range(id));
            }
        }
        Ok(out)
    }

    fn out_of_range(&self, id: u32) -> Error {
        Error::Tokenizer(format!("token id {id} is out of range (vocabulary of {} tokens)", self.tokens.len()))
    }

    /// Appends the bytes of one token (llama.cpp's `token_to_piece`); `false` if `id` is out of range.
    pub(crate) fn piece_into(&self, id: u32, render_special: bool, out: &mut Vec<u8>) -> bool {
        let (Some(text), Some(ty)) = (self.tokens.get(id as usize), self.types.get(id as usize)) else {
            return false;
        };
        match ty {
            TokenType::Normal => match &self.kind {
                Kind::Bpe { bytes, .. } => bytes.decode_into(text, out),
                Kind::Spm(_) | Kind::Wpm(_) | Kind::Ugm(_) => {
                    for c in text.chars() {
                        let c = if c == spm::SPACE { ' ' } else { c };
                        out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
                    }
                }
            },
            TokenType::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenType::Control | TokenType::Unknown => {
                if render_special {
                    out.extend_from_slice(text.as_bytes())
                }
            }
            TokenType::Byte => {
                if let (Kind::Spm(_) | Kind::Ugm(_), Some(b)) = (&self.kind, Spm::byte_of(text)) {
                    out.push(b);
                }
            }
            TokenType::Unused | TokenType::Undefined => {}
        }
        true
    }

    /// The bytes one token stands for, with special tokens rendered as their text (llama.cpp's
    /// `token_to_piece(id, special = true)`); `None` for ids outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.piece_into(id, true, &mut out).then_some(out)
    }

    /// The vocabulary string of a token (byte-level form for normal tokens, e.g. `"Ġworld"`).
    pub fn token_str(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of a vocabulary string, if it is one.
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        match &self.kind {
            Kind::Bpe { hf, .. } => hf.token_to_id(piece),
            Kind::Spm(spm) => spm.id(piece),
            Kind::Wpm(wpm) => wpm.id(piece),
            Kind::Ugm(ugm) => ugm.id(piece),
        }
    }

    /// The type of a token, after llama.cpp's overrides (e.g. `<|im_end|>` is always control).
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// End-of-turn token: `tokenizer.ggml.eot_token_id`, else the first token whose text
    /// llama.cpp recognizes as one (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, …).
    pub fn eot_id(&self) -> Option<u32> {
        self.eot
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether a prompt should start with BOS (`tokenizer.ggml.add_bos_token`, else llama.cpp's
    /// default for the pre-tokenizer). [`Tokenizer::encode`] never adds it.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The token that ends every input, after the text: WordPiece's [SEP] (BERT frames its
    /// input as `[CLS] text [SEP]`), or EOS where the file's `add_eos_token` asks for it (T5).
    pub fn end_id(&self) -> Option<u32> {
        self.end
    }

    /// Whether generation stops at this token: llama.cpp's EOG set — EOS, EOT, EOM, the FIM
    /// pad/repo/file-separator tokens, and every token whose text is one of `<|im_end|>`,
    /// `<|endoftext|>`, `<|eot_id|>`, `<end_of_turn>`, … (for SmolLM2: 0, 2 and 4 `<reponame>`).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, sorted.
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.eog
    }

    /// `tokenizer.ggml.model`: "gpt2" or "llama".
    pub fn model_name(&self) -> &str {
        &self.model
    }

    /// `tokenizer.ggml.pre`, if the GGUF names one.
    pub fn pre_name(&self) -> Option<&str> {
        self.pre.as_deref()
    }
}

/// The byte-level BPE model: the GGUF's merges and the pre-tokenizer's regexes on HF `tokenizers`.
fn bpe_model(md: &mut Metadata, vocab: Vocab, pre: &PreConfig) -> Result<Kind> {
    let raw_merges = md
        .take_strings("tokenizer.ggml.merges")?
        .ok_or_else(|| Error::Tokenizer("tokenizer.ggml.merges is missing (required for gpt2 BPE)".into()))?;
    let mut merges = Vec::with_capacity(raw_merges.len());
    let mut joined = String::new();
    for (i, m) in raw_merges.into_iter().enumerate() {
        // llama.cpp splits at the first space after the first byte.
        let first = m.chars().next().map_or(0, char::len_utf8);
        let (a, b) = match m[first..].find(' ') {
            Some(p) => (&m[..first + p], &m[first + p + 1..]),
            None => ("", ""),
        };
        if a.is_empty() || b.is_empty() {
            return Err(Error::Tokenizer(format!(
                "tokenizer.ggml.merges[{i}] = {m:?} is not of the form \"left right\""
            )));
        }
        joined.clear();
        joined.push_str(a);
        joined.push_str(b);
        for part in [a, b, joined.as_str()] {
            if !vocab.contains_key(part) {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.merges[{i}] = {m:?} uses {part:?}, which is not in the vocabulary"
                )));
            }
        }
        merges.push((a.to_string(), b.to_string()));
    }

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(|e| Error::Tokenizer(format!("building BPE model: {e}")))?;
    let mut hf = pre::HfBpe::new(bpe);
    hf.with_pre_tokenizer(Some(pre.build()?));
    Ok(Kind::Bpe { hf: Box::new(hf), bytes: Box::new(ByteDecoder::new()) })
}

/// `tokenizer.ggml.scores`, one per piece, moved out of `md`; `what` names the vocabulary
/// kind in the error when they are missing.
fn take_scores(md: &mut Metadata, n: usize, what: &str) -> Result<Vec<f32>> {
    let scores = md
        .get_array_of("tokenizer.ggml.scores", "number", Value::as_f64)?
        .ok_or_else(|| Error::Tokenizer(format!("tokenizer.ggml.scores is missing (a {what} vocabulary needs a score per piece)")))?;
    if scores.len() != n {
        return Err(Error::Tokenizer(format!("tokenizer.ggml.scores has {} entries but tokenizer.ggml.tokens has {n}", scores.len())));
    }
    md.take("tokenizer.ggml.scores");
    Ok(scores.into_iter().map(|s| s as f32).collect())
}

/// The SentencePiece model: every piece with its score.
fn spm_model(md: &mut Metadata, vocab: Vocab, n: usize) -> Result<Kind> {
    let scores = take_scores(md, n, "SentencePiece")?;
    let add_space_prefix = md.get_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    Ok(Kind::Spm(Box::new(Spm::new(vocab, scores, add_space_prefix)?)))
}

/// The SentencePiece Unigram model: every piece with its score, the normalization rules and
/// whitespace switches.
fn ugm_model(md: &mut Metadata, tokens: &[String], types: &[TokenType], unk: Option<u32>) -> Result<Kind> {
    let scores = take_scores(md, tokens.len(), "Unigram")?;
    let key = "tokenizer.ggml.precompiled_charsmap";
    let charsmap = md.get_array_of(key, "byte", |v| v.as_i64().filter(|b| (-128..256).contains(b)).map(|b| b as u8))?;
    md.take(key);
    let add_space_prefix = md.get_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(false);
    let remove_extra_whitespaces = md.get_bool("tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(false);
    let ugm = Ugm::new(tokens, types, scores, unk, charsmap.as_deref(), add_space_prefix, remove_extra_whitespaces)?;
    Ok(Kind::Ugm(Box::new(ugm)))
}

impl AsRef<Tokenizer> for Tokenizer {
    fn as_ref(&self) -> &Tokenizer {
        self
    }
}

#[cfg(test)]
mod tests;
