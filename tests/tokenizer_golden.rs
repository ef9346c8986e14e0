//! The tokenizers against llama.cpp's golden ids: SmolLM2-135M-Instruct and Qwen2.5-Coder
//! (byte-level BPE) and Gemma 3 (SentencePiece), from `../shared/golden/<model>/tokens.json`,
//! plus malformed-metadata cases.
//!
//! Needs the model files (`./build.sh model all`); `HEARTH_MODEL` overrides the default
//! model's path and `HEARTH_GOLDEN` the golden directory.

mod common;

use common::{golden_dir, model_path, RealModel, GEMMA, QWEN};
use std::sync::OnceLock;
use std::time::Instant;

use hearth::gguf::{GgufEvent, GgufReader, Metadata};
use hearth::tokenizer::{StreamDecoder, TokenType, Tokenizer};

fn metadata() -> &'static Metadata {
    static MD: OnceLock<Metadata> = OnceLock::new();
    MD.get_or_init(|| {
        let path = model_path();
        hearth::gguf::read_header_file(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .metadata
    })
}

fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let t0 = Instant::now();
        let tok = Tokenizer::from_metadata(metadata()).expect("building the tokenizer");
        eprintln!("tokenizer built in {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
        tok
    })
}

fn golden() -> serde_json::Value {
    golden_tokens("smollm2-135m-instruct-q4_1")
}

fn golden_tokens(dir: &str) -> serde_json::Value {
    let path = golden_dir().join(dir).join("tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e} (set HEARTH_GOLDEN to the golden directory)", path.display())
    });
    serde_json::from_str(&text).expect("tokens.json is valid JSON")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("id list").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

#[test]
fn golden_cases_match_llama_cpp() {
    let g = golden();
    assert_eq!(g["cases"].as_array().unwrap().len(), 14);
    check_golden_cases(tokenizer(), &g);
}

/// The tokenizer of one of the real models build.sh fetches (the header only is read).
fn real_tokenizer(m: &RealModel) -> Tokenizer {
    let header = hearth::gguf::read_header_file(&m.path()).expect("reading the header");
    Tokenizer::from_metadata(&header.metadata).expect("building the tokenizer")
}

#[test]
fn qwen2_golden_cases_match_llama_cpp() {
    let tok = real_tokenizer(&QWEN);
    assert_eq!((tok.model_name(), tok.pre_name()), ("gpt2", Some("qwen2")));
    check_golden_cases(&tok, &golden_tokens(QWEN.golden));
}

#[test]
fn gemma3_sentencepiece_golden_cases_match_llama_cpp() {
    let tok = real_tokenizer(&GEMMA);
    assert_eq!(tok.model_name(), "llama");
    check_golden_cases(&tok, &golden_tokens(GEMMA.golden));
    // Byte fallback both ways: 🦙 has no piece of its own.
    let ids = tok.encode("🦙", false).unwrap();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(ids.iter().all(|&id| tok.token_type(id) == Some(TokenType::Byte)));
    assert_eq!(tok.decode(&ids, false).unwrap(), "🦙");
    assert!(tok.is_end_of_generation(1) && tok.is_end_of_generation(106), "<eos> and <end_of_turn> end generation");
}

