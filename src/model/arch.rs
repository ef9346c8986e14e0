//! Architectures as data: the switches that tell one decoder-only transformer from another.
//! Adding an architecture that shares llama's structure is one more table row; what each
//! switch does to the forward pass is in [`super::plan::ForwardPlan::build`].

/// How RoPE pairs up the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    /// ggml's "normal" mode: adjacent pairs (x[2i], x[2i+1]); llama's converted weights.
    Norm,
    /// GPT-NeoX style: pairs (x[i], x[i + d/2]).
    Neox,
}

/// The activation of the gated feed-forward network: `down(act(gate · x) * (up · x))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · sigmoid(x)` (SwiGLU).
    Silu,
    /// GELU in its tanh approximation, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GeGLU).
    GeluTanh,
    /// `max(x, 0)` (T5's plain MLP).
    Relu,
}

/// How a block normalises its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// `x / √(mean(x²) + ε) · w`, ε from `attention.layer_norm_rms_epsilon`.
    Rms,
    /// `(x − mean) / √(var + ε) · w + b` (the bias where the file has one), ε from
    /// `attention.layer_norm_epsilon`.
    Layer,
}

/// How token positions enter the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// Q and K rotated by RoPE.
    Rope,
    /// A learned table (`position_embd`, `context_length` rows) added to the token embeddings:
    /// no context beyond it.
    Learned,
    /// ALiBi: each head adds a fixed slope times the distance to its attention scores (BLOOM;
    /// llama.cpp's maximum bias 8, which the files do not carry).
    Alibi,
    /// T5: each head adds a learned bias for the bucket of the key's position relative to
    /// the query's (`attn_rel_b`, `attention.relative_buckets_count` buckets).
    Relative,
}

/// The feed-forward network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ffn {
    /// `down(act(gate · x) * (up · x))`.
    Gated,
    /// `down(act(up · x + b)) + b` (the biases where the file has them).
    Plain,
}

/// How the attention and feed-forward blocks join the residual stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    /// `x += attn(norm x); x += ffn(norm x)`.
    Sequential,
    /// `x += attn(norm₁ x) + ffn(norm₂ x)` where `use_parallel_residual` says so (GPT-NeoX;
    /// the key is required), else sequential.
    ParallelByKey,
    /// `x += attn(norm x) + ffn(norm x)`: one norm feeds both blocks (Phi-2, Falcon).
    SharedNorm,
    /// Sequential where the layers have an `ffn_norm`, else as `SharedNorm` (StableLM).
    SharedNormWithoutFfnNorm,
    /// `x = norm(x + attn(x)); x = norm(x + ffn(x))`: each block's output joins the residual
    /// stream before its norm (BERT's post-LayerNorm blocks, `attn_output_norm` and
    /// `layer_output_norm`).
    PostNorm,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchSpec {
    /// `general.architecture` value and metadata key prefix.
    pub name: &'static str,
    pub rope: RopeStyle,
    pub act: Activation,
    pub norm: Norm,
    pub positions: Positions,
    pub ffn: Ffn,
    pub residual: Residual,
    /// Q and K are RMS-normed per head before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub qk_norm: bool,
    /// The attention and FFN outputs are RMS-normed before their residual add
    /// (`post_attention_norm`, `post_ffw_norm`): the "sandwich" norms.
    pub post_norms: bool,
    /// Token embeddings are multiplied by √n_embd before the first layer.
    pub embed_scale: bool,
    /// The embeddings are LayerNormed (`token_embd_norm`) before the first layer (BLOOM).
    pub embed_norm: bool,
    /// Sliding-window attention when the file sets `attention.sliding_window`: the default
    /// period P of llama.cpp's pattern (layer `il` is local iff `il % P < P − 1`), used when the
    /// file has no `attention.sliding_window_pattern`. `None`: the architecture has no local
    /// layers (llama.cpp ignores a window for it).
    pub swa_period: Option<usize>,
    /// With 62 layers the attention scale is 1/√(n_embd / n_head) instead of 1/√head_dim
    /// (Gemma 3 27B's `query_pre_attn_scalar`, as llama.cpp decides it).
    pub scale_by_embd_at_62_layers: bool,
    /// A `rope_freqs.weight` tensor (Llama 3.1+ RoPE scaling) divides the RoPE frequencies.
    pub rope_freqs: bool,
    /// An encoder (BERT): every token attends to every token of its input, which is read in
    /// one batch; row 0 of `token_types` joins the embeddings; there is no output head, the
    /// final states are pooled into an embedding.
    pub encoder: bool,
    /// An encoder-decoder (T5): an encoder stack reads the input once; a decoder with
    /// cross-attention over it generates. Tensors `enc.blk.N.*`, `dec.blk.N.*`.
    pub encoder_decoder: bool,
    /// Tensors that files carry and that neither llama.cpp's graph nor the original model
    /// reads, by name or by the part after a `.`: accepted and skipped, not refused.
    pub ignored: &'static [&'static str],
}

