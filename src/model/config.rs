//! Hyper-parameters, read from GGUF metadata with errors that name the missing key. A key that
//! would change the math in a way this engine does not implement is refused by name rather
//! than ignored: a model is run exactly or not at all.

use super::arch::{Activation, ArchSpec, Ffn, Norm, Positions, Residual};
use super::rope::{RopeSpec, Yarn};
use crate::gguf::{GgufHeader, Metadata};
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
    /// ε of the norms (RMSNorm or LayerNorm, as `norm` says).
    pub rms_eps: f32,
    pub norm: Norm,
    pub positions: Positions,
    pub ffn: Ffn,
    /// `x + attn(norm₁ x) + ffn(norm₂ x)` instead of one block after the other.
    pub parallel_residual: bool,
    /// With the parallel residual, one norm (`attn_norm`) feeds both blocks.
    pub shared_norm: bool,
    /// RoPE of every layer without a sliding window.
    pub rope: RopeSpec,
    /// RoPE of the sliding-window layers (their own base, never the file's scaling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_local: Option<RopeSpec>,
    /// Per layer, how many positions a query sees (its own and the `window − 1` before it);
    /// 0 for full causal attention.
    pub windows: Vec<usize>,
    /// Attention logits are `q · k · attn_scale`.
    pub attn_scale: f32,
    pub activation: Activation,
    /// ALiBi slopes (BLOOM), instead of RoPE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alibi: Option<Alibi>,
    /// The embeddings are LayerNormed before the first layer (BLOOM).
    pub embed_norm: bool,
    /// Token embeddings are multiplied by this before the first layer (gemma3: √n_embd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed_scale: Option<f32>,
    /// Q and K are RMS-normed per head before RoPE.
    pub qk_norm: bool,
    /// Attention and FFN outputs are RMS-normed before their residual add.
    pub post_norms: bool,
    /// The output head reuses `token_embd` (no `output.weight` in the file).
    pub tied_output: bool,
    /// Post-norm blocks: `x = norm(x + block(x))` (BERT).
    pub post_norm: bool,
    /// An encoder: bidirectional attention over one batch, no output head (BERT).
    pub encoder: bool,
    /// How [`Session::embed`](crate::session::Session::embed) pools the final states into one
    /// vector: `{arch}.pooling_type` where the file has it, else the mean.
    pub pooling: Pooling,
    /// An encoder-decoder (T5): `n_layer` counts the decoder's blocks, `n_layer_enc` the
    /// encoder's.
    pub encoder_decoder: bool,
    pub n_layer_enc: usize,
    /// T5's relative-position buckets (0 without).
    pub rel_buckets: usize,
    /// The token an encoder-decoder's decoder starts from (`decoder_start_token_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder_start: Option<u32>,
}

/// How token states become one sentence embedding (llama.cpp's `llama_pooling_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over every token (1; also for `none`, 0, and a file without the key).
    Mean,
    /// The first token's state ([CLS]) (2).
    Cls,
    /// The last token's state (3).
    Last,
    /// A reranker's score from a classifier head (4): not implemented; embeddings refuse it.
    Rank,
}

impl Pooling {
    /// `{arch}.pooling_type`: none (0) and mean (1) pool by the mean, CLS (2) takes the first
    /// token, last (3) the last; a reranker's rank pooling (4) needs a classifier head this
    /// engine does not have, which refuses an encoder (it has nothing else to do) and only the
    /// embeddings of a decoder.
    fn from_metadata(md: &Metadata, arch: &str, encoder: bool) -> Result<Self> {
        let key = format!("{arch}.pooling_type");
        Ok(match md.get_i64(&key)? {
            None | Some(0) | Some(1) => Pooling::Mean,
            Some(2) => Pooling::Cls,
            Some(3) => Pooling::Last,
            Some(4) if encoder => return Err(Error::Unsupported(format!("rank pooling, a reranker's classifier head ({key} = 4)"))),
            Some(4) => Pooling::Rank,
            Some(v) => return Err(Error::Model(format!("{key} = {v} is not a pooling type (0-4)"))),
        })
    }
}

/// llama.cpp's ALiBi maximum bias for BLOOM (set in code; GGUF files do not carry it).
const ALIBI_MAX_BIAS: f32 = 8.0;

/// ALiBi's per-head slopes as llama.cpp computes them: `heads` is the largest power of two ≤
/// n_head; head h < heads has slope m0^(h+1), the others m1^(2(h − heads) + 1).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Alibi {
    pub heads: usize,
    pub m0: f32,
    pub m1: f32,
}

