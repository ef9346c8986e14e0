//! The subcommands. Each returns a crate `Result`; `main` prints errors as one line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use hearth::backend::KernelTime;
use hearth::chat::ChatMessage;
use hearth::model::{read_model_header, ModelConfig};
use hearth::model::Model;
use hearth::sampler::{Grammars, ResponseFormat, Sampler};
use hearth::session::{beam_search, generate as run_generation, BeamOptions, GenerateOptions};
use hearth::tokenizer::Tokenizer;
use hearth::{Error, Result};
use serde_json::json;

use crate::setup::load;
use crate::{RunArgs, SampleArgs};

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct PromptInput {
    /// Raw prompt text (special tokens in it are parsed).
    #[arg(long)]
    prompt: Option<OsString>,
    /// One user message, formatted with the model's chat template.
    #[arg(long)]
    chat: Option<OsString>,
    /// A JSON file with an array of {"role", "content"} messages.
    #[arg(long)]
    messages: Option<PathBuf>,
}

fn utf8(arg: &OsString, name: &str) -> Result<String> {
    arg.clone()
        .into_string()
        .map_err(|_| Error::InvalidArgument(format!("--{name} is not valid UTF-8 text")))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument(format!("{} is not valid JSON: {e}", path.display())))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string(v).expect("JSON values serialize"));
}

pub fn inspect(path: &Path, json_out: bool) -> Result<()> {
    let header = read_model_header(path)?;
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &header.tensors {
        *types.entry(t.ty.name()).or_default() += 1;
    }
    let weight_bytes: u64 = header.tensors.iter().map(|t| t.n_bytes).sum();
    let config = ModelConfig::from_header(&header);
    let arch = header.metadata.get_str("general.architecture").ok().flatten().unwrap_or("unknown");
    let parts = hearth::gguf::SplitInfo::of(&header)?.map_or(1, |s| s.count);
    if json_out {
        let (hparams, problem) = match &config {
            Ok(c) => (serde_json::to_value(c).expect("config serializes"), None),
            Err(e) => (serde_json::Value::Null, Some(e.to_string())),
        };
        print_json(&json!({
            "gguf_version": header.version,
            "architecture": arch,
            "name": header.metadata.get_str("general.name").ok().flatten(),
            "hparams": hparams,
            "unsupported": problem,
            "n_tensors": header.tensors.len(),
            "parts": parts,
            "tensor_types": types,
            "weight_bytes": weight_bytes,
            "n_metadata": header.metadata.len(),
        }));
        return Ok(());
    }
    println!("file:          {}", path.display());
    if parts > 1 {
        println!("parts:         {parts} (a split model; this is the first)");
    }
    println!("gguf version:  {}", header.version);
    println!("architecture:  {arch}");
    match &config {
        Ok(c) => {
            if let Some(n) = &c.name {
                println!("name:          {n}");
            }
            println!("layers:        {}", c.n_layer);
            println!("embedding:     {}", c.n_embd);
            println!("heads:         {} ({} KV, head size {})", c.n_head, c.n_head_kv, c.head_dim);
            println!("feed-forward:  {}", c.n_ff);
            println!("vocabulary:    {}", c.n_vocab);
            println!("context:       {}", c.n_ctx_train);
            let r = &c.rope;
            let scaling = match (&r.yarn, &r.freq_factors, r.freq_scale) {
                (Some(_), ..) => format!(", YaRN ×{}", 1.0 / r.freq_scale),
                (None, Some(_), _) => ", frequency factors (rope_freqs)".to_string(),
                (None, None, s) if s != 1.0 => format!(", linear ×{}", 1.0 / s),
                _ => String::new(),
            };
            println!("rope:          base {}, {} dims, {:?}{scaling}", r.base, r.dims, r.style);
            if let Some(local) = &c.rope_local {
                let layers: Vec<String> = (0..c.n_layer).filter(|&l| c.windows[l] > 0).map(|l| l.to_string()).collect();
                let window = c.windows.iter().copied().max().unwrap_or(0);
                println!("local layers:  {} (window {window}, rope base {})", layers.join(" "), local.base);
            }
            println!("activation:    {:?}{}", c.activation, if c.qk_norm { ", per-head Q/K norms" } else { "" });
            println!("rms eps:       {:e}", c.rms_eps);
            if c.encoder {
                println!("output:        an encoder: embeddings, {:?} pooling (`hearth embed`)", c.pooling);
            } else {
                println!("output head:   {}", if c.tied_output { "tied to token_embd" } else { "output.weight" });
            }
        }
        Err(e) => println!("cannot run:    {e}"),
    }
    let hist: Vec<String> = types.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
    println!("tensors:       {} ({}), {:.1} MB", header.tensors.len(), hist.join(", "), weight_bytes as f64 / 1e6);
    Ok(())
}

