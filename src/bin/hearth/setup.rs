//! Loading a model for a command: progress bar, backend choice, session.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hearth::backend::Backend;
use hearth::cpu::{CpuBackend, CpuWeights};
use hearth::gpu::{GpuBackend, GpuContext, GpuWeights};
use hearth::model::{LoadProgress, Model};
use hearth::session::Session;
use hearth::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{BackendKind, RunArgs};

fn progress_bar(path: &Path) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("loading {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// [`load_any`] for the commands that make text: an encoder is refused before its weights
/// are read, and so is a context shift for a model without RoPE positions.
pub fn load(path: &Path, run: &RunArgs) -> Result<(Model, Session)> {
    load_text(path, run, None)
}

/// [`load`] for the commands that continue one running text (chat, perplexity, turns): an
/// encoder-decoder, whose text is the answer to an input, is refused too (`what` names the
/// command in the message).
pub fn load_decoder(path: &Path, run: &RunArgs, what: &str) -> Result<(Model, Session)> {
    load_text(path, run, Some(what))
}

fn load_text(path: &Path, run: &RunArgs, decoder_only: Option<&str>) -> Result<(Model, Session)> {
    let config = hearth::model::ModelConfig::from_header(&hearth::model::read_model_header(path)?)?;
    if let Some(what) = decoder_only.filter(|_| config.encoder_decoder) {
        return Err(Error::Unsupported(format!(
            "{what} with {} ({}), an encoder-decoder: use `hearth generate --prompt` or `hearth score --encoder-tokens`",
            path.display(),
            config.architecture
        )));
    }
    if config.encoder {
        return Err(Error::Unsupported(format!(
            "{} is an encoder ({}): it makes embeddings, not text; use `hearth embed`",
            path.display(),
            config.architecture
        )));
    }
    if run.context_shift.is_some() {
        hearth::backend::check_shift_positions(&config)?;
    }
    load_any(path, run)
}

/// Reads the model with a progress bar on stderr and prepares a session on the chosen backend.
pub fn load_any(path: &Path, run: &RunArgs) -> Result<(Model, Session)> {
    if run.ctx == Some(0) {
        return Err(Error::InvalidArgument("--ctx must be at least 1".into()));
    }
    if run.prefill_chunk == 0 {
        return Err(Error::InvalidArgument("--prefill-chunk must be at least 1".into()));
    }
    // Check the file before the (slower) GPU setup so a bad file fails fast and plainly.
    hearth::model::read_model_header(path)?;
    let mut notice = None;
    let gpu = match run.backend {
        BackendKind::Cpu => None,
        BackendKind::Gpu => Some(GpuContext::new()?),
        BackendKind::Auto => match GpuContext::new() {
            // A software renderer (lavapipe, SwiftShader) is slower than the CPU backend;
            // `--backend gpu` still selects it.
            Ok(ctx) if ctx.is_software() => None,
            Ok(ctx) => Some(ctx),
            Err(e) => {
                notice = Some(format!("{e}; running on the CPU"));
                None
            }
        },
    };
    let bar = progress_bar(path);
    let on_progress = |p: LoadProgress| {
        if let Some(total) = p.total {
            bar.set_length(total);
        }
        bar.set_position(p.loaded);
    };
    let result = match gpu {
        Some(ctx) => GpuWeights::load_file(Arc::new(ctx), path, on_progress).and_then(|(model, weights)| {
            let ctx = run.ctx.unwrap_or(model.config().n_ctx_train.min(4096));
            let backend = GpuBackend::new(model.plan.clone(), Arc::new(weights), run.prefill_chunk, ctx)?;
            Ok((model, Box::new(backend) as Box<dyn Backend>))
        }),
        None => CpuWeights::load_file(path, on_progress).map(|(model, weights)| {
            let ctx = run.ctx.unwrap_or(model.config().n_ctx_train);
            let backend = CpuBackend::new(model.plan.clone(), Arc::new(weights), ctx);
            (model, Box::new(backend) as Box<dyn Backend>)
        }),
    };
    bar.finish_and_clear();
    let (model, backend) = result?;
    if let Some(n) = notice {
        eprintln!("notice: {n}");
    }
    let mut session = Session::new(backend, model.config().n_vocab);
    session.context_shift = run.context_shift;
    session.prefill_chunk = run.prefill_chunk;
    Ok((model, session))
}
