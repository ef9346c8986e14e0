//! Pre-tokenizers for `tokenizer.ggml.pre`, the way llama.cpp (`llm_tokenizer_bpe`) defines them:
//! a list of regexes applied one after the other, each splitting the pieces of the previous one
//! into matches and the text between matches (HF `Split` with `Isolated`), then the byte-level
//! mapping.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{Decoder, Encoding, NormalizedString, Normalizer, PostProcessor, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior};

use crate::{Error, Result};

/// GPT-2's pattern as llama.cpp writes it. llama.cpp leaves out GPT-2's final `|\s+`; whitespace
/// it would match ends up as a piece of its own anyway, so both split identically.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What a `tokenizer.ggml.pre` value implies besides its regexes.
#[derive(Clone, Debug)]
pub(crate) struct PreConfig {
    /// Regexes, applied in order. An empty list with `gpt2_builtin` uses HF's ByteLevel regex.
    regexes: &'static [&'static str],
    /// Use HF ByteLevel's own GPT-2 regex (same pattern as [`GPT2`]) instead of `regexes`.
    gpt2_builtin: bool,
    /// A word that is a whole vocabulary entry becomes that token without merging (llama3).
    pub ignore_merges: bool,
    /// llama.cpp's default for `add_bos` when the GGUF does not say.
    pub add_bos_default: bool,
    /// llama.cpp drops the BOS id for this pre-tokenizer (chatglm).
    pub no_bos: bool,
}

impl PreConfig {
    /// The configuration for a `tokenizer.ggml.pre` value; `None` (key absent) is llama.cpp's
    /// "default". Values llama.cpp knows but this build does not implement are an error, as are
    /// unknown values (llama.cpp falls back to "default" for those with a warning, which
    /// silently tokenizes differently from the model's own tokenizer).
    pub(crate) fn for_pre(pre: Option<&str>) -> Result<Self> {
        let base = PreConfig {
            regexes: &[],
            gpt2_builtin: false,
            ignore_merges: false,
            add_bos_default: false,
            no_bos: false,
        };
        let Some(pre) = pre else {
            return Ok(PreConfig { regexes: DEFAULT, ..base });
        };
        const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
        Ok(match pre {
            "default" => PreConfig { regexes: DEFAULT, ..base },
            // llama.cpp's name is "gpt-2"; "gpt2" is accepted as an alias.
            "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
            | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "exaone4" | "trillion"
            | "granite-docling" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => {
                PreConfig { gpt2_builtin: true, ..base }
            }
            // Digits one by one, then GPT-2.
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
                PreConfig { regexes: &[r"\p{N}", GPT2], ..base }
            }
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" => {
                PreConfig { regexes: &[LLAMA3], ignore_merges: true, add_bos_default: true, ..base }
            }
            "dbrx" | "smaug-bpe" => PreConfig { regexes: &[LLAMA3], ..base },
            "chatglm-bpe" => PreConfig { regexes: &[LLAMA3], no_bos: true, ..base },
            "glm4" | "glm5" => PreConfig { regexes: &[LLAMA3], no_bos: true, ignore_merges: true, ..base },
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "megrez" | "stablelm2" | "hunyuan" | "solar-open" => {
                PreConfig { regexes: &[QWEN2], ..base }
            }
            // Words with their leading space; punctuation (of several scripts) split off.
            "bloom" | "gpt3-finnish" => PreConfig { regexes: &[r" ?[^(\s|.,!?…。，、।۔،)]+"], ..base },
            "falcon" => PreConfig {
                regexes: &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
                ..base
            },
            other => {
                return Err(Error::Unsupported(format!(
                    "tokenizer pre-tokenizer {other:?} (tokenizer.ggml.pre) is not implemented; supported: \
                     default, gpt-2, smollm/starcoder/refact/command-r, llama3/llama-bpe, qwen2, falcon, dbrx, glm4, bloom"
                )))
            }
        })
    }

    /// The HF pre-tokenizer: the regex splits, then the byte-level mapping.
    pub(crate) fn build(&self) -> Result<PreSteps> {
        if self.gpt2_builtin {
            return Ok(PreSteps { splits: Vec::new(), byte_level: ByteLevel::new(false, false, true) });
        }
        let mut splits = Vec::with_capacity(self.regexes.len());
        for re in self.regexes {
            let split = Split::new(SplitPattern::Regex((*re).to_string()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex {re:?}: {e}")))?;
            splits.push(split);
        }
        Ok(PreSteps { splits, byte_level: ByteLevel::new(false, false, false) })
    }
}

/// Byte-level BPE with only the stages these models use. HF's `Tokenizer` holds any model,
/// normalizer and pre-tokenizer it knows, so all of them (Unicode normalization tables, Unigram,
/// WordPiece) would come into the wasm module.
pub(crate) type HfBpe = tokenizers::TokenizerImpl<tokenizers::models::bpe::BPE, Unused, PreSteps, Unused, Unused>;

/// The regex splits, in order, then the byte-level mapping.
#[derive(Clone, Debug)]
pub(crate) struct PreSteps {
    splits: Vec<Split>,
    byte_level: ByteLevel,
}

impl PreTokenizer for PreSteps {
    fn pre_tokenize(&self, pieces: &mut PreTokenizedString) -> tokenizers::Result<()> {
        for split in &self.splits {
            split.pre_tokenize(pieces)?;
        }
        self.byte_level.pre_tokenize(pieces)
    }
}

/// A stage these tokenizers do not have (never set).
#[derive(Clone, Debug)]
pub(crate) struct Unused;

impl Normalizer for Unused {
    fn normalize(&self, _: &mut NormalizedString) -> tokenizers::Result<()> {
        Ok(())
    }
}

impl PostProcessor for Unused {
    fn added_tokens(&self, _: bool) -> usize {
        0
    }

    fn process_encodings(&self, encodings: Vec<Encoding>, _: bool) -> tokenizers::Result<Vec<Encoding>> {
        Ok(encodings)
    }
}

impl Decoder for Unused {
    fn decode_chain(&self, tokens: Vec<String>) -> tokenizers::Result<Vec<String>> {
        Ok(tokens)
    }
}