pub fn tokenize(path: &Path, text: OsString, special: bool, json_out: bool) -> Result<()> {
    let text = utf8(&text, "text")?;
    let header = read_model_header(path)?;
    let tok = Tokenizer::from_metadata(&header.metadata)?;
    let ids = tok.encode(&text, special)?;
    if json_out {
        print_json(&json!({ "ids": ids }));
    } else {
        for id in ids {
            println!("{id:>6} {:?}", tok.token_str(id).unwrap_or(""));
        }
    }
    Ok(())
}

pub fn generate(
    path: &Path,
    input: &PromptInput,
    max_tokens: usize,
    sample: &SampleArgs,
    run: &RunArgs,
    json_out: bool,
) -> Result<()> {
    let mut sampler = Sampler::from_config(sample.config())?;
    let format = sample.response_format()?;
    if sample.beams > 1 && format != ResponseFormat::Text {
        return Err(Error::InvalidArgument("--beams cannot be combined with --json-object or --json-schema".into()));
    }
    let messages = match (&input.prompt, &input.chat, &input.messages) {
        (_, Some(m), _) => Some(vec![ChatMessage { role: "user".into(), content: utf8(m, "chat")? }]),
        (_, _, Some(file)) => Some(
            serde_json::from_value::<Vec<ChatMessage>>(read_json(file)?)
                .map_err(|e| Error::InvalidArgument(format!("{}: expected [{{\"role\", \"content\"}}, …]: {e}", file.display())))?,
        ),
        _ => None,
    };
    let (model, mut session) = load(path, run)?;
    let mut prompt_ids = match (&messages, &input.prompt) {
        (Some(_), _) if model.config().encoder_decoder => {
            return Err(Error::InvalidArgument(format!(
                "{} is a text-to-text encoder-decoder ({}): give it --prompt, not a chat",
                path.display(),
                model.config().architecture
            )))
        }
        (Some(m), _) => model.chat_prompt(m)?,
        (None, Some(p)) => model.text_prompt(&utf8(p, "prompt")?)?,
        (None, None) => unreachable!("clap requires one prompt input"),
    };
    // An encoder-decoder reads the prompt with its encoder; the decoder starts from its start token.
    let encoder_ids = if model.config().encoder_decoder {
        session.encode(&prompt_ids)?;
        Some(std::mem::replace(&mut prompt_ids, model.decoder_prompt()?))
    } else {
        None
    };
    if sample.beams > 1 {
        let opts = BeamOptions { num_beams: sample.beams, max_tokens, length_penalty: sample.length_penalty, early_stopping: true };
        let out = beam_search(&mut session, &model.tokenizer, &prompt_ids, &opts)?;
        if json_out {
            print_json(&json!({
                "prompt_ids": prompt_ids, "ids": out.ids, "text": out.text, "logprob": out.logprob, "score": out.score,
                "beams": sample.beams, "backend": session.backend().describe(),
            }));
        } else {
            println!("{}", out.text);
        }
        return Ok(());
    }
    let grammars = grammars_for(&model, &format)?;
    sampler.set_constraint(grammars.as_ref().map(|g| g.constrain(&format)).transpose()?.flatten());
    let mut stdout = std::io::stdout();
    let out = run_generation(&mut session, &model.tokenizer, &prompt_ids, &GenerateOptions { max_tokens, stop: sample.stop.clone() }, &mut sampler, |piece| {
        if !json_out {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
        true
    })?;
    let grammar_ms = sampler.constraint_stats().map(|s| s.ms_per_token());
    if json_out {
        print_json(&json!({
            "encoder_ids": encoder_ids,
            "prompt_ids": out.prompt_ids,
            "ids": out.ids,
            "text": out.text,
            "stop_reason": out.stop_reason,
            "prefill_tok_s": out.prefill_tok_s(),
            "decode_tok_s": out.decode_tok_s(),
            "n_prompt": out.prompt_ids.len(),
            "n_generated": out.ids.len(),
            "backend": session.backend().describe(),
            "grammar_ms_per_token": grammar_ms,
        }));
    } else {
        println!();
        let grammar = grammar_ms.map(|ms| format!(", grammar {ms:.2} ms/token")).unwrap_or_default();
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, stop: {:?}{grammar}, {}]",
            out.prompt_ids.len(),
            out.prefill_tok_s(),
            out.ids.len(),
            out.decode_tok_s(),
            out.stop_reason,
            session.backend().describe()
        );
    }
    Ok(())
}

