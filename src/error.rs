//! The crate-wide error type. Every fallible public API returns [`Result`]; nothing panics on
//! bad input (model files, token ids, templates, text).

use crate::gguf::GgufError;

/// The browser API derives its stable error codes from the first words of these messages
/// (`www/worker.js`'s `codeOf`): keep `context_length_exceeded:` and `gpu_lost:` where they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid GGUF file: {0}")]
    Gguf(#[from] GgufError),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// No usable GPU, or the GPU failed (a validation or out-of-memory error, a readback error).
    #[error("GPU: {0}")]
    Gpu(String),
    /// The GPU device was lost (the browser reset it, the driver crashed, it was destroyed): the
    /// engine cannot continue; load the model again.
    #[error("gpu_lost: the GPU device was lost ({0}); load the model again")]
    GpuLost(String),
    #[error("invalid model: {0}")]
    Model(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("context_length_exceeded: {needed} tokens do not fit in the context of {limit}")]
    ContextLengthExceeded { needed: usize, limit: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bad `response_format`, or a grammar that failed mid-reply: the caller's input.
impl From<hearth_grammar::Error> for Error {
    fn from(e: hearth_grammar::Error) -> Self {
        Error::InvalidArgument(e.0)
    }
}
