#!/usr/bin/env python3
"""Reference fixture for the real nomic-embed-text-v1.5 F16 GGUF (llama.cpp architecture `nomic-bert`):
tests/fixtures/embeddings/nomic-embed-text-v1.5.json.

What the file holds:
  * model: file name, sha256, size and the hparams read from the GGUF header;
  * cases: texts with their llama.cpp token ids ([CLS] ... [SEP]), llama.cpp's pooled embedding (the file's
    pooling type, MEAN; not normalised, and L2-normalised), and an independent float64 numpy forward of the same
    model (mean-pooled, L2-normalised), with the agreement between them and float32 yardsticks;
  * tokenize_cases: more texts through llama.cpp's WordPiece tokenizer, with their ids;
  * cosines: similarities between the normalised float64 embeddings of some cases.

Token ids come from llama.cpp (llama_tokenize on a vocab-only load, add_special=true, parse_special=false). The
llama.cpp embedding is one llama_decode of all the ids of a case as one sequence (positions 0..T-1, every token an
output), embeddings=true, pooling from the file (MEAN), n_ctx 512, n_batch = n_ubatch = 512, K/V types F32,
flash attention off, 1 thread, use_extra_bufts off (golden_common.load_llama); llama_get_embeddings_seq(ctx, 0).

The float64 forward follows llama.cpp's graph for nomic-bert (src/models/bert.cpp, llama_model_bert::graph, used
by llama_model_nomic_bert), weights read with gguf-py and widened F16 -> float64:
    x = token_embd[ids] + token_types[0];  x = LayerNorm(x; token_embd_norm)           (no position embeddings)
    per layer:  q, k, v = split(x @ attn_qkv^T)  (no biases in this file), heads of 64
                q, k = RoPE NEOX (rotated halves [0:32] / [32:64] of each head, theta_i = pos * base^(-2i/64),
                       base = rope.freq_base = 1000, all 64 dims rotated)
                a = softmax(q k^T / 8) v  over all positions (non-causal), merged heads, @ attn_output^T
                x = LayerNorm(x + a; attn_output_norm)
                f = (silu(x @ ffn_gate^T) * (x @ ffn_up^T)) @ ffn_down^T       (SwiGLU, no biases)
                x = LayerNorm(x + f; layer_output_norm)
    embedding = mean over positions of x (the last layer's output; there is no output norm), L2-normalised.
LayerNorm is (x - mean) / sqrt(var + eps) * w + b with eps = attention.layer_norm_epsilon (population variance).

This is a generator for test data, never a runtime dependency. It needs a Python with numpy 2.4.6, gguf 0.19.0 and
llama-cpp-python 0.3.36 (tokenizers 0.23.3 too, for an independent check of the ids), and
../shared/golden/tools (golden_common.py) beside the repository:

    tools/fetch_nomic_embed.sh models
    OPENBLAS_NUM_THREADS=1 /tmp/venv-golden/bin/python tools/golden_nomic.py \\
        --model models/nomic-embed-text-v1.5.f16.gguf --out tests/fixtures/embeddings/nomic-embed-text-v1.5.json
"""
import argparse
import ctypes
import os
import platform
import sys
from importlib.metadata import version

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../shared/golden/tools"))

from gguf import GGUFReader  # noqa: E402
from golden_common import LLAMA_CPP_COMMIT, dump_json, f32, f64, llama_settings_note, load_llama, sha256  # noqa: E402

CASES = [
    "search_query: What is the capital of France?",
    "search_document: Paris is the capital and largest city of France.",
    "search_document: The mitochondria is the powerhouse of the cell.",
    "Café naïve RÉSUMÉ — 中文 λ-calculus, don't! ☃",
]