pub fn ppl(path: &Path, file: &Path, stride: Option<usize>, run: &RunArgs, json_out: bool) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidArgument(format!("{} is not UTF-8 text", file.display())))?;
    let (model, mut session) = crate::setup::load_decoder(path, run, "perplexity")?;
    let tokens = model.tokenizer.encode(&text, false)?;
    let t0 = std::time::Instant::now();
    // Windows of the context length (or the whole text when it fits).
    let window = session.backend().max_context().min(tokens.len());
    let stride = stride.unwrap_or(window);
    let p = session.perplexity_windowed(&tokens, window, stride)?;
    let secs = t0.elapsed().as_secs_f64();
    if json_out {
        print_json(&json!({
            "ppl": p.ppl, "n_tokens": p.n_tokens, "n_scored": p.n_scored, "mean_nll": p.mean_nll,
            "window": window, "stride": stride, "seconds": secs,
        }));
    } else {
        println!("perplexity {:.4} over {} tokens ({:.1} tok/s)", p.ppl, p.n_tokens, p.n_tokens as f64 / secs);
    }
    Ok(())
}

pub fn score(path: &Path, tokens_file: &Path, encoder_file: Option<&Path>, top_k: usize, run: &RunArgs, json_out: bool) -> Result<()> {
    let read_ids = |file: &Path| -> Result<Vec<u32>> {
        let v = read_json(file)?;
        let list = v.get("ids").unwrap_or(&v);
        serde_json::from_value(list.clone())
            .map_err(|_| Error::InvalidArgument(format!("{}: expected a JSON array of token ids", file.display())))
    };
    let ids = read_ids(tokens_file)?;
    if ids.is_empty() {
        return Err(Error::InvalidArgument("no tokens to score".into()));
    }
    let encoder_ids = encoder_file.map(read_ids).transpose()?;
    let config = ModelConfig::from_header(&read_model_header(path)?)?;
    let n_vocab = config.n_vocab;
    if let Some(bad) = ids.iter().chain(encoder_ids.iter().flatten()).find(|&&id| id as usize >= n_vocab) {
        return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary ({n_vocab} tokens)")));
    }
    match (config.encoder_decoder, &encoder_ids) {
        (true, None) => {
            return Err(Error::InvalidArgument(format!(
                "{} is an encoder-decoder ({}): give its input with --encoder-tokens",
                path.display(),
                config.architecture
            )))
        }
        (false, Some(_)) => {
            return Err(Error::InvalidArgument(format!("--encoder-tokens: {} has no encoder ({})", path.display(), config.architecture)))
        }
        _ => {}
    }
    let (_model, mut session) = load(path, run)?;
    if let Some(input) = &encoder_ids {
        session.encode(input)?;
    }
    let positions = session.score(&ids, top_k)?;
    if json_out {
        let positions: Vec<_> = positions.iter().map(|p| json!({ "top": p.top, "logsumexp": p.logsumexp })).collect();
        print_json(&json!({ "positions": positions }));
    } else {
        for (i, p) in positions.iter().enumerate() {
            let top: Vec<String> = p.top.iter().map(|(id, l)| format!("{id}:{l:.3}")).collect();
            println!("{i:>5} lse {:.4}  {}", p.logsumexp, top.join(" "));
        }
    }
    Ok(())
}

