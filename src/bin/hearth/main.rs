//! `hearth`: the native command line of the hearth runtime.

mod commands;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
        /// Sampling temperature; 0 is greedy.
        #[arg(long, default_value_t = 0.7)]
        temperature: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Perplexity of a text file.
    Ppl {
        model: PathBuf,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Teacher-forced scores of a token sequence: top-k logits and logsumexp per position.
    Score {
        model: PathBuf,
        /// JSON file with an array of token ids (or an object with an "ids" array).
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        #[command(flatten)]
        run: RunArgs,
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
        #[command(flatten)]
        run: RunArgs,
        #[arg(long)]
        json: bool,
    },
    /// Interactive multi-turn chat in the terminal.
    Chat {
        model: PathBuf,
        #[arg(long, default_value_t = 0.7)]
        temperature: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
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
        Command::Generate { model, input, max_tokens, temperature, seed, run, json } => {
            commands::generate(&model, &input, max_tokens, temperature, seed, &run, json)
        }
        Command::Ppl { model, file, run, json } => commands::ppl(&model, &file, &run, json),
        Command::Score { model, tokens, top_k, run, json } => commands::score(&model, &tokens, top_k, &run, json),
        Command::Bench { model, prompt_tokens, gen_tokens, profile, run, json } => {
            commands::bench(&model, prompt_tokens, gen_tokens, profile, &run, json)
        }
        Command::Chat { model, temperature, seed, max_tokens, system, run } => {
            commands::chat(&model, temperature, seed, max_tokens, system, &run)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
