#!/usr/bin/env python3
"""Float64 reference sentence embeddings: tests/fixtures/embeddings/<model>.json.

The embedding of a text is defined as llama.cpp defines it for a decoder model with `--pooling mean`:
the model runs over the text's token ids (causal attention, one sequence from position 0), the hidden state
of every position is taken AFTER the final RMSNorm (output_norm: the state the output projection reads,
llama.cpp's t_embd / result_norm), the states are averaged over the positions and the mean is L2-normalised.

Token ids: BOS first iff the GGUF's tokenizer.ggml.add_bos_token is true (if the key is absent, llama.cpp's
default for the vocabulary type: see add_bos()), then the text tokenized as plain text (special tokens written
in the text are NOT parsed). The text's ids come from the independent HF `tokenizers` rebuild of the GGUF
tokenizer in ../shared/golden/tools/golden_tokens.py (hf_rebuild); --hearth and --llamacpp cross-check them.

The forward pass is RefModel from ../shared/golden/tools/ref_numpy.py in float64 (weights dequantized by
gguf-py). The file's "guidance" compares the same embeddings from rounded forwards against float64, so that
a test can set its tolerance from data:
  * f32 forwards (golden_common.RefLlamaF32: f32 activations; plus K/V/Q/attention probabilities in f16;
    plus every matmul input in f16; plain RefModel(dtype=np.float32) is not used because its RoPE and attention
    promote the residual stream back to float64),
  * RefModel(ggml_mimic=True): activations rounded to 8-bit blocks like llama.cpp's CPU matmuls,
  * with --llamacpp: llama.cpp itself (llama-cpp-python, embedding=True, pooling_type MEAN),
and gives the cosine similarities between the float64 embeddings of the cases.

This is a generator for test data, never a runtime dependency. It needs a Python with numpy, gguf 0.19.0 and
tokenizers 0.23.3 (llama-cpp-python 0.3.36 too for --llamacpp; building it takes ~20 minutes on 2 cores),
e.g. in a scratch venv outside the repository:

    python3 -m venv /tmp/venv-golden
    /tmp/venv-golden/bin/pip install numpy==2.4.6 gguf==0.19.0 tokenizers==0.23.3 llama-cpp-python==0.3.36
    OPENBLAS_NUM_THREADS=1 /tmp/venv-golden/bin/python tools/golden_embed.py \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --hearth target/release/hearth --llamacpp \\
        --out tests/fixtures/embeddings/smollm2-135m-instruct-q4_1.json

Without --text, the four default texts are used; --text (repeatable) replaces them.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
from importlib.metadata import version

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../shared/golden/tools"))

from gguf import GGUFReader  # noqa: E402
from golden_common import RefLlamaF32, dump_json, sha256  # noqa: E402
from golden_tokens import hf_rebuild  # noqa: E402
from ref_numpy import RefModel  # noqa: E402

TEXTS = ["The cat sat on the mat.", "A kitten was sitting on the rug.", "Quarterly revenue rose by 12 percent.",
         "hello"]

# llama.cpp (llama-vocab.cpp, llama_vocab::impl::load) when tokenizer.ggml.add_bos_token is absent: SPM ('llama')
# and WPM ('bert') vocabularies add BOS; BPE ('gpt2') vocabularies do not, except for these pre-tokenizers.
BPE_PRE_WITH_BOS = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                    "jina-v5-nano", "tekken", "chameleon"}


def add_bos(r):
    """(add BOS?, why) for a GGUFReader."""
    f = lambda k: r.fields[k].contents() if k in r.fields else None  # noqa: E731
    v = f("tokenizer.ggml.add_bos_token")
    if v is not None:
        return bool(v), f"tokenizer.ggml.add_bos_token = {str(bool(v)).lower()}"
    kind, pre = f("tokenizer.ggml.model"), f("tokenizer.ggml.pre")
    b = kind in ("llama", "bert") or (kind == "gpt2" and pre in BPE_PRE_WITH_BOS)
    return b, f"tokenizer.ggml.add_bos_token absent: llama.cpp's default for model '{kind}', pre '{pre}'"


def normed_states(m, ids):
    """Hidden states after output_norm [T, n_embd] for ids at positions 0..T-1 (RefModel.forward up to head())."""
    pos = np.arange(len(ids))
    mask, mask_swa = m.masks(pos, len(ids), False)
    x = m.embed(ids)
    for i in range(m.n_layer):
        x = m.layer(i, x, pos, mask, mask_swa)
    return x, m.rmsnorm(x, m.W["output_norm.weight"])


def pool(h):
    """Mean over positions, then L2 normalisation, in float64. Returns (unit vector, norm of the mean)."""
    mean = np.asarray(h, dtype=np.float64).mean(axis=0)
    n = float(np.linalg.norm(mean))
    return mean / n, n


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def hearth_ids(binary, model, text):
    out = subprocess.run([binary, "tokenize", model, "--text", text, "--json"], check=True, capture_output=True)
    return json.loads(out.stdout)["ids"]


def compare(name, note, embs, ref, texts):
    rows = [{"text": t, "max_abs_diff": float(np.abs(e - r).max()), "cosine": cos(e, r),
             "one_minus_cosine": 1.0 - cos(e, r)} for t, e, r in zip(texts, embs, ref)]
    return {"what": note, "max_abs_diff": max(x["max_abs_diff"] for x in rows),
            "min_cosine": min(x["cosine"] for x in rows),
            "max_one_minus_cosine": max(x["one_minus_cosine"] for x in rows), "per_case": rows}


def up1(x):
    """x rounded up to one significant digit."""
    e = 10.0 ** np.floor(np.log10(x))
    return float(f"{np.ceil(x / e - 1e-9) * e:.1g}")


def suggest(vs):
    """Bounds for a runtime's embeddings against float64, from the yardsticks with headroom."""
    f32 = [vs[k] for k in vs if k.startswith(("f32", "f16"))]
    q8 = [vs[k] for k in ("ggml_mimic", "llamacpp") if k in vs]
    out = {}
    for tier, ys, ka, kc in (("f32_activations_runtime", f32, 5, 25), ("8bit_activations_runtime", q8, 3, 5)):
        a, c = max(y["max_abs_diff"] for y in ys), max(y["max_one_minus_cosine"] for y in ys)
        out[tier] = {"max_abs_diff": up1(ka * a), "min_cosine": 1.0 - up1(kc * c),
                     "from": f"{ka} x the largest max_abs_diff ({a:.3g}) and {kc} x the largest 1 - cosine ({c:.3g}) "
                             f"of {', '.join(k for k in vs if vs[k] in ys)}, rounded up"}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", action="append", help="a text to embed (repeatable; default: the four built-in texts)")
    ap.add_argument("--hearth", help="hearth binary: check the ids against `hearth tokenize` (plain text)")
    ap.add_argument("--llamacpp", action="store_true",
                    help="check the ids against llama.cpp and add llama.cpp's own embeddings to the guidance")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    texts = a.text or TEXTS

    r = GGUFReader(a.model)
    bos, bos_why = add_bos(r)
    bos_id = int(r.fields["tokenizer.ggml.bos_token_id"].contents())
    hf = hf_rebuild(a.model)
    assert hf is not None, "no HF tokenizers rebuild for this vocabulary (is `tokenizers` installed?)"
    ids = [([bos_id] if bos else []) + hf[1].encode(t, add_special_tokens=False).ids for t in texts]
    checked = []
    if a.hearth:
        for t, i in zip(texts, ids):
            assert ([bos_id] if bos else []) + hearth_ids(a.hearth, a.model, t) == i, ("hearth ids differ", t)
        checked.append("hearth tokenize (plain text), same ids")

    m64 = RefModel(a.model)
    emb64, pooled_norm = [], []
    for i in ids:
        x, h = normed_states(m64, i)
        assert np.array_equal(m64.head(x), m64.forward(i)), "normed_states no longer follows RefModel.forward"
        e, n = pool(h)
        emb64.append(e)
        pooled_norm.append(n)

    mimic = copy.copy(m64)  # shares the float64 weights
    mimic.ggml_mimic = True
    f32 = RefLlamaF32(a.model)
    variants = {
        "f32_activations": (f32, "numpy float32 forward (f32 weights after dequantization, f32 activations)"),
        "f32_f16_kv_and_attention": (f32.variant(f16_kv=True), "the same with K, V, Q and the attention "
                                     "probabilities rounded to f16"),
        "f16_matmul_inputs_f16_kv_and_attention": (f32.variant(f16_kv=True, f16_matmul_inputs=True),
                                                   "the same with every matmul input also rounded to f16 "
                                                   "(f32 accumulation)"),
        "ggml_mimic": (mimic, "RefModel(ggml_mimic=True): activations entering quantized matmuls rounded to "
                       "8-bit blocks of 32 as llama.cpp's CPU kernels do, f16 K/V/Q and attention probabilities"),
    }
    guidance = {"how_to_use": (
        "Embed each case's ids (not the text, so that the tokenizer is tested elsewhere) and compare the unit "
        "vector with `embedding`: max abs component difference and cosine similarity. Each entry of `vs_f64` "
        "is a yardstick: the same embeddings from a rounded forward pass. A runtime with f32 activations (f16 "
        "KV and f16 matmul inputs included) should be within a few times the f32 entries; one that rounds "
        "activations to 8 bits like llama.cpp within a few times the ggml_mimic/llamacpp entries. All pooling "
        "and normalisation is done in float64."), "vs_f64": {}}
    for name, (m, note) in variants.items():
        embs = [pool(normed_states(m, i)[1])[0] for i in ids]
        guidance["vs_f64"][name] = compare(name, note, embs, emb64, texts)

    if a.llamacpp:
        import llama_cpp
        from golden_common import load_llama
        llm = load_llama(a.model, embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, logits_all=False)
        assert bool(llm._model.add_bos_token()) == bos, "llama.cpp reads add_bos_token differently"
        for t, i in zip(texts, ids):
            # Llama.embed tokenizes exactly like this: add_special=True (BOS iff add_bos_token), parse_special=False
            assert llm.tokenize(t.encode("utf-8"), add_bos=True, special=False) == i, ("llama.cpp ids differ", t)
        checked.append(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}, add_special=true, "
                       "parse_special=false), same ids")
        embs = [pool(np.asarray(llm.embed(t, normalize=False), dtype=np.float32)[None, :])[0] for t in texts]
        guidance["vs_f64"]["llamacpp"] = compare("llamacpp", (
            f"llama.cpp (llama-cpp-python {llama_cpp.__version__}) with embedding=true, pooling_type=mean, one "
            "sequence per decode, KV cache f16, flash_attn off, 2 threads; its pooled f32 vector is L2-normalised "
            "here in float64"), embs, emb64, texts)

    guidance["suggested_tolerance"] = suggest(guidance["vs_f64"])
    pair = [{"a": texts[i], "b": texts[j], "cosine": cos(emb64[i], emb64[j])}
            for i in range(len(texts)) for j in range(i + 1, len(texts))]
    guidance["pairwise_cosine_f64"] = pair
    if texts == TEXTS:
        c = {(p["a"], p["b"]): p["cosine"] for p in pair}
        guidance["cat_kitten_closer_than_cat_revenue"] = c[(TEXTS[0], TEXTS[1])] > c[(TEXTS[0], TEXTS[2])]

    out = {
        "model": os.path.basename(a.model), "model_sha256": sha256(a.model),
        "pooling": "mean", "normalize": "l2", "norm": "output_norm (the state the output projection reads)",
        "definition": ("llama.cpp's embedding of a decoder model with --pooling mean: the hidden state of every "
                       "position after the final RMSNorm (output_norm), averaged over the positions, then divided "
                       "by its L2 norm. Causal attention, one sequence at positions 0..T-1."),
        "ids_rule": (f"BOS (id {bos_id}) first: {str(bos).lower()} ({bos_why}); then the text tokenized as plain "
                     "text (special tokens in the text not parsed)"),
        "ids_source": "independent HF `tokenizers` rebuild of the GGUF tokenizer (golden_tokens.hf_rebuild)",
        "ids_checked_against": checked,
        "generator": (f"tools/golden_embed.py: RefModel float64 forward (ref_numpy.py), gguf {version('gguf')}, "
                      f"numpy {np.__version__}, tokenizers {version('tokenizers')}"),
        "cases": [{"text": t, "ids": i, "pooled_l2_norm": n, "embedding": [float(v) for v in e]}
                  for t, i, n, e in zip(texts, ids, pooled_norm, emb64)],
        "guidance": guidance,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    dump_json(a.out, out)
    for name, g in guidance["vs_f64"].items():
        print(f"{name:40s} max_abs {g['max_abs_diff']:.3e}  min_cos {g['min_cosine']:.12f}", file=sys.stderr)
    for p in pair:
        print(f"cos({p['a']!r}, {p['b']!r}) = {p['cosine']:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