TOKENIZE_CASES = [
    "Hello world",
    "The QUICK Brown fOX jumps OVER the lazy DoG",
    "Wait... what?! (yes) [no] {maybe}; a-b_c/d\\e @home #tag 50% & more",
    "In 2024, 3.14159 and 1,000,000 people paid $42.50 at 10:30.",
    "don't can't it's rock'n'roll o'clock 'quoted'",
    "éclair jalapeño über Ångström ÉCOLE",
    "Greek: φιλοσοφία",
    "中文字符测试 and 日本語のテキスト",
    "emoji 😀🍕 here",
    "tab\there\nnew line\r\nend",
    "bell\u0007char",
    "pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidociously",
    "[MASK] is not parsed: [CLS] [SEP]",
    "     ",
    "",
]

COSINE_PAIRS = [(0, 1), (0, 2), (1, 2)]

GGML_TYPE_F32 = 0


# ----------------------------------------------------------------------------- GGUF header
def header(path):
    r = GGUFReader(path)
    f = lambda k, d=None: r.fields[k].contents() if k in r.fields else d  # noqa: E731
    arch = f("general.architecture")
    a = lambda k, d=None: f(f"{arch}.{k}", d)  # noqa: E731
    n_embd, n_head = int(a("embedding_length")), int(a("attention.head_count"))
    hp = {
        "general.architecture": arch,
        "general.name": f("general.name"),
        "general.file_type": int(f("general.file_type")),
        "block_count": int(a("block_count")),
        "context_length": int(a("context_length")),
        "embedding_length": n_embd,
        "feed_forward_length": int(a("feed_forward_length")),
        "attention.head_count": n_head,
        "attention.head_count_kv": int(a("attention.head_count_kv", n_head)),
        "attention.layer_norm_epsilon": float(a("attention.layer_norm_epsilon")),
        "attention.causal": bool(a("attention.causal")),
        "pooling_type": int(a("pooling_type")),
        "rope.freq_base": float(a("rope.freq_base")),
        "rope.dimension_count": a("rope.dimension_count"),
        "tokenizer.ggml.model": f("tokenizer.ggml.model"),
        "tokenizer.ggml.token_type_count": int(f("tokenizer.ggml.token_type_count")),
        "vocab_size": len(r.fields["tokenizer.ggml.tokens"].data),
        "tokenizer.ggml.bos_token_id": int(f("tokenizer.ggml.bos_token_id")),
        "tokenizer.ggml.eos_token_id": int(f("tokenizer.ggml.eos_token_id")),
        "tokenizer.ggml.seperator_token_id": int(f("tokenizer.ggml.seperator_token_id")),
        "tokenizer.ggml.unknown_token_id": int(f("tokenizer.ggml.unknown_token_id")),
        "tokenizer.ggml.padding_token_id": int(f("tokenizer.ggml.padding_token_id")),
    }
    assert hp["rope.dimension_count"] is None and hp["attention.head_count_kv"] == n_head
    del hp["rope.dimension_count"]
    hp["derived"] = {
        "head_dim": n_embd // n_head,
        "n_rot": n_embd // n_head,
        "rope_type": "NEOX (llama.cpp's rope type for nomic-bert; not a GGUF key)",
        "add_bos ([CLS])": "true (llama.cpp's WPM default; no tokenizer.ggml.add_bos_token key)",
        "add_sep ([SEP] at the end)": "true (llama.cpp's WPM default; no tokenizer.ggml.add_sep_token key)",
        "normalizer": "lowercase and strip accents (llama.cpp's default; no tokenizer.ggml.normalizer_* keys)",
    }
    counts = {}
    for t in r.tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    hp["tensors"] = {"count": len(r.tensors), "by_type": dict(sorted(counts.items())),
                     "names_per_layer": sorted({t.name.split(".", 2)[2] for t in r.tensors
                                               if t.name.startswith("blk.0.")}),
                     "global": sorted(t.name for t in r.tensors if not t.name.startswith("blk."))}
    return r, hp