/// Every case of a golden tokens file: ids in both special-token modes and with BOS, pieces,
/// detokenization, and streaming.
fn check_golden_cases(tok: &Tokenizer, g: &serde_json::Value) {
    assert_eq!(tok.vocab_size() as u64, g["n_vocab"].as_u64().unwrap());
    assert_eq!(tok.bos_id().map(u64::from), g["bos_id"].as_u64());
    assert_eq!(tok.eos_id().map(u64::from), g["eos_id"].as_u64());
    assert_eq!(tok.add_bos(), g["add_bos_token"].as_bool().unwrap_or(false));

    let cases = g["cases"].as_array().unwrap();
    let n = cases.len();
    let mut failures = Vec::new();
    let (mut ok_plain, mut ok_special, mut ok_bos, mut ok_detok, mut ok_pieces) = (0, 0, 0, 0, 0);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let text = c["text"].as_str().unwrap();
        let want = ids(&c["ids"]);
        let want_sp = ids(&c["ids_parse_special"]);
        let want_bos = ids(&c["ids_add_bos_true"]);

        let got = tok.encode(text, false).unwrap();
        if got == want { ok_plain += 1 } else { failures.push(format!("{name}: parse_special=false {got:?} != {want:?}")) }
        let got_sp = tok.encode(text, true).unwrap();
        if got_sp == want_sp { ok_special += 1 } else { failures.push(format!("{name}: parse_special=true {got_sp:?} != {want_sp:?}")) }
        let mut got_bos = if tok.add_bos() { vec![tok.bos_id().unwrap()] } else { vec![] };
        got_bos.extend(tok.encode(text, false).unwrap());
        if got_bos == want_bos { ok_bos += 1 } else { failures.push(format!("{name}: add_bos {got_bos:?} != {want_bos:?}")) }

        // `detokenized` is llama-cpp-python's detokenize(ids, special=True): the concatenated
        // token_to_piece(id, special=true) of the parse_special=false ids.
        let detok = tok.decode(&want, true).unwrap();
        if detok == c["detokenized"].as_str().unwrap() { ok_detok += 1 } else { failures.push(format!("{name}: detokenized {detok:?}")) }
        assert_eq!(c["roundtrip_ok"].as_bool(), Some(detok == text), "{name}: round trip flag");
        // Rendering the special ids gives the text back too; without rendering they vanish.
        assert_eq!(tok.decode(&want_sp, true).unwrap(), text, "{name}: decode(ids_parse_special, true)");

        let pieces: Vec<&str> = c["pieces"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        let got_pieces: Vec<&str> = want.iter().map(|&id| tok.token_str(id).unwrap()).collect();
        if got_pieces == pieces { ok_pieces += 1 } else { failures.push(format!("{name}: pieces {got_pieces:?}")) }

        // Streaming gives the same text as one-shot decoding.
        let mut s = StreamDecoder::new(tok);
        let mut streamed = String::new();
        for &id in &want_sp {
            streamed.push_str(&s.push(id).unwrap());
        }
        streamed.push_str(&s.finish());
        assert_eq!(streamed, tok.decode(&want_sp, false).unwrap(), "{name}: streamed");
    }
    eprintln!(
        "golden cases passing: parse_special=false {ok_plain}/{n}, parse_special=true {ok_special}/{n}, \
         add_bos {ok_bos}/{n}, detokenized {ok_detok}/{n}, pieces {ok_pieces}/{n}"
    );
    assert!(failures.is_empty(), "golden mismatches:\n{}", failures.join("\n"));
}

#[test]
fn special_tokens_and_end_of_generation() {
    let tok = tokenizer();
    assert_eq!(tok.token_str(1), Some("<|im_start|>"));
    assert_eq!(tok.token_str(2), Some("<|im_end|>"));
    assert_eq!(tok.token_type(1), Some(TokenType::Control));
    assert_eq!(tok.token_type(100), Some(TokenType::Normal));
    // llama.cpp's EOG set for this vocabulary: <|endoftext|>, <|im_end|> and <reponame> (its
    // FIM "repo" token, detected by text).
    assert_eq!(tok.end_of_generation_ids(), &[0, 2, 4]);
    assert!(tok.is_end_of_generation(2) && tok.is_end_of_generation(0));
    assert!(!tok.is_end_of_generation(1) && !tok.is_end_of_generation(198));
    assert_eq!(tok.token_bytes(216), Some(b" ".to_vec()));
    assert_eq!(tok.token_bytes(198), Some(b"\n".to_vec()));
    assert_eq!(tok.token_bytes(2), Some(b"<|im_end|>".to_vec()));
    assert_eq!(tok.token_bytes(49152), None);
    assert_eq!(tok.token_str(49152), None);
    assert!(tok.decode(&[1, 49152], true).is_err());
    assert_eq!(tok.decode(&[1, 4093, 198, 26843, 2], false).unwrap(), "user\nHi");
}

#[test]
fn streaming_split_characters() {
    let tok = tokenizer();
    // 🦙 = ids 15107 ("Ġð\u{9f}"), 116, 243 in the golden emoji case: nothing until the last byte.
    let mut s = StreamDecoder::new(tok);
    assert_eq!(s.push(15107).unwrap(), " ");
    assert_eq!(s.push(116).unwrap(), "");
    assert_eq!(s.push(243).unwrap(), "🦙");
    assert!(s.push(u32::MAX).is_err());
    assert_eq!(s.finish(), "");
}

#[test]
fn long_and_odd_inputs() {
    let tok = tokenizer();
    // Control tokens glued to text, repeated, and half-written.
    let ids = tok.encode("<|im_start|><|im_start|>x<|im_end", true).unwrap();
    assert_eq!(&ids[..2], &[1, 1]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "<|im_start|><|im_start|>x<|im_end");
    // A long text round-trips.
    let text = "Hello, wörld! 12345 — 你好 🦙\n\t".repeat(2000);
    let t0 = Instant::now();
    let ids = tok.encode(&text, false).unwrap();
    eprintln!("encoded {} bytes into {} tokens in {:.1} ms", text.len(), ids.len(), t0.elapsed().as_secs_f64() * 1e3);
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
}

// ---- malformed metadata, written as GGUF bytes and read back with the crate's reader ----

