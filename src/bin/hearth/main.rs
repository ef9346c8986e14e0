//! `hearth`: the native command line of the hearth runtime.

mod commands;
mod setup;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth::sampler::ResponseFormat;

#[derive(Parser)]
#[command(name = "hearth", version, about = "Run GGUF language models: inspect, tokenize, generate, score, chat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The GPU where an adapter exists, else the CPU (with a notice).
    Auto,
    Cpu,
    Gpu,
}

#[derive(Args)]
pub struct RunArgs {
    /// Where to run the model.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendKind,
    /// Context length in tokens (default: the model's training context).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// When the context is full, drop older tokens but keep the first N (attention sinks)
    /// instead of stopping with a context-length error.
    #[arg(long, value_name = "SINKS")]
    pub context_shift: Option<usize>,
    /// Tokens per forward call while reading a prompt (on the GPU also the largest batch).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub prefill_chunk: usize,
}

/// Sampling settings (see `hearth::sampler` for the order they apply in).
#[derive(Args)]
pub struct SampleArgs {
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling: keep the most likely tokens until their probability reaches p (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Drop tokens less likely than min-p times the most likely one (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Repetition penalty over the last --repeat-last-n tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// OpenAI-style frequency penalty over the same window (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub frequency_penalty: f32,
    /// OpenAI-style presence penalty over the same window (0: off).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub presence_penalty: f32,
    /// End the reply before this text (repeatable; never printed in part).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Beam search with this many beams instead of sampling (1: off).
    #[arg(long, default_value_t = 1)]
    pub beams: usize,
    /// Beam search ranks beams by log-probability / length^penalty.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub length_penalty: f64,
    /// The reply is a JSON object (response_format json_object).
    #[arg(long, conflicts_with = "json_schema")]
    pub json_object: bool,
    /// The reply is JSON valid under this schema: a file, or the schema itself if it starts
    /// with '{' (response_format json_schema).
    #[arg(long, value_name = "FILE|JSON")]
    pub json_schema: Option<OsString>,
}

impl SampleArgs {
    pub fn response_format(&self) -> hearth::Result<ResponseFormat> {
        if self.json_object {
            return Ok(ResponseFormat::JsonObject);
        }
        let Some(arg) = &self.json_schema else {
            return Ok(ResponseFormat::Text);
        };
        let text = match arg.to_str() {
            Some(s) if s.trim_start().starts_with('{') => s.to_string(),
            _ => std::fs::read_to_string(arg)
                .map_err(|e| hearth::Error::InvalidArgument(format!("--json-schema {}: {e}", arg.to_string_lossy())))?,
        };
        let schema = serde_json::from_str(&text)
            .map_err(|e| hearth::Error::InvalidArgument(format!("--json-schema is not JSON: {e}")))?;
        Ok(ResponseFormat::schema(schema))
    }

    pub fn config(&self) -> hearth::sampler::SamplerConfig {
        hearth::sampler::SamplerConfig {
            temperature: self.temperature,
            seed: self.seed,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            logit_bias: Vec::new(),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, hyper-parameters and tensor types of a model file.
    Inspect {
        model: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Token ids of a text.
    Tokenize {
        model: PathBuf,
        #[arg(long)]
        text: std::ffi::OsString,
        /// Parse special tokens such as <|im_start|> written in the text.
        #[arg(long)]
        special: bool,
        #[arg(long)]
        json: bool,
    },
    /// Generate a continuation of a prompt or a reply to a chat.
    Generate {
        model: PathBuf,
        #[command(flatten)]
        input: commands::PromptInput,
        #[arg(long, default_value_t = 256)]
        max_tokens: usize,
        #[command(flatten)]
        sample: SampleArgs,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Perplexity of a text file; texts longer than the context are scored in sliding windows.
    Ppl {
        model: PathBuf,
        #[arg(long)]
        file: PathBuf,
        /// Start a new window every N tokens (default: the context length, disjoint windows).
        #[arg(long)]
        stride: Option<usize>,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Teacher-forced scores of a token sequence: top-k logits and logsumexp per position.
    Score {
        model: PathBuf,
        /// JSON file with an array of token ids (or an object with an "ids" array); for an
        /// encoder-decoder, the decoder's.
        #[arg(long)]
        tokens: PathBuf,
        /// An encoder-decoder's input (T5): a JSON file of token ids, as --tokens.
        #[arg(long)]
        encoder_tokens: Option<PathBuf>,
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Sentence embeddings: each text's final normed hidden states, mean-pooled and
    /// L2-normalised (llama.cpp's --pooling mean).
    Embed {
        model: PathBuf,
        /// A text to embed (repeat for several).
        #[arg(long, required_unless_present = "tokens", conflicts_with = "tokens")]
        text: Vec<std::ffi::OsString>,
        /// Instead of text: a JSON file of token ids, one array or an array of arrays (checks a
        /// model without its tokenizer).
        #[arg(long)]
        tokens: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
        /// OpenAI's shape: {"data": [{"index", "embedding"}], "usage"}.
        #[arg(long)]
        json: bool,
    },
    /// Prefill and decode speed on synthetic input.
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        /// Also time each kernel family (GPU timestamps) for one decode step and one prefill chunk.
        #[arg(long)]
        profile: bool,
        /// Instead: a conversation of N turns, timing the last turn's first token with the
        /// KV cache kept between turns and from an empty cache.
        #[arg(long)]
        turns: Option<usize>,
        /// Decode with seeded sampling (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05)
        /// instead of greedy: on a GPU the draws are made on the device.
        #[arg(long)]
        sampled: bool,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Interactive multi-turn chat in the terminal.
    Chat {
        model: PathBuf,
        #[command(flatten)]
        sample: SampleArgs,
        #[arg(long, default_value_t = 1024)]
        max_tokens: usize,
        /// A system message for the conversation.
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

fn main() -> ExitCode {
    // Errors are reported as one line; a panic would be a bug, but is still no backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => commands::inspect(&model, json),
        Command::Tokenize { model, text, special, json } => commands::tokenize(&model, text, special, json),
        Command::Generate { model, input, max_tokens, sample, run, json } => {
            commands::generate(&model, &input, max_tokens, &sample, &run, json)
        }
        Command::Ppl { model, file, stride, run, json } => commands::ppl(&model, &file, stride, &run, json),
        Command::Score { model, tokens, encoder_tokens, top_k, run, json } => {
            commands::score(&model, &tokens, encoder_tokens.as_deref(), top_k, &run, json)
        }
        Command::Embed { model, text, tokens, run, json } => commands::embed(&model, &text, tokens.as_deref(), &run, json),
        Command::Bench { model, turns: Some(turns), gen_tokens, run, json, .. } => commands::bench_turns(&model, turns, gen_tokens, &run, json),
        Command::Bench { model, prompt_tokens, gen_tokens, profile, sampled, run, json, .. } => {
            commands::bench(&model, prompt_tokens, gen_tokens, profile, sampled, &run, json)
        }
        Command::Chat { model, sample, max_tokens, system, run } => commands::chat(&model, &sample, max_tokens, system, &run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