# ----------------------------------------------------------------------------- numpy forward
class Nomic:
    """nomic-bert forward in numpy. dtype float64 is the reference; float32 (optionally with every weight-matmul
    input rounded to f16, as ggml's CPU F16 matmuls do) gives the yardsticks."""

    def __init__(self, reader, hp):
        self.t = {t.name: t for t in reader.tensors}
        self.n_layer = hp["block_count"]
        self.n_embd = hp["embedding_length"]
        self.n_head = hp["attention.head_count"]
        self.hd = self.n_embd // self.n_head
        self.eps = hp["attention.layer_norm_epsilon"]
        self.base = hp["rope.freq_base"]
        self.cache = {}

    def w(self, name, dt):
        key = (name, np.dtype(dt).name)
        if key not in self.cache:
            t = self.t[name]
            a = np.asarray(t.data).astype(dt)
            self.cache[key] = a.reshape([int(n) for n in reversed(t.shape)])  # [ne1, ne0]
        return self.cache[key]

    def ln(self, x, name, dt):
        mu = x.mean(axis=-1, keepdims=True)
        d = x - mu
        var = (d * d).mean(axis=-1, keepdims=True)
        return d / np.sqrt(var + dt(self.eps)) * self.w(name + ".weight", dt) + self.w(name + ".bias", dt)

    def rope(self, x, dt):
        """NEOX RoPE over the whole head: x [T, H, hd]."""
        T, half = x.shape[0], self.hd // 2
        inv = self.base ** (-2.0 * np.arange(half, dtype=np.float64) / self.hd)
        ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang).astype(dt)[:, None, :], np.sin(ang).astype(dt)[:, None, :]
        x0, x1 = x[..., :half], x[..., half:]
        return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)

    def forward(self, ids, dt=np.float64, f16_mm=False):
        """Final hidden states [T, n_embd] (the last layer_output_norm)."""
        def mm(x, name):
            if f16_mm:
                x = x.astype(np.float16).astype(dt)
            return x @ self.w(name, dt).T

        T, H, hd, E = len(ids), self.n_head, self.hd, self.n_embd
        emb = np.asarray(self.t["token_embd.weight"].data)[np.asarray(ids)].astype(dt)
        x = emb + self.w("token_types.weight", dt)[0]
        x = self.ln(x, "token_embd_norm", dt)
        scale = dt(1.0 / np.sqrt(hd))
        for i in range(self.n_layer):
            p = f"blk.{i}."
            qkv = mm(x, p + "attn_qkv.weight")
            q, k, v = (qkv[:, j * E:(j + 1) * E].reshape(T, H, hd) for j in range(3))
            q, k = self.rope(q, dt), self.rope(k, dt)
            s = np.einsum("thd,shd->hts", q, k) * scale
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            pr = s / s.sum(axis=-1, keepdims=True)
            o = np.einsum("hts,shd->thd", pr, v).reshape(T, E)
            x = self.ln(x + mm(o, p + "attn_output.weight"), p + "attn_output_norm", dt)
            g = mm(x, p + "ffn_gate.weight")
            u = mm(x, p + "ffn_up.weight")
            h = g / (dt(1.0) + np.exp(-g)) * u
            x = self.ln(x + mm(h, p + "ffn_down.weight"), p + "layer_output_norm", dt)
        return x


def pool(h):
    """Mean over positions in float64, then (unit vector, L2 norm of the mean)."""
    m = np.asarray(h, dtype=np.float64).mean(axis=0)
    n = float(np.linalg.norm(m))
    return m / n, n


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def agree(e, ref):
    """Two unit vectors: max abs component difference and 1 - cosine, both float64."""
    return {"max_abs": f64(np.abs(e - ref).max()), "one_minus_cosine": f64(1.0 - float(np.dot(e, ref)))}


def up1(x):
    """x rounded up to one significant digit."""
    e = 10.0 ** np.floor(np.log10(x))
    return float(f"{np.ceil(x / e - 1e-9) * e:.1g}")