enum V {
    Str(&'static str),
    U32(u32),
    Bool(bool),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
}

fn gguf_bytes(kv: &[(&str, V)]) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, x: &str) {
        out.extend_from_slice(&(x.len() as u64).to_le_bytes());
        out.extend_from_slice(x.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // one tiny tensor
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        s(&mut out, k);
        match v {
            V::Str(x) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                s(&mut out, x);
            }
            V::U32(x) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&x.to_le_bytes());
            }
            V::Bool(x) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(*x as u8);
            }
            V::Strs(xs) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(xs.len() as u64).to_le_bytes());
                for x in xs {
                    s(&mut out, x);
                }
            }
            V::I32s(xs) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&5u32.to_le_bytes());
                out.extend_from_slice(&(xs.len() as u64).to_le_bytes());
                for x in xs {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            V::F32s(xs) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&6u32.to_le_bytes());
                out.extend_from_slice(&(xs.len() as u64).to_le_bytes());
                for x in xs {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    // One F32 tensor of one element at offset 0, then the data section at the next multiple
    // of the alignment (32).
    s(&mut out, "t");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.resize(out.len().next_multiple_of(32), 0);
    out.extend_from_slice(&1.0f32.to_le_bytes());
    out
}

fn parse(bytes: &[u8]) -> Metadata {
    let mut r = GgufReader::new();
    r.push(bytes).expect("hand-written GGUF parses");
    r.finish().expect("hand-written GGUF is complete");
    while let Some(ev) = r.next_event() {
        if let GgufEvent::Header(h) = ev {
            return h.metadata;
        }
    }
    panic!("no header event");
}

fn strs(v: &[&str]) -> V {
    V::Strs(v.iter().map(|s| s.to_string()).collect())
}

/// A valid little vocabulary; each case below breaks one thing.
fn good() -> Vec<(&'static str, V)> {
    vec![
        ("tokenizer.ggml.model", V::Str("gpt2")),
        ("tokenizer.ggml.pre", V::Str("smollm")),
        ("tokenizer.ggml.tokens", strs(&["<|im_end|>", "a", "b", "ab", "Ġ"])),
        ("tokenizer.ggml.token_type", V::I32s(vec![3, 1, 1, 1, 1])),
        ("tokenizer.ggml.merges", strs(&["a b"])),
        ("tokenizer.ggml.eos_token_id", V::U32(0)),
        ("tokenizer.ggml.add_bos_token", V::Bool(false)),
    ]
}

fn replaced(key: &'static str, v: Option<V>) -> Vec<(&'static str, V)> {
    let mut kv: Vec<_> = good().into_iter().filter(|(k, _)| *k != key).collect();
    if let Some(v) = v {
        kv.push((key, v));
    }
    kv
}

