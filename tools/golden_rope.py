#!/usr/bin/env python3
"""RoPE scaling references for tests/rope_scaling.rs: tiny random Llama models with F32 weights
whose RoPE is scaled three ways, and llama.cpp's logits for each.

  * llama3: a `rope_freqs.weight` tensor of per-pair frequency divisors, computed the way
    convert_hf_to_gguf.py computes Llama 3.1's (factor 8, low/high frequency factors 1 and 4),
    with a short original context (64) so that every regime (unscaled, smoothed, scaled)
    lands on frequencies that turn within the 48 test positions;
  * linear: rope.scaling.type = linear, factor 4;
  * yarn: rope.scaling.type = yarn, factor 4, original context 64, attention factor 1.1;
  * none: the same weights without scaling, to show how far apart the variants are.

llama.cpp runs with an F32 KV cache and F32 weights, so its logits are exact up to f32
rounding (no 8-bit activations, no f16 cache): a faithful runtime matches them to about 1e-5.

Needs gguf 0.19.0, numpy and llama-cpp-python 0.3.36 (which builds llama.cpp, ~20 minutes on
2 cores), and the golden tools (make_synth.py, golden_common.py) from ../shared/golden/tools:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install gguf==0.19.0 numpy llama-cpp-python==0.3.36
    /tmp/v/bin/python tools/golden_rope.py --donor models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../shared/golden/tools"))

import gguf  # noqa: E402
import make_synth  # noqa: E402
from golden_common import env_info, f32, load_llama, llama_logits_one_batch, topk  # noqa: E402

SYNTH_ARGS = ["--preset", "tiny", "--n-vocab", "512", "--n-embd", "64", "--n-ff", "128", "--n-head", "2",
              "--n-head-kv", "1", "--n-layer", "2", "--std", "0.25", "--seed", "3", "--qtype", "F32",
              "--rope-theta", "10000"]
# 48 token ids below 512 (the cut vocabulary).
IDS = [1, 330, 17, 402, 88, 255, 7, 499, 123, 64, 301, 45, 222, 9, 480, 150, 33, 271, 390, 12, 77, 444, 200, 58,
       310, 5, 160, 420, 99, 231, 18, 347, 70, 455, 140, 26, 289, 411, 61, 199, 3, 366, 118, 250, 43, 500, 90, 2]


def llama3_factors(head_dim, base, factor=8.0, low=1.0, high=4.0, old_ctx=64):
    """convert_hf_to_gguf.py's LlamaModel rope_freqs for rope_type 'llama3'."""
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (base ** (i / head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def copy_with(src, dst, extra_kv, extra_tensors):
    """`src` rewritten to `dst` with more key/values (name -> (value, GGUFValueType)) and tensors."""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    for name, (value, vtype) in extra_kv.items():
        w.add_key_value(name, value, vtype)
    for t in r.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_shape=list(reversed([int(x) for x in t.shape])), raw_dtype=t.tensor_type)
    for name, data in extra_tensors.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donor", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf (its tokenizer is cut to 512 tokens)")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "../tests/fixtures/rope"))
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, "base.gguf")
    make_synth.main(["--donor", a.donor, "--out", base] + SYNTH_ARGS)
    V = gguf.GGUFValueType
    variants = {
        "none": ({}, {}),
        "llama3": ({}, {"rope_freqs.weight": llama3_factors(32, 10000.0)}),
        "linear": ({"llama.rope.scaling.type": ("linear", V.STRING), "llama.rope.scaling.factor": (4.0, V.FLOAT32)}, {}),
        "yarn": ({"llama.rope.scaling.type": ("yarn", V.STRING), "llama.rope.scaling.factor": (4.0, V.FLOAT32),
                  "llama.rope.scaling.original_context_length": (64, V.UINT32),
                  "llama.rope.scaling.attn_factor": (1.1, V.FLOAT32)}, {}),
    }
    logits = {}
    out = {"generator": "python3 tools/golden_rope.py --donor SmolLM2-135M-Instruct.Q4_1.gguf; base model: make_synth.py "
           + " ".join(SYNTH_ARGS), "input_ids": IDS, "llama_settings": "F32 KV cache (type_k = type_v = F32), flash "
           "attention off, one batch with logits for every position", "variants": {}}
    for name, (kv, tensors) in variants.items():
        path = os.path.join(a.out_dir, f"{name}.gguf")
        copy_with(base, path, kv, tensors)
        llm = load_llama(path, type_k=0, type_v=0)
        L = llama_logits_one_batch(llm, IDS)
        llm.close()
        logits[name] = L
        out["variants"][name] = {
            "file": f"{name}.gguf",
            "env": env_info(path),
            "top10": [topk(row, 10, fmt=f32) for row in L],
            "last_position_full_logits": [f32(x) for x in L[-1]],
        }
    for name in variants:
        d = logits[name] - logits["none"]
        d = d - d.mean(axis=1, keepdims=True)
        rms = float(np.sqrt((d * d).mean(axis=1)).max())
        out["variants"][name]["centered_rms_vs_unscaled_max"] = rms
        print(f"{name}: centered RMS vs unscaled, max over positions {rms:.4f}", file=sys.stderr)
    os.remove(base)
    with open(os.path.join(a.out_dir, "rope.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