# ----------------------------------------------------------------------------- HF tokenizers cross-check
def hf_wordpiece(reader):
    """Independent BERT WordPiece tokenizer (HF `tokenizers`) rebuilt from the GGUF vocabulary, or None if the
    library is missing. GGUF pieces '\u2581x' are word-initial 'x', other NORMAL pieces continuation '##x',
    CONTROL pieces ([PAD] [UNK] [CLS] [SEP] [MASK]) as they are; BertNormalizer (clean text, CJK split, strip
    accents, lowercase), BertPreTokenizer, [CLS] $A [SEP]."""
    try:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    except ImportError:
        return None
    toks = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    vocab = {}
    for i, (t, ty) in enumerate(zip(toks, types)):
        w = t[1:] if t.startswith("\u2581") else ("##" + t if ty == 1 else t)
        assert w not in vocab, (w, i)
        vocab[w] = i
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                                               lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                      special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return lambda text: tk.encode(text).ids


# ----------------------------------------------------------------------------- llama.cpp
def llama_tokenizer(path):
    """llama_tokenize(add_special=true, parse_special=false) on a vocab-only load."""
    import llama_cpp.llama_cpp as C
    from llama_cpp._utils import suppress_stdout_stderr
    C.llama_backend_init()
    p = C.llama_model_default_params()
    p.vocab_only = True
    p.use_extra_bufts = False
    with suppress_stdout_stderr(disable=False):
        model = C.llama_model_load_from_file(path.encode(), p)
    assert model, "llama.cpp could not load the vocabulary"
    vocab = C.llama_model_get_vocab(model)

    def tokenize(text):
        b = text.encode("utf-8")
        n_max = len(b) + 8
        buf = (C.llama_token * n_max)()
        n = C.llama_tokenize(vocab, b, len(b), buf, n_max, True, False)
        assert n >= 0, ("llama_tokenize", text, n)
        return [int(buf[i]) for i in range(n)]

    return model, tokenize


