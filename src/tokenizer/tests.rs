//! Unit tests on small hand-built vocabularies (the golden SmolLM2 checks live in
//! `tests/tokenizer_golden.rs`).

use super::*;
use crate::gguf::{Metadata, Value};

fn strs(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.to_string())).collect())
}

/// A tiny byte-level vocabulary: three control tokens, one user-defined token, single letters,
/// the space 'Ġ', and a few merges.
fn base() -> Vec<(&'static str, Value)> {
    let tokens = [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>", "a", "b", "c", "h", "i", "Ġ", "1", "2", "<", ">",
        "|", "_", "m", "s", "t", "r", "ab", "abc", "Ġh", "Ġhi", "ĠĠ",
    ];
    let mut types = vec![3i32, 3, 3, 4];
    types.resize(tokens.len(), 1);
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", strs(&tokens)),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.merges", strs(&["a b", "ab c", "Ġ h", "Ġh i", "Ġ Ġ"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ]
}

fn build(kv: Vec<(&'static str, Value)>) -> Result<Tokenizer> {
    let mut md = Metadata::default();
    for (k, v) in kv {
        md.insert(k.to_string(), v).unwrap();
    }
    Tokenizer::from_metadata(&md)
}

fn with(key: &'static str, v: Value) -> Vec<(&'static str, Value)> {
    let mut kv: Vec<_> = base().into_iter().filter(|(k, _)| *k != key).collect();
    kv.push((key, v));
    kv
}

fn without(key: &str) -> Vec<(&'static str, Value)> {
    base().into_iter().filter(|(k, _)| *k != key).collect()
}

fn err_text(r: Result<Tokenizer>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn tiny_vocab_encodes_and_decodes() {
    let t = build(base()).unwrap();
    assert_eq!(t.vocab_size(), 25);
    assert_eq!(t.encode("abc hi", false).unwrap(), vec![21, 23]);
    assert_eq!(t.encode("abc  hi", false).unwrap(), vec![21, 9, 23]);
    // Digits are split one by one (smollm).
    assert_eq!(t.encode("12", false).unwrap(), vec![10, 11]);
    assert_eq!(t.decode(&[21, 23], false).unwrap(), "abc hi");
    assert_eq!(t.encode("", true).unwrap(), Vec::<u32>::new());
}

#[test]
fn control_tokens_need_parse_special_user_defined_do_not() {
    let t = build(base()).unwrap();
    let plain = t.encode("<|im_start|>ab<tool>", false).unwrap();
    assert_eq!(plain, vec![12, 14, 8, 16, 15, 17, 18, 4, 19, 18, 14, 13, 20, 3]);
    assert_eq!(t.encode("<|im_start|>ab<tool>", true).unwrap(), vec![1, 20, 3]);
    // Rendering: control tokens only with render_special; user-defined always.
    assert_eq!(t.decode(&[1, 20, 3, 2], false).unwrap(), "ab<tool>");
    assert_eq!(t.decode(&[1, 20, 3, 2], true).unwrap(), "<|im_start|>ab<tool><|im_end|>");
    assert_eq!(t.token_bytes(1).unwrap(), b"<|im_start|>");
    assert_eq!(t.token_bytes(9).unwrap(), b" ");
    assert_eq!(t.token_bytes(25), None);
    assert_eq!(t.token_str(22), Some("Ġh"));
}

#[test]
fn end_of_generation_set() {
    let t = build(base()).unwrap();
    assert!(t.is_end_of_generation(0)); // <|endoftext|> by text
    assert!(t.is_end_of_generation(2)); // eos, <|im_end|>
    assert!(!t.is_end_of_generation(1));
    assert!(!t.is_end_of_generation(9999));
    assert_eq!(t.bos_id(), Some(1));
    assert_eq!(t.eos_id(), Some(2));
    assert!(!t.add_bos());
}

#[test]
fn decode_rejects_out_of_range_ids() {
    let t = build(base()).unwrap();
    assert!(t.decode(&[4, 25], false).is_err());
    assert!(t.decode(&[u32::MAX], true).is_err());
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    // "é" is bytes C3 A9 = byte-level chars 'Ã' (U+00C3) and '©' (U+00A9).
    let kv = with("tokenizer.ggml.tokens", strs(&["Ã", "©", "x", "ðŁ", "¦", "Ļ"]));
    let kv = kv.into_iter().filter(|(k, _)| !k.ends_with("token_type") && !k.ends_with("merges")).collect::<Vec<_>>();
    let mut kv = kv;
    kv.push(("tokenizer.ggml.merges", strs(&[])));
    kv.retain(|(k, _)| !k.ends_with("_token_id"));
    let t = build(kv).unwrap();
    let mut s = StreamDecoder::new(&t);
    assert_eq!(s.push(0).unwrap(), "");
    assert!(s.has_pending());
    assert_eq!(s.push(1).unwrap(), "é");
    assert_eq!(s.push(2).unwrap(), "x");
    // 🦙 = F0 9F A6 99 over three tokens.
    assert_eq!(s.push(3).unwrap(), "");
    assert_eq!(s.push(4).unwrap(), "");
    assert_eq!(s.push(5).unwrap(), "🦙");
    // An incomplete sequence followed by a complete character: U+FFFD, then the character.
    assert_eq!(s.push(0).unwrap(), "");
    assert_eq!(s.push(2).unwrap(), "\u{FFFD}x");
    // finish() flushes an incomplete tail as U+FFFD.
    assert_eq!(s.push(3).unwrap(), "");
    assert!(s.push(99).is_err());
    assert_eq!(s.finish(), "\u{FFFD}");
    assert_eq!(s.finish(), "");
}

#[test]
fn bad_metadata_is_an_error_not_a_panic() {
    let cases: Vec<(Vec<(&'static str, Value)>, &str)> = vec![
        (without("tokenizer.ggml.model"), "tokenizer.ggml.model"),
        (with("tokenizer.ggml.model", Value::String("rwkv".into())), "\"rwkv\""),
        // WordPiece needs [CLS] and [SEP] (this vocabulary has 25 tokens: no defaults apply).
        (with("tokenizer.ggml.model", Value::String("bert".into())), "[CLS] and [SEP]"),
        (with("tokenizer.ggml.model", Value::String("llama".into())), "tokenizer.ggml.scores is missing"),
        (with("tokenizer.ggml.model", Value::U32(7)), "tokenizer.ggml.model"),
        (with("tokenizer.ggml.pre", Value::String("no-such-pre".into())), "no-such-pre"),
        (without("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens is missing"),
        (with("tokenizer.ggml.tokens", strs(&[])), "empty"),
        (with("tokenizer.ggml.tokens", Value::Array(vec![Value::U32(1)])), "tokenizer.ggml.tokens"),
        (with("tokenizer.ggml.tokens", Value::String("abc".into())), "tokenizer.ggml.tokens"),
        (with("tokenizer.ggml.token_type", Value::Array(vec![Value::I32(1); 3])), "3 entries"),
        (
            with("tokenizer.ggml.token_type", Value::Array(vec![Value::String("x".into()); 25])),
            "token_type",
        ),
        (without("tokenizer.ggml.merges"), "merges is missing"),
        (with("tokenizer.ggml.merges", strs(&["ab"])), "not of the form"),
        (with("tokenizer.ggml.merges", strs(&["a "])), "not of the form"),
        (with("tokenizer.ggml.merges", strs(&["a z"])), "\"z\""),
        (with("tokenizer.ggml.merges", strs(&["b a"])), "\"ba\""),
        (with("tokenizer.ggml.bos_token_id", Value::U32(25)), "out of range"),
        (with("tokenizer.ggml.eos_token_id", Value::U64(u64::MAX)), "out of range"),
        (with("tokenizer.ggml.padding_token_id", Value::String("2".into())), "padding_token_id"),
        (with("tokenizer.ggml.add_bos_token", Value::U8(1)), "add_bos_token"),
        (
            with("tokenizer.ggml.tokens", strs(&["a", "b", "a"]))
                .into_iter()
                .filter(|(k, _)| !k.ends_with("token_type") && !k.ends_with("merges") && !k.ends_with("_id"))
                .chain([("tokenizer.ggml.merges", strs(&[]))])
                .collect(),
            "twice",
        ),
    ];
    for (kv, needle) in cases {
        let msg = err_text(build(kv));
        assert!(msg.contains(needle), "error {msg:?} does not mention {needle:?}");
    }
}

#[test]
fn add_bos_without_bos_is_an_error() {
    let kv: Vec<_> = with("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .into_iter()
        .filter(|(k, _)| *k != "tokenizer.ggml.bos_token_id")
        .collect();
    assert!(err_text(build(kv)).contains("BOS"));
}

#[test]
fn empty_token_strings_are_renamed_like_llama_cpp() {
    let kv = with("tokenizer.ggml.tokens", strs(&["a", "", "b", ""]))
        .into_iter()
        .filter(|(k, _)| !k.ends_with("token_type") && !k.ends_with("merges") && !k.ends_with("_id"))
        .chain([("tokenizer.ggml.merges", strs(&[]))])
        .collect();
    let t = build(kv).unwrap();
    assert_eq!(t.token_str(1), Some("[EMPTY_1]"));
    assert_eq!(t.token_str(3), Some("[EMPTY_3]"));
}

#[test]
fn pre_tokenizer_alias_and_default() {
    // Each value's ids are checked against llama.cpp in tests/tokenizer_golden.rs; "gpt2" is
    // hearth's alias of llama.cpp's "gpt-2", and no `pre` key is llama.cpp's "default".
    let enc = |kv: Vec<(&'static str, Value)>| build(kv).unwrap().encode("abc hi 12345", false).unwrap();
    assert_eq!(enc(with("tokenizer.ggml.pre", Value::String("gpt2".into()))), enc(with("tokenizer.ggml.pre", Value::String("gpt-2".into()))));
    assert_eq!(enc(without("tokenizer.ggml.pre")), enc(with("tokenizer.ggml.pre", Value::String("default".into()))));
}