const LLAMA: ArchSpec = ArchSpec {
    name: "llama",
    rope: RopeStyle::Norm,
    act: Activation::Silu,
    norm: Norm::Rms,
    positions: Positions::Rope,
    ffn: Ffn::Gated,
    residual: Residual::Sequential,
    qk_norm: false,
    post_norms: false,
    embed_scale: false,
    embed_norm: false,
    swa_period: None,
    scale_by_embd_at_62_layers: false,
    rope_freqs: true,
    encoder: false,
    encoder_decoder: false,
    ignored: &[],
};

// GPT-2 (llama.cpp's src/models/gpt2.cpp): learned positions, LayerNorms with biases, a fused
// QKV projection, a plain GELU (tanh) MLP, biases on every projection. The base of the other
// LayerNorm families.
const GPT2: ArchSpec = ArchSpec {
    name: "gpt2",
    act: Activation::GeluTanh,
    norm: Norm::Layer,
    positions: Positions::Learned,
    ffn: Ffn::Plain,
    rope_freqs: false,
    ..LLAMA
};

// Phi-2 (src/models/phi2.cpp): GPT-NeoX's blocks with one LayerNorm shared by attention and
// the MLP, and a bias on the output head. (llama.cpp scales Q by 1/√head_dim before QKᵀ rather
// than the scores after: the same up to rounding.)
const PHI2: ArchSpec = ArchSpec {
    name: "phi2",
    rope: RopeStyle::Neox,
    positions: Positions::Rope,
    residual: Residual::SharedNorm,
    ..GPT2
};

// BERT (src/models/bert.cpp): an encoder of GPT-2's parts (learned positions, LayerNorms with
// biases, a plain GELU MLP) with a LayerNorm on the embeddings and post-norm blocks.
const BERT: ArchSpec = ArchSpec { name: "bert", residual: Residual::PostNorm, embed_norm: true, encoder: true, ..GPT2 };

