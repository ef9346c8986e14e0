//! Structured output on the default model: every constrained reply parses and validates against
//! its schema (checked by an independent validator, the `jsonschema` crate), and bad formats
//! are clear errors.

mod common;

use common::*;
use hearth::chat::ChatMessage;
use hearth::sampler::{Grammars, ResponseFormat, Sampler, SamplerConfig};
use hearth::session::{generate, GenerateOptions, StopReason};
use hearth::Error;
use serde_json::{json, Value};

/// Nested objects, an array, an enum, integers and numbers; `speed` has no bound, so only the
/// digit-run cap keeps a hot sampler from writing digits until `max_tokens`.
fn character_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "maxLength": 24 },
            "age": { "type": "integer", "minimum": 0, "maximum": 150 },
            "class": { "enum": ["wizard", "knight", "dragon", "thief"] },
            "stats": {
                "type": "object",
                "properties": {
                    "strength": { "type": "number", "minimum": 0, "maximum": 100 },
                    "speed": { "type": "number" }
                },
                "required": ["strength", "speed"],
                "additionalProperties": false
            },
            "items": { "type": "array", "items": { "type": "string", "maxLength": 16 }, "maxItems": 3 }
        },
        "required": ["name", "age", "class", "stats", "items"],
        "additionalProperties": false
    })
}

fn chat(model: &hearth::model::Model, text: &str) -> Vec<u32> {
    model.chat_prompt(&[ChatMessage { role: "user".into(), content: text.into() }]).unwrap()
}

#[test]
fn fifty_seeded_generations_parse_and_validate() {
    let (model, mut session) = load_cpu(&model_path());
    let schema = character_schema();
    let validator = jsonschema::validator_for(&schema).expect("the test schema is valid");
    let t0 = std::time::Instant::now();
    let grammars = Grammars::new(&model.tokenizer, model.config().n_vocab).unwrap();
    let built = t0.elapsed();
    let format = ResponseFormat::schema(schema.clone());
    let t0 = std::time::Instant::now();
    drop(grammars.constrain(&format).unwrap());
    eprintln!("vocabulary trie built in {built:.1?}; the schema compiles in {:.1?}", t0.elapsed());
    let prompts = [
        chat(&model, "Describe a fantasy character as JSON."),
        chat(&model, "Invent a hero for my story."),
        chat(&model, "Who guards the castle?"),
    ];
    let opts = GenerateOptions { max_tokens: 200, stop: Vec::new() };
    let (mut tokens, mut mask_seconds, mut masks) = (0, 0.0, 0);
    let mut distinct = std::collections::HashSet::new();
    for seed in 0..50u64 {
        let config = SamplerConfig { temperature: 1.0, top_p: 0.95, seed, ..SamplerConfig::default() };
        let mut sampler = Sampler::from_config(config).unwrap();
        sampler.set_constraint(grammars.constrain(&format).unwrap());
        let prompt = &prompts[seed as usize % prompts.len()];
        let out = generate(&mut session, &model.tokenizer, prompt, &opts, &mut sampler, |_| true).unwrap();
        assert_eq!(out.stop_reason, StopReason::Eos, "seed {seed} did not finish: {}", out.text);
        let value: Value = serde_json::from_str(&out.text).unwrap_or_else(|e| panic!("seed {seed}: {e} in {}", out.text));
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "seed {seed}: {} is invalid: {errors:?}", out.text);
        let stats = sampler.constraint_stats().unwrap();
        assert_eq!(stats.masks, out.ids.len(), "one mask per drawn token");
        (tokens, mask_seconds, masks) = (tokens + out.ids.len(), mask_seconds + stats.seconds, masks + stats.masks);
        let longest_digits = out.text.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
        assert!(longest_digits <= hearth::sampler::constraint::MAX_DIGIT_RUN, "seed {seed}: {}", out.text);
        distinct.insert(out.text);
    }
    // Sampling explores: the replies are not one text repeated.
    assert!(distinct.len() >= 40, "only {} distinct replies", distinct.len());
    eprintln!("{tokens} constrained tokens, {:.3} ms of mask per token", mask_seconds * 1e3 / masks as f64);
}