impl Alibi {
    fn new(n_head: usize, max_bias: f32) -> Self {
        let heads = 1usize << n_head.ilog2();
        Alibi { heads, m0: 2f32.powf(-max_bias / heads as f32), m1: 2f32.powf(-(max_bias / 2.0) / heads as f32) }
    }

    /// Head `h`'s slope.
    pub fn slope(&self, h: usize) -> f32 {
        if h < self.heads {
            self.m0.powi(h as i32 + 1)
        } else {
            self.m1.powi(2 * (h - self.heads) as i32 + 1)
        }
    }
}

/// Keys that change the forward pass in ways this engine does not implement, as `(key suffix,
/// what it is, the values that leave the math unchanged)`: any other value is refused.
const REFUSED: &[(&str, &str, &[f64])] = &[
    ("expert_count", "mixture of experts", &[0.0]),
    ("attn_logit_softcapping", "attention logit soft-capping", &[0.0]),
    ("final_logit_softcapping", "final logit soft-capping", &[0.0]),
    ("logit_scale", "logit scaling", &[0.0, 1.0]),
    ("residual_scale", "residual scaling", &[0.0, 1.0]),
    ("embedding_scale", "embedding scaling", &[0.0, 1.0]),
    ("attention.scale", "a custom attention scale", &[0.0]),
    ("attention.output_scale", "attention output scaling", &[0.0, 1.0]),
    ("attention.value_scale", "attention value scaling", &[0.0, 1.0]),
    ("attention.temperature_scale", "attention temperature scaling", &[0.0]),
    ("attention.clamp_kqv", "Q/K/V clamping", &[0.0]),
    ("swiglu_clamp_exp", "SwiGLU clamping", &[0.0]),
    ("rope.dimension_sections", "multi-section RoPE", &[]),
    ("nextn_predict_layers", "multi-token prediction layers", &[0.0]),
    ("rope.scaling.yarn_log_multiplier", "YaRN with a log multiplier", &[0.0]),
];

impl ModelConfig {
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// The RoPE variant of layer `l`.
    pub fn layer_rope(&self, l: usize) -> &RopeSpec {
        match (&self.rope_local, self.windows[l]) {
            (Some(local), w) if w > 0 => local,
            _ => &self.rope,
        }
    }

    /// The RoPE variants in use: the global one first, then the local one if any.
    pub fn ropes(&self) -> Vec<&RopeSpec> {
        std::iter::once(&self.rope).chain(&self.rope_local).collect()
    }