const ARCHS: &[ArchSpec] = &[
    LLAMA,
    ArchSpec { name: "mistral", ..LLAMA },
    // Q/K/V biases are read wherever a file has them (llama.cpp treats them as optional in
    // every one of these architectures); Qwen2 files always do.
    ArchSpec { name: "qwen2", rope: RopeStyle::Neox, rope_freqs: false, ..LLAMA },
    // Gemma 3 as llama.cpp computes it (src/models/gemma3.cpp). Where that differs from the
    // paper and the reference implementation: the GGUF's norm weights already hold Gemma's
    // `1 + w` (convert_hf_to_gguf adds the 1), so they are used as stored; GELU is the tanh
    // approximation (gelu_pytorch_tanh) rather than the exact erf form; the attention scale is
    // decided by the layer count, not read from the file (there is no key for
    // query_pre_attn_scalar); local layers use rope.freq_base_swa (default 10,000) and never
    // the file's RoPE scaling; the embedding scale √n_embd is an f32 (HF multiplies by it
    // rounded to the activations' dtype, 25.25 in bf16 against 25.298 here).
    ArchSpec {
        name: "gemma3",
        rope: RopeStyle::Neox,
        act: Activation::GeluTanh,
        qk_norm: true,
        post_norms: true,
        embed_scale: true,
        swa_period: Some(6),
        scale_by_embd_at_62_layers: true,
        rope_freqs: false,
        ..LLAMA
    },
    GPT2,
    // GPT-NeoX / Pythia (src/models/gptneox.cpp): as GPT-2 but RoPE (NEOX pairs, over the first
    // rope.dimension_count dims of each head) instead of a position table, and the parallel
    // residual where the file says so.
    ArchSpec { name: "gptneox", rope: RopeStyle::Neox, positions: Positions::Rope, residual: Residual::ParallelByKey, ..GPT2 },
    // BLOOM (src/models/bloom.cpp): GPT-2's blocks with ALiBi instead of positions and a
    // LayerNorm on the embeddings.
    ArchSpec { name: "bloom", positions: Positions::Alibi, embed_norm: true, ..GPT2 },
    // StarCoder 2 (src/models/starcoder2.cpp): GPT-2's LayerNorms, biases and GELU MLP with
    // NEOX RoPE and grouped KV heads.
    ArchSpec { name: "starcoder2", rope: RopeStyle::Neox, positions: Positions::Rope, ..GPT2 },
    // Phi-3 (src/models/phi3.cpp): llama's blocks with a fused QKV and gate and up fused in
    // ffn_up (gate first), NEOX RoPE. llama.cpp ignores its sliding window (so does this: no
    // swa_period); the 128k models' rope_factors_long/short are not implemented (refused as
    // unknown tensors).
    ArchSpec { name: "phi3", rope: RopeStyle::Neox, rope_freqs: false, ..LLAMA },
    // GLM-4 (src/models/glm4.cpp): llama's blocks with Q/K/V biases, gate and up fused in
    // ffn_up, adjacent-pair RoPE on part of each head, and sandwich norms after attention and
    // MLP.
    ArchSpec { name: "glm4", post_norms: true, rope_freqs: false, ..LLAMA },
    // ChatGLM (src/models/chatglm.cpp): GLM-4's blocks without the sandwich norms, with a
    // fused QKV (and its bias).
    ArchSpec { name: "chatglm", rope_freqs: false, ..LLAMA },
    PHI2,
    // Falcon (src/models/falcon.cpp): as Phi-2 (multi-query attention through
    // head_count_kv), without biases.
    ArchSpec { name: "falcon", ..PHI2 },
    // StableLM 2 (src/models/stablelm.cpp): LayerNorms, NEOX RoPE on part of each head, a
    // SwiGLU MLP; sequential where layers have ffn_norm, else one norm shared in parallel.
    ArchSpec {
        name: "stablelm",
        rope: RopeStyle::Neox,
        norm: Norm::Layer,
        residual: Residual::SharedNormWithoutFfnNorm,
        rope_freqs: false,
        ..LLAMA
    },
    BERT,
    // Nomic BERT (nomic-embed-text; the same graph): BERT with NEOX RoPE over the whole head
    // instead of a position table, a fused QKV and a SwiGLU MLP.
    ArchSpec { name: "nomic-bert", rope: RopeStyle::Neox, positions: Positions::Rope, ffn: Ffn::Gated, act: Activation::Silu, ..BERT },
    // T5 (src/models/t5.cpp): pre-norm RMSNorm blocks with relative position biases and
    // attention scores unscaled (1, not 1/√head_dim); a ReLU MLP, or (flan-T5, where the file
    // has ffn_gate) a gated GELU one, as the config decides; no biases anywhere.
    // The original T5 checkpoints carry a relative bias table for the decoder's first
    // cross-attention that T5 itself never uses (llama.cpp loads and skips it too).
    ArchSpec {
        name: "t5",
        positions: Positions::Relative,
        ffn: Ffn::Plain,
        act: Activation::Relu,
        encoder_decoder: true,
        rope_freqs: false,
        ignored: &["cross_attn_rel_b.weight"],
        ..LLAMA
    },
    // T5's encoder alone (src/models/t5encoder.cpp: T5 v1.1 and flan-T5 text encoders), for
    // embeddings: the `enc.*` stack and its output norm; an output head the file may carry is
    // never read.
    ArchSpec {
        name: "t5encoder",
        positions: Positions::Relative,
        ffn: Ffn::Plain,
        act: Activation::Relu,
        encoder: true,
        rope_freqs: false,
        ignored: &["output.weight"],
        ..LLAMA
    },
];

impl ArchSpec {
    pub fn lookup(name: &str) -> Option<&'static ArchSpec> {
        ARCHS.iter().find(|a| a.name == name)
    }

    pub fn supported_names() -> Vec<&'static str> {
        ARCHS.iter().map(|a| a.name).collect()
    }
}

/// GGUF tensor names of the llama family.
pub mod names {
    pub const TOKEN_EMBD: &str = "token_embd.weight";
    /// BLOOM's LayerNorm of the embeddings.
    pub const TOKEN_EMBD_NORM: &str = "token_embd_norm.weight";
    /// GPT-2's learned position table.
    pub const POSITION_EMBD: &str = "position_embd.weight";
    pub const OUTPUT_NORM: &str = "output_norm.weight";
    /// T5's final norms of the encoder and the decoder.
    pub const ENC_OUTPUT_NORM: &str = "enc.output_norm.weight";
    pub const DEC_OUTPUT_NORM: &str = "dec.output_norm.weight";
    pub const OUTPUT: &str = "output.weight";
    /// Phi-2's output head bias.
    pub const OUTPUT_BIAS: &str = "output.bias";
    /// BERT's token type (segment) embeddings: row 0, sentence A, joins every token.
    pub const TOKEN_TYPES: &str = "token_types.weight";
    /// Llama 3.1+ RoPE frequency divisors, one per rotated pair.
    pub const ROPE_FREQS: &str = "rope_freqs.weight";

    pub fn layer(i: usize, what: &str) -> String {
        format!("blk.{i}.{what}.weight")
    }
}