#[test]
fn json_object_forces_an_object_even_when_greedy() {
    let (model, mut session) = load_cpu(&model_path());
    let grammars = Grammars::new(&model.tokenizer, model.config().n_vocab).unwrap();
    let prompt = chat(&model, "Say hello.");
    // Unconstrained, the model answers in prose.
    let opts = GenerateOptions { max_tokens: 12, stop: Vec::new() };
    let free = generate(&mut session, &model.tokenizer, &prompt, &opts, &mut Sampler::greedy(), |_| true).unwrap();
    assert!(!free.text.trim_start().starts_with('{'), "{}", free.text);
    let mut sampler = Sampler::greedy();
    sampler.set_constraint(grammars.constrain(&ResponseFormat::JsonObject).unwrap());
    assert!(!sampler.is_greedy(), "a constraint needs the logits");
    let opts = GenerateOptions { max_tokens: 150, stop: Vec::new() };
    let out = generate(&mut session, &model.tokenizer, &prompt, &opts, &mut sampler, |_| true).unwrap();
    assert_eq!(out.stop_reason, StopReason::Eos, "{}", out.text);
    let value: Value = serde_json::from_str(&out.text).unwrap_or_else(|e| panic!("{e} in {}", out.text));
    assert!(value.is_object(), "{value}");
    assert_eq!(out.ids.last(), model.tokenizer.eos_id().as_ref(), "the reply ends with the model's end token");
}

#[test]
fn constrained_generation_works_on_the_gpu() {
    let Some(ctx) = gpu_context() else { return };
    let (model, mut session) = load_gpu(ctx, &model_path());
    let grammars = Grammars::new(&model.tokenizer, model.config().n_vocab).unwrap();
    let schema = json!({ "type": "object", "properties": { "capital": { "enum": ["Paris", "Lyon", "Nice"] } }, "required": ["capital"], "additionalProperties": false });
    let mut sampler = Sampler::greedy();
    sampler.set_constraint(grammars.constrain(&ResponseFormat::schema(schema)).unwrap());
    let prompt = chat(&model, "What is the capital of France?");
    let opts = GenerateOptions { max_tokens: 20, stop: Vec::new() };
    let out = generate(&mut session, &model.tokenizer, &prompt, &opts, &mut sampler, |_| true).unwrap();
    assert_eq!(out.stop_reason, StopReason::Eos, "{}", out.text);
    assert_eq!(serde_json::from_str::<Value>(&out.text).unwrap(), json!({ "capital": "Paris" }));
}

#[test]
fn response_formats_parse_and_bad_ones_are_clear_errors() {
    let f = ResponseFormat::from_json(r#"{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"integer"},"strict":true}}"#).unwrap();
    let ResponseFormat::JsonSchema { json_schema } = f else { panic!("{f:?}") };
    assert_eq!((json_schema.name.as_deref(), json_schema.schema), (Some("x"), json!({ "type": "integer" })));
    assert_eq!(ResponseFormat::from_json(r#"{"type":"json_object"}"#).unwrap(), ResponseFormat::JsonObject);
    assert_eq!(ResponseFormat::from_json(r#"{"type":"text"}"#).unwrap(), ResponseFormat::Text);
    for bad in [r#"{"type":"yaml"}"#, r#"{"type":"json_schema"}"#, r#"{"type":"json_schema","json_schema":{}}"#, "[1]", "not json"] {
        let e: Error = ResponseFormat::from_json(bad).unwrap_err().into();
        assert!(matches!(e, Error::InvalidArgument(ref m) if m.starts_with("response_format")), "{bad}: {e}");
    }

    let (model, _) = load_cpu(&model_path());
    let grammars = Grammars::new(&model.tokenizer, model.config().n_vocab).unwrap();
    assert!(grammars.constrain(&ResponseFormat::Text).unwrap().is_none());
    for schema in [
        json!({ "type": "integer", "minimum": 5, "maximum": 1 }),
        json!({ "type": "frobnicate" }),
        json!({ "$ref": "#/$defs/missing" }),
        json!(7),
        json!({ "type": "string", "pattern": "(a|b" }),
        json!({ "not": { "type": "string" } }),
    ] {
        let e = grammars.constrain(&ResponseFormat::schema(schema.clone())).err().unwrap_or_else(|| panic!("{schema} was accepted"));
        assert!(matches!(e, Error::InvalidArgument(ref m) if m.starts_with("response_format") && !m.contains('\n')), "{schema}: {e}");
    }
    // The grammars stay usable after a bad schema.
    assert!(grammars.constrain(&ResponseFormat::JsonObject).unwrap().is_some());
}
