//! The `hearth` command line as other tools call it: JSON contracts and one-line errors.

mod common;
#[path = "common/gguf_writer.rs"]
#[allow(dead_code)]
mod gguf_writer;

use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

fn hearth(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).stdin(Stdio::null()).output().expect("hearth runs")
}

fn run_ok(args: &[&str]) -> Value {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let out = hearth(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hearth {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Fails with exactly one line on stderr, starting with "error:", and no panic.
fn assert_clean_failure(args: &[&std::ffi::OsStr], expect: &str) {
    let out = hearth(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "hearth {args:?} should fail");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(lines[0].to_lowercase().contains(&expect.to_lowercase()), "{:?} should mention {expect:?}", lines[0]);
}

fn model() -> String {
    model_path().to_string_lossy().into_owned()
}

#[test]
fn inspect_reports_architecture_and_types() {
    let v = run_ok(&["inspect", &model(), "--json"]);
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["hparams"]["n_layer"], 30);
    assert_eq!(v["hparams"]["n_head_kv"], 3);
    assert_eq!(v["hparams"]["tied_output"], true);
    assert_eq!(v["tensor_types"], serde_json::json!({"F32": 61, "Q4_1": 210, "Q8_0": 1}));
}

#[test]
fn tokenize_matches_golden_ids() {
    let gold = golden_json("tokens.json");
    let case = gold["cases"].as_array().unwrap().iter().find(|c| c["text"].as_str().unwrap().contains("<|im_start|>")).expect("a case with markers");
    let text = case["text"].as_str().unwrap();
    let plain = run_ok(&["tokenize", &model(), "--text", text, "--json"]);
    assert_eq!(ids(&plain["ids"]), ids(&case["ids"]));
    let special = run_ok(&["tokenize", &model(), "--text", text, "--special", "--json"]);
    assert_eq!(ids(&special["ids"]), ids(&case["ids_parse_special"]));
}

#[test]
fn generate_greedy_chat_json() {
    let gold = golden_json("chat_greedy.json");
    let question = gold["messages"][0]["content"].as_str().unwrap();
    let v = run_ok(&["generate", &model(), "--chat", question, "--temperature", "0", "--max-tokens", "32", "--json"]);
    assert_eq!(ids(&v["prompt_ids"]), ids(&gold["prompt_ids"]));
    // The library's greedy reply: the native engine's ids (not an oracle check: the first step
    // is a float64 near-tie; golden_cpu.rs checks the steps against float64).
    let (m, mut session) = load_cpu(&model_path());
    let native = golden::greedy_generation(&mut session, &m);
    assert_eq!(ids(&v["ids"]), native.ids);
    assert_eq!(v["text"], native.text.as_str());
    assert_eq!(v["stop_reason"], "eos");
    assert!(v["prefill_tok_s"].as_f64().unwrap() > 0.0 && v["decode_tok_s"].as_f64().unwrap() > 0.0);
    // The same conversation as a messages file gives the same prompt.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.json");
    std::fs::write(&file, serde_json::to_string(&gold["messages"]).unwrap()).unwrap();
    let v2 = run_ok(&["generate", &model(), "--messages", file.to_str().unwrap(), "--max-tokens", "1", "--json"]);
    assert_eq!(v2["prompt_ids"], v["prompt_ids"]);
    assert_eq!(v2["stop_reason"], "length");
    // A stop string ends the reply before it; the text never contains any of it.
    let v3 = run_ok(&["generate", &model(), "--chat", question, "--temperature", "0", "--stop", "Paris", "--stop", "xyz", "--json"]);
    assert_eq!(v3["text"], "The capital of France is ");
    assert_eq!(v3["stop_reason"], "stop");
    // Reading the prompt 5 tokens per forward call changes nothing.
    let v4 = run_ok(&["generate", &model(), "--chat", question, "--temperature", "0", "--max-tokens", "32", "--prefill-chunk", "5", "--json"]);
    assert_eq!(v4["ids"], v["ids"]);
    let b = run_ok(&["generate", &model(), "--chat", question, "--beams", "3", "--max-tokens", "12", "--json"]);
    assert_eq!(b["text"], "The capital of France is Paris.");
    assert!(b["logprob"].as_f64().unwrap() < 0.0);
}

#[test]
fn context_shift_lets_generation_outgrow_the_context() {
    let args = ["generate", &model(), "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "40", "--ctx", "24", "--backend", "cpu", "--json"];
    let v = run_ok(&[&args[..], &["--context-shift", "4"]].concat());
    assert_eq!(v["ids"].as_array().unwrap().len(), 40);
    // Without it the reply ends with the context: 24 positions, the last token sampled from
    // the full context.
    let v = run_ok(&args);
    assert_eq!(v["stop_reason"], "length");
    assert_eq!(v["ids"].as_array().unwrap().len(), 24 - v["n_prompt"].as_u64().unwrap() as usize + 1);
    // A prompt longer than the context is refused before anything is generated.
    let long = "Once upon a time ".repeat(10);
    let args = ["generate", &model(), "--prompt", &long, "--max-tokens", "4", "--ctx", "24", "--backend", "cpu", "--json"];
    assert_clean_failure(&args.map(std::ffi::OsStr::new), "context_length_exceeded: ");
}

#[test]
fn later_turns_reuse_the_cache() {
    let v = run_ok(&["bench", &model(), "--turns", "3", "--gen-tokens", "8", "--backend", "cpu", "--json"]);
    let (prompt, reused) = (v["prompt_tokens"].as_u64().unwrap(), v["reused_tokens"].as_u64().unwrap());
    // Everything but the new user message and the assistant header is already cached.
    assert!(reused > 30 && prompt - reused < 25, "{v}");
    assert!(v["ttft_reuse_ms"].as_f64().unwrap() > 0.0 && v["ttft_fresh_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let args = ["generate", &model(), "--prompt", "Once upon a time", "--temperature", "1.0", "--seed", "7", "--max-tokens", "12", "--json"];
    let a = run_ok(&args);
    assert_eq!(a["ids"].as_array().unwrap().len(), 12);
    assert_eq!(run_ok(&args)["ids"], a["ids"]);
    // The whole processor chain is seeded too.
    let mut full = args.to_vec();
    full.extend(["--top-k", "40", "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.2", "--frequency-penalty", "0.5", "--presence-penalty", "-0.5"]);
    let b = run_ok(&full);
    assert_eq!(run_ok(&full)["ids"], b["ids"]);
}

#[test]
fn score_and_ppl_agree_with_float64() {
    let gold = golden_json("chat_greedy.json");
    let tf = &gold["teacher_forced"];
    let seq = ids(&tf["sequence"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.json");
    std::fs::write(&file, serde_json::to_string(&seq[..12]).unwrap()).unwrap();
    let v = run_ok(&["score", &model(), "--tokens", file.to_str().unwrap(), "--top-k", "3", "--json"]);
    let positions = v["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 12);
    for (p, pos) in positions.iter().enumerate() {
        let gold_pos = &tf["positions"][p];
        assert_eq!(pos["top"].as_array().unwrap().len(), 3);
        let lse = pos["logsumexp"].as_f64().unwrap();
        assert!((lse - gold_pos["f64_logsumexp"].as_f64().unwrap()).abs() < 0.01, "position {p}");
        if gold_pos["f64_margin"].as_f64().unwrap() > 0.1 {
            assert_eq!(pos["top"][0][0], gold_pos["f64_top10"][0][0], "position {p}");
        }
    }
    let ppl_gold = golden_json("ppl.json");
    let text = dir.path().join("text.txt");
    std::fs::write(&text, ppl_gold["text"].as_str().unwrap()).unwrap();
    let v = run_ok(&["ppl", &model(), "--file", text.to_str().unwrap(), "--json"]);
    assert_eq!(v["n_tokens"], ppl_gold["n_tokens"]);
    let (ppl, reference) = (v["ppl"].as_f64().unwrap(), ppl_gold["f64"]["ppl"].as_f64().unwrap());
    assert!((ppl - reference).abs() / reference < 0.005, "ppl {ppl} vs {reference}");
    // A context shorter than the text: sliding windows score every token once.
    let w = run_ok(&["ppl", &model(), "--file", text.to_str().unwrap(), "--ctx", "32", "--stride", "16", "--json"]);
    assert_eq!((w["window"].as_u64(), w["stride"].as_u64()), (Some(32), Some(16)));
    assert_eq!(w["n_scored"].as_u64().unwrap() + 1, w["n_tokens"].as_u64().unwrap());
    assert!(w["ppl"].as_f64().unwrap() > ppl, "less context, higher perplexity");
}

#[test]
fn json_schema_constrains_the_reply() {
    let schema = r#"{"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer", "minimum": 0}}, "required": ["city", "population"], "additionalProperties": false}"#;
    let v = run_ok(&["generate", &model(), "--chat", "Tell me about Paris.", "--json-schema", schema, "--temperature", "0", "--backend", "cpu", "--json"]);
    assert_eq!(v["stop_reason"], "eos", "{v}");
    let reply: Value = serde_json::from_str(v["text"].as_str().unwrap()).expect("the reply parses");
    assert!(reply["city"].is_string() && reply["population"].is_u64(), "{reply}");
    assert_eq!(reply.as_object().unwrap().len(), 2, "{reply}");
    assert!(v["grammar_ms_per_token"].as_f64().unwrap() > 0.0, "{v}");
}

#[test]
fn chat_answers_on_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["chat", &model(), "--temperature", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"What is the capital of France?\nAnd of Italy?\n/exit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Paris"), "{text}");
    assert!(text.lines().filter(|l| !l.trim().is_empty()).count() >= 2, "two replies expected: {text}");
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let os = |s: &std::path::Path| s.as_os_str().to_owned();
    let run = |args: &[&str], path: &std::path::Path, expect: &str| {
        let mut a: Vec<std::ffi::OsString> = args.iter().map(|s| s.into()).collect();
        a.insert(1, os(path));
        let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
        assert_clean_failure(&refs, expect);
    };
    run(&["inspect"], &p("missing.gguf"), "cannot open");
    run(&["generate", "--prompt", "hi"], &p("missing.gguf"), "cannot open");
    std::fs::write(p("text.gguf"), "this is not a model file at all").unwrap();
    run(&["inspect"], &p("text.gguf"), "not a GGUF file");
    run(&["generate", "--prompt", "hi"], &p("text.gguf"), "not a GGUF file");
    let tiny = std::fs::read(golden_model_dir().join("synthetic/tiny32_q4_1.gguf")).unwrap();
    std::fs::write(p("cut.gguf"), &tiny[..tiny.len() - 1000]).unwrap();
    run(&["generate", "--prompt", "hi"], &p("cut.gguf"), "past the end of the file");
    std::fs::write(p("cut-header.gguf"), &tiny[..1000]).unwrap();
    run(&["inspect"], &p("cut-header.gguf"), "ends early");
    // A K-quant tensor whose bytes the file does not hold.
    let mut kquant = gguf_writer::GgufFile::simple();
    kquant.tensors[0].ty = 12;
    kquant.tensors[0].dims = vec![256];
    std::fs::write(p("q4k.gguf"), kquant.bytes()).unwrap();
    run(&["inspect"], &p("q4k.gguf"), "past the end of the file");
    let mut iq2 = gguf_writer::GgufFile::simple();
    iq2.tensors[0].ty = 16;
    iq2.tensors[0].dims = vec![256];
    std::fs::write(p("iq2.gguf"), iq2.bytes()).unwrap();
    run(&["inspect"], &p("iq2.gguf"), "IQ2_XXS");
    let mut other = gguf_writer::GgufFile::simple();
    other.kvs[0].1 = gguf_writer::Val::Str("mamba".into());
    std::fs::write(p("mamba.gguf"), other.bytes()).unwrap();
    run(&["generate", "--prompt", "hi"], &p("mamba.gguf"), "architecture \"mamba\"");
    // Text that is not UTF-8.
    use std::os::unix::ffi::OsStringExt;
    let bad = std::ffi::OsString::from_vec(vec![b'h', 0xff, b'i']);
    let m = model_path();
    assert_clean_failure(&["tokenize".as_ref(), m.as_os_str(), "--text".as_ref(), bad.as_os_str()], "UTF-8");
    std::fs::write(p("bad.txt"), [0xffu8, 0xfe, 0x00]).unwrap();
    assert_clean_failure(&["ppl".as_ref(), m.as_os_str(), "--file".as_ref(), p("bad.txt").as_os_str()], "UTF-8");
    std::fs::write(p("ids.json"), "[1, 2, 99999999]").unwrap();
    assert_clean_failure(&["score".as_ref(), m.as_os_str(), "--tokens".as_ref(), p("ids.json").as_os_str()], "outside the vocabulary");
    assert_clean_failure(&["generate".as_ref(), m.as_os_str(), "--prompt".as_ref(), "hi".as_ref(), "--temperature=-1".as_ref()], "temperature");
    let gen = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        ["generate".into(), m.clone().into_os_string(), "--prompt".into(), "hi".into()].into_iter().chain(extra.iter().map(|s| s.into())).collect()
    };
    for (extra, expect) in [
        (&["--json-schema", "{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 1}"][..], "response_format"),
        (&["--json-schema", "{not json"][..], "not JSON"),
        (&["--json-schema", "/no/such/schema.json"][..], "--json-schema"),
        (&["--json-object", "--beams", "2"][..], "--beams"),
        (&["--prefill-chunk", "0"][..], "--prefill-chunk"),
    ] {
        let a = gen(extra);
        assert_clean_failure(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>(), expect);
    }
    let bench = ["bench", "--backend", "cpu", "--prompt-tokens", "2", "--gen-tokens", "1", "--profile"].map(std::ffi::OsStr::new);
    let args: Vec<&std::ffi::OsStr> = [bench[0], m.as_os_str()].into_iter().chain(bench[1..].iter().copied()).collect();
    assert_clean_failure(&args, "no kernel timers");
}

#[test]
fn generate_on_the_gpu_backend() {
    if gpu_context().is_none() {
        return;
    }
    let gold = golden_json("chat_greedy.json");
    let question = gold["messages"][0]["content"].as_str().unwrap();
    let v = run_ok(&["generate", &model(), "--chat", question, "--temperature", "0", "--backend", "gpu", "--json"]);
    assert!(v["backend"].as_str().unwrap().starts_with("gpu"), "{}", v["backend"]);
    assert_eq!(ids(&v["ids"]), ids(&gold["f64_greedy"]["ids"]));
    let b = run_ok(&["bench", &model(), "--backend", "gpu", "--prompt-tokens", "8", "--gen-tokens", "2", "--json", "--profile"]);
    assert!(b["decode_tok_s"].as_f64().unwrap() > 0.0 && b["weight_bytes_per_token"].as_u64().unwrap() > 90_000_000);
    let step = b["profile"]["decode_step"].as_array().unwrap();
    let timed: u64 = step.iter().map(|k| k["dispatches"].as_u64().unwrap()).sum();
    assert!(timed > 100 && step.iter().any(|k| k["kernel"] == "MatMul"), "{}", b["profile"]);
    assert_eq!(b["profile"]["prefill_tokens"], 8);
}

/// The encoder and encoder-decoder commands: `hearth embed --tokens` on BERT pooled as the file
/// says, `hearth score --encoder-tokens` on T5 against its float64 logits, `hearth generate`
/// on T5 encoding the prompt, and one-line refusals for the wrong command or a missing input.
#[test]
fn encoders_and_encoder_decoders_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-enc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, v: &Value| {
        let p = dir.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.to_string_lossy().into_owned()
    };
    let fixture = |path: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap() };

    // BERT with CLS pooling: the first token's state, normalised.
    let bert = "tests/fixtures/families/bert/bert-cls-f32.gguf";
    let fx = fixture("tests/fixtures/families/bert/bert-cls-f32.json");
    let ids = write("bert-ids.json", &fx["ids"]);
    let out = run_ok(&["embed", bert, "--tokens", &ids, "--json", "--backend", "cpu"]);
    assert_eq!(out["pooling"], "cls");
    let got = f64s(&out["data"][0]["embedding"]);
    let want = f64s(&fx["f64_embedding_cls_normalized"]);
    let max_abs = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(max_abs <= 1e-5, "CLS embedding max abs {max_abs:.2e}");
    let fail = |args: &[&str], expect: &str| {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        assert_clean_failure(&args, expect)
    };
    fail(&["generate", bert, "--prompt", "hi"], "an encoder (bert): it makes embeddings, not text");

    // T5: teacher-forced decoder logits after encoding.
    let t5 = "tests/fixtures/families/t5/t5-f32.gguf";
    let fx = fixture("tests/fixtures/families/t5/t5-f32.json");
    let (enc, dec) = (write("t5-enc.json", &fx["encoder_ids"]), write("t5-dec.json", &fx["decoder_ids"]));
    let out = run_ok(&["score", t5, "--tokens", &dec, "--encoder-tokens", &enc, "--top-k", "512", "--json", "--backend", "cpu"]);
    let positions = out["positions"].as_array().unwrap();
    let rows = fx["f64_logits"].as_array().unwrap();
    assert_eq!(positions.len(), rows.len());
    for (p, row) in positions.iter().zip(rows) {
        let want = f64s(row);
        let mut ours = vec![0.0; want.len()];
        for pair in p["top"].as_array().unwrap() {
            ours[pair[0].as_u64().unwrap() as usize] = pair[1].as_f64().unwrap();
        }
        let d = centered_rms(&ours, &want);
        assert!(d <= 1e-4, "T5 logits against float64: centered RMS {d:.2e}");
    }
    fail(&["score", t5, "--tokens", &dec], "give its input with --encoder-tokens");
    fail(&["score", &model(), "--tokens", &dec, "--encoder-tokens", &enc], "has no encoder");
    fail(&["generate", t5, "--chat", "hi"], "give it --prompt, not a chat");
    fail(&["ppl", t5, "--file", "README.md"], "perplexity with");
    fail(&["embed", t5, "--text", "hi"], "embeddings of an encoder-decoder");
    // A context shift needs RoPE positions: T5's buckets and GPT-2's table have none.
    fail(&["generate", t5, "--prompt", "hi", "--context-shift", "4"], "a context shift needs RoPE positions");
    let gpt2 = "tests/fixtures/families/gpt2/gpt2-f32.gguf";
    fail(&["generate", gpt2, "--prompt", "hi", "--context-shift", "4"], "a context shift needs RoPE positions");

    // generate: the prompt is the encoder's input (ending in </s>), the decoder starts at <pad>.
    let out = run_ok(&["generate", t5, "--prompt", "The house is wonderful.", "--max-tokens", "4", "--temperature", "0", "--json", "--backend", "cpu"]);
    assert_eq!(out["prompt_ids"], serde_json::json!([0]));
    assert_eq!(out["encoder_ids"].as_array().unwrap().last(), Some(&serde_json::json!(1)));
    assert_eq!(out["ids"].as_array().unwrap().len(), 4);
    std::fs::remove_dir_all(&dir).ok();
}
