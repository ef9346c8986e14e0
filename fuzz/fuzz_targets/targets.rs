// The fuzz targets' bodies: plain functions of the input bytes, used by the libFuzzer binaries
// in this folder and by the smoke run in tests/fuzz_smoke.rs. Each may return an error for bad
// input but must never panic, hang or allocate beyond what its input justifies.

use std::path::PathBuf;
use std::sync::OnceLock;

use hearth::chat::{ChatMessage, ChatTemplate};
use hearth::gguf::{GgufEvent, GgufReader};
use hearth::sampler::{Grammars, ResponseFormat};
use hearth::tokenizer::{StreamDecoder, Tokenizer, NO_SPECIAL};

fn tokenizer_of(file: &str) -> Tokenizer {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(file);
    let path = if path.exists() { path } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models").join(file) };
    let header = hearth::gguf::read_header_file(&path).unwrap_or_else(|e| panic!("{file}: {e} (./build.sh model all)"));
    Tokenizer::from_metadata(&header.metadata).expect("the model's tokenizer")
}

/// SmolLM2's byte-level BPE.
pub fn bpe() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| tokenizer_of("SmolLM2-135M-Instruct.Q4_1.gguf"))
}

/// Gemma 3's SentencePiece.
pub fn spm() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| tokenizer_of("gemma-3-270m-q4_k_m.gguf"))
}

/// Builds what the targets share (the tokenizers, the grammar compiler's vocabulary trie) before
/// the first input, so that its one-time cost is not taken for a slow input.
pub fn init() {
    let _ = (bpe(), spm(), grammars());
}

/// The GGUF reader fed arbitrary bytes in arbitrary chunk sizes (the first byte picks them),
/// and, when a header parses, the model built from it (config, plan, tokenizer, template).
pub fn gguf_reader(data: &[u8]) {
    let Some((&pattern, bytes)) = data.split_first() else { return };
    let mut reader = if pattern & 1 == 0 { GgufReader::new() } else { GgufReader::with_total_len(bytes.len() as u64) };
    if pattern & 2 != 0 {
        reader.deliver_in_pieces(64 + (pattern as usize >> 2) * 16);
    }
    // Chunks of 1, 2, 3, … bytes, as the pattern says.
    let step = 1 + (pattern as usize >> 3);
    for chunk in bytes.chunks(step) {
        if reader.push(chunk).is_err() {
            return;
        }
        while let Some(ev) = reader.next_event() {
            if let GgufEvent::Header(h) = ev {
                let _ = hearth::model::Model::from_header(h);
            }
        }
    }
    let _ = reader.finish();
}

fn exercise_tokenizer(tok: &Tokenizer, text: &str, raw: &[u8]) {
    for special in [false, true] {
        let ids = tok.encode(text, special).expect("any text encodes");
        tok.decode(&ids, true).expect("its ids decode");
        // (No round trip: like llama.cpp, the vocabularies drop some control characters.)
        let mut s = StreamDecoder::new(tok);
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(&s.push(id).expect("known ids stream"));
        }
        streamed.push_str(&s.finish());
        assert_eq!(streamed, tok.decode(&ids, false).expect("its ids decode"), "streaming decodes as a whole");
    }
    let ids = tok.encode_rendered(&tok.guard(text)).expect("guarded text encodes");
    // (The guard drops U+FDD0, its marker, from messages: a noncharacter.)
    let plain = tok.encode(&text.replace(NO_SPECIAL, ""), false).expect("any text encodes");
    assert_eq!(ids, plain, "a guarded message is plain text");
    // Arbitrary ids: out-of-range ones are errors.
    let ids: Vec<u32> = raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) % (tok.vocab_size() as u32 + 8)).collect();
    let _ = tok.decode(&ids, true);
}

/// Tokenizers on arbitrary text: encoding in both special-token modes, decoding (also of
/// arbitrary ids), streaming equal to decoding at once, guarded chat text equal to plain text;
/// for byte-level BPE and SentencePiece.
pub fn tokenizer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    exercise_tokenizer(bpe(), &text, data);
    exercise_tokenizer(spm(), &text, data);
}

/// Hostile chat templates and messages: the input is a template and messages separated by NUL
/// bytes. Compiling or rendering fails with an error within the fuel budget.
pub fn chat_template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or("");
    let messages: Vec<ChatMessage> =
        parts.enumerate().map(|(i, content)| ChatMessage::new(["system", "user", "assistant"][i % 3], content)).collect();
    if let Ok(template) = ChatTemplate::new(source, "<s>", "</s>") {
        template.set_time(Some(1_700_000_000));
        for add in [false, true] {
            let _ = template.render(&messages, add);
        }
    }
    // The built-in ChatML template renders any messages.
    ChatTemplate::chatml("<s>", "</s>").render(&messages, true).expect("ChatML renders any messages");
}

fn grammars() -> &'static Grammars {
    static G: OnceLock<Grammars> = OnceLock::new();
    G.get_or_init(|| Grammars::new(bpe(), bpe().vocab_size()).expect("grammars"))
}

/// Arbitrary `response_format` JSON (and arbitrary JSON as the schema inside one) through the
/// schema compiler, llguidance over SmolLM2's vocabulary.
pub fn json_schema(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(format) = ResponseFormat::from_json(&text) {
        let _ = grammars().constrain(&format);
    }
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        let wrapped = format!(r#"{{"type": "json_schema", "json_schema": {{"schema": {text}}}}}"#);
        if let Ok(format) = ResponseFormat::from_json(&wrapped) {
            let _ = grammars().constrain(&format);
        }
    }
}
