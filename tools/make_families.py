#!/usr/bin/env python3
"""Synthetic GGUF models of several decoder families, two encoders (BERT, nomic-bert) and one encoder-decoder (T5),
with reference logits (decoders, T5) or embeddings (encoders) from llama.cpp and from an independent float64 numpy
forward pass.

For each entry of FAMILIES (llama.cpp architectures gpt2, gptneox, bloom, phi2, falcon, stablelm, starcoder2, phi3,
glm4, chatglm, bert, nomic-bert, t5, and the variants gptneox-seqres: gptneox with use_parallel_residual = false,
bert-cls: bert with pooling_type CLS, and flan-t5: t5 with a gated-GELU FFN and a relative bias table in every
block) this writes

    OUT/<arch>/<stem>-f32.gguf    every tensor F32
    OUT/<arch>/<stem>-q8_0.gguf   2-D weight matrices Q8_0 (gguf.quants.quantize), norms/biases/position table and
                                  token type table F32
    OUT/<arch>/<stem>-f32.json    reference logits (encoder: embeddings) for a fixed 24-token sequence (see below)
    OUT/<arch>/<stem>-q8_0.json

where stem is the entry's name (the architecture itself, except for variants). Both files of an entry hold the same
random weights (seeded numpy RNG); the Q8_0 file is the F32 one with its
matrices quantized. The vocabulary is the first 512 tokens of a gpt2-BPE donor GGUF (SmolLM2-135M-Instruct) with the
merges that stay inside it.

Reference JSON: `ids` (24 random ids, seeded, no BOS), `llamacpp_logits` (llama-cpp-python, one llama_decode batch,
logits_all, n_ctx 128, F32 K/V cache, flash attention off, no extra CPU weight buffers), `f64_logits` (the float64
forward below, on the weights read back from the GGUF with gguf-py and dequantized with gguf.quants.dequantize), and
`agreement` (centered RMS and max abs of llamacpp - f64 over all positions; centered = each row's mean difference
subtracted). `diagnostics` scores llama.cpp against float64 variants that imitate two known ggml CPU roundings
(GELU through its float16 lookup table; activations rounded to Q8_0 blocks before a Q8_0 matmul), which shows where
the remaining difference comes from; the reference itself is the exact float64 forward.

The encoders (bert, bert-cls, nomic-bert) have their own WordPiece vocabulary (bert_vocab, 512 entries) instead of the
donor's, and their JSON holds embeddings instead of logits: `ids` ([CLS], 22 seeded ids, [SEP]), `llamacpp_embedding`
(the pooled vector from llama_get_embeddings_seq with the file's pooling type, not normalised) and its L2-normalised
form, `llamacpp_token_states` (pooling NONE: the final hidden state of every token), `f64_token_states`,
`f64_embedding_mean` / `f64_embedding_cls` (and `_normalized`), `agreement` (max abs, RMS, cosine), and
`tokenize_cases` (TOKENIZE_TEXTS tokenized by llama.cpp with add_special, checked against wpm_tokenize).

T5 (t5, flan-t5; directory t5/) has a SentencePiece Unigram vocabulary trained here with the sentencepiece package
(t5_spm_model, written as t5/t5-spm.model) and a JSON with `encoder_ids` (24, the last </s>), `decoder_ids` (20, the
first decoder_start_token_id 0), teacher-forced `llamacpp_logits` (llama_encode, then one llama_decode of all
decoder ids) and `f64_logits` (forward_t5), the encoder output (`llamacpp_encoder_states`, `f64_encoder_states`),
`relative_buckets` (llama.cpp's bucket for relative positions -130..130 in both modes), `mistakes` (the float64
forward with one switch wrong), `tokenize_cases` (T5_TOKENIZE_TEXTS by llama.cpp, with SentencePiece's and an HF
`tokenizers` Unigram's ids where they differ) and `greedy` (T5_GREEDY_TEXT tokenized by llama.cpp, 12 ids decoded
greedily by llama.cpp through its KV cache and by the float64 forward, and the float64 top-1 minus top-2 margins).
Needs sentencepiece and tokenizers as well (sentencepiece 0.2.3 for the same t5-spm.model bytes).

Each architecture has one function writing its tensor layout (`tensors_<arch>`) and one float64 forward
(`forward_<arch>`), following llama.cpp's load_arch_tensors / graph in src/models/<arch>.cpp of the llama.cpp
vendored in llama-cpp-python 0.3.36. They share the LayerNorm / RMSNorm / GELU / SwiGLU / attention / RoPE helpers.

Usage (the donor is the default model of this repository):
  OPENBLAS_NUM_THREADS=1 python tools/make_families.py --donor models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --out tests/fixtures/families [--arch gpt2,gptneox,bloom,phi2,falcon,stablelm,gptneox-seqres,starcoder2,phi3,glm4,
      chatglm,bert,bert-cls,nomic-bert,t5,flan-t5]
Needs numpy, gguf (gguf-py) and llama-cpp-python 0.3.36; --no-llama skips llama.cpp (f64 logits only; no tokenization
cases).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import sys
from dataclasses import dataclass

import numpy as np
import gguf
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as QT, LlamaFileType
from gguf.quants import dequantize, quantize

SEED = 1234
N_IDS = 24
GENERATOR = ("OPENBLAS_NUM_THREADS=1 python tools/make_families.py --donor models/SmolLM2-135M-Instruct.Q4_1.gguf "
             "--out tests/fixtures/families")
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"  # vendor/llama.cpp in the llama-cpp-python 0.3.36 sdist


# ============================================================================ hyperparameters
@dataclass
class HParams:
    arch: str
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 0           # 0: n_head
    n_layer: int = 2
    n_ff: int = 256
    n_ctx: int = 128
    n_vocab: int = 512
    eps: float = 1e-5            # {arch}.attention.layer_norm_epsilon (norm "layer") or layer_norm_rms_epsilon ("rms")
    n_rot: int = 0               # {arch}.rope.dimension_count (0: no RoPE)
    rope_base: float = 10000.0   # llama.cpp's default; written as rope.freq_base only with base_key
    par_res: bool = False        # gptneox: {arch}.use_parallel_residual
    tied: bool = False           # no output.weight: the logits use token_embd
    pre: str = "gpt-2"           # tokenizer.ggml.pre
    norm: str = "layer"          # "layer": LayerNorm with bias (LLM_NORM); "rms": RMSNorm, weight only (LLM_NORM_RMS)
    rope_mode: str = "NEOX"      # llama_model_rope_type: "NEOX" (pairs (i, i + n_rot/2)) or "NORM" (pairs (2i, 2i+1))
    rot_key: bool = True         # write rope.dimension_count (False: absent, llama.cpp's default head_dim applies)
    base_key: bool = False       # write rope.freq_base
    swa: int | None = None       # {arch}.attention.sliding_window, written when not None
    name: str = ""               # general.name is synthetic-<name>-<type>; "" = the stem
    pooling: int | None = None   # encoders: {arch}.pooling_type (llama_pooling_type: 1 MEAN, 2 CLS)
    n_token_types: int = 0       # encoders: tokenizer.ggml.token_type_count and the token_types table rows
    seed_of: str = ""            # draw the weights and ids of this stem ("" = the stem itself)
    kv_key: bool = True          # write {arch}.attention.head_count_kv (False: absent, llama.cpp's default n_head)
    n_dec_layer: int = 0         # t5: {arch}.decoder_block_count
    rel_buckets: int = 0         # t5: {arch}.attention.relative_buckets_count
    ffn: str = ""                # t5: "relu" (ffn_up, ffn_down) or "geglu" (ffn_gate present: gated GELU)
    rel_b_every_layer: bool = False  # t5: attn_rel_b in every block (False: block 0 only, as real T5 files)
    dec_start: int = 0           # t5: {arch}.decoder_start_token_id

    def __post_init__(self):
        self.n_head_kv = self.n_head_kv or self.n_head

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


FAMILIES = {
    # GPT-2: learned absolute positions, no RoPE, output tied to token_embd (as GPT-2 ties them).
    "gpt2": HParams("gpt2", tied=True),
    # GPT-NeoX (Pythia): NEOX RoPE on the first rotary_pct = 0.25 of each head (n_rot 4 of head_dim 16),
    # parallel residual.
    "gptneox": HParams("gptneox", n_rot=4, par_res=True),
    # BLOOM: ALiBi. 6 heads: not a power of two, so llama.cpp's second slope series (heads 4, 5) is used.
    # n_embd 96 is the smallest multiple of the Q8_0 block (32) with a non-power-of-two divisor (32 and 64 have
    # none); head_dim 16. n_ff 128 and a tied output keep the F32 file under 1 MB.
    "bloom": HParams("bloom", n_embd=96, n_head=6, n_ff=128, tied=True),
    # Phi-2: NEOX RoPE on n_rot 8 of head_dim 16, one shared LayerNorm for attention and FFN (parallel), separate
    # Q/K/V with biases (as convert_hf_to_gguf writes PhiForCausalLM), output bias.
    "phi2": HParams("phi2", n_rot=8, pre="phi-2"),
    # Falcon (7B style): multi-query attention (n_head_kv 1) in a fused QKV without bias, NEOX RoPE over the whole
    # head, one LayerNorm feeding attention and FFN in parallel, no biases on any matrix.
    "falcon": HParams("falcon", n_head_kv=1, n_rot=16, pre="falcon"),
    # StableLM (2 1.6B style): separate Q/K/V with biases, no attn_output bias, NEOX RoPE on rotary 0.25 (n_rot 4),
    # sequential residual (ffn_norm present), SwiGLU FFN without biases. n_ff 192 keeps the F32 file small.
    "stablelm": HParams("stablelm", n_rot=4, n_ff=192, pre="stablelm2"),
    # GPT-NeoX with use_parallel_residual = false (the other branch of llm_build_gptneox), written as
    # gptneox/gptneox-seqres-*.
    "gptneox-seqres": HParams("gptneox", n_rot=4, par_res=False),
    # StarCoder2: LayerNorm, separate Q/K/V with biases, GQA (2 KV heads), NEOX RoPE over the whole head (the graph
    # asserts n_rot == head_dim; the converter writes no rope.dimension_count key, so none is written here),
    # rope.freq_base 1e5 (StarCoder2-15B's rope_theta), GELU FFN with biases, attn_output bias, tied output.
    "starcoder2": HParams("starcoder2", n_head_kv=2, n_rot=16, rope_base=100000.0, rot_key=False, base_key=True,
                          tied=True, pre="starcoder"),
    # Phi-3 (mini style): RMSNorm, fused attn_qkv without bias, NEOX RoPE over the whole head, fused gate+up in one
    # ffn_up of 2 n_ff rows (SwiGLU), no biases; no rope scaling keys or rope_factors tensors; sliding_window 0.
    # general.name avoids "phi3" / "phi-3": llama.cpp's vocab loader then sets Phi-3 token attributes and looks up
    # "</s>", "<unk>", "<s>", "<|endoftext|>" with unordered_map::at, which fails on this vocabulary.
    "phi3": HParams("phi3", n_rot=16, norm="rms", base_key=True, swa=0, pre="default", name="phi_3"),
    # GLM-4-0414: RMSNorm before and after attention and FFN, separate Q/K/V with biases, GQA (2 KV heads), NORM
    # (adjacent-pair) RoPE on half the head (partial_rotary_factor 0.5: n_rot 8), fused gate+up SwiGLU.
    "glm4": HParams("glm4", n_head_kv=2, n_rot=8, norm="rms", rope_mode="NORM", base_key=True, pre="glm4"),
    # ChatGLM3 / GLM-4-9B-chat: RMSNorm, fused attn_qkv with bias, GQA (2 KV heads), NORM (adjacent-pair) RoPE on
    # head_dim/2 (the converter writes rope.dimension_count = head_dim * 0.5), rope.freq_base = 10000 * rope_ratio
    # (rope_ratio 500 as GLM-4-9B-chat: 5e6), fused gate+up SwiGLU, no post norms, untied output.
    "chatglm": HParams("chatglm", n_head_kv=2, n_rot=8, norm="rms", rope_mode="NORM", rope_base=5000000.0,
                       base_key=True, pre="chatglm-bpe"),
    # BERT (bge / MiniLM style sentence encoder): learned positions, token type row 0 added, LayerNorm on the
    # embeddings, post-LayerNorm blocks, GELU FFN, bidirectional attention, pooling from bert.pooling_type; a
    # WordPiece vocabulary of 512 entries built here (bert_vocab). eps 1e-12 as BERT's layer_norm_eps.
    "bert": HParams("bert", eps=1e-12, pooling=1, n_token_types=2, pre="bert-bge"),
    # The same weights and ids with pooling_type CLS, written as bert/bert-cls-*.
    "bert-cls": HParams("bert", eps=1e-12, pooling=2, n_token_types=2, pre="bert-bge", seed_of="bert"),
    # nomic-bert (nomic-embed-text-v1 / v1.5): BERT's post-LayerNorm encoder with a fused attn_qkv, NEOX RoPE over the
    # whole head instead of position_embd (base 1000 as nomic-embed-text-v1.5's rotary_emb_base; the converter writes
    # rope.freq_base but no rope.dimension_count and no attention.head_count_kv), a SwiGLU FFN (ffn_gate, ffn_up,
    # ffn_down) and no bias on any matrix (qkv_proj_bias, mlp_fc1_bias, mlp_fc2_bias false); MEAN pooling; the same
    # WordPiece vocabulary as bert. eps 1e-12 as its layer_norm_epsilon.
    "nomic-bert": HParams("nomic-bert", eps=1e-12, pooling=1, n_token_types=2, pre="bert-bge", n_rot=16,
                          rope_base=1000.0, rot_key=False, base_key=True, kv_key=False),
    # T5 (original, t5-small layout): encoder-decoder, RMSNorm without mean (eps 1e-6), relative position buckets (32)
    # with attn_rel_b in block 0 of the encoder and of the decoder only, attention without 1/sqrt(head_dim), ReLU FFN
    # (no ffn_gate), separate output.weight; SentencePiece Unigram vocabulary (t5_vocab), decoder start id 0.
    "t5": HParams("t5", eps=1e-6, norm="rms", pre="default", n_dec_layer=2, rel_buckets=32, ffn="relu"),
    # Flan-T5 layout: gated-GELU FFN (ffn_gate, ffn_up, ffn_down), and attn_rel_b in every block (llama.cpp uses a
    # block's own table when present), written as t5/flan-t5-*. n_ff 192 keeps the F32 file (with the 240 kB
    # precompiled charsmap) under 1.5 MB.
    "flan-t5": HParams("t5", n_ff=192, eps=1e-6, norm="rms", pre="default", n_dec_layer=2, rel_buckets=32,
                       ffn="geglu", rel_b_every_layer=True),
}
DEFAULT_SET = ["gpt2", "gptneox", "bloom", "phi2", "falcon", "stablelm", "gptneox-seqres", "starcoder2", "phi3", "glm4",
               "chatglm", "bert", "bert-cls", "nomic-bert", "t5", "flan-t5"]
POOLING_NAMES = {0: "NONE", 1: "MEAN", 2: "CLS", 3: "LAST"}   # enum llama_pooling_type (include/llama.h)


# ============================================================================ random weights (float32)
class Init:
    """Seeded random tensors at scales that keep activations moderate."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def mat(self, rows, cols, std=0.08):          # numpy [ne1, ne0]; y = x @ W.T
        return (self.rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm_w(self, n):                           # LayerNorm gain ~ 1 +- 0.1
        return (1.0 + 0.1 * self.rng.standard_normal(n)).astype(np.float32)

    def bias(self, n, std=0.05):                   # small, non-zero
        return (self.rng.standard_normal(n) * std).astype(np.float32)


def ln_pair(init, name, n):
    return [(name + ".weight", init.norm_w(n)), (name + ".bias", init.bias(n))]


def linear_pair(init, name, rows, cols, std=0.08, bias_std=0.05):
    return [(name + ".weight", init.mat(rows, cols, std)), (name + ".bias", init.bias(rows, bias_std))]


def fused_qkv(init, p, hp, bias=True):
    # llama.cpp layout: rows [Q (n_head heads) | K (n_head_kv heads) | V (n_head_kv heads)]
    rows = hp.n_embd + 2 * hp.n_head_kv * hp.head_dim
    t = linear_pair(init, p + "attn_qkv", rows, hp.n_embd, std=0.12)
    return t if bias else t[:1]


def gelu_ffn_tensors(init, p, hp):
    return (linear_pair(init, p + "ffn_up", hp.n_ff, hp.n_embd) +
            linear_pair(init, p + "ffn_down", hp.n_embd, hp.n_ff, std=0.06))


def fused_swiglu_tensors(init, p, hp):
    """ffn_up of 2 n_ff rows [gate (n_ff) | up (n_ff)] (HF gate_up_proj, chunk(2) gives gate first), ffn_down; no
    biases. Gate and up are drawn separately (different scales) and concatenated, as the fused HF matrix is."""
    gate, up = init.mat(hp.n_ff, hp.n_embd, 0.12), init.mat(hp.n_ff, hp.n_embd)
    return [(p + "ffn_up.weight", np.concatenate([gate, up], axis=0)),
            (p + "ffn_down.weight", init.mat(hp.n_embd, hp.n_ff, 0.08))]


def separate_qkv(init, p, hp):
    """attn_q [n_embd rows], attn_k, attn_v [n_head_kv * head_dim rows], each with a bias."""
    E, Ekv = hp.n_embd, hp.n_head_kv * hp.head_dim
    return (linear_pair(init, p + "attn_q", E, E, std=0.12) + linear_pair(init, p + "attn_k", Ekv, E, std=0.12) +
            linear_pair(init, p + "attn_v", Ekv, E, std=0.12))


# ============================================================================ tensor layouts (one per family)
def tensors_gpt2(hp, init):
    """llama_model_gpt2::load_arch_tensors: token_embd, position_embd [n_ctx_train rows], per block attn_norm(+b),
    attn_qkv(+b), attn_output(+b), ffn_norm(+b), ffn_up(+b), ffn_down(+b); output_norm(+b); output optional
    (absent here: tied to token_embd)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1)),
         ("position_embd.weight", init.mat(hp.n_ctx, E, 0.05))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E) + fused_qkv(init, p, hp)
        t += linear_pair(init, p + "attn_output", E, E)
        t += ln_pair(init, p + "ffn_norm", E) + gelu_ffn_tensors(init, p, hp)
    t += ln_pair(init, "output_norm", E)
    return t


def tensors_gptneox(hp, init):
    """llama_model_gptneox::load_arch_tensors: as gpt2 without position_embd, and output.weight required."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E) + fused_qkv(init, p, hp)
        t += linear_pair(init, p + "attn_output", E, E)
        t += ln_pair(init, p + "ffn_norm", E) + gelu_ffn_tensors(init, p, hp)
    t += ln_pair(init, "output_norm", E)
    t += [("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_bloom(hp, init):
    """llama_model_bloom::load_arch_tensors: token_embd, token_embd_norm(+b) (LayerNorm right after the embedding),
    the gpt2 block layout, output_norm(+b); output optional (absent here: tied)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    t += ln_pair(init, "token_embd_norm", E)
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E) + fused_qkv(init, p, hp)
        t += linear_pair(init, p + "attn_output", E, E)
        t += ln_pair(init, p + "ffn_norm", E) + gelu_ffn_tensors(init, p, hp)
    t += ln_pair(init, "output_norm", E)
    return t


def tensors_phi2(hp, init):
    """llama_model_phi2::load_arch_tensors: token_embd, per block attn_norm(+b) only (no ffn_norm), Q/K/V through
    create_tensor_qkv (fused attn_qkv or separate attn_q/k/v, each with optional bias; separate + biases here),
    attn_output(+b), ffn_up(+b), ffn_down(+b); output_norm(+b), output.weight and output.bias (both required)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E)
        for x in "qkv":
            t += linear_pair(init, p + f"attn_{x}", E, E, std=0.12)
        t += linear_pair(init, p + "attn_output", E, E)
        t += gelu_ffn_tensors(init, p, hp)
    t += ln_pair(init, "output_norm", E)
    t += [("output.weight", init.mat(hp.n_vocab, E, 0.1)), ("output.bias", init.bias(hp.n_vocab, 0.1))]
    return t


def tensors_falcon(hp, init):
    """llama_model_falcon::load_arch_tensors: token_embd, per block attn_norm(+b), optional attn_norm_2(+b) (40B
    only; absent here), attn_qkv (no bias), attn_output, ffn_up, ffn_down (no biases); output_norm(+b); output
    optional (present here)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E) + fused_qkv(init, p, hp, bias=False)
        t += [(p + "attn_output.weight", init.mat(E, E)),
              (p + "ffn_up.weight", init.mat(hp.n_ff, E)),
              (p + "ffn_down.weight", init.mat(E, hp.n_ff, 0.06))]
    t += ln_pair(init, "output_norm", E)
    t += [("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_stablelm(hp, init):
    """llama_model_stablelm::load_arch_tensors: token_embd, per block attn_norm(+b), Q/K/V via create_tensor_qkv
    (separate, with biases here), attn_output (no bias), optional attn_q_norm/attn_k_norm (12B; absent here),
    optional ffn_norm(+b) (present here: sequential residual), ffn_gate, ffn_up, ffn_down (no biases);
    output_norm(+b), output (required)."""
    E, Ekv = hp.n_embd, hp.n_head_kv * hp.head_dim
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E)
        t += linear_pair(init, p + "attn_q", E, E, std=0.12)
        t += linear_pair(init, p + "attn_k", Ekv, E, std=0.12)
        t += linear_pair(init, p + "attn_v", Ekv, E, std=0.12)
        t += [(p + "attn_output.weight", init.mat(E, E))]
        t += ln_pair(init, p + "ffn_norm", E)
        t += [(p + "ffn_gate.weight", init.mat(hp.n_ff, E, 0.12)),
              (p + "ffn_up.weight", init.mat(hp.n_ff, E)),
              (p + "ffn_down.weight", init.mat(E, hp.n_ff, 0.08))]
    t += ln_pair(init, "output_norm", E)
    t += [("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_starcoder2(hp, init):
    """llama_model_starcoder2::load_arch_tensors: token_embd, per block attn_norm(+b, required), Q/K/V via
    create_tensor_qkv (separate here, biases optional in the loader; present, as StarCoder2's use_bias writes them),
    attn_output(+b, required), ffn_norm(+b), ffn_up(+b), ffn_down(+b) (all required); output_norm(+b); output optional
    (absent here: tied to token_embd)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += ln_pair(init, p + "attn_norm", E) + separate_qkv(init, p, hp)
        t += linear_pair(init, p + "attn_output", E, E)
        t += ln_pair(init, p + "ffn_norm", E) + gelu_ffn_tensors(init, p, hp)
    t += ln_pair(init, "output_norm", E)
    return t


def tensors_phi3(hp, init):
    """llama_model_phi3::load_arch_tensors: token_embd, per block attn_norm (weight only), Q/K/V via create_tensor_qkv
    (fused attn_qkv without bias here, as convert_hf_to_gguf writes Phi-3's qkv_proj), attn_output (no bias),
    ffn_norm (weight only), ffn_up [2 n_ff rows: gate | up], ffn_down (no biases); optional rope_factors_long/short
    (absent here); output_norm (weight only); output optional (present here, as Phi-3-mini unties it)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += [(p + "attn_norm.weight", init.norm_w(E))] + fused_qkv(init, p, hp, bias=False)
        t += [(p + "attn_output.weight", init.mat(E, E))]
        t += [(p + "ffn_norm.weight", init.norm_w(E))] + fused_swiglu_tensors(init, p, hp)
    t += [("output_norm.weight", init.norm_w(E)), ("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_glm4(hp, init):
    """llama_model_glm4::load_arch_tensors: token_embd, per block attn_norm, Q/K/V via create_tensor_qkv (separate
    with biases here, as convert_hf_to_gguf writes GLM-4-0414), attn_output (no bias), post_attention_norm, ffn_norm,
    ffn_up [2 n_ff rows: gate | up], ffn_down, post_ffw_norm (norms weight only, no FFN biases); output_norm; output
    optional (present here)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += [(p + "attn_norm.weight", init.norm_w(E))] + separate_qkv(init, p, hp)
        t += [(p + "attn_output.weight", init.mat(E, E)), (p + "post_attention_norm.weight", init.norm_w(E))]
        t += [(p + "ffn_norm.weight", init.norm_w(E))] + fused_swiglu_tensors(init, p, hp)
        t += [(p + "post_ffw_norm.weight", init.norm_w(E))]
    t += [("output_norm.weight", init.norm_w(E)), ("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_chatglm(hp, init):
    """llama_model_chatglm::load_arch_tensors: token_embd, per block attn_norm (weight only), Q/K/V via
    create_tensor_qkv (fused attn_qkv with bias here, as convert_hf_to_gguf writes `query_key_value`:
    n_embd -> n_embd + 2 n_head_kv head_dim, HF already [Q | K | V]), attn_output (no bias: the loader never asks
    for one), ffn_norm (weight only), ffn_up [2 n_ff rows: gate | up] (HF dense_h_to_4h), ffn_down (no biases);
    output_norm; output optional (present here, as ChatGLM's output_layer)."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1))]
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += [(p + "attn_norm.weight", init.norm_w(E))] + fused_qkv(init, p, hp, bias=True)
        t += [(p + "attn_output.weight", init.mat(E, E))]
        t += [(p + "ffn_norm.weight", init.norm_w(E))] + fused_swiglu_tensors(init, p, hp)
    t += [("output_norm.weight", init.norm_w(E)), ("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def tensors_bert(hp, init):
    """llama_model_bert::load_arch_tensors: token_embd [n_vocab rows], token_types [token_type_count rows]
    (optional to the loader; present, as BERT has it), position_embd [n_ctx_train rows] (required),
    token_embd_norm(+b) (required); per block Q/K/V via create_tensor_qkv (separate with biases here, as
    convert_hf_to_gguf writes BERT's query/key/value), attn_output(+b, bias optional), attn_output_norm(+b),
    ffn_up(+b), ffn_down(+b) (biases optional), layer_output_norm(+b); no output_norm, no output; the optional
    cls / cls_out classifier heads are absent."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1)),
         ("token_types.weight", init.mat(hp.n_token_types, E, 0.05)),
         ("position_embd.weight", init.mat(hp.n_ctx, E, 0.05))]
    t += ln_pair(init, "token_embd_norm", E)
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += separate_qkv(init, p, hp)
        t += linear_pair(init, p + "attn_output", E, E)
        t += ln_pair(init, p + "attn_output_norm", E)
        t += gelu_ffn_tensors(init, p, hp)
        t += ln_pair(init, p + "layer_output_norm", E)
    return t


def tensors_nomic_bert(hp, init):
    """llama_model_nomic_bert::load_arch_tensors: token_embd [n_vocab rows], token_types [token_type_count rows]
    (optional to the loader; present, as nomic-embed-text has it), token_embd_norm(+b) (required); no position_embd
    (RoPE instead; a position table in the file would fail the tensor count check); per block Q/K/V via
    create_tensor_qkv (fused attn_qkv without bias here, as convert_hf_to_gguf writes nomic's Wqkv with
    qkv_proj_bias false), attn_output (bias optional; absent, as out_proj has bias=qkv_proj_bias), attn_output_norm(+b),
    ffn_up (HF fc11), ffn_gate (HF fc12, required), ffn_down (HF fc2), layer_output_norm(+b); no FFN biases (the
    loader would take ffn_up.bias / ffn_down.bias, but the graph never adds them); no output_norm, no output.
    Gate N(0, 0.12) and up N(0, 0.08) differ in scale, so swapping them shows."""
    E = hp.n_embd
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.1)),
         ("token_types.weight", init.mat(hp.n_token_types, E, 0.05))]
    t += ln_pair(init, "token_embd_norm", E)
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        t += fused_qkv(init, p, hp, bias=False)
        t += [(p + "attn_output.weight", init.mat(E, E))]
        t += ln_pair(init, p + "attn_output_norm", E)
        t += [(p + "ffn_up.weight", init.mat(hp.n_ff, E)),
              (p + "ffn_gate.weight", init.mat(hp.n_ff, E, 0.12)),
              (p + "ffn_down.weight", init.mat(E, hp.n_ff, 0.08))]
        t += ln_pair(init, p + "layer_output_norm", E)
    return t


TENSORS = {"gpt2": tensors_gpt2, "gptneox": tensors_gptneox, "bloom": tensors_bloom, "phi2": tensors_phi2,
           "falcon": tensors_falcon, "stablelm": tensors_stablelm, "starcoder2": tensors_starcoder2,
           "phi3": tensors_phi3, "glm4": tensors_glm4, "chatglm": tensors_chatglm, "bert": tensors_bert,
           "nomic-bert": tensors_nomic_bert}


# ============================================================================ GGUF writing
def load_vocab(donor, n_vocab):
    """The donor's first n_vocab tokens and the merges whose two parts and result are all kept (gpt2-BPE ids follow
    merge order, so this is the donor's tokenizer with fewer merges)."""
    r = GGUFReader(donor)
    f = lambda k: r.fields[k].contents() if k in r.fields else None  # noqa: E731
    if f("tokenizer.ggml.model") != "gpt2":
        raise SystemExit("the donor must have a gpt2-BPE vocabulary")
    tokens = list(f("tokenizer.ggml.tokens"))[:n_vocab]
    types = [int(x) for x in f("tokenizer.ggml.token_type")][:n_vocab]
    keep = set(tokens)
    merges = []
    for m in f("tokenizer.ggml.merges"):
        ab = m.split(" ", 1)
        if len(ab) == 2 and ab[0] in keep and ab[1] in keep and ab[0] + ab[1] in keep:
            merges.append(m)
    special = {k: f(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown", "padding")}
    for k, v in special.items():
        if v is not None and v >= n_vocab:
            raise SystemExit(f"donor {k} id {v} >= n_vocab {n_vocab}")
    return dict(tokens=tokens, types=types, merges=merges, special=special)


# WordPiece vocabulary for the encoder (built here; no donor). Stored the way convert_hf_to_gguf's BertModel.set_vocab
# stores a BERT vocab.txt: control tokens unchanged, word-initial pieces with a U+2581 prefix, "##" continuation
# pieces without their "##".
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BERT_WORDS = """the of and to in is that for it as was with be by on not he this are or his from at which but have an
they you were her she there been one all we their has would when if so no will more can out up them into only other
time new some could these two may first then do any like my now over such our man me even most made after also did
many before must through back years where much your way well down should because each just those people how too
little state good very make world still own see men work long get here between both life being under never day same
another know while last might us great old year off come since against go came right used take three hello quick
brown fox jumps lazy dog token split word words piece pieces text model small test cafe naive resume stop un don
calculus multiple space spaces control line lines embed sentence cat sat mat red blue green house tree water fire
light dark super""".split()
BERT_PIECES = """s es ed ing er ers est ly tion tions ment ness able ible ize izer izers ization ful less al ial ic ive
ous ity ies ian en on an in at or ar ist ism re de th ch sh ph qu ck ll ss tt ee oo ea ou ai ie ue ght nd nt st rd rs
ke ge ce se te ve ne le li lo la ma na ra ta believ fragil istic docious cali expi ding""".split()


def bert_vocab(n_vocab):
    """A lower-case WordPiece vocabulary of exactly n_vocab entries: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4
    (CONTROL; deliberately not bert-base-uncased's 0/100/101/102/103, so the ids must come from the keys), then
    every ASCII punctuation mark and digit and letter as a word start (U+2581 + x), every digit and letter as a
    continuation ("x" = "##x"), U+2581 U+4E2D (one CJK character; its neighbour U+6587 is left out: [UNK]),
    BERT_WORDS as word starts, BERT_PIECES as continuations, then two-letter continuations "aa", "ab", ... to fill."""
    import string
    P = "\u2581"
    tokens = list(BERT_SPECIALS)
    tokens += [P + c for c in string.punctuation + string.digits + string.ascii_lowercase]
    tokens += list(string.digits + string.ascii_lowercase)
    tokens += [P + "\u4e2d"]
    for w in BERT_WORDS:
        if P + w not in tokens:
            tokens.append(P + w)
    for w in BERT_PIECES:
        if w not in tokens:
            tokens.append(w)
    for a in string.ascii_lowercase:
        for b in string.ascii_lowercase:
            if len(tokens) < n_vocab and a + b not in tokens:
                tokens.append(a + b)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    types = [int(gguf.TokenType.CONTROL)] * len(BERT_SPECIALS) + [int(gguf.TokenType.NORMAL)] * (n_vocab - 5)
    ids = {t: i for i, t in enumerate(tokens)}
    special = {"bos": ids["[CLS]"], "eos": ids["[SEP]"], "unknown": ids["[UNK]"], "seperator": ids["[SEP]"],
               "padding": ids["[PAD]"], "mask": ids["[MASK]"]}
    return dict(model="bert", tokens=tokens, types=types, merges=[], special=special)


def write_gguf(path, name, hp, tensors, vocab, qtype):
    w = GGUFWriter(path, hp.arch)
    w.add_type("model")
    w.add_name(name)
    w.add_context_length(hp.n_ctx)
    w.add_embedding_length(hp.n_embd)
    w.add_block_count(hp.n_layer)
    w.add_feed_forward_length(hp.n_ff)
    w.add_head_count(hp.n_head)
    if hp.kv_key:
        w.add_head_count_kv(hp.n_head_kv)
    if hp.norm == "rms":
        w.add_layer_norm_rms_eps(hp.eps)
    else:
        w.add_layer_norm_eps(hp.eps)
    if hp.n_rot and hp.rot_key:
        w.add_rope_dimension_count(hp.n_rot)
    if hp.n_rot and hp.base_key:
        w.add_rope_freq_base(hp.rope_base)
    if hp.swa is not None:
        w.add_sliding_window(hp.swa)            # phi3: the converter always writes it (0 without sliding_window)
    if hp.arch == "gptneox":
        w.add_parallel_residual(hp.par_res)     # required key for gptneox
    if hp.arch == "stablelm":
        w.add_parallel_residual(False)          # written by convert_hf_to_gguf; llama.cpp ignores it (ffn_norm decides)
    if hp.arch == "falcon":
        w.add_tensor_data_layout("jploski")     # written by convert_hf_to_gguf (QKV already in [Q|K|V] order)
    if hp.pooling is not None:
        w.add_causal_attention(False)           # {arch}.attention.causal (BertModel.set_gguf_parameters)
        w.add_pooling_type(gguf.PoolingType(hp.pooling))
    w.add_file_type(int(LlamaFileType.ALL_F32 if qtype == QT.F32 else LlamaFileType.MOSTLY_Q8_0))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if vocab.get("model") == "bert":
        write_bert_vocab(w, hp, vocab)
    else:
        write_bpe_vocab(w, hp, vocab)
    for name, arr in tensors:
        # llama-quantize keeps position_embd and token_types unquantized (llama-quant.cpp)
        if (qtype != QT.F32 and arr.ndim == 2 and not name.startswith("position_embd")
                and not name.startswith("token_types")):
            w.add_tensor(name, quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_bert_vocab(w, hp, vocab):
    """What convert_hf_to_gguf writes for a bert-base-uncased style tokenizer: model "bert", token_type_count
    (type_vocab_size), the phantom-space token list and types, and gguf.SpecialVocab's keys: bos = [CLS] (from
    cls_token: BERT has no bos_token), eos = [SEP], unknown, seperator, padding, mask; add_bos_token and
    add_eos_token true, add_sep_token false (its parse of the TemplateProcessing "[CLS] $A [SEP]"); normalizer
    lowercase true (BertNormalizer; strip_accents null is not written). No cls_token_id: gguf-py has no writer for
    it and llama.cpp does not read it."""
    sp = vocab["special"]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(hp.pre)
    w.add_token_type_count(hp.n_token_types)
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_bos_token_id(sp["bos"])
    w.add_eos_token_id(sp["eos"])
    w.add_unk_token_id(sp["unknown"])
    w.add_sep_token_id(sp["seperator"])
    w.add_pad_token_id(sp["padding"])
    w.add_mask_token_id(sp["mask"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_sep_token(False)
    w.add_bool("tokenizer.ggml.normalizer.lowercase", True)


def write_bpe_vocab(w, hp, vocab):
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(hp.pre)
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_token_merges(vocab["merges"])
    sp = vocab["special"]
    w.add_bos_token_id(sp["bos"])
    w.add_eos_token_id(sp["eos"])
    if sp["unknown"] is not None:
        w.add_unk_token_id(sp["unknown"])
    if sp["padding"] is not None:
        w.add_pad_token_id(sp["padding"])
    w.add_add_bos_token(False)


# ============================================================================ float64 forward: shared helpers
class Model:
    """Weights and hparams read back from a GGUF file; weights dequantized to float64, numpy [ne1, ne0]."""

    def __init__(self, path):
        r = GGUFReader(path)
        f = lambda k, d=None: r.fields[k].contents() if k in r.fields else d  # noqa: E731
        self.arch = a = f("general.architecture")
        self.n_layer = f(f"{a}.block_count")
        self.n_embd = f(f"{a}.embedding_length")
        self.n_head = f(f"{a}.attention.head_count")
        self.n_head_kv = f(f"{a}.attention.head_count_kv", self.n_head)
        self.eps = f(f"{a}.attention.layer_norm_epsilon")
        self.rms_eps = f(f"{a}.attention.layer_norm_rms_epsilon")
        self.head_dim = f(f"{a}.attention.key_length", self.n_embd // self.n_head)
        self.n_rot = f(f"{a}.rope.dimension_count", self.head_dim)
        self.rope_base = f(f"{a}.rope.freq_base", 10000.0)
        self.par_res = f(f"{a}.use_parallel_residual")
        self.causal = f(f"{a}.attention.causal", True)
        self.pooling = f(f"{a}.pooling_type")
        self.n_dec_layer = f(f"{a}.decoder_block_count", self.n_layer)
        self.n_rel_buckets = f(f"{a}.attention.relative_buckets_count")
        self.W, self.qtype = {}, {}
        for t in r.tensors:
            shape = tuple(int(x) for x in reversed(list(t.shape)))
            self.W[t.name] = np.asarray(dequantize(np.array(t.data), t.tensor_type), np.float64).reshape(shape)
            self.qtype[t.name] = t.tensor_type

    def as_float32(self):
        """A copy with float32 weights (for the plain-float32 yardstick)."""
        c = copy.copy(self)
        c.W = {k: v.astype(np.float32) for k, v in self.W.items()}
        return c


class Ops:
    """The float64 operations. gelu_f16_table / q8_activations switch on imitations of ggml's CPU rounding, float32
    rounds every intermediate to float32 (with Model.as_float32(): a plain float32 forward). These are used only
    for the yardsticks in the JSON; the reference logits use the exact float64 math."""

    def __init__(self, m: Model, gelu_f16_table=False, q8_activations=False, float32=False):
        self.m, self.gelu_f16_table, self.q8_activations = m, gelu_f16_table, q8_activations
        self.dt = np.float32 if float32 else np.float64

    def c(self, x):
        return np.asarray(x).astype(self.dt, copy=False)

    def layer_norm(self, x, name):
        """ggml_norm (mean and biased variance over the row, eps inside the sqrt), then * weight + bias."""
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return self.c((x - mu) / np.sqrt(var + self.m.eps) * self.m.W[name + ".weight"] + self.m.W[name + ".bias"])

    def rms_norm(self, x, name):
        """ggml_rms_norm (x / sqrt(mean(x^2) + eps), eps = layer_norm_rms_epsilon), then * weight (+ bias if the
        tensor exists: build_norm adds it; none of these files has one)."""
        y = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + self.m.rms_eps) * self.m.W[name + ".weight"]
        b = self.m.W.get(name + ".bias")
        return self.c(y if b is None else y + b)

    @staticmethod
    def q8_0(x):
        """Round to Q8_0 blocks of 32 (d = amax/127 stored as f16, q = round(x/d)): what ggml does to activations
        entering a matmul with Q8_0 weights."""
        b = x.reshape(-1, 32).astype(np.float32)
        d32 = np.abs(b).max(axis=1, keepdims=True) / np.float32(127.0)
        q = np.round(b * np.where(d32 > 0, 1.0 / np.where(d32 > 0, d32, 1), 0))
        return (q * d32.astype(np.float16).astype(np.float32)).reshape(x.shape).astype(np.float64)

    def linear(self, x, name, bias=True):
        """y = x @ W.T (+ bias if the tensor exists)."""
        if self.q8_activations and self.m.qtype[name + ".weight"] == QT.Q8_0:
            x = self.q8_0(x)
        y = self.c(x) @ self.m.W[name + ".weight"].T
        b = self.m.W.get(name + ".bias") if bias else None
        return self.c(y if b is None else y + b)

    def gelu(self, x):
        """ggml_gelu: GELU, tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
        if self.gelu_f16_table:  # ggml-cpu: input rounded to f16, f16 table of the same formula, +-10 clamps
            x16 = x.astype(np.float16).astype(np.float64)
            g = (0.5 * x16 * (1.0 + np.tanh(0.7978845608028654 * x16 * (1.0 + 0.044715 * x16 * x16))))
            g = g.astype(np.float16).astype(np.float64)
            return self.c(np.where(x <= -10.0, 0.0, np.where(x >= 10.0, x, g)))
        return self.c(0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3))))

    def ffn_gelu(self, x, p):
        """build_ffn(..., LLM_FFN_GELU, LLM_FFN_SEQ): down(gelu(up(x) + b_up)) + b_down."""
        return self.linear(self.gelu(self.linear(x, p + "ffn_up")), p + "ffn_down")

    def ffn_swiglu(self, x, p):
        """build_ffn(..., LLM_FFN_SILU, LLM_FFN_PAR): down(silu(gate(x)) * up(x)) (biases added if present)."""
        a = self.linear(x, p + "ffn_gate")
        return self.linear(self.c(a / (1.0 + np.exp(-a)) * self.linear(x, p + "ffn_up")), p + "ffn_down")

    def ffn_swiglu_fused(self, x, p):
        """build_ffn(..., LLM_FFN_SWIGLU, LLM_FFN_SEQ) with ffn_up only: a = up(x) has 2 n_ff columns and
        ggml_swiglu (not swapped) gives silu(a[:, :n_ff]) * a[:, n_ff:] (first half gate, second half up); then
        down."""
        a = self.linear(x, p + "ffn_up")
        g, u = np.split(a, 2, axis=-1)
        return self.linear(self.c(g / (1.0 + np.exp(-g)) * u), p + "ffn_down")

    def heads(self, x):
        return x.reshape(len(x), -1, self.m.head_dim)

    def split_fused_qkv(self, qkv):
        """attn_qkv output rows: [Q (n_head heads) | K (n_head_kv heads) | V (n_head_kv heads)] (build_qkv's views)."""
        E, Ekv = self.m.n_embd, self.m.n_head_kv * self.m.head_dim
        return self.heads(qkv[:, :E]), self.heads(qkv[:, E:E + Ekv]), self.heads(qkv[:, E + Ekv:])

    def rope_neox(self, x, pos):
        """NEOX RoPE on the first n_rot dims of each head: pairs (i, i + n_rot/2), angle pos * base^(-2i/n_rot);
        the other head_dim - n_rot dims pass through."""
        n = self.m.n_rot
        inv = self.m.rope_base ** (-np.arange(0, n, 2, dtype=np.float64) / n)
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0, x1 = x[..., :n // 2], x[..., n // 2:n]
        out[..., :n // 2] = x0 * c - x1 * s
        out[..., n // 2:n] = x0 * s + x1 * c
        return self.c(out)

    def rope_norm(self, x, pos):
        """NORM RoPE (ggml mode 0) on the first n_rot dims of each head: adjacent pairs (2i, 2i + 1), angle
        pos * base^(-2i/n_rot); the other head_dim - n_rot dims pass through."""
        n = self.m.n_rot
        inv = self.m.rope_base ** (-np.arange(0, n, 2, dtype=np.float64) / n)
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        out = x.copy()
        x0, x1 = x[..., 0:n:2], x[..., 1:n:2]
        out[..., 0:n:2] = x0 * c - x1 * s
        out[..., 1:n:2] = x0 * s + x1 * c
        return self.c(out)

    def attention(self, q, k, v, scale, slopes=None, causal=True):
        """Causal softmax attention (causal=False: every token sees every token); q [T, n_head, D], k, v
        [T, n_head_kv, D] (query head h reads kv head h // (n_head / n_head_kv)). slopes: ALiBi,
        score(h, i, j) += slopes[h] * -(i - j) (llama.cpp's KQ mask holds -|p_i - p_j| and ggml_soft_max_ext adds
        slope * mask)."""
        T = len(q)
        g = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
        s = self.c(np.einsum("thd,shd->hts", q, k) * scale)
        i, j = np.arange(T)[:, None], np.arange(T)[None, :]
        if slopes is not None:
            s = s + slopes[:, None, None] * (-np.abs(i - j))[None]
        if causal:
            s = np.where((j > i)[None], -np.inf, s)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = self.c(s / s.sum(-1, keepdims=True))
        return self.c(np.einsum("hts,shd->thd", s, v).reshape(T, -1))

    def logits(self, x, bias=False, rms=False):
        """output_norm (LayerNorm + bias, or RMSNorm with rms), then output.weight (or token_embd if output.weight is
        absent)."""
        x = self.rms_norm(x, "output_norm") if rms else self.layer_norm(x, "output_norm")
        name = "output" if "output.weight" in self.m.W else "token_embd"
        return self.linear(x, name, bias=bias)


def alibi_slopes(n_head, max_bias=8.0):
    """ggml_soft_max_ext's ALiBi slopes (ggml-cpu ops.cpp): n_log2 = 2^floor(log2(n_head)),
    m0 = 2^(-max_bias / n_log2), m1 = 2^(-(max_bias / 2) / n_log2);
    head h < n_log2: m0^(h + 1); otherwise m1^(2 (h - n_log2) + 1)."""
    n_log2 = 1 << int(np.floor(np.log2(n_head)))
    m0 = 2.0 ** (-max_bias / n_log2)
    m1 = 2.0 ** (-(max_bias / 2.0) / n_log2)
    return np.array([m0 ** (h + 1) if h < n_log2 else m1 ** (2 * (h - n_log2) + 1) for h in range(n_head)])


# ============================================================================ float64 forwards (one per family)
def forward_gpt2(o: Ops, ids):
    """llm_build_gpt2: x = token_embd[id] + position_embd[pos]; per block
    x += attn_output(attn(LN_attn(x))); x += ffn(LN_ffn(x)); logits = LN_out(x) @ output.T. No RoPE."""
    m, W = o.m, o.m.W
    T = len(ids)
    x = W["token_embd.weight"][ids] + W["position_embd.weight"][np.arange(T)]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        q, k, v = o.split_fused_qkv(o.linear(o.layer_norm(x, p + "attn_norm"), p + "attn_qkv"))
        x = x + o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        x = x + o.ffn_gelu(o.layer_norm(x, p + "ffn_norm"), p)
    return o.logits(x)


def forward_gptneox(o: Ops, ids):
    """llm_build_gptneox: NEOX RoPE on n_rot dims of Q and K; use_parallel_residual:
    x = x + attn(LN_attn(x)) + ffn(LN_ffn(x)), else sequential as gpt2."""
    m, W = o.m, o.m.W
    T = len(ids)
    pos = np.arange(T)
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        q, k, v = o.split_fused_qkv(o.linear(o.layer_norm(x, p + "attn_norm"), p + "attn_qkv"))
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        a = o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        if m.par_res:
            x = x + a + o.ffn_gelu(o.layer_norm(x, p + "ffn_norm"), p)
        else:
            x = x + a
            x = x + o.ffn_gelu(o.layer_norm(x, p + "ffn_norm"), p)
    return o.logits(x)


def forward_bloom(o: Ops, ids):
    """llm_build_bloom: x = LN_tok(token_embd[id]) (token_embd_norm); blocks as gpt2, with ALiBi (max_bias 8,
    set in load_arch_hparams, no GGUF key) instead of positions; no RoPE."""
    m, W = o.m, o.m.W
    x = o.layer_norm(W["token_embd.weight"][ids], "token_embd_norm")
    slopes = alibi_slopes(m.n_head, 8.0)
    for i in range(m.n_layer):
        p = f"blk.{i}."
        q, k, v = o.split_fused_qkv(o.linear(o.layer_norm(x, p + "attn_norm"), p + "attn_qkv"))
        x = x + o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim), slopes), p + "attn_output")
        x = x + o.ffn_gelu(o.layer_norm(x, p + "ffn_norm"), p)
    return o.logits(x)


def forward_phi2(o: Ops, ids):
    """llm_build_phi2: h = LN_attn(x) feeds both branches: x = x + attn(h) + ffn(h) (no ffn_norm); Q, K, V with
    biases, NEOX RoPE on n_rot dims; Q scaled by 1/sqrt(head_dim) before QK^T (same math); logits get output.bias."""
    m, W = o.m, o.m.W
    T = len(ids)
    pos = np.arange(T)
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.layer_norm(x, p + "attn_norm")
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(h, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        a = o.linear(o.attention(o.c(q / np.sqrt(m.head_dim)), k, v, 1.0), p + "attn_output")
        x = x + a + o.ffn_gelu(h, p)
    return o.logits(x, bias=True)


def forward_falcon(o: Ops, ids):
    """llm_build_falcon: h = LN_attn(x) feeds both branches (attn_norm_2, if present, would feed attention instead):
    x = x + attn(h) + ffn(h); fused QKV with n_head_kv heads for K and V, NEOX RoPE over the whole head (n_rot must
    equal head_dim); no biases except the LayerNorms'."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.layer_norm(x, p + "attn_norm")
        ha = o.layer_norm(x, p + "attn_norm_2") if p + "attn_norm_2.weight" in W else h
        q, k, v = o.split_fused_qkv(o.linear(ha, p + "attn_qkv"))
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        a = o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        x = x + a + o.ffn_gelu(h, p)
    return o.logits(x)


def forward_stablelm(o: Ops, ids):
    """llm_build_stablelm: h = LN_attn(x); Q, K, V (+ biases), NEOX RoPE on n_rot dims; x += attn_output(attn);
    with ffn_norm: x += ffn(LN_ffn(x)) (sequential); without: x = x + attn + ffn(h) (parallel).
    FFN: SwiGLU down(silu(gate(x)) * up(x)), no biases."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    assert p_absent(W, "attn_q_norm.weight"), "per-head Q/K LayerNorm (StableLM 2 12B) is not implemented here"
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.layer_norm(x, p + "attn_norm")
        q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        x1 = x + o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        hf = o.layer_norm(x1, p + "ffn_norm") if p + "ffn_norm.weight" in W else h
        x = x1 + o.ffn_swiglu(hf, p)
    return o.logits(x)


def forward_starcoder2(o: Ops, ids):
    """llm_build_starcoder2: x += attn_output(attn(LN_attn(x))) + b; x += ffn(LN_ffn(x)) (sequential); Q, K, V with
    biases, n_head_kv KV heads, NEOX RoPE over the whole head (n_rot == head_dim, asserted by the graph); FFN GELU
    with biases; logits = LN_out(x) @ output.T (token_embd here)."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.layer_norm(x, p + "attn_norm")
        q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        x = x + o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        x = x + o.ffn_gelu(o.layer_norm(x, p + "ffn_norm"), p)
    return o.logits(x)


def forward_phi3(o: Ops, ids):
    """llm_build_phi3: x += attn_output(attn(RMS_attn(x))); x += ffn(RMS_ffn(x)) (sequential); fused QKV
    [Q | K | V] without bias, NEOX RoPE on n_rot dims (no rope_factors), Q scaled by 1/sqrt(head_dim) before QK^T
    (build_attn scale 1.0); FFN SwiGLU from the fused ffn_up [gate | up]; logits = RMS_out(x) @ output.T."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    assert p_absent(W, "rope_factors_long.weight"), "rope_factors (LongRoPE) are not implemented here"
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.rms_norm(x, p + "attn_norm")
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(h, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        x = x + o.linear(o.attention(o.c(q / np.sqrt(m.head_dim)), k, v, 1.0), p + "attn_output")
        x = x + o.ffn_swiglu_fused(o.rms_norm(x, p + "ffn_norm"), p)
    return o.logits(x, rms=True)


def forward_glm4(o: Ops, ids):
    """llm_build_glm4: a = attn_output(attn(RMS_attn(x))); x += RMS_post_attn(a); f = ffn(RMS_ffn(x));
    x += RMS_post_ffw(f) (norms before and after each branch); Q, K, V with biases, n_head_kv KV heads, NORM RoPE
    (adjacent pairs) on the first n_rot dims; FFN SwiGLU from the fused ffn_up [gate | up];
    logits = RMS_out(x) @ output.T."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.rms_norm(x, p + "attn_norm")
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(h, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_norm(q, pos), o.rope_norm(k, pos)
        a = o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        x = x + o.rms_norm(a, p + "post_attention_norm")
        f = o.ffn_swiglu_fused(o.rms_norm(x, p + "ffn_norm"), p)
        x = x + o.rms_norm(f, p + "post_ffw_norm")
    return o.logits(x, rms=True)


def forward_chatglm(o: Ops, ids):
    """llm_build_chatglm: x += attn_output(attn(RMS_attn(x))) (no attn_output bias); x += ffn(RMS_ffn(x))
    (pre-norm, sequential, no post norms); fused QKV [Q | K | V] with bias, n_head_kv KV heads, NORM RoPE (adjacent
    pairs) on the first n_rot = head_dim/2 dims with base rope.freq_base; attention scale 1/sqrt(head_dim); FFN
    SwiGLU from the fused ffn_up [gate | up]; logits = RMS_out(x) @ output.T."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    for i in range(m.n_layer):
        p = f"blk.{i}."
        h = o.rms_norm(x, p + "attn_norm")
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(h, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_norm(q, pos), o.rope_norm(k, pos)
        x = x + o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim)), p + "attn_output")
        x = x + o.ffn_swiglu_fused(o.rms_norm(x, p + "ffn_norm"), p)
    return o.logits(x, rms=True)


def forward_bert(o: Ops, ids):
    """llm_build_bert (arch BERT): x = token_embd[id] + token_types[0] + position_embd[pos] (token types are
    hard-coded to row 0, "sentence A"); x = LN(x, token_embd_norm); per block (post-norm):
    a = attn_output(attn(x)) + b with Q, K, V (+ biases), no RoPE, scale 1/sqrt(head_dim), no causal mask
    (attention.causal false: every token sees all tokens of its sequence); x = LN(a + x, attn_output_norm);
    f = down(gelu(up(x) + b_up)) + b_down (ggml_gelu, tanh form); x = LN(f + x, layer_output_norm).
    Returns the final hidden state of every token (res->t_embd, what build_pooling pools): no output norm."""
    m, W = o.m, o.m.W
    T = len(ids)
    x = W["token_embd.weight"][ids] + W["token_types.weight"][0] + W["position_embd.weight"][np.arange(T)]
    x = o.layer_norm(x, "token_embd_norm")
    for i in range(m.n_layer):
        p = f"blk.{i}."
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(x, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(x, p + f"attn_{c}")) for c in "qkv")
        a = o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim), causal=m.causal), p + "attn_output")
        x = o.layer_norm(a + x, p + "attn_output_norm")
        x = o.layer_norm(o.ffn_gelu(x, p) + x, p + "layer_output_norm")
    return x


def forward_nomic_bert(o: Ops, ids):
    """llm_build_bert (arch NOMIC_BERT): x = token_embd[id] + token_types[0] (no position table); x = LN(x,
    token_embd_norm); per block (post-norm): Q, K, V from the fused attn_qkv [Q | K | V] (no bias), NEOX RoPE over
    the first n_rot dims of Q and K (rope.dimension_count absent: the whole head) with base rope.freq_base, positions
    from 0; a = attn_output(attn(x)) (bias added only if the tensor exists), scale 1/sqrt(head_dim), no causal mask;
    x = LN(a + x, attn_output_norm); f = down(silu(gate(x)) * up(x)) (build_ffn(..., LLM_FFN_SILU, LLM_FFN_PAR) with
    NULL biases: FFN biases are never added); x = LN(f + x, layer_output_norm). Returns the final hidden state of
    every token (res->t_embd)."""
    m, W = o.m, o.m.W
    pos = np.arange(len(ids))
    x = W["token_embd.weight"][ids]
    if "token_types.weight" in W:
        x = x + W["token_types.weight"][0]
    x = o.layer_norm(x, "token_embd_norm")
    for i in range(m.n_layer):
        p = f"blk.{i}."
        if p + "attn_qkv.weight" in W:
            q, k, v = o.split_fused_qkv(o.linear(x, p + "attn_qkv"))
        else:
            q, k, v = (o.heads(o.linear(x, p + f"attn_{c}")) for c in "qkv")
        q, k = o.rope_neox(q, pos), o.rope_neox(k, pos)
        a = o.linear(o.attention(q, k, v, 1.0 / np.sqrt(m.head_dim), causal=m.causal), p + "attn_output")
        x = o.layer_norm(a + x, p + "attn_output_norm")
        g = o.linear(x, p + "ffn_gate", bias=False)
        f = o.linear(o.c(g / (1.0 + np.exp(-g)) * o.linear(x, p + "ffn_up", bias=False)), p + "ffn_down", bias=False)
        x = o.layer_norm(f + x, p + "layer_output_norm")
    return x


def pool(states, pooling):
    """build_pooling: MEAN = ggml_mul_mat(states^T, inp_mean) with inp_mean 1/n_tokens for each token of the
    sequence (the plain mean over all tokens, [CLS] and [SEP] included); CLS = the row of the sequence's token
    with the lowest position (the first token, [CLS]); LAST = the highest position. No normalisation."""
    if pooling == 1:
        return states.mean(axis=0)
    if pooling == 2:
        return states[0]
    if pooling == 3:
        return states[-1]
    raise ValueError(f"pooling type {pooling}")


def l2_normalize(v):
    return v / np.sqrt((np.asarray(v, np.float64) ** 2).sum())


def p_absent(W, suffix):
    return not any(k.endswith(suffix) for k in W)


FORWARDS = {"gpt2": forward_gpt2, "gptneox": forward_gptneox, "bloom": forward_bloom, "phi2": forward_phi2,
            "falcon": forward_falcon, "stablelm": forward_stablelm, "starcoder2": forward_starcoder2,
            "phi3": forward_phi3, "glm4": forward_glm4, "chatglm": forward_chatglm, "bert": forward_bert,
            "nomic-bert": forward_nomic_bert}


# ============================================================================ llama.cpp
LLAMA_SETTINGS = dict(n_ctx=128, n_batch=128, n_ubatch=128, n_threads=1, n_threads_batch=1, logits_all=True,
                      flash_attn=False, type_k=0, type_v=0, seed=1234)   # type 0 = GGML_TYPE_F32


def open_llama(path, **kwargs):
    """A llama-cpp-python Llama on path (quiet) with llama_model_params.use_extra_bufts switched off: no AMX /
    CPU_REPACK weight buffers (AMX kernels fault in VMs without AMX tile state, and the plain ggml-cpu kernels are
    the same on every machine)."""
    import llama_cpp.llama_cpp as C
    from llama_cpp import Llama
    orig = C.llama_model_default_params

    def params():
        p = orig()
        p.use_extra_bufts = False
        return p

    C.llama_model_default_params = params
    try:
        return Llama(model_path=path, verbose=False, **kwargs)
    finally:
        C.llama_model_default_params = orig


def llama_logits(path, ids):
    """llama.cpp logits for every position of ids, one llama_decode batch (open_llama: use_extra_bufts off)."""
    llm = open_llama(path, **LLAMA_SETTINGS)
    try:
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[:len(ids)], dtype=np.float32)
    finally:
        llm.close()


def llama_embeddings(path, ids, pooling_type=-1):
    """llama.cpp's embeddings for ids as one sequence (seq 0, positions 0..), one llama_decode batch with every
    token an output, as Llama.embed does it: pooling_type -1 (LLAMA_POOLING_TYPE_UNSPECIFIED) takes the file's
    {arch}.pooling_type and returns llama_get_embeddings_seq (the pooled vector, not normalised); 0 (NONE) returns
    llama_get_embeddings, one row per token. use_extra_bufts off as in llama_logits."""
    import llama_cpp.llama_cpp as C
    settings = {k: v for k, v in LLAMA_SETTINGS.items() if k != "logits_all"}
    llm = open_llama(path, embedding=True, pooling_type=pooling_type, **settings)
    try:
        n = llm.n_embd()
        llm._batch.reset()
        llm._batch.add_sequence(ids, 0, True)
        llm._ctx.decode(llm._batch)
        if pooling_type == 0:
            ptr = C.llama_get_embeddings(llm._ctx.ctx)
            return np.array([ptr[j * n:(j + 1) * n] for j in range(len(ids))], dtype=np.float32)
        return np.array(C.llama_get_embeddings_seq(llm._ctx.ctx, 0)[:n], dtype=np.float32)
    finally:
        llm.close()


def llama_tokenize(path, texts):
    """llama.cpp's tokenization of each text with the file's vocabulary (vocab_only; llama_tokenize with
    add_special true, parse_special false)."""
    from llama_cpp import Llama
    llm = Llama(model_path=path, verbose=False, vocab_only=True)
    try:
        return [llm.tokenize(t.encode("utf-8"), add_bos=True, special=False) for t in texts]
    finally:
        llm.close()


# WordPiece cases: case folding and punctuation, continuation pieces, accents (stripped after NFD), digits and ASCII
# symbols, a letter outside the vocabulary ([UNK] for the whole word) and CJK characters (each its own word),
# whitespace runs and a control character, and a 120-letter word (llama.cpp has no maximum word length).
TOKENIZE_TEXTS = [
    "Hello, world! The quick brown fox.",
    "Tokenizers split unbelievable words into pieces",
    "Caf\u00e9 na\u00efve R\u00c9SUM\u00c9 \u00fcber",
    "don't stop: 3.14 + 42 = 45.14 $5 (ok) [mask]",
    "\u03bb-calculus and \u4e2d\u6587\u4e2d text",
    "  multiple   spaces\tand\nlines\u0007 control " + "ab" * 60,
]


def wpm_tokenize(text, vocab):
    """A Python transcription of llama.cpp's WPM tokenizer (llm_tokenizer_wpm_session, llama-vocab.cpp), used only
    to check the recorded ids: NFD and accent (\\p{M}) removal when strip_accents, lower-case when lowercase (both
    true here); whitespace ends a word; U+0000, U+FFFD and \\p{C} are dropped; \\p{P}, ASCII \\p{S} and CJK
    ideographs are one-character words; each word gets a U+2581 prefix and is cut greedily into the longest
    vocabulary entries (byte lengths up to the longest token), and a word with any unmatched position becomes one
    [UNK]; [CLS] (the bos id) before and [SEP] (the seperator id) after."""
    import unicodedata
    tok = {t: i for i, t in enumerate(vocab["tokens"])}
    maxlen = max(len(t.encode("utf-8")) for t in vocab["tokens"])
    words = [""]
    for ch in unicodedata.normalize("NFD", text):
        cat = unicodedata.category(ch)
        if ch.isspace():
            if words[-1]:
                words.append("")
            continue
        if ch in ("\0", "\ufffd") or cat.startswith("C") or cat.startswith("M"):
            continue
        c = ch.lower()
        cp = ord(ch)
        cjk = any(a <= cp <= b for a, b in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                            (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF),
                                            (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
        if cat.startswith("P") or (cp < 0x7F and cat.startswith("S")) or cjk:
            if words[-1]:
                words.append("")
            words[-1] = c
            words.append("")
        else:
            words[-1] += c
    out = [vocab["special"]["bos"]]
    for word in filter(None, words):
        b = ("\u2581" + word).encode("utf-8")
        i, pieces = 0, []
        while i < len(b):
            for j in range(min(len(b), i + maxlen + 1), i, -1):
                t = tok.get(_utf8(b[i:j]))
                if t is not None:
                    pieces.append(t)
                    i = j
                    break
            else:
                pieces = [vocab["special"]["unknown"]]
                break
        out += pieces
    return out + [vocab["special"]["seperator"]]


def _utf8(b):
    """b as text, or None where the byte range cuts a UTF-8 sequence (llama.cpp's lookup finds no token there)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ============================================================================ comparison and JSON
def agreement(a, ref):
    d = np.asarray(a, np.float64) - np.asarray(ref, np.float64)
    c = d - d.mean(axis=1, keepdims=True)
    return {"centered_rms": float(f"{np.sqrt((c ** 2).mean()):.4g}"),
            "centered_max_abs": float(f"{np.abs(c).max():.4g}"),
            "max_abs": float(f"{np.abs(d).max():.4g}")}


def f32s(x):
    return float(str(np.float32(x)))


def f64s(x):
    return float(f"{float(x):.9g}")


def dump_json(path, obj):
    """Indented JSON with every flat list of numbers on one line."""
    flat = []

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            if x and all(isinstance(e, (int, float, str)) for e in x):
                flat.append(json.dumps(x, separators=(",", ":")))
                return f"@@FLAT{len(flat) - 1}@@"
            return [walk(v) for v in x]
        return x

    s = re.sub(r'"@@FLAT(\d+)@@"', lambda mm: flat[int(mm.group(1))], json.dumps(walk(obj), indent=1))
    with open(path, "w", encoding="utf-8") as f:
        f.write(s + "\n")


def pick_ids(vocab, seed):
    """N_IDS ids drawn uniformly from the normal (non-control) tokens, seeded; no BOS."""
    normal = [i for i, t in enumerate(vocab["types"]) if t == int(gguf.TokenType.NORMAL)]
    rng = np.random.default_rng(seed)
    return [int(normal[j]) for j in rng.integers(0, len(normal), N_IDS)]


def describe(hp, path):
    r = GGUFReader(path)
    eps_key = "rms_norm_epsilon" if hp.norm == "rms" else "layer_norm_epsilon"
    d = {"architecture": hp.arch, "n_vocab": hp.n_vocab, "n_embd": hp.n_embd, "n_head": hp.n_head,
         "head_dim": hp.head_dim, "n_layer": hp.n_layer, "n_ff": hp.n_ff, "context_length": hp.n_ctx,
         eps_key: hp.eps, "tied_output": hp.tied, "tokenizer_pre": hp.pre}
    if hp.norm == "rms":
        d["norm"] = "RMSNorm"
    if hp.n_head_kv != hp.n_head:
        d["n_head_kv"] = hp.n_head_kv
    if not hp.kv_key:
        d["head_count_kv_key"] = "absent (llama.cpp's default: n_head)"
    if hp.n_rot:
        d.update(rope_dimension_count=hp.n_rot, rope_mode=hp.rope_mode, rope_freq_base=hp.rope_base)
        if not hp.rot_key:
            d["rope_dimension_count_key"] = "absent (llama.cpp's default: head_dim)"
    if hp.swa is not None:
        d["sliding_window"] = hp.swa
    if hp.arch in ("phi3", "glm4", "chatglm"):
        d["ffn_up_rows"] = "[gate (n_ff) | up (n_ff)]: silu(first half) * second half"
    if hp.arch == "gptneox":
        d["use_parallel_residual"] = hp.par_res
    if hp.arch == "bloom":
        d["alibi_max_bias"] = 8.0
        d["alibi_slopes"] = [float(f"{s:.9g}") for s in alibi_slopes(hp.n_head)]
    if hp.pooling is not None:
        del d["tied_output"]
        d.update(pooling_type=hp.pooling, pooling=POOLING_NAMES[hp.pooling], causal_attention=False,
                 token_type_count=hp.n_token_types, norm_placement="post (LayerNorm after each residual add)")
        if hp.arch == "bert":
            d["gelu"] = "ggml_gelu (tanh form)"
        else:
            d.update(positions="RoPE on Q and K (no position_embd)",
                     ffn="SwiGLU: ffn_down(silu(ffn_gate(x)) * ffn_up(x)), no biases",
                     matrix_biases="none (attn_qkv, attn_output, ffn_* without bias)")
        d["outputs"] = "final hidden states (no output_norm, no lm head)"
    d["tensors"] = {t.name: [t.tensor_type.name] + [int(x) for x in t.shape] for t in r.tensors}  # type, ne0, ne1
    return d


def env():
    info = {"gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else None, "numpy": np.__version__}
    try:
        from importlib.metadata import version
        info["gguf_py"] = version("gguf")
        info["llama_cpp_python"] = version("llama_cpp_python")
        info["llama_cpp_commit"] = LLAMA_CPP_COMMIT if info["llama_cpp_python"] == "0.3.36" else None
    except Exception:  # noqa: BLE001
        pass
    return info


def vec_agreement(a, ref):
    """a - ref for vectors or [T][n_embd] arrays: max abs, RMS, and (vectors) cosine similarity and 1 - cosine."""
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    d = a - ref
    out = {"max_abs": float(f"{np.abs(d).max():.4g}"), "rms": float(f"{np.sqrt((d ** 2).mean()):.4g}")}
    if a.ndim == 1:
        cos = float(a @ ref / np.sqrt((a @ a) * (ref @ ref)))
        out.update(cosine=float(f"{cos:.12g}"), one_minus_cosine=float(f"{1.0 - cos:.4g}"))
    return out


def make_encoder_family(stem, out_dir, use_llama=True):
    """Both files of an encoder entry (bert, nomic-bert) and their JSON: pooled embeddings and per-token states
    instead of logits, and tokenization references for the built-in WordPiece vocabulary."""
    hp = FAMILIES[stem]
    arch, seed_stem = hp.arch, hp.seed_of or stem
    vocab = bert_vocab(hp.n_vocab)
    tensors = TENSORS[arch](hp, Init(SEED + sum(map(ord, seed_stem))))
    normal = [i for i, t in enumerate(vocab["types"]) if t == int(gguf.TokenType.NORMAL)]
    rng = np.random.default_rng(SEED + 1 + sum(map(ord, seed_stem)))
    sp = vocab["special"]
    ids = [sp["bos"]] + [int(normal[j]) for j in rng.integers(0, len(normal), N_IDS - 2)] + [sp["seperator"]]
    d = os.path.join(out_dir, arch)
    os.makedirs(d, exist_ok=True)
    rows = []
    cases = None
    for qtype in (QT.F32, QT.Q8_0):
        tag = qtype.name.lower()
        path = os.path.join(d, f"{stem}-{tag}.gguf")
        write_gguf(path, f"synthetic-{hp.name or stem}-{tag}", hp, tensors, vocab, qtype)
        m = Model(path)
        H = FORWARDS[arch](Ops(m), ids)
        E = {k: pool(H, v) for k, v in (("mean", 1), ("cls", 2))}
        own = POOLING_NAMES[hp.pooling].lower()
        out = {"file": os.path.basename(path), "generator": GENERATOR,
               "vocabulary": "built-in WordPiece vocabulary (tools/make_families.py: bert_vocab)", "seed": SEED,
               "model": describe(hp, path), "env": env(),
               "llamacpp_settings": dict({k: v for k, v in LLAMA_SETTINGS.items() if k != "logits_all"},
                                         embedding=True, use_extra_bufts=False,
                                         note="one llama_decode batch of all ids, every token an output; pooling_type "
                                              "-1 (from the file) for llamacpp_embedding, 0 (NONE) for "
                                              f"llamacpp_token_states; {'BERT' if arch == 'bert' else arch} has no KV "
                                              "cache (llama_model::create_memory gives none), so type_k/type_v do not "
                                              "apply"),
               "ids": ids}
        row = {"file": os.path.basename(path), "size": os.path.getsize(path)}
        if use_llama:
            if cases is None:
                texts = TOKENIZE_TEXTS
                cases = [{"text": t, "ids": list(map(int, x)),
                          "tokens": [vocab["tokens"][i] for i in x]} for t, x in zip(texts, llama_tokenize(path, texts))]
                for c in cases:
                    assert c["ids"] == wpm_tokenize(c["text"], vocab), ("python WPM disagrees", c)
            Lemb = llama_embeddings(path, ids)
            Lst = llama_embeddings(path, ids, pooling_type=0)
            agr = {"embedding": vec_agreement(Lemb, E[own]),
                   "embedding_normalized": vec_agreement(l2_normalize(Lemb), l2_normalize(E[own])),
                   "token_states": vec_agreement(Lst, H)}
            gelu = arch == "bert"   # nomic-bert's FFN is SwiGLU: no GELU table to imitate
            diag = {}
            if gelu:
                Hg = FORWARDS[arch](Ops(m, gelu_f16_table=True), ids)
                diag["gelu_f16_table"] = {"embedding": vec_agreement(Lemb, pool(Hg, hp.pooling)),
                                          "token_states": vec_agreement(Lst, Hg)}
            if qtype != QT.F32:
                Hq = FORWARDS[arch](Ops(m, gelu_f16_table=gelu, q8_activations=True), ids)
                diag["gelu_f16_table_and_q8_0_activations" if gelu else "q8_0_activations"] = {
                    "embedding": vec_agreement(Lemb, pool(Hq, hp.pooling)), "token_states": vec_agreement(Lst, Hq)}
            out["agreement"] = dict(agr, what=f"llamacpp - f64: embedding = llamacpp_embedding against "
                                              f"f64_embedding_{own} (the file's pooling); embedding_normalized = "
                                              f"both L2-normalised; token_states = llamacpp_token_states against "
                                              f"f64_token_states over all tokens and dims")
            out["diagnostics"] = {
                "what": "llama.cpp against float64 forwards that imitate ggml CPU rounding: GELU through its float16 "
                        "table; and (Q8_0 file) activations rounded to Q8_0 blocks before Q8_0 matmuls"
                        if gelu else
                        "llama.cpp against a float64 forward that imitates ggml CPU rounding: (Q8_0 file) activations "
                        "rounded to Q8_0 blocks before Q8_0 matmuls; the F32 file has none to imitate (no GELU: the "
                        "FFN is SwiGLU)",
                **diag}
            out["llamacpp_embedding"] = [f32s(v) for v in Lemb]
            out["llamacpp_embedding_normalized"] = [f64s(v) for v in l2_normalize(Lemb)]
            out["llamacpp_token_states"] = [[f32s(v) for v in r] for r in Lst]
            out["tokenize_cases"] = cases
            row.update(agr, diag=diag)
        out["f64_token_states"] = [[f64s(v) for v in r] for r in H]
        for k in ("mean", "cls"):
            out[f"f64_embedding_{k}"] = [f64s(v) for v in E[k]]
            out[f"f64_embedding_{k}_normalized"] = [f64s(v) for v in l2_normalize(E[k])]
        H32 = FORWARDS[arch](Ops(m.as_float32(), float32=True), ids)
        f32agr = {"embedding": vec_agreement(pool(H32, hp.pooling), E[own]), "token_states": vec_agreement(H32, H)}
        out["float32_numpy_vs_f64"] = dict(f32agr, what="a plain float32 numpy forward (float32 weights and "
                                           f"intermediates, exact {'GELU' if arch == 'bert' else 'SiLU'}) against "
                                           "the f64 values: what an exact float32 runtime can reach")
        row["float32_numpy_vs_f64"] = f32agr
        dump_json(os.path.join(d, f"{stem}-{tag}.json"), out)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def make_family(stem, donor, out_dir, use_llama=True):
    """Both files of one FAMILIES entry and their JSON; stem is the entry's name, the directory is its arch."""
    hp = FAMILIES[stem]
    if hp.pooling is not None:
        return make_encoder_family(stem, out_dir, use_llama)
    if hp.arch == "t5":
        return make_t5_family(stem, out_dir, use_llama)
    arch = hp.arch
    vocab = load_vocab(donor, hp.n_vocab)
    tensors = TENSORS[arch](hp, Init(SEED + sum(map(ord, stem))))
    ids = pick_ids(vocab, SEED + 1 + sum(map(ord, stem)))
    d = os.path.join(out_dir, arch)
    os.makedirs(d, exist_ok=True)
    rows = []
    for qtype in (QT.F32, QT.Q8_0):
        tag = qtype.name.lower()
        path = os.path.join(d, f"{stem}-{tag}.gguf")
        write_gguf(path, f"synthetic-{hp.name or stem}-{tag}", hp, tensors, vocab, qtype)
        m = Model(path)
        L64 = FORWARDS[arch](Ops(m), ids)
        out = {"file": os.path.basename(path), "generator": GENERATOR, "donor_vocabulary": os.path.basename(donor),
               "seed": SEED,
               "model": describe(hp, path), "env": env(),
               "llamacpp_settings": dict(LLAMA_SETTINGS, use_extra_bufts=False,
                                         note="one llama_decode batch of all ids; type_k/type_v 0 = F32 KV cache"),
               "ids": ids}
        row = {"file": os.path.basename(path), "size": os.path.getsize(path)}
        if use_llama:
            Llc = llama_logits(path, ids)
            agr = agreement(Llc, L64)
            diag = {"gelu_f16_table": agreement(Llc, FORWARDS[arch](Ops(m, gelu_f16_table=True), ids))}
            if qtype != QT.F32:
                diag["gelu_f16_table_and_q8_0_activations"] = agreement(
                    Llc, FORWARDS[arch](Ops(m, gelu_f16_table=True, q8_activations=True), ids))
            out["agreement"] = dict(agr, what="llamacpp_logits - f64_logits over all positions and the vocabulary; "
                                              "centered: each row's mean difference subtracted")
            out["diagnostics"] = {
                "what": "llamacpp_logits against float64 forwards that imitate ggml CPU rounding: GELU through its "
                        "float16 table; and (Q8_0 file) activations rounded to Q8_0 blocks before Q8_0 matmuls",
                **diag}
            out["llamacpp_logits"] = [[f32s(v) for v in r] for r in Llc]
            row.update(agr, diag=diag)
        out["f64_logits"] = [[f64s(v) for v in r] for r in L64]
        out["f64_logit_std"] = float(f"{L64.std(axis=1).mean():.4g}")
        L32 = FORWARDS[arch](Ops(m.as_float32(), float32=True), ids)
        out["float32_numpy_vs_f64"] = dict(agreement(L32, L64), what="a plain float32 numpy forward (float32 weights "
                                           "and intermediates, exact GELU) against f64_logits: what an exact float32 "
                                           "runtime can reach")
        row["float32_numpy_vs_f64"] = agreement(L32, L64)
        dump_json(os.path.join(d, f"{stem}-{tag}.json"), out)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows

# ============================================================================ T5 (encoder-decoder)
# The T5 vocabulary is a real SentencePiece Unigram model, trained here (t5_spm_model) on T5_CORPUS with the
# sentencepiece package: 510 pieces with T5's ids for the specials (<pad> 0, </s> 1, <unk> 2, no <s>) and the default
# nmt_nfkc normalization, so the model carries SentencePiece's precompiled_charsmap. Two sentinel tokens follow as
# added tokens (<extra_id_1> 510, <extra_id_0> 511: T5's descending order), stored as convert_hf_to_gguf stores the
# entries of an added_tokens.json (USER_DEFINED, score -1000).
T5_CORPUS = """\
The quick brown fox jumps over the lazy dog, and the dog does not seem to mind at all.
A small model can still learn a great deal from a short text, if the text is chosen with care.
Tokenizers split words into pieces: common words stay whole, while rare words are cut into smaller parts.
The unigram language model keeps the pieces that explain the training text best and drops the rest.
Every sentence in this corpus was written to cover letters, digits and punctuation marks.
On Monday, 3 June 2024, the train left the station at 7:45 and arrived 2 hours later.
She bought 12 apples, 5 pears and 30 grapes for $4.50 at the market near the river.
Numbers such as 0, 1, 2, 3, 4, 5, 6, 7, 8 and 9 appear in dates, prices and phone numbers.
"Where are you going?" he asked. "To the library," she said, "and then home."
The results were clear (see table 2): the new method was faster; the old one was simpler.
Water boils at 100 degrees and freezes at 0 degrees, at least at sea level.
In the morning the light is soft, and in the evening the shadows grow long across the field.
Translate English to German: the house is wonderful. Summarize: the meeting was long but useful.
Question: what is the capital of France? Answer: Paris is the capital and the largest city.
The encoder reads the whole input at once; the decoder writes the output one token at a time.
Relative position buckets let the attention see how far apart two tokens are, not where they are.
Cats sat on the mat while the children played games in the garden behind the old house.
He wrote a letter to his friend, folded it twice, and put it into a blue envelope.
The weather today is sunny with a light breeze from the west and a few clouds in the afternoon.
Please read the instructions carefully before you start the test, and write your name at the top.
Science is a way of thinking much more than it is a body of knowledge.
Good software is tested software: write the test first, then make it pass, then make it clean.
The committee will meet again next week to discuss the budget, the schedule and the new members.
A journey of a thousand miles begins with a single step, or so the old saying goes.
Running, jumping, swimming and climbing are all good ways to stay healthy and strong.
The library opens at 9 and closes at 17; on weekends it is open from 10 to 14.
Some people prefer tea, others prefer coffee, and a few drink only water all day long.
The museum has paintings, sculptures, old maps, coins and a very large collection of books.
It was the best of times, it was the worst of times, it was the age of wisdom.
Birds fly south in the autumn and return north in the spring when the days grow longer.
The teacher asked the students to explain their answers in complete sentences.
After the rain stopped, the streets were wet and the air smelled fresh and clean.
Our team won 3 of the last 4 games, scoring 21 points in the final match.
The recipe needs 2 cups of flour, 1 cup of sugar, 3 eggs and a pinch of salt.
Computers store text as numbers, and every character has its own code point.
The river flows through the valley, past the farms and the small villages, to the sea.
Learning a new language takes time, patience and a lot of practice every day.
The doctor said that a short walk after dinner is good for the heart and the mind.
Mountains, lakes, forests and deserts: the country has every kind of landscape.
What time is it? It is half past four, so we still have an hour before the show.
The engineers tested the bridge with heavy trucks before it was opened to the public.
I think, therefore I am; but what I am is still a question worth asking.
Keep it simple: small steps, clear names, short functions and honest comments.
The stars were bright that night, and we counted more than 100 of them before we slept.
Jack and Jill went up the hill to fetch a pail of water; Jack fell down and broke his crown.
Zebras, yaks, quails and vultures live in very different places around the world.
The old lighthouse keeper climbed the spiral stairs each night to light the lamp for passing ships.
Farmers plant wheat in the autumn, watch it sleep under the snow, and harvest it in the summer.
A good question is often more useful than a quick answer, because it shows where to look next.
The orchestra tuned their instruments while the audience slowly found their seats in the hall.
Please remember to lock the door, turn off the lights and feed the cat before you leave.
Her grandmother kept a diary for sixty years, writing a few lines about every single day.
The market was crowded with merchants selling fish, bread, cheese, spices and bright fabrics.
When the power failed, the whole neighbourhood went dark and everyone looked up at the stars.
Engineers measure twice and cut once; programmers test twice and deploy once, or they should.
The children built a sandcastle with towers, walls and a deep moat that filled with seawater.
Silence filled the room as the judge began to read the final decision of the court.
Our neighbours grow tomatoes, peppers, beans and herbs in a tiny garden on their balcony.
The professor explained that light travels about 300000 kilometres every second.
During the storm, the wind bent the trees and the waves crashed over the harbour wall.
Reading before bed helps many people relax, although some prefer music or a warm bath.
The company announced record profits, new products and plans to hire 250 more workers.
Mathematics describes patterns: counting, measuring, shapes, chance and change over time.
The bakery on the corner sells fresh bread every morning, and the queue starts at six.
Travellers should carry water, a map, a warm jacket and a charged phone in the mountains.
The painter mixed blue and yellow to make green, then added white to soften the colour.
History teaches us that empires rise and fall, but ideas and stories can last much longer.
Volunteers cleaned the beach, collecting plastic bottles, nets, cans and broken glass.
Every evening the family gathered around the table to share food and talk about their day.
The detective noticed a small detail that everyone else had missed: the clock was stopped.
Fresh snow covered the village, and the only sound was the crunch of boots on the path.
The spacecraft travelled for seven months before it finally reached the red planet.
Children learn by playing, asking questions, making mistakes and trying again.
The ancient bridge, built from stone without any cement, still carries traffic today.
A balanced diet includes fruit, vegetables, grains, protein and plenty of water.
The pilot announced that the flight would land twenty minutes early because of strong winds.
She met a naïve young artist at a small café and read his résumé over coffee.
Wow! Half of the 40 cakes were sold at 50% off, and/or given away to friends!
Exactly six quick knights jumped over the wizard's extra-large box of frozen vegetables.
"""
T5_SPM_PIECES = 510
# encoder ids (the last one </s>) and decoder ids (the first one decoder_start_token_id): long enough that both bucket
# modes reach their logarithmic range (distance >= 8 bidirectional, >= 16 causal)
T5_N_ENC, T5_N_DEC = 24, 20
T5_EXTRA_IDS = ["<extra_id_1>", "<extra_id_0>"]


def t5_spm_model(n_pieces=T5_SPM_PIECES):
    """Train the SentencePiece Unigram model (serialized ModelProto bytes). Deterministic: one thread, no input
    shuffling, seeded generator, corpus from a string (so no file path enters trainer_spec). T5's special ids
    (pad 0, eos 1, unk 2, no bos) and normalization rule nmt_nfkc (NFKC plus SentencePiece's whitespace and control
    character rules, compiled into normalizer_spec.precompiled_charsmap)."""
    import io
    import sentencepiece as spm
    spm.set_random_generator_seed(SEED)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(T5_CORPUS.splitlines()), model_writer=buf, model_type="unigram",
        vocab_size=n_pieces, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
        unk_piece="<unk>", normalization_rule_name="nmt_nfkc", add_dummy_prefix=True, remove_extra_whitespaces=True,
        character_coverage=1.0, num_threads=1, shuffle_input_sentence=False, minloglevel=2)
    return buf.getvalue()


def _pb_fields(b):
    """(field number, value) of a serialized protobuf message (varint, 32/64-bit and length-delimited fields)."""
    i = 0
    while i < len(b):
        key, i = _pb_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _pb_varint(b, i)
        elif wt == 2:
            n, i = _pb_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        else:
            raise ValueError(f"protobuf wire type {wt}")
        yield f, v


def _pb_varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def t5_vocab(n_vocab):
    """The T5 vocabulary as convert_hf_to_gguf's T5Model.set_vocab writes it from a Unigram spiece.model: every
    piece with its score and type (NORMAL, UNKNOWN for <unk>, CONTROL for <pad> and </s>), then the added tokens of
    added_tokens.json as USER_DEFINED with score -1000; normalizer_spec's add_dummy_prefix,
    remove_extra_whitespaces and precompiled_charsmap (ModelProto field 3: NormalizerSpec, fields 2, 3, 4; the
    proto2 defaults are true when absent); special ids from SpecialVocab for T5's tokenizer files: eos </s>,
    unknown <unk>, padding <pad> (no bos: T5 has none), add_eos_token true (TemplateProcessing "$A </s>") and
    add_sep_token false, no add_bos_token."""
    import sentencepiece as spm
    model = t5_spm_model()
    sp = spm.SentencePieceProcessor(model_proto=model)
    norm = dict(_pb_fields([v for f, v in _pb_fields(model) if f == 3][0]))
    T = gguf.TokenType
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(float(sp.get_score(i)))
        types.append(int(T.UNKNOWN if sp.is_unknown(i) else T.CONTROL if sp.is_control(i) else
                         T.UNUSED if sp.is_unused(i) else T.BYTE if sp.is_byte(i) else T.NORMAL))
    for t in T5_EXTRA_IDS:
        tokens.append(t)
        scores.append(-1000.0)
        types.append(int(T.USER_DEFINED))
    assert len(tokens) == n_vocab, (len(tokens), n_vocab)
    assert tokens[:3] == ["<pad>", "</s>", "<unk>"]
    return dict(model="t5", spm_model=model, tokens=tokens, scores=scores, types=types,
                charsmap=bytes(norm[2]), add_space_prefix=bool(norm.get(3, 1)),
                remove_extra_whitespaces=bool(norm.get(4, 1)), normalizer_name=norm[1].decode(),
                special={"eos": 1, "unknown": 2, "padding": 0})


def tensors_t5(hp, init):
    """llama_model_t5::load_arch_tensors (numpy [ne1, ne0]): token_embd [n_vocab, E]; per encoder block
    enc.blk.N.attn_norm, attn_q, attn_k, attn_v [n_head*head_dim, E], attn_o [E, n_head*head_dim], attn_rel_b
    [n_buckets, n_head] (optional; here in block 0 only for t5, in every block for flan-t5), ffn_norm, ffn_up
    [n_ff, E], ffn_gate [n_ff, E] (optional: present = gated GELU), ffn_down [E, n_ff]; enc.output_norm; per
    decoder block dec.blk.N.attn_norm, attn_q/k/v/o, attn_rel_b (optional, as the encoder's), cross_attn_norm,
    cross_attn_q/k/v/o, ffn_norm, ffn_up, ffn_gate (optional), ffn_down; dec.output_norm; output [n_vocab, E]
    (optional; present). Norms weight only, no biases anywhere. Q and K are drawn at 0.08 (T5 does not scale
    QK^T), the relative bias tables at 0.5."""
    E, F, nb = hp.n_embd, hp.n_ff, hp.rel_buckets
    t = [("token_embd.weight", init.mat(hp.n_vocab, E, 0.5))]

    def attn(p, rel):
        a = [(p + "attn_norm.weight", init.norm_w(E))]
        a += [(p + f"attn_{x}.weight", init.mat(E, E, 0.08 if x in "qk" else 0.12)) for x in "qkv"]
        a += [(p + "attn_o.weight", init.mat(E, E, 0.08))]
        if rel:
            a += [(p + "attn_rel_b.weight", init.mat(nb, hp.n_head, 0.5))]
        return a

    def ffn(p):
        f = [(p + "ffn_norm.weight", init.norm_w(E)), (p + "ffn_up.weight", init.mat(F, E, 0.08))]
        if hp.ffn == "geglu":
            f += [(p + "ffn_gate.weight", init.mat(F, E, 0.12))]
        return f + [(p + "ffn_down.weight", init.mat(E, F, 0.06))]

    for i in range(hp.n_layer):
        t += attn(f"enc.blk.{i}.", i == 0 or hp.rel_b_every_layer) + ffn(f"enc.blk.{i}.")
    t += [("enc.output_norm.weight", init.norm_w(E))]
    for i in range(hp.n_dec_layer):
        p = f"dec.blk.{i}."
        t += attn(p, i == 0 or hp.rel_b_every_layer)
        t += [(p + "cross_attn_norm.weight", init.norm_w(E))]
        t += [(p + f"cross_attn_{x}.weight", init.mat(E, E, 0.08 if x in "qk" else 0.12)) for x in "qkv"]
        t += [(p + "cross_attn_o.weight", init.mat(E, E, 0.08))]
        t += ffn(p)
    t += [("dec.output_norm.weight", init.norm_w(E)), ("output.weight", init.mat(hp.n_vocab, E, 0.1))]
    return t


def write_t5_gguf(path, name, hp, tensors, vocab, qtype):
    """The keys convert_hf_to_gguf's T5Model writes (set_gguf_parameters, in its order), then its vocabulary
    (set_vocab), then the tensors; Q8_0 for every 2-D matrix whose rows are a multiple of 32 values (all but
    attn_rel_b, whose rows hold n_head = 4 values)."""
    w = GGUFWriter(path, hp.arch)
    w.add_type("model")
    w.add_name(name)
    w.add_context_length(hp.n_ctx)
    w.add_embedding_length(hp.n_embd)
    w.add_feed_forward_length(hp.n_ff)
    w.add_block_count(hp.n_layer)
    w.add_decoder_block_count(hp.n_dec_layer)
    w.add_head_count(hp.n_head)
    w.add_key_length(hp.head_dim)
    w.add_value_length(hp.head_dim)
    w.add_layer_norm_eps(hp.eps)
    w.add_relative_attn_buckets_count(hp.rel_buckets)
    w.add_layer_norm_rms_eps(hp.eps)
    w.add_decoder_start_token_id(hp.dec_start)
    w.add_file_type(int(LlamaFileType.ALL_F32 if qtype == QT.F32 else LlamaFileType.MOSTLY_Q8_0))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    sp = vocab["special"]
    w.add_tokenizer_model("t5")
    w.add_tokenizer_pre(hp.pre)
    w.add_token_list(vocab["tokens"])
    w.add_token_scores(vocab["scores"])
    w.add_token_types(vocab["types"])
    w.add_add_space_prefix(vocab["add_space_prefix"])
    w.add_remove_extra_whitespaces(vocab["remove_extra_whitespaces"])
    w.add_precompiled_charsmap(vocab["charsmap"])
    w.add_eos_token_id(sp["eos"])
    w.add_unk_token_id(sp["unknown"])
    w.add_pad_token_id(sp["padding"])
    w.add_add_eos_token(True)
    w.add_add_sep_token(False)
    for tname, arr in tensors:
        if qtype != QT.F32 and arr.ndim == 2 and arr.shape[1] % 32 == 0:
            w.add_tensor(tname, quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(tname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def t5_relative_bucket(rel, n_buckets, bidirectional, max_distance=128):
    """llama_relative_position_bucket(x, y, n_buckets, bidirectional) (llama-graph.cpp) for rel = x - y = key
    position - query position, with its C types: n_buckets is uint64_t and halved when bidirectional, max_exact =
    n_buckets / 2 (int64_t), then for |rel| (bidirectional; + n_buckets when rel > 0) or max(-rel, 0) (causal):
    rel itself below max_exact, else
    floorf(max_exact + logf(1.0 * rel / max_exact) * (n_buckets - max_exact) / log(1.0 * max_distance / max_exact))
    capped at n_buckets - 1: the ratio is a double rounded to float for logf, logf's float result times
    (float)(n_buckets - max_exact) is a float product, divided by the double log, added to max_exact in double,
    rounded to float for floorf. logf is taken as the correctly rounded float of the double log."""
    nb = n_buckets >> 1 if bidirectional else n_buckets
    max_exact = nb >> 1
    bucket = 0
    if bidirectional:
        bucket += nb if rel > 0 else 0
        rel = abs(rel)
    else:
        rel = -min(rel, 0)
    if rel < max_exact:
        return bucket + rel
    lf = np.float32(math.log(float(np.float32(rel / max_exact))))
    prod = np.float32(lf * np.float32(nb - max_exact))
    v = float(max_exact) + float(prod) / math.log(max_distance / max_exact)
    return bucket + min(int(np.floor(np.float32(v))), nb - 1)


def t5_bucket_table(n_buckets, lo=-130, hi=130):
    return {"bidirectional": [t5_relative_bucket(r, n_buckets, True) for r in range(lo, hi + 1)],
            "causal": [t5_relative_bucket(r, n_buckets, False) for r in range(lo, hi + 1)]}


def llama_bucket_table(n_buckets, lo=-130, hi=130):
    """The same table from llama.cpp's own llama_relative_position_bucket (exported by libllama as the C++ symbol
    _Z30llama_relative_position_bucketiimb: int32 (int32 x, int32 y, uint64 n_buckets, bool bidirectional)),
    called with x = r, y = 0."""
    import ctypes
    import llama_cpp.llama_cpp as C
    f = C._lib._Z30llama_relative_position_bucketiimb
    f.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_uint64, ctypes.c_bool]
    f.restype = ctypes.c_int32
    return {"bidirectional": [int(f(r, 0, n_buckets, True)) for r in range(lo, hi + 1)],
            "causal": [int(f(r, 0, n_buckets, False)) for r in range(lo, hi + 1)]}


def forward_t5(o: Ops, enc_ids, dec_ids, wrong=frozenset()):
    """llama_model_t5::graph<true> (encoder) and graph<false> (decoder), returning (logits [n_dec, n_vocab],
    encoder states [n_enc, n_embd]). Encoder: x = token_embd[id]; per block x += attn_o(attn(RMS_attn(x))) with
    bias rel_b[bucket(j - i, bidirectional)] added to q_i . k_j (the block's attn_rel_b, else block 0's), no mask,
    scale 1 (no 1/sqrt(head_dim)); x += ffn(RMS_ffn(x)); enc = RMS(x, enc.output_norm). Decoder: y = token_embd[id]
    (ids from decoder_start_token_id); per block y += attn_o(causal self-attention with bias
    rel_b[bucket(j - i, causal)]); y += cross_attn_o(attention of cross_attn_q(RMS_cross(y)) over cross_attn_k(enc),
    cross_attn_v(enc): no bias, no mask, scale 1); y += ffn(RMS_ffn(y)); logits = output(RMS(y, dec.output_norm)),
    no d_model^-0.5 scaling. FFN: ffn_gate present: down(gelu(gate(x)) * up(x)) (LLM_FFN_GELU, LLM_FFN_PAR:
    ggml_geglu_split, tanh GELU); absent: down(relu(up(x))). RMS: x / sqrt(mean(x^2) + eps) * weight, eps =
    layer_norm_rms_epsilon. `wrong` switches on single mistakes (for the mistake table; see T5_MISTAKES)."""
    m, W = o.m, o.m.W
    H, D, nb = m.n_head, m.head_dim, m.n_rel_buckets
    scale = 1.0 / np.sqrt(D) if "scale" in wrong else 1.0

    def norm(x, name):
        if "layer_norm" in wrong:
            x = x - x.mean(-1, keepdims=True)
        return o.rms_norm(x, name)

    def heads(x):
        return x.reshape(len(x), H, D)

    def rel_bias(table, Tq, Tk, bidirectional):
        if "no_rel_bias" in wrong:
            return None
        if "buckets_swapped" in wrong:
            bidirectional = not bidirectional
        rel = np.arange(Tk)[None, :] - np.arange(Tq)[:, None]       # key position - query position
        if "rel_sign" in wrong:
            rel = -rel
        bucket = linear_bucket if "no_log_buckets" in wrong else t5_relative_bucket
        idx = np.array([[bucket(int(r), nb, bidirectional) for r in row] for row in rel])
        return table[idx].transpose(2, 0, 1)                         # [n_head, Tq, Tk]

    def linear_bucket(r, n, bidir):                                  # the "no_log_buckets" mistake
        half = n >> 1 if bidir else n
        return (half if bidir and r > 0 else 0) + min(abs(r) if bidir else max(-r, 0), half - 1)

    def rel_table(prefix, i):
        own = W.get(f"{prefix}.blk.{i}.attn_rel_b.weight")
        if own is not None and not (i > 0 and "rel_b_layer0_only" in wrong):
            return own
        return None if (i > 0 and "rel_b_not_shared" in wrong) else W[f"{prefix}.blk.0.attn_rel_b.weight"]

    def attention(q, k, v, bias, causal):
        s = o.c(np.einsum("thd,shd->hts", q, k) * scale)
        if bias is not None:
            s = o.c(s + bias)
        if causal:
            s = np.where((np.arange(len(k))[None, :] > np.arange(len(q))[:, None])[None], -np.inf, s)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = o.c(s / s.sum(-1, keepdims=True))
        return o.c(np.einsum("hts,shd->thd", s, v).reshape(len(q), -1))

    def ffn(x, p):
        if p + "ffn_gate.weight" in W:
            g = o.linear(x, p + "ffn_gate")
            u = o.linear(x, p + "ffn_up")
            if "gate_up_swapped" in wrong:
                g, u = u, g
            a = o.c(g / (1.0 + np.exp(-g))) if "silu_gate" in wrong else o.gelu(g)
            return o.linear(o.c(a * u), p + "ffn_down")
        h = o.linear(x, p + "ffn_up")
        h = o.gelu(h) if "gelu_for_relu" in wrong else o.c(np.maximum(h, 0.0))
        return o.linear(h, p + "ffn_down")

    x = W["token_embd.weight"][enc_ids]
    T = len(enc_ids)
    for i in range(m.n_layer):
        p = f"enc.blk.{i}."
        h = norm(x, p + "attn_norm")
        q, k, v = (heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        table = rel_table("enc", i)
        b = None if table is None else rel_bias(table, T, T, True)
        x = o.c(x + o.linear(attention(q, k, v, b, False), p + "attn_o"))
        x = o.c(x + ffn(norm(x, p + "ffn_norm"), p))
    enc = x if "no_enc_output_norm" in wrong else norm(x, "enc.output_norm")

    y = W["token_embd.weight"][dec_ids]
    T = len(dec_ids)
    for i in range(m.n_dec_layer):
        p = f"dec.blk.{i}."
        h = norm(y, p + "attn_norm")
        q, k, v = (heads(o.linear(h, p + f"attn_{c}")) for c in "qkv")
        table = rel_table("dec", i)
        b = None if table is None else rel_bias(table, T, T, False)
        y = o.c(y + o.linear(attention(q, k, v, b, "decoder_bidirectional" not in wrong), p + "attn_o"))
        h = norm(y, p + "cross_attn_norm")
        q = heads(o.linear(h, p + "cross_attn_q"))
        k, v = (heads(o.linear(enc, p + f"cross_attn_{c}")) for c in "kv")
        y = o.c(y + o.linear(attention(q, k, v, None, "cross_causal" in wrong), p + "cross_attn_o"))
        y = o.c(y + ffn(norm(y, p + "ffn_norm"), p))
    logits = o.linear(norm(y, "dec.output_norm"), "output" if "output.weight" in W else "token_embd")
    if "lm_head_scaled" in wrong:
        logits = o.c(logits * m.n_embd ** -0.5)
    return logits, enc


# (switch, description, which stems it applies to)
T5_MISTAKES = [
    ("scale", "attention scale 1/sqrt(head_dim) instead of 1 (encoder, decoder and cross-attention)", None),
    ("no_rel_bias", "no relative position bias", None),
    ("buckets_swapped", "bucket modes swapped (causal buckets in the encoder, bidirectional in the decoder)", None),
    ("rel_sign", "relative position taken as query - key instead of key - query", None),
    ("no_log_buckets", "no logarithmic buckets (bucket = distance, capped at the last bucket)", None),
    ("rel_b_not_shared", "blocks without attn_rel_b get no bias (block 0's not reused)", "t5"),
    ("rel_b_layer0_only", "block 0's attn_rel_b in every block (the per-block tables ignored)", "flan-t5"),
    ("cross_causal", "causal mask on the cross-attention (query i sees encoder positions <= i)", None),
    ("decoder_bidirectional", "no causal mask in the decoder self-attention", None),
    ("gelu_for_relu", "GELU instead of ReLU in the FFN", "t5"),
    ("silu_gate", "SiLU instead of GELU on the gate (SwiGLU)", "flan-t5"),
    ("gate_up_swapped", "ffn_gate and ffn_up swapped", "flan-t5"),
    ("layer_norm", "LayerNorm (mean subtracted) instead of RMSNorm", None),
    ("no_enc_output_norm", "cross-attention reads the encoder states before enc.output_norm", None),
    ("lm_head_scaled", "logits scaled by d_model^-0.5 (HF's tied-embedding rescale)", None),
    ("eps", "RMS eps 1e-5 instead of the file's 1e-6", None),
    ("gelu_erf", "GELU erf instead of tanh", "flan-t5"),
]


def t5_mistakes(m, stem, enc_ids, dec_ids, L64, E64):
    """Centered RMS of the logits (and RMS of the encoder states) of the float64 forward with one switch wrong."""
    rows = []
    for key, what, only in T5_MISTAKES:
        if only is not None and only != stem:
            continue
        mm, wrong = m, frozenset([key])
        if key == "eps":
            mm = copy.copy(m)
            mm.rms_eps = 1e-5
            wrong = frozenset()
        o = Ops(mm)
        if key == "gelu_erf":
            verf = np.vectorize(math.erf)
            o.gelu = lambda x: 0.5 * x * (1.0 + verf(x / np.sqrt(2.0)))
            wrong = frozenset()
        L, E = forward_t5(o, enc_ids, dec_ids, wrong)
        rows.append({"mistake": what, "logits_centered_rms": agreement(L, L64)["centered_rms"],
                     "encoder_states_rms": float(f"{np.sqrt(((E - E64) ** 2).mean()):.3g}")})
    return rows


def llama_t5(path, enc_ids, dec_ids):
    """llama.cpp on an encoder-decoder file: one llama_encode batch of enc_ids (seq 0, positions 0..), then one
    llama_decode batch of dec_ids (seq 0, positions 0..) with every token an output. Returns (logits [n_dec,
    n_vocab], encoder states [n_enc, n_embd], decoder start id). The encoder states are llama_get_embeddings right
    after llama_encode: for LLM_ARCH_T5 llama.cpp always keeps an embeddings buffer (output_reserve), copies the
    encoder result (enc.output_norm output, pooling NONE) there and into its cross-attention store
    (llama_cross::v_embd) that the decoder graph reads. Settings as llama_logits (F32 K/V cache, flash attention
    off, 1 thread, use_extra_bufts off)."""
    import llama_cpp.llama_cpp as C
    llm = open_llama(path, **LLAMA_SETTINGS)
    try:
        model = llm._model.model
        assert C.llama_model_has_encoder(model) and C.llama_model_has_decoder(model)
        n_embd, n_vocab = llm.n_embd(), llm.n_vocab()
        llm._batch.reset()
        llm._batch.add_sequence(enc_ids, 0, True)
        llm._ctx.encode(llm._batch)
        ptr = C.llama_get_embeddings(llm._ctx.ctx)
        enc = np.array(ptr[:len(enc_ids) * n_embd], dtype=np.float32).reshape(len(enc_ids), n_embd)
        llm._batch.reset()
        llm._batch.add_sequence(dec_ids, 0, True)
        llm._ctx.decode(llm._batch)
        ptr = C.llama_get_logits(llm._ctx.ctx)
        logits = np.array(ptr[:len(dec_ids) * n_vocab], dtype=np.float32).reshape(len(dec_ids), n_vocab)
        return logits, enc, int(C.llama_model_decoder_start_token(model))
    finally:
        llm.close()


# Greedy text-to-text: a short input whose pieces are mostly whole vocabulary entries, and the number of decoder
# steps (no stop at </s>: always T5_GREEDY_STEPS ids).
T5_GREEDY_TEXT = "translate English to German: The house is very wonderful."
T5_GREEDY_STEPS = 12


def greedy_pick(row):
    """The argmax of a logit row (np.argmax: the lowest id among exact ties) and top-1 minus top-2."""
    row = np.asarray(row)
    top2 = np.sort(row)[-2:]
    return int(np.argmax(row)), float(top2[1] - top2[0])


def llama_t5_greedy(path, enc_ids, n_steps):
    """llama.cpp's greedy decoding: one llama_encode batch of enc_ids (seq 0, positions 0..), then from the decoder
    start token one llama_decode per token through the KV cache (seq 0, position = step), each next id the argmax of
    that call's logits. Returns the n_steps generated ids (the start token not among them). Settings as llama_t5."""
    import llama_cpp.llama_cpp as C
    llm = open_llama(path, **LLAMA_SETTINGS)
    try:
        n_vocab = llm.n_vocab()
        llm._batch.reset()
        llm._batch.add_sequence(enc_ids, 0, True)
        llm._ctx.encode(llm._batch)
        tok, out = int(C.llama_model_decoder_start_token(llm._model.model)), []
        for step in range(n_steps):
            llm._batch.set_batch([tok], step, True)
            llm._ctx.decode(llm._batch)
            ptr = C.llama_get_logits_ith(llm._ctx.ctx, -1)
            tok = greedy_pick(np.array(ptr[:n_vocab], dtype=np.float32))[0]
            out.append(tok)
        return out
    finally:
        llm.close()


def f64_t5_greedy(m, enc_ids, dec_start, n_steps):
    """The same greedy loop with the float64 forward (forward_t5 on the decoder ids so far, the last row's logits):
    the generated ids and, at each step, the top-1 minus top-2 logit."""
    dec, margins = [dec_start], []
    for _ in range(n_steps):
        L, _ = forward_t5(Ops(m), enc_ids, dec)
        tok, margin = greedy_pick(L[-1])
        dec.append(tok)
        margins.append(margin)
    return dec[1:], margins


# UGM cases: plain text; whitespace runs at the start, inside and at the end; tab, newline, carriage return, no-break
# and ideographic spaces; NFKC through the precompiled charsmap (full-width letters and punctuation, the fi and ffi
# ligatures, circled digits, a superscript, a vulgar fraction, a black-letter capital, a unit symbol, an ellipsis);
# composed and decomposed accents (e + U+0301 becomes é) and accented letters outside the vocabulary; CJK and emoji
# (unknown, runs merged into one <unk>); digits and symbols; the control tokens written as text (parse_special
# false); the sentinels (added tokens, matched in the text); characters the charsmap removes (U+0007) or turns into
# a space (U+200B, U+FEFF, a literal U+2581) or keeps (U+00AD); U+2028 and U+0085 (the charsmap makes U+2028 a
# space but keeps U+0085, which llama.cpp and SentencePiece then score as unknown and HF's WhitespaceSplit splits
# at); only spaces; the empty string.
T5_TOKENIZE_TEXTS = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "   leading,  inner   and trailing spaces   ",
    "tabs\tand\nnew lines\r\nwith\t \tmixed  whitespace, no\u00a0break\u3000ideographic",
    "\uff21\uff22\uff23 \uff46\uff55\uff4c\uff4c\uff0d\uff57\uff49\uff44\uff54\uff48\uff01 \ufb01ne \ufb03 "
    "\u2460\u2461\u2462 x\u00b2 \u00bd \u210c\u338f\u2026",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 cafe\u0301 \u00c5ngstr\u00f6m",
    "\u4e2d\u6587 and emoji \U0001F600\U0001F44D are unknown",
    "On 3 June 2024 at 7:45, $4.50 (see table 2); 100% sure?",
    "<pad> and </s> and <unk> typed as text",
    "<extra_id_0> fills the blank<extra_id_1>.",
    "zero\u200bwidth soft\u00adhyphen, bell\u0007 and BOM\ufeff, a\u2581literal\u2581meta space",
    "line\u2028separator next\u0085line",
    "     ",
    "",
]


def hf_t5_tokenizer(vocab):
    """An HF `tokenizers` tokenizer built as T5's published tokenizer.json (transformers' T5Converter): Unigram over
    the pieces and scores (the sentinels appended with score 0), unk_id 2, normalizer Precompiled(charsmap),
    pre-tokenizer WhitespaceSplit + Metaspace(U+2581, prepend_scheme always), post-processor "$A </s>", added
    special tokens <pad>, </s>, <unk> and the sentinels."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors
    n = T5_SPM_PIECES
    pieces = list(zip(vocab["tokens"][:n], vocab["scores"][:n])) + [(t, 0.0) for t in vocab["tokens"][n:]]
    tok = Tokenizer(models.Unigram(pieces, unk_id=vocab["special"]["unknown"], byte_fallback=False))
    tok.normalizer = normalizers.Precompiled(vocab["charsmap"])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(replacement="\u2581",
                                                                          prepend_scheme="always")])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", vocab["special"]["eos"])])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t in ["<pad>", "</s>", "<unk>"] + vocab["tokens"][n:]])
    return tok


def spm_t5_encode(vocab, text):
    """SentencePiece itself (what transformers' slow T5Tokenizer runs): the text split at the sentinels, each other
    piece encoded by the trained model, then </s>."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_proto=vocab["spm_model"])
    extra = {t: i for i, t in enumerate(vocab["tokens"]) if i >= T5_SPM_PIECES}
    parts = re.split("(" + "|".join(map(re.escape, extra)) + ")", text)
    ids = []
    for s in parts:
        ids += [extra[s]] if s in extra else (sp.encode(s) if s else [])
    return ids + [vocab["special"]["eos"]]


def t5_tokenize_cases(path, vocab):
    """tokenize_cases: llama.cpp's ids (llama_tokenize, add_special true, parse_special false, vocab_only load) and
    pieces; the ids of SentencePiece (spm_t5_encode) and of the HF tokenizer (hf_t5_tokenizer, encode with
    add_special_tokens) are added only where they differ from llama.cpp's."""
    hf = hf_t5_tokenizer(vocab)
    cases = []
    for text, ids in zip(T5_TOKENIZE_TEXTS, llama_tokenize(path, T5_TOKENIZE_TEXTS)):
        ids = list(map(int, ids))
        c = {"text": text, "ids": ids, "tokens": [vocab["tokens"][i] for i in ids]}
        s_ids = spm_t5_encode(vocab, text)
        if s_ids != ids:
            c.update(sentencepiece_ids=s_ids, sentencepiece_tokens=[vocab["tokens"][i] for i in s_ids])
        h_ids = hf.encode(text).ids
        if h_ids != ids:
            c.update(hf_tokenizers_ids=h_ids, hf_tokenizers_tokens=[vocab["tokens"][i] for i in h_ids])
        cases.append(c)
    return cases


def describe_t5(hp, path, vocab):
    r = GGUFReader(path)
    return {"architecture": "t5", "n_vocab": hp.n_vocab, "n_embd": hp.n_embd, "n_head": hp.n_head,
            "head_dim": hp.head_dim, "n_layer_encoder": hp.n_layer, "n_layer_decoder": hp.n_dec_layer,
            "n_ff": hp.n_ff, "context_length": hp.n_ctx, "rms_norm_epsilon": hp.eps, "norm": "RMSNorm",
            "relative_buckets_count": hp.rel_buckets, "relative_max_distance": 128,
            "decoder_start_token_id": hp.dec_start,
            "ffn": ("gated GELU: ffn_down(gelu(ffn_gate(x)) * ffn_up(x)), ggml_gelu (tanh form)" if hp.ffn == "geglu"
                    else "ReLU: ffn_down(relu(ffn_up(x)))"),
            "attn_rel_b": ("every encoder and decoder block" if hp.rel_b_every_layer else
                           "block 0 of the encoder and of the decoder (later blocks use block 0's)"),
            "attention_scale": 1.0, "output": "output.weight, no d_model^-0.5 scaling",
            "tokenizer": {"model": "t5 (SentencePiece Unigram, llama.cpp UGM)", "pieces": T5_SPM_PIECES,
                          "added_tokens": {t: vocab["tokens"].index(t) for t in T5_EXTRA_IDS},
                          "normalizer": vocab["normalizer_name"], "precompiled_charsmap_bytes": len(vocab["charsmap"]),
                          "add_space_prefix": vocab["add_space_prefix"],
                          "remove_extra_whitespaces": vocab["remove_extra_whitespaces"],
                          "eos": 1, "unk": 2, "pad": 0, "bos": None, "add_eos_token": True},
            "tensors": {t.name: [t.tensor_type.name] + [int(x) for x in t.shape] for t in r.tensors}}


def make_t5_family(stem, out_dir, use_llama=True):
    """Both files of a T5 entry and their JSON: teacher-forced decoder logits for a fixed encoder input, the encoder
    states, the bucket table and the tokenizer cases. The trained SentencePiece model is written next to them as
    t5-spm.model."""
    hp = FAMILIES[stem]
    vocab = t5_vocab(hp.n_vocab)
    tensors = tensors_t5(hp, Init(SEED + sum(map(ord, stem))))
    normal = [i for i, t in enumerate(vocab["types"]) if t == int(gguf.TokenType.NORMAL)]
    rng = np.random.default_rng(SEED + 1 + sum(map(ord, stem)))
    enc_ids = [int(normal[j]) for j in rng.integers(0, len(normal), T5_N_ENC - 1)] + [vocab["special"]["eos"]]
    dec_ids = [hp.dec_start] + [int(normal[j]) for j in rng.integers(0, len(normal), T5_N_DEC - 1)]
    d = os.path.join(out_dir, hp.arch)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "t5-spm.model"), "wb") as f:
        f.write(vocab["spm_model"])
    buckets = t5_bucket_table(hp.rel_buckets)
    if use_llama:
        assert llama_bucket_table(hp.rel_buckets) == buckets, "bucket table differs from llama.cpp's"
    rows, cases = [], None
    for qtype in (QT.F32, QT.Q8_0):
        tag = qtype.name.lower()
        path = os.path.join(d, f"{stem}-{tag}.gguf")
        write_t5_gguf(path, f"synthetic-{stem}-{tag}", hp, tensors, vocab, qtype)
        m = Model(path)
        L64, E64 = forward_t5(Ops(m), enc_ids, dec_ids)
        out = {"file": os.path.basename(path), "generator": GENERATOR,
               "vocabulary": "SentencePiece Unigram model trained by tools/make_families.py (t5_spm_model; "
                             "t5-spm.model in this directory) plus two sentinel tokens",
               "seed": SEED, "model": describe_t5(hp, path, vocab), "env": dict(env(), **t5_env()),
               "llamacpp_settings": dict(LLAMA_SETTINGS, use_extra_bufts=False,
                                         note="llama_encode of encoder_ids (one batch, seq 0), then llama_decode "
                                              "of decoder_ids (one batch, seq 0, positions from 0, every token an "
                                              "output); type_k/type_v 0 = F32 KV cache"),
               "encoder_ids": enc_ids, "decoder_ids": dec_ids,
               "relative_buckets": dict(offset=-130, n_buckets=hp.rel_buckets, max_distance=128,
                                        what="bucket[r - offset] for r = key position - query position = x - y "
                                             "in llama_relative_position_bucket(x, y, ...), r = -130..130; "
                                             "bidirectional: encoder self-attention; causal: decoder "
                                             "self-attention; checked against llama.cpp's own function",
                                        **buckets)}
        row = {"file": os.path.basename(path), "size": os.path.getsize(path)}
        if cases is None and use_llama:
            cases = t5_tokenize_cases(path, vocab)
        if use_llama:
            Llc, Elc, dec_start = llama_t5(path, enc_ids, dec_ids)
            assert dec_start == hp.dec_start
            agr = {"logits": agreement(Llc, L64), "encoder_states": vec_agreement(Elc, E64)}
            gelu = hp.ffn == "geglu"
            diag = {}
            if gelu:
                Lg, Eg = forward_t5(Ops(m, gelu_f16_table=True), enc_ids, dec_ids)
                diag["gelu_f16_table"] = {"logits": agreement(Llc, Lg), "encoder_states": vec_agreement(Elc, Eg)}
            if qtype != QT.F32:
                Lq, Eq = forward_t5(Ops(m, gelu_f16_table=gelu, q8_activations=True), enc_ids, dec_ids)
                diag["gelu_f16_table_and_q8_0_activations" if gelu else "q8_0_activations"] = {
                    "logits": agreement(Llc, Lq), "encoder_states": vec_agreement(Elc, Eq)}
            out["agreement"] = dict(agr, what="llamacpp - f64: logits over all decoder positions and the vocabulary "
                                              "(centered: each row's mean difference subtracted); encoder_states "
                                              "over all encoder tokens and dims")
            out["diagnostics"] = {"what": "llama.cpp against float64 forwards that imitate ggml CPU rounding: GELU "
                                          "through its float16 table (gated FFN only), and (Q8_0 file) activations "
                                          "rounded to Q8_0 blocks before Q8_0 matmuls", **diag}
            out["llamacpp_logits"] = [[f32s(v) for v in r] for r in Llc]
            out["llamacpp_encoder_states"] = [[f32s(v) for v in r] for r in Elc]
            row.update(agr, diag=diag)
        out["f64_logits"] = [[f64s(v) for v in r] for r in L64]
        out["f64_logit_std"] = float(f"{L64.std(axis=1).mean():.4g}")
        out["f64_encoder_states"] = [[f64s(v) for v in r] for r in E64]
        L32, E32 = forward_t5(Ops(m.as_float32(), float32=True), enc_ids, dec_ids)
        f32agr = {"logits": agreement(L32, L64), "encoder_states": vec_agreement(E32, E64)}
        out["float32_numpy_vs_f64"] = dict(f32agr, what="a plain float32 numpy forward (float32 weights and "
                                           "intermediates, exact GELU) against the f64 values: what an exact "
                                           "float32 runtime can reach")
        row["float32_numpy_vs_f64"] = f32agr
        out["mistakes"] = t5_mistakes(m, stem, enc_ids, dec_ids, L64, E64)
        if use_llama:
            out["tokenize_cases"] = cases
            out["greedy"] = t5_greedy(path, m, hp)
            row["greedy_agree"] = out["greedy"]["decoder_ids"] == out["greedy"]["f64_decoder_ids"]
        dump_json(os.path.join(d, f"{stem}-{tag}.json"), out)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def t5_greedy(path, m, hp):
    """`greedy`: T5_GREEDY_TEXT tokenized by llama.cpp (add_special true, parse_special false: ends with </s>),
    T5_GREEDY_STEPS ids decoded greedily by llama.cpp (llama_t5_greedy) and by the float64 forward (f64_t5_greedy),
    and the float64 top-1 minus top-2 logit at each step."""
    enc_ids = list(map(int, llama_tokenize(path, [T5_GREEDY_TEXT])[0]))
    f64_ids, margins = f64_t5_greedy(m, enc_ids, hp.dec_start, T5_GREEDY_STEPS)
    return {"text": T5_GREEDY_TEXT, "encoder_ids": enc_ids,
            "decoder_ids": llama_t5_greedy(path, enc_ids, T5_GREEDY_STEPS),
            "f64_decoder_ids": f64_ids, "f64_margins": [f64s(v) for v in margins]}


def t5_env():
    from importlib.metadata import version
    return {"sentencepiece": version("sentencepiece"), "tokenizers": version("tokenizers")}



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donor", required=True, help="gpt2-BPE GGUF whose first 512 tokens form the vocabulary")
    ap.add_argument("--out", default="tests/fixtures/families")
    ap.add_argument("--arch", default=",".join(DEFAULT_SET), help="comma-separated subset of " + ",".join(FAMILIES))
    ap.add_argument("--no-llama", action="store_true", help="skip llama.cpp (f64 logits only)")
    a = ap.parse_args(argv)
    for stem in a.arch.split(","):
        make_family(stem, a.donor, a.out, use_llama=not a.no_llama)


if __name__ == "__main__":
    main()