pub fn embed(path: &Path, texts: &[OsString], tokens: Option<&Path>, run: &RunArgs, json_out: bool) -> Result<()> {
    let texts = texts.iter().map(|t| utf8(t, "text")).collect::<Result<Vec<_>>>()?;
    let given = tokens.map(read_id_lists).transpose()?;
    let (model, mut session) = crate::setup::load_any(path, run)?;
    let inputs: Vec<Vec<u32>> = match given {
        Some(lists) => {
            let n_vocab = model.config().n_vocab;
            if let Some(bad) = lists.iter().flatten().find(|&&id| id as usize >= n_vocab) {
                return Err(Error::InvalidArgument(format!("token id {bad} is outside the vocabulary ({n_vocab} tokens)")));
            }
            lists
        }
        None => texts.iter().map(|t| model.embedding_prompt(t)).collect::<Result<_>>()?,
    };
    let mut data = Vec::new();
    let mut n_tokens = 0;
    for (index, ids) in inputs.iter().enumerate() {
        let embedding = session.embed(ids)?;
        n_tokens += ids.len();
        if !json_out {
            let head: Vec<String> = embedding.iter().take(4).map(|x| format!("{x:.5}")).collect();
            println!("{index}: {} tokens -> [{}, …] ({} dimensions)", ids.len(), head.join(", "), embedding.len());
        }
        data.push(json!({ "object": "embedding", "index": index, "embedding": embedding }));
    }
    if json_out {
        print_json(&json!({
            "object": "list",
            "data": data,
            "model": model.config().name.clone().unwrap_or_default(),
            "pooling": model.config().pooling,
            "usage": { "prompt_tokens": n_tokens, "total_tokens": n_tokens },
        }));
    }
    Ok(())
}

/// Token id lists from a JSON file: one array of ids, or an array of such arrays.
fn read_id_lists(path: &Path) -> Result<Vec<Vec<u32>>> {
    let v = read_json(path)?;
    let bad = || Error::InvalidArgument(format!("{}: expected a JSON array of token ids, or an array of such arrays", path.display()));
    if let Ok(one) = serde_json::from_value::<Vec<u32>>(v.clone()) {
        return Ok(vec![one]);
    }
    let lists: Vec<Vec<u32>> = serde_json::from_value(v).map_err(|_| bad())?;
    if lists.is_empty() {
        return Err(bad());
    }
    Ok(lists)
}