    /// Index into [`ropes`](Self::ropes) of layer `l`'s variant.
    pub fn layer_rope_index(&self, l: usize) -> usize {
        usize::from(self.rope_local.is_some() && self.windows[l] > 0)
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
        let opt = |k: &str| -> Result<Option<usize>> {
            Ok(match md.get_u64(&key(k))? {
                Some(_) => Some(req(k)?),
                None => None,
            })
        };
        refuse_unimplemented(md, arch_name)?;
        // An encoder's attention is bidirectional whatever the key says (llama.cpp's encode);
        // a decoder with bidirectional attention is not implemented.
        if !spec.encoder && md.get_bool(&key("attention.causal"))? == Some(false) {
            return Err(Error::Unsupported(format!("bidirectional attention in a decoder ({} = false)", key("attention.causal"))));
        }
        let pooling = Pooling::from_metadata(md, arch_name, spec.encoder)?;
        let n_embd = req("embedding_length")?;
        // T5: block_count is the encoder's, decoder_block_count (default the same) the decoder's.
        let n_layer_enc = if spec.encoder_decoder { req("block_count")? } else { 0 };
        let n_layer = if spec.encoder_decoder { opt("decoder_block_count")?.unwrap_or(n_layer_enc) } else { req("block_count")? };
        let n_head = req("attention.head_count")?;
        let n_head_kv = opt("attention.head_count_kv")?.unwrap_or(n_head);
        let n_ff = req("feed_forward_length")?;
        let n_ctx_train = req("context_length")?;
        let head_dim = opt("attention.key_length")?.unwrap_or(n_embd / n_head);
        let value_dim = opt("attention.value_length")?.unwrap_or(head_dim);
        let rope_dim = opt("rope.dimension_count")?.unwrap_or(head_dim);
        for (k, v) in [("attention.key_length_swa", head_dim), ("attention.value_length_swa", head_dim), ("rope.dimension_count_swa", rope_dim)] {
            if opt(k)?.is_some_and(|x| x != v) {
                return Err(Error::Unsupported(format!("{} differing from the other layers' ({v})", key(k))));
            }
        }
        let eps_key = match spec.norm {
            Norm::Rms => "attention.layer_norm_rms_epsilon",
            Norm::Layer => "attention.layer_norm_epsilon",
        };
        let rms_eps = md.require_f64(&key(eps_key))? as f32;
        let base = md.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0);
        if value_dim != head_dim {
            return Err(Error::Unsupported(format!("value heads of {value_dim} dims with key heads of {head_dim}")));
        }
        if n_head % n_head_kv != 0 || rope_dim > head_dim || rope_dim % 2 != 0 || (spec.name == "llama" && rope_dim != head_dim) {
            return Err(Error::Model(format!(
                "inconsistent attention shape: {n_head} heads, {n_head_kv} KV heads, head size {head_dim}, \
                 rope dims {rope_dim}, embedding {n_embd}"
            )));
        }
        if !(rms_eps > 0.0 && rms_eps < 1.0 && base > 0.0 && base.is_finite()) {
            return Err(Error::Model(format!("bad norm epsilon {rms_eps} or rope base {base}")));
        }
        let rope = global_rope(md, arch_name, rope_dim, spec, base, n_ctx_train)?;
        let (parallel_residual, shared_norm) = match spec.residual {
            Residual::Sequential => (false, false),
            Residual::ParallelByKey => {
                let parallel = md.get_bool(&key("use_parallel_residual"))?.ok_or_else(|| {
                    Error::Model(format!("metadata key {:?} is missing", key("use_parallel_residual")))
                })?;
                (parallel, false)
            }
            Residual::SharedNorm => (true, true),
            Residual::SharedNormWithoutFfnNorm => {
                let shared = h.tensor(&super::arch::names::layer(0, "ffn_norm")).is_none();
                (shared, shared)
            }
            Residual::PostNorm => (false, false),
        };

        // Sliding-window layers, the way llama.cpp lays them out.
        let window = match spec.swa_period {
            Some(_) => md.get_u64(&key("attention.sliding_window"))?.unwrap_or(0) as usize,
            None => 0,
        };
        let (windows, rope_local) = if window > 0 {
            let local = local_layers(md, arch_name, n_layer, spec.swa_period.unwrap_or(0))?;
            let base_swa = md.get_f64(&key("rope.freq_base_swa"))?.unwrap_or(10_000.0);
            if !(base_swa > 0.0 && base_swa.is_finite()) {
                return Err(Error::Model(format!("bad {} {base_swa}", key("rope.freq_base_swa"))));
            }
            let windows = local.iter().map(|&l| if l { window } else { 0 }).collect();
            (windows, Some(RopeSpec::plain(rope_dim, spec.rope, base_swa)))
        } else {
            (vec![0; n_layer], None)
        };
        let attn_scale = if spec.positions == Positions::Relative {
            1.0
        } else if spec.scale_by_embd_at_62_layers && n_layer == 62 {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        let embd = h
            .tensor(super::arch::names::TOKEN_EMBD)
            .ok_or_else(|| Error::Model(format!("tensor {:?} is missing", super::arch::names::TOKEN_EMBD)))?;
        let n_vocab = embd.rows_cols().0;
        // T5's MLP: gated GELU where the file has a gate (flan-T5, T5 v1.1), else ReLU.
        let gated = spec.positions == Positions::Relative && h.tensor("enc.blk.0.ffn_gate.weight").is_some();
        let (ffn, activation) = if gated { (Ffn::Gated, Activation::GeluTanh) } else { (spec.ffn, spec.act) };
        let rel_buckets = if spec.positions == Positions::Relative { req("attention.relative_buckets_count")? } else { 0 };
        if spec.positions == Positions::Relative && !(4..=4096).contains(&rel_buckets) {
            return Err(Error::Model(format!("{} = {rel_buckets}: expected 4 to 4096", key("attention.relative_buckets_count"))));
        }
        let decoder_start = match md.get_u64(&key("decoder_start_token_id"))? {
            Some(id) if (id as usize) < n_vocab => Some(id as u32),
            Some(id) => return Err(Error::Model(format!("{} = {id} is outside the vocabulary", key("decoder_start_token_id")))),
            None => None,
        };
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
            norm: spec.norm,
            positions: spec.positions,
            ffn,
            parallel_residual,
            shared_norm,
            alibi: (spec.positions == Positions::Alibi).then(|| Alibi::new(n_head, ALIBI_MAX_BIAS)),
            embed_norm: spec.embed_norm,
            rope,
            rope_local,
            windows,
            attn_scale,
            activation,
            embed_scale: spec.embed_scale.then(|| (n_embd as f32).sqrt()),
            qk_norm: spec.qk_norm,
            post_norms: spec.post_norms,
            tied_output: h.tensor(super::arch::names::OUTPUT).is_none(),
            post_norm: spec.residual == Residual::PostNorm,
            encoder: spec.encoder,
            pooling,
            encoder_decoder: spec.encoder_decoder,
            n_layer_enc,
            rel_buckets,
            decoder_start,
        })
    }
}

