//! Hyper-parameters, read from GGUF metadata with errors that name the missing key.

use super::arch::{ArchSpec, RopeStyle};
use crate::gguf::GgufHeader;
use crate::{Error, Result};

#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelConfig {
    pub architecture: String,
    pub name: Option<String>,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub rms_eps: f32,
    pub rope_theta: f32,
    pub rope_dim: usize,
    pub rope_style: RopeStyle,
    /// The output head reuses `token_embd` (no `output.weight` in the file).
    pub tied_output: bool,
}

impl ModelConfig {
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// RoPE `[cos, sin]` for positions `start..start + n`, `rope_dim / 2` frequencies each,
    /// computed in f64 so every backend rotates by the same f32 values.
    pub fn rope_cos_sin(&self, start: usize, n: usize) -> Vec<[f32; 2]> {
        let half = self.rope_dim / 2;
        let mut out = Vec::with_capacity(n * half);
        for p in start..start + n {
            for i in 0..half {
                let freq = (self.rope_theta as f64).powf(-2.0 * i as f64 / self.rope_dim as f64);
                let (s, c) = (p as f64 * freq).sin_cos();
                out.push([c as f32, s as f32]);
            }
        }
        out
    }

    pub fn from_header(h: &GgufHeader) -> Result<Self> {
        let md = &h.metadata;
        let arch_name = md.require_str("general.architecture")?;
        let spec = ArchSpec::lookup(arch_name).ok_or_else(|| {
            Error::Unsupported(format!(
                "architecture {arch_name:?} (supported: {})",
                ArchSpec::supported_names().join(", ")
            ))
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let req = |k: &str| -> Result<usize> {
            let v = md.require_u64(&key(k))?;
            usize::try_from(v).ok().filter(|&v| v > 0 && v <= 1 << 24).ok_or_else(|| {
                Error::Model(format!("{} = {v} is out of range", key(k)))
            })
        };
        let n_embd = req("embedding_length")?;
        let n_layer = req("block_count")?;
        let n_head = req("attention.head_count")?;
        let n_head_kv = match md.get_u64(&key("attention.head_count_kv"))? {
            Some(_) => req("attention.head_count_kv")?,
            None => n_head,
        };
        let n_ff = req("feed_forward_length")?;
        let n_ctx_train = req("context_length")?;
        let head_dim = match md.get_u64(&key("attention.key_length"))? {
            Some(_) => req("attention.key_length")?,
            None => n_embd / n_head,
        };
        let rope_dim = match md.get_u64(&key("rope.dimension_count"))? {
            Some(_) => req("rope.dimension_count")?,
            None => head_dim,
        };
        let rms_eps = md.require_f64(&key("attention.layer_norm_rms_epsilon"))? as f32;
        let rope_theta = md.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        if n_head % n_head_kv != 0 || n_head * head_dim != n_embd || rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(Error::Model(format!(
                "inconsistent attention shape: {n_head} heads, {n_head_kv} KV heads, head size {head_dim}, \
                 rope dims {rope_dim}, embedding {n_embd}"
            )));
        }
        if !(rms_eps > 0.0 && rms_eps < 1.0 && rope_theta > 0.0 && rope_theta.is_finite()) {
            return Err(Error::Model(format!("bad norm epsilon {rms_eps} or rope base {rope_theta}")));
        }
        let embd = h
            .tensor(super::arch::names::TOKEN_EMBD)
            .ok_or_else(|| Error::Model(format!("tensor {:?} is missing", super::arch::names::TOKEN_EMBD)))?;
        let n_vocab = embd.dims.get(1).copied().unwrap_or(0) as usize;
        Ok(Self {
            architecture: arch_name.to_string(),
            name: md.get_str("general.name")?.map(str::to_string),
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            rms_eps,
            rope_theta,
            rope_dim,
            rope_style: spec.rope,
            tied_output: h.tensor(super::arch::names::OUTPUT).is_none(),
        })
    }
}