pub fn bench(path: &Path, prompt_tokens: usize, gen_tokens: usize, profile: bool, sampled: bool, run: &RunArgs, json_out: bool) -> Result<()> {
    if prompt_tokens == 0 {
        return Err(Error::InvalidArgument("--prompt-tokens must be at least 1".into()));
    }
    let (model, mut session) = load(path, run)?;
    let needed = prompt_tokens + gen_tokens;
    if needed > session.backend().max_context() {
        return Err(Error::ContextLengthExceeded { needed, limit: session.backend().max_context() });
    }
    // Ordinary text, repeated to length: realistic token ids without a prompt file.
    let text = "The printing press changed how knowledge spread across Europe, and 1450 was its year. ";
    let base = model.tokenizer.encode(text, false)?;
    let prompt: Vec<u32> = base.iter().copied().cycle().take(prompt_tokens).collect();
    let config = match sampled {
        true => hearth::sampler::SamplerConfig { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, ..Default::default() },
        false => hearth::sampler::SamplerConfig { temperature: 0.0, ..Default::default() },
    };
    let sampling = if sampled { "seeded: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05" } else { "greedy" };
    let mut sampler = Sampler::from_config(config)?;
    let t0 = std::time::Instant::now();
    // An encoder-decoder reads the prompt with its encoder and decodes from its start token.
    let mut id = if model.config().encoder_decoder {
        session.encode(&prompt)?;
        session.append_and_sample(&model.decoder_prompt()?, &mut sampler)?
    } else {
        session.append_and_sample(&prompt, &mut sampler)?
    };
    let prefill_s = t0.elapsed().as_secs_f64();
    let before = session.backend().traffic();
    let t1 = std::time::Instant::now();
    for i in 0..gen_tokens {
        // As a reply of gen_tokens tokens would: no decoding run computes past the last one.
        session.lookahead = gen_tokens - i;
        id = session.append_and_sample(&[id], &mut sampler)?;
    }
    session.lookahead = usize::MAX;
    let decode_s = t1.elapsed().as_secs_f64();
    // Per decoded token: what the host asked of the device (GPU backends).
    let traffic = session.backend().traffic().zip(before).map(|(after, before)| after.per(&before, gen_tokens));
    // Per decoded token every matrix the decoder's ops read is read once (an encoder-decoder's
    // encoder and cross-attention keys not at all); the embedding table only for its one row
    // unless it doubles as the output head.
    let plan = &model.plan;
    let embd = plan.weight_index(hearth::model::TOKEN_EMBD).map(|w| w.0);
    let read: std::collections::HashSet<usize> = plan.ops.iter().flat_map(|op| op.weights()).map(|w| w.0).collect();
    let bytes: u64 = plan
        .weights
        .iter()
        .enumerate()
        .filter(|(i, _)| read.contains(i) && (Some(*i) != embd || model.config().tied_output))
        .map(|(_, w)| (w.rows * w.cols / w.ty.block_len() * w.ty.block_bytes()) as u64)
        .sum();
    let prefill_tok_s = prompt_tokens as f64 / prefill_s;
    let decode_tok_s = gen_tokens as f64 / decode_s;
    let gb_s = bytes as f64 * decode_tok_s / 1e9;
    let backend = session.backend().describe();
    // Kernel profiles: one decode step at the current position, then one prefill chunk from
    // position 0 (the sequence is cleared for it).
    let profiles = if profile {
        let decode = session.profile(&[id])?;
        session.clear();
        let chunk = prompt.len().min(session.backend().max_batch()).min(session.prefill_chunk);
        let prefill = session.profile(&prompt[..chunk])?;
        Some([("decode step", 1, decode), ("prefill chunk", chunk, prefill)])
    } else {
        None
    };
    if json_out {
        let mut out = json!({
            "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens, "sampling": sampling,
            "prefill_tok_s": prefill_tok_s, "decode_tok_s": decode_tok_s,
            "weight_bytes_per_token": bytes, "decode_gb_s": gb_s, "backend": backend, "decode_traffic_per_token": traffic,
        });
        if let Some(ps) = &profiles {
            let kernels = |ks: &[KernelTime]| -> Vec<_> {
                ks.iter().map(|k| json!({ "kernel": k.kernel, "dispatches": k.dispatches, "ms": k.seconds * 1e3 })).collect()
            };
            out["profile"] = json!({
                "decode_step": kernels(&ps[0].2), "prefill_chunk": kernels(&ps[1].2), "prefill_tokens": ps[1].1,
                "fusion": session.backend().fusion_notes(),
            });
        }
        print_json(&out);
    } else {
        println!("backend:  {backend}");
        println!("prefill:  {prompt_tokens} tokens at {prefill_tok_s:.1} tok/s");
        println!("decode:   {gen_tokens} tokens at {decode_tok_s:.1} tok/s ({:.2} ms/token, {sampling})", 1e3 / decode_tok_s);
        println!("weights:  {:.1} MB read per token, {gb_s:.2} GB/s effective", bytes as f64 / 1e6);
        if let Some(t) = traffic {
            println!(
                "per token: {:.1} dispatches, {:.2} submits, {:.2} readbacks ({:.0} bytes), {:.0} µs encoding on the host",
                t.dispatches, t.submits, t.readbacks, t.readback_bytes, t.encode_us
            );
        }
        if profiles.is_some() {
            for note in session.backend().fusion_notes() {
                println!("fusion:   {note}");
            }
        }
        for (what, n, ks) in profiles.iter().flatten() {
            let total: f64 = ks.iter().map(|k| k.seconds).sum();
            println!("profile of one {what} ({n} tokens, kernels timed one by one: {:.3} ms):", total * 1e3);
            for k in ks {
                println!("  {:<12} {:>4} dispatches {:>9.3} ms {:>5.1} %", k.kernel, k.dispatches, k.seconds * 1e3, 100.0 * k.seconds / total);
            }
        }
    }
    Ok(())
}