#[test]
fn hand_built_metadata() {
    let tok = Tokenizer::from_metadata(&parse(&gguf_bytes(&good()))).unwrap();
    assert_eq!(tok.encode("ab a", false).unwrap(), vec![3, 4, 1]);
    assert_eq!(tok.encode("ab<|im_end|>", true).unwrap(), vec![3, 0]);
    assert!(tok.is_end_of_generation(0));

    let cases: Vec<(Vec<(&'static str, V)>, &str)> = vec![
        (replaced("tokenizer.ggml.model", None), "tokenizer.ggml.model"),
        (replaced("tokenizer.ggml.model", Some(V::Str("rwkv"))), "\"rwkv\""),
        (replaced("tokenizer.ggml.model", Some(V::Str("bert"))), "[CLS] and [SEP]"),
        (replaced("tokenizer.ggml.pre", Some(V::Str("mystery"))), "mystery"),
        (replaced("tokenizer.ggml.tokens", None), "tokenizer.ggml.tokens"),
        (replaced("tokenizer.ggml.tokens", Some(V::U32(5))), "tokenizer.ggml.tokens"),
        (replaced("tokenizer.ggml.token_type", Some(V::I32s(vec![1, 1]))), "token_type has 2 entries"),
        (replaced("tokenizer.ggml.merges", None), "merges"),
        (replaced("tokenizer.ggml.merges", Some(strs(&["ab"]))), "not of the form"),
        (replaced("tokenizer.ggml.merges", Some(strs(&["a c"]))), "not in the vocabulary"),
        (replaced("tokenizer.ggml.eos_token_id", Some(V::U32(5))), "out of range"),
        (replaced("tokenizer.ggml.add_bos_token", Some(V::U32(1))), "add_bos_token"),
        (replaced("tokenizer.ggml.tokens", Some(strs(&["<|im_end|>", "a", "b", "ab", "a"]))), "twice"),
    ];
    for (kv, needle) in cases {
        match Tokenizer::from_metadata(&parse(&gguf_bytes(&kv))) {
            Ok(_) => panic!("expected an error mentioning {needle:?}"),
            Err(e) => assert!(e.to_string().contains(needle), "error {e} does not mention {needle:?}"),
        }
    }
}

/// A little SentencePiece vocabulary: `<unk>`, `<s>`, `</s>`, byte tokens for 'a' and 0xC3,
/// pieces with scores, and a user-defined token.
fn good_spm() -> Vec<(&'static str, V)> {
    vec![
        ("tokenizer.ggml.model", V::Str("llama")),
        ("tokenizer.ggml.tokens", strs(&["<unk>", "<s>", "</s>", "<0x61>", "<0xC3>", "\u{2581}", "a", "b", "ab", "\u{2581}ab", "<hr>"])),
        ("tokenizer.ggml.token_type", V::I32s(vec![2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 4])),
        ("tokenizer.ggml.scores", V::F32s(vec![0.0, 0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -1.5, -0.5, 0.0])),
    ]
}

fn replaced_spm(key: &'static str, v: Option<V>) -> Vec<(&'static str, V)> {
    let mut kv: Vec<_> = good_spm().into_iter().filter(|(k, _)| *k != key).collect();
    if let Some(v) = v {
        kv.push((key, v));
    }
    kv
}

#[test]
fn hand_built_sentencepiece() {
    let tok = Tokenizer::from_metadata(&parse(&gguf_bytes(&good_spm()))).unwrap();
    // llama.cpp's defaults: BOS 1, EOS 2, BOS added, a space before the text.
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.add_bos()), (Some(1), Some(2), true));
    // "▁ab" (score −0.5) wins over "ab" (−1.5); a lone "b" stays "b"; "é" falls back to bytes
    // of which only 0xC3 exists, so its second byte has no token.
    assert_eq!(tok.encode("ab b", false).unwrap(), vec![9, 5, 7]);
    assert_eq!(tok.decode(&[1, 9, 5, 7], false).unwrap(), " ab b");
    // A user-defined token splits the text; the text after it gets the space prefix again.
    assert_eq!(tok.encode("ab<hr>ab", false).unwrap(), vec![9, 10, 9]);
    assert_eq!(tok.decode(&[3, 4], false).unwrap().as_bytes(), b"a\xEF\xBF\xBD");
    assert!(tok.encode("\u{e9}", false).unwrap_err().to_string().contains("0xA9"));
    let mut kv = good_spm();
    kv.push(("tokenizer.ggml.add_space_prefix", V::Bool(false)));
    let no_prefix = Tokenizer::from_metadata(&parse(&gguf_bytes(&kv))).unwrap();
    assert_eq!(no_prefix.encode("ab", false).unwrap(), vec![8]);

    let cases: Vec<(Vec<(&'static str, V)>, &str)> = vec![
        (replaced_spm("tokenizer.ggml.scores", None), "tokenizer.ggml.scores is missing"),
        (replaced_spm("tokenizer.ggml.scores", Some(V::F32s(vec![0.0; 3]))), "scores has 3 entries"),
        (replaced_spm("tokenizer.ggml.scores", Some(V::F32s(vec![f32::NAN; 11]))), "not a finite number"),
        (replaced_spm("tokenizer.ggml.scores", Some(strs(&["x"; 11]))), "tokenizer.ggml.scores"),
    ];
    for (kv, needle) in cases {
        match Tokenizer::from_metadata(&parse(&gguf_bytes(&kv))) {
            Ok(_) => panic!("expected an error mentioning {needle:?}"),
            Err(e) => assert!(e.to_string().contains(needle), "error {e} does not mention {needle:?}"),
        }
    }
}

/// Every `tokenizer.ggml.pre` value accepted against llama.cpp's own ids for the same
/// vocabulary (`tests/fixtures/pre_tokenizers.json`, made by `tools/golden_pre.py`): texts that
/// tell the pre-tokenizers apart (digit runs, contractions in capitals, whitespace runs, other
/// scripts, punctuation).
#[test]
fn every_pre_tokenizer_matches_llama_cpp() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pre_tokenizers.json");
    let gold: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let texts: Vec<&str> = gold["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let mut failures = Vec::new();
    let mut distinct = std::collections::HashSet::new();
    for (pre, cases) in gold["ids"].as_object().unwrap() {
        let mut md = metadata().clone();
        md.set_str("tokenizer.ggml.pre", pre);
        let tok = Tokenizer::from_metadata(&md).unwrap_or_else(|e| panic!("{pre}: {e}"));
        for (text, want) in texts.iter().zip(cases.as_array().unwrap()) {
            let got = tok.encode(text, false).unwrap();
            distinct.insert(got.clone());
            if got != ids(want) {
                failures.push(format!("{pre} on {text:?}: {got:?} != llama.cpp's {:?}", ids(want)));
            }
        }
    }
    eprintln!("{} pre-tokenizers, {} distinct tokenizations of {} texts", gold["ids"].as_object().unwrap().len(), distinct.len(), texts.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