def llama_embedder(path):
    import llama_cpp.llama_cpp as C
    llm = load_llama(path, n_threads=1, n_threads_batch=1, n_ctx=512, n_batch=512, n_ubatch=512, embedding=True,
                     logits_all=False, type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32,
                     pooling_type=C.LLAMA_POOLING_TYPE_UNSPECIFIED)
    ctx = llm._ctx.ctx
    assert C.llama_pooling_type(ctx) == C.LLAMA_POOLING_TYPE_MEAN, "expected the file's MEAN pooling"
    n_embd = llm.n_embd()

    def embed(ids):
        n = len(ids)
        assert n <= 512
        b = C.llama_batch_init(n, 0, 1)
        try:
            for i, t in enumerate(ids):
                b.token[i] = t
                b.pos[i] = i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = True
            b.n_tokens = n
            rc = C.llama_decode(ctx, b)
            assert rc == 0, ("llama_decode", rc)
            ptr = C.llama_get_embeddings_seq(ctx, 0)
            assert ptr, "no pooled embedding"
            return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_embd,)).copy()
        finally:
            C.llama_batch_free(b)

    return llm, embed


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--token-states", choices=("none", "head16", "full"), default="head16",
                    help="float64 final token states of the shortest case: none, the first 16 components of each "
                         "token (default), or all of them")
    a = ap.parse_args(argv)

    import llama_cpp
    reader, hp = header(a.model)
    vocab_text = reader.fields["tokenizer.ggml.tokens"].contents()

    _model, tokenize = llama_tokenizer(a.model)
    ids = [tokenize(t) for t in CASES]
    tok_cases = [{"text": t, "ids": tokenize(t)} for t in TOKENIZE_CASES]
    for c in tok_cases:
        c["pieces"] = [vocab_text[i] for i in c["ids"]]
    hf = hf_wordpiece(reader)
    if hf is not None:
        from tokenizers import __version__ as hf_version
        diff = [t for t, i in list(zip(CASES, ids)) + [(c["text"], c["ids"]) for c in tok_cases] if hf(t) != i]
        ids_checked = (f"HF tokenizers {hf_version} BERT WordPiece rebuilt from the GGUF vocabulary "
                       "(golden_nomic.hf_wordpiece): " + ("same ids for every text" if not diff else
                                                          f"different ids for {diff!r}"))
    else:
        ids_checked = "not checked (HF tokenizers not installed)"

    _llm, embed = llama_embedder(a.model)
    m = Nomic(reader, hp)

    yard = {"f32": dict(dt=np.float32), "f32_f16_matmul_inputs": dict(dt=np.float32, f16_mm=True)}
    cases, e64s, worst = [], [], {}
    shortest = min(range(len(CASES)), key=lambda i: (len(ids[i]), i))
    for ci, (text, tid) in enumerate(zip(CASES, ids)):
        h64 = m.forward(tid)
        e64, n64 = pool(h64)
        e64s.append(e64)
        lc = embed(tid)
        lcn = unit(lc)
        ag = {"llamacpp_vs_f64": agree(lcn, e64)}
        ag["llamacpp_vs_f64"]["pooled_norm_rel_diff"] = f64(abs(np.linalg.norm(lc.astype(np.float64)) - n64) / n64)
        for name, kw in yard.items():
            ag[f"{name}_vs_f64"] = agree(pool(m.forward(tid, **kw))[0], e64)
        ag["llamacpp_vs_f32_f16_matmul_inputs"] = agree(lcn, pool(m.forward(tid, **yard["f32_f16_matmul_inputs"]))[0])
        for k, v in ag.items():
            w = worst.setdefault(k, {"max_abs": 0.0, "one_minus_cosine": 0.0})
            w["max_abs"] = max(w["max_abs"], v["max_abs"])
            w["one_minus_cosine"] = max(w["one_minus_cosine"], v["one_minus_cosine"])
        c = {"text": text, "n_tokens": len(tid), "ids": tid, "pieces": [vocab_text[i] for i in tid],
             "llamacpp_embedding": [f32(x) for x in lc],
             "llamacpp_embedding_normalized": [f64(x) for x in lcn],
             "f64_pooled_l2_norm": f64(n64),
             "f64_embedding_mean_normalized": [f64(x) for x in e64],
             "agreement": ag}
        if ci == shortest and a.token_states != "none":
            hs = h64 if a.token_states == "full" else h64[:, :16]
            key = "f64_token_states" if a.token_states == "full" else "f64_token_states_first16"
            c[key] = [[f64(x) for x in row] for row in hs]
        cases.append(c)
        print(f"case {ci}: {len(tid)} tokens  " + "  ".join(
            f"{k}: max_abs {v['max_abs']:.3g} 1-cos {v['one_minus_cosine']:.3g}" for k, v in ag.items()),
            file=sys.stderr)

    lw = worst["llamacpp_vs_f64"]
    fw = worst["f32_f16_matmul_inputs_vs_f64"]
    sw = worst["f32_vs_f64"]
    tol = {
        "how_to_use": ("Embed each case's ids (not its text) with mean pooling, L2-normalise, and compare with "
                       "f64_embedding_mean_normalized: largest |component difference| <= max_abs and "
                       "1 - cosine <= max_one_minus_cosine."),
        "f32_runtime_f16_matmul_inputs": {
            "max_abs": up1(5 * max(lw["max_abs"], fw["max_abs"])),
            "max_one_minus_cosine": up1(25 * max(lw["one_minus_cosine"], fw["one_minus_cosine"])),
            "for": "a float32 runtime on the F16 weights that may round activations to f16 before the weight "
                   "matmuls (as ggml's CPU backend does) or otherwise loses about that much",
            "from": "5 x the largest max_abs and 25 x the largest 1 - cosine of llamacpp_vs_f64 and "
                    "f32_f16_matmul_inputs_vs_f64 over the cases, rounded up to one significant digit"},
        "f32_runtime_f32_activations": {
            "max_abs": up1(10 * sw["max_abs"]),
            "max_one_minus_cosine": up1(100 * sw["one_minus_cosine"]),
            "for": "a float32 runtime that widens the F16 weights and keeps every activation in f32",
            "from": "10 x the largest max_abs and 100 x the largest 1 - cosine of f32_vs_f64 over the cases, "
                    "rounded up to one significant digit"},
    }

    cos = [{"a": i, "b": j, "f64_cosine": f64(np.dot(e64s[i], e64s[j])),
            "llamacpp_cosine": f64(np.dot(unit(cases[i]["llamacpp_embedding"]), unit(cases[j]["llamacpp_embedding"])))}
           for i, j in COSINE_PAIRS]

    out = {
        "model": {"file": os.path.basename(a.model), "sha256": sha256(a.model), "size": os.path.getsize(a.model),
                  "hparams": hp},
        "definition": (
            "Embedding = mean over all positions of the last layer's output (layer_output_norm of the last block; "
            "nomic-bert has no output norm), L2-normalised in float64. Non-causal attention over one sequence at "
            "positions 0..T-1, ids from llama.cpp's tokenizer with [CLS] first and [SEP] last. The float64 forward "
            "(tools/golden_nomic.py, class Nomic) widens the F16/F32 weights to float64 and follows llama.cpp's "
            "bert graph for nomic-bert: token_embd + token_types row 0, token_embd_norm LayerNorm, per layer fused "
            "attn_qkv, NEOX RoPE over the whole 64-dim head with base rope.freq_base, softmax(q k^T / 8) v, "
            "attn_output, post-LayerNorm attn_output_norm, SwiGLU FFN silu(gate) * up -> down, post-LayerNorm "
            "layer_output_norm. No biases except the LayerNorms'."),
        "generator": {
            "script": "tools/golden_nomic.py",
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_commit": LLAMA_CPP_COMMIT if llama_cpp.__version__ == "0.3.36" else "see the sdist",
            "gguf_py": version("gguf"), "numpy": np.__version__, "python": platform.python_version(),
            "llama_cpp_settings": (
                "ids: llama_tokenize on a vocab-only load, add_special=true, parse_special=false. embedding: one "
                "llama_decode of all ids (one sequence, pos 0..T-1, every token an output), embeddings=true, "
                "pooling_type from the file (MEAN), n_ctx 512, n_batch 512, n_ubatch 512, type_k/type_v F32, "
                "flash_attn off, n_threads 1; pooled vector from llama_get_embeddings_seq(ctx, 0); "
                + llama_settings_note()),
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        },
        "ids_checked_against": ids_checked,
        "number_format": ("llamacpp_embedding: float32 values, shortest repr that round-trips; every float64 "
                          "number: 9 significant digits"),
        "agreement_note": (
            "Per case, unit vectors compared in float64: max_abs = largest |component difference|, "
            "one_minus_cosine = 1 - dot. llamacpp_vs_f64: llama.cpp (ggml CPU; F16 weight matmuls round their "
            "activation input to f16 and accumulate in f32). f32_vs_f64: numpy float32 forward (F16 weights "
            "widened to f32, f32 activations). f32_f16_matmul_inputs_vs_f64: the same with every weight-matmul "
            "input rounded to f16, as ggml does; llamacpp_vs_f32_f16_matmul_inputs shows how close that mimic is "
            "to llama.cpp."),
        "agreement_worst": worst,
        "suggested_tolerance": tol,
        "cases": cases,
        "tokenize_cases_note": ("llama.cpp ids (add_special=true, parse_special=false): [CLS]=101 first, "
                                "[SEP]=102 last; [UNK]=100. pieces: the GGUF vocabulary strings of the ids "
                                "(word-initial pieces carry U+2581, continuation pieces carry no ## prefix)."),
        "tokenize_cases": tok_cases,
        "cosines": cos,
    }
    dump_json(a.out, out)
    print(f"wrote {a.out}: {os.path.getsize(a.out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
