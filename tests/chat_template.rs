//! Chat templates: the SmolLM2 GGUF template against the golden prompt (rendered by jinja2 and
//! tokenized by llama.cpp), and hostile or broken templates failing cleanly.
//!
//! Needs the model file (`./build.sh model`); `HEARTH_MODEL` overrides its path and
//! `HEARTH_GOLDEN` the golden directory.

mod common;

use common::{golden_dir, model_path};
use std::time::{Duration, Instant};

use hearth::chat::{ChatMessage, ChatTemplate};
use hearth::tokenizer::Tokenizer;
use hearth::Error;

fn load() -> (hearth::gguf::Metadata, Tokenizer) {
    let path = model_path();
    let md = hearth::gguf::read_header_file(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())).metadata;
    let tok = Tokenizer::from_metadata(&md).expect("tokenizer");
    (md, tok)
}

fn template_err(r: hearth::Result<String>) -> String {
    match r {
        Err(Error::Template(msg)) => msg,
        Err(e) => panic!("expected Error::Template, got {e:?}"),
        Ok(s) => panic!("expected an error, rendered {s:?}"),
    }
}

fn user(text: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new("user", text)]
}

#[test]
fn golden_prompt_renders_and_tokenizes_exactly() {
    let (md, tok) = load();
    let path = golden_dir().join("smollm2-135m-instruct-q4_1/chat_greedy.json");
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
    )
    .unwrap();
    let messages: Vec<ChatMessage> = serde_json::from_value(g["messages"].clone()).unwrap();
    let want_text = g["prompt_text"].as_str().unwrap();
    let want_ids: Vec<u32> =
        g["prompt_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();

    let tmpl = ChatTemplate::from_metadata(&md, &tok).unwrap().expect("the GGUF has a chat template");
    assert_eq!(tmpl.bos_token(), "<|im_start|>");
    assert_eq!(tmpl.eos_token(), "<|im_end|>");
    let text = tmpl.render(&messages, true).unwrap();
    assert_eq!(text, want_text);
    let ids = tok.encode(&text, true).unwrap();
    assert_eq!(ids, want_ids);
    assert_eq!(ids.len(), g["n_prompt"].as_u64().unwrap() as usize);

    // Without the generation prompt the text stops after the user turn; with a system message
    // the default system prompt is left out.
    let no_gen = tmpl.render(&messages, false).unwrap();
    assert_eq!(format!("{no_gen}<|im_start|>assistant\n"), want_text);
    let sys = vec![ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi")];
    assert_eq!(
        tmpl.render(&sys, true).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(tmpl.render(&[], true).unwrap(), "<|im_start|>assistant\n");
}

#[test]
fn chatml_fallback() {
    let t = ChatTemplate::chatml("", "");
    let msgs = vec![ChatMessage::new("system", "S"), ChatMessage::new("user", "U"), ChatMessage::new("assistant", "A")];
    assert_eq!(
        t.render(&msgs, true).unwrap(),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn raise_exception_fails_the_render() {
    let t = ChatTemplate::new(
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('Conversation must start with a system message') }}{% endif %}ok",
        "",
        "",
    )
    .unwrap();
    let msg = template_err(t.render(&user("hi"), true));
    assert!(msg.contains("Conversation must start with a system message"), "{msg}");
    assert_eq!(t.render(&[ChatMessage::new("system", "s")], true).unwrap(), "ok");
}

#[test]
fn syntax_errors_fail_at_compile_time() {
    // `{%}…` (the opening and closing marks overlap) with a `generation` tag after it: found by
    // the fuzz smoke run, it used to panic while rewriting the generation tags.
    for bad in ["{% for m in messages %}{{ m.content }}", "{{ 1 + }}", "{% if %}{% endif %}", "{% bogus %}", "{%}{% generation %}", "{%}generation"] {
        match ChatTemplate::new(bad, "", "") {
            Err(Error::Template(msg)) => assert!(msg.contains("syntax error"), "{bad}: {msg}"),
            Err(e) => panic!("{bad}: wrong error kind {e:?}"),
            Ok(_) => panic!("{bad}: compiled"),
        }
    }
}

#[test]
fn runaway_templates_run_out_of_fuel() {
    let cases = [
        // Nested loops: 10^5 x 10^5 iterations.
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        // Unbounded recursion through a macro.
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        // Output flood.
        "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
    ];
    for src in cases {
        let t = ChatTemplate::new(src, "", "").unwrap();
        let t0 = Instant::now();
        let msg = template_err(t.render(&user("hi"), true));
        let took = t0.elapsed();
        eprintln!("runaway template stopped after {took:?}: {msg}");
        assert!(took < Duration::from_secs(30), "took {took:?}");
    }
}

#[test]
fn pycompat_methods_and_helpers() {
    let t = ChatTemplate::new(
        "{%- for m in messages -%}\n\
         {{ m.role.upper() }}:{{ m['content'].strip() }}|{{ m.content.startswith('  hel') }}|\
         {{ m.content.split(',') | length }}|{{ m.content.replace('l', 'L').lstrip() }}|\
         {% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}|{{ messages | tojson }}\n\
         {% endfor -%}\n\
         {%- set ns = namespace(n=0) -%}{%- for m in messages -%}{%- set ns.n = ns.n + 1 -%}{%- endfor -%}\n\
         {{ ns.n }}{{ bos_token }}{{ eos_token }}{{ strftime_now('%Y') | length }}{{ tools is none }}",
        "<s>",
        "</s>",
    )
    .unwrap();
    let out = t.render(&user("  hello, world  "), false).unwrap();
    assert_eq!(
        out,
        "USER:hello, world|True|2|heLLo, worLd  |a=1|[{\"role\": \"user\", \"content\": \"  hello, world  \"}]\n\
         1<s></s>4True"
    );
    // A fixed clock for strftime_now.
    let t = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", "", "").unwrap();
    t.set_time(Some(1_721_952_000)); // 2024-07-26 00:00 UTC
    assert_eq!(t.render(&[], false).unwrap(), "26 Jul 2024");
}

#[test]
fn trim_and_lstrip_blocks_like_transformers() {
    // With trim_blocks the newline after a block tag goes; lstrip_blocks removes the indentation
    // before one; a single trailing newline of the template is dropped.
    let t = ChatTemplate::new("{% for m in messages %}\n    {% if true %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n", "", "").unwrap();
    assert_eq!(t.render(&[ChatMessage::new("user", "a"), ChatMessage::new("user", "b")], false).unwrap(), "[a]\n[b]\n");
}
