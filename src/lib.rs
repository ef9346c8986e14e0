//! hearth: an LLM runtime for the web browser, with a native CLI.
//!
//! Data flows through the modules in this order:
//! [`gguf`] (chunk-fed streaming reader) → [`quant`] (block formats) → [`model`]
//! (hyper-parameters, tensor names, the forward plan) → [`cpu`] (a backend executing the plan)
//! → [`session`] (KV cache, prefill/decode) and [`sampler`], with [`tokenizer`] and [`chat`]
//! turning text into token ids and back.

pub mod backend;
pub mod chat;
pub mod cpu;
pub mod error;
pub mod gguf;
pub mod gpu;
pub mod model;
pub mod quant;
pub mod sampler;
pub mod session;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