/// Time to first token of a conversation's last turn, with the KV cache kept from the turns
/// before (only the new part is evaluated) and from an empty cache.
pub fn bench_turns(path: &Path, turns: usize, reply_tokens: usize, run: &RunArgs, json_out: bool) -> Result<()> {
    if turns == 0 {
        return Err(Error::InvalidArgument("--turns must be at least 1".into()));
    }
    let (model, mut session) = crate::setup::load_decoder(path, run, "turns")?;
    let questions = ["What is the capital of France?", "And of Italy?", "Which of the two is larger?", "Name a famous museum in each.", "Summarise our conversation."];
    let mut messages = Vec::new();
    let mut sampler = Sampler::greedy();
    let opts = GenerateOptions { max_tokens: reply_tokens.max(1), stop: Vec::new() };
    for t in 0..turns - 1 {
        messages.push(ChatMessage { role: "user".into(), content: questions[t % questions.len()].into() });
        let prompt = model.chat_prompt(&messages)?;
        let reply = run_generation(&mut session, &model.tokenizer, &prompt, &opts, &mut sampler, |_| true)?;
        messages.push(ChatMessage { role: "assistant".into(), content: reply.text.trim().to_string() });
    }
    messages.push(ChatMessage { role: "user".into(), content: questions[(turns - 1) % questions.len()].into() });
    let prompt = model.chat_prompt(&messages)?;
    let reused = session.common_prefix(&prompt);
    let t0 = std::time::Instant::now();
    let with_reuse = session.set_tokens_greedy(&prompt)?;
    let ttft_reuse = t0.elapsed().as_secs_f64();
    session.clear();
    let t1 = std::time::Instant::now();
    let fresh = session.set_tokens_greedy(&prompt)?;
    let ttft_fresh = t1.elapsed().as_secs_f64();
    if with_reuse != fresh {
        return Err(Error::InvalidArgument(format!("reuse changed the first token ({with_reuse} vs {fresh})")));
    }
    let backend = session.backend().describe();
    if json_out {
        print_json(&json!({
            "turns": turns, "prompt_tokens": prompt.len(), "reused_tokens": reused,
            "ttft_reuse_ms": ttft_reuse * 1e3, "ttft_fresh_ms": ttft_fresh * 1e3, "backend": backend,
        }));
    } else {
        println!("backend:  {backend}");
        println!("turn {turns}: {} prompt tokens, {reused} already in the cache", prompt.len());
        println!("time to first token: {:.1} ms with the cache kept, {:.1} ms from an empty cache", ttft_reuse * 1e3, ttft_fresh * 1e3);
    }
    Ok(())
}

pub fn chat(path: &Path, sample: &SampleArgs, max_tokens: usize, system: Option<String>, run: &RunArgs) -> Result<()> {
    let mut sampler = Sampler::from_config(sample.config())?;
    let format = sample.response_format()?;
    let (model, mut session) = crate::setup::load_decoder(path, run, "a chat")?;
    let grammars = grammars_for(&model, &format)?;
    let mut messages: Vec<ChatMessage> = system.into_iter().map(|s| ChatMessage { role: "system".into(), content: s }).collect();
    let system_len = messages.len();
    eprintln!("chatting with {} on {} — /reset starts over, /exit or Ctrl-D quits", model.config().name.as_deref().unwrap_or("the model"), session.backend().describe());
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut line = Vec::new();
    loop {
        eprint!("> ");
        line.clear();
        if stdin.lock().read_until(b'\n', &mut line)? == 0 {
            eprintln!();
            return Ok(());
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            eprintln!("error: input is not valid UTF-8; try again");
            continue;
        };
        let text = text.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => return Ok(()),
            "/reset" => {
                messages.truncate(system_len);
                eprintln!("(new conversation)");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage { role: "user".into(), content: text.to_string() });
        let prompt = model.chat_prompt(&messages)?;
        sampler.set_constraint(grammars.as_ref().map(|g| g.constrain(&format)).transpose()?.flatten());
        let reply = run_generation(&mut session, &model.tokenizer, &prompt, &GenerateOptions { max_tokens, stop: sample.stop.clone() }, &mut sampler, |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
            true
        });
        match reply {
            Ok(out) => {
                println!();
                messages.push(ChatMessage { role: "assistant".into(), content: out.text.trim().to_string() });
            }
            Err(e) => {
                // Keep the conversation usable: drop the turn that failed.
                eprintln!("\nerror: {e}");
                messages.pop();
            }
        }
    }
}

/// The vocabulary trie structured output needs, built only when `format` asks for it.
fn grammars_for(model: &Model, format: &ResponseFormat) -> Result<Option<Grammars>> {
    if *format == ResponseFormat::Text {
        return Ok(None);
    }
    Grammars::new(&model.tokenizer, model.config().n_vocab).map(Some)
}
