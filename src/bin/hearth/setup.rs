//! Loading a model for a command: progress bar, backend choice, session.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hearth::cpu::{CpuBackend, CpuWeights};
use hearth::model::Model;
use hearth::session::Session;
use hearth::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{BackendKind, RunArgs};

/// Reads the model with a progress bar on stderr and prepares a session on the chosen backend.
pub fn load(path: &Path, run: &RunArgs) -> Result<(Model, Session)> {
    if run.backend == BackendKind::Gpu {
        return Err(Error::Unsupported("the GPU backend is not available in this build; use --backend cpu".into()));
    }
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("loading {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    bar.enable_steady_tick(Duration::from_millis(200));
    let loaded = CpuWeights::load_file(path, |p| {
        if let Some(total) = p.total {
            bar.set_length(total);
        }
        bar.set_position(p.loaded);
    });
    bar.finish_and_clear();
    let (model, weights) = loaded?;
    let ctx = run.ctx.unwrap_or(model.config().n_ctx_train);
    if ctx == 0 {
        return Err(Error::InvalidArgument("--ctx must be at least 1".into()));
    }
    let backend = CpuBackend::new(model.plan.clone(), Arc::new(weights), ctx);
    let session = Session::new(Box::new(backend), model.config().n_vocab);
    Ok((model, session))
}