/// Fails on the first key of [`REFUSED`] present with a value that changes the math.
fn refuse_unimplemented(md: &Metadata, arch: &str) -> Result<()> {
    for (suffix, what, neutral) in REFUSED {
        let key = format!("{arch}.{suffix}");
        let Some(v) = md.get(&key) else { continue };
        let value = v.as_f64().or_else(|| v.as_bool().map(|b| b as u8 as f64));
        if !value.is_some_and(|x| neutral.contains(&x)) {
            let shown = value.map_or_else(|| v.type_name().to_string(), |x| x.to_string());
            return Err(Error::Unsupported(format!("{what} ({key} = {shown})")));
        }
    }
    Ok(())
}

/// The RoPE of the global layers: the file's base, frequency factors (filled in when
/// `rope_freqs.weight` arrives) and scaling.
fn global_rope(md: &Metadata, arch: &str, dims: usize, spec: &ArchSpec, base: f64, n_ctx_train: usize) -> Result<RopeSpec> {
    let key = |k: &str| format!("{arch}.{k}");
    let mut rope = RopeSpec::plain(dims, spec.rope, base);
    let kind = md.get_str(&key("rope.scaling.type"))?.unwrap_or("linear");
    let factor = match md.get_f64(&key("rope.scaling.factor"))? {
        Some(f) => f,
        None => md.get_f64(&key("rope.scale_linear"))?.unwrap_or(0.0),
    };
    if !(factor == 0.0 || (factor.is_finite() && factor > 0.0)) {
        return Err(Error::Model(format!("bad {} {factor}", key("rope.scaling.factor"))));
    }
    rope.attn_factor = md.get_f64(&key("rope.scaling.attn_factor"))?.unwrap_or(1.0);
    if !(rope.attn_factor.is_finite() && rope.attn_factor > 0.0) {
        return Err(Error::Model(format!("bad {} {}", key("rope.scaling.attn_factor"), rope.attn_factor)));
    }
    let freq_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
    match kind {
        "none" => {}
        "linear" => rope.freq_scale = freq_scale,
        "yarn" => {
            rope.freq_scale = freq_scale;
            let orig = md.get_u64(&key("rope.scaling.original_context_length"))?.unwrap_or(n_ctx_train as u64);
            rope.yarn = Some(Yarn { ext_factor: 1.0, orig_ctx: orig.max(1) as f64, beta_fast: 32.0, beta_slow: 1.0 });
        }
        other => {
            return Err(Error::Unsupported(format!("RoPE scaling type {other:?} ({}; supported: none, linear, yarn)", key("rope.scaling.type"))))
        }
    }
    Ok(rope)
}

/// Which layers use the sliding window: `attention.sliding_window_pattern` as an array of
/// flags, or a period P (layer `il` is local iff `il % P < P − 1`; 0 makes every layer local),
/// defaulting to the architecture's period.
fn local_layers(md: &Metadata, arch: &str, n_layer: usize, default_period: usize) -> Result<Vec<bool>> {
    let key = format!("{arch}.attention.sliding_window_pattern");
    if let Some(flags) = md.get_array_of(&key, "bool", |v| v.as_bool())? {
        if flags.len() < n_layer {
            return Err(Error::Model(format!("{key} has {} entries for {n_layer} layers", flags.len())));
        }
        return Ok(flags[..n_layer].to_vec());
    }
    let period = md.get_u64(&key)?.map_or(default_period, |p| p as usize);
    Ok((0..n_layer).map(|il| period == 0 || il % period < period - 1).collect())
}
