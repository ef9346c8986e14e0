#!/usr/bin/env python3
"""hearth's CPU backend against llama.cpp on the same GGUF, the same thread count, interleaved.

Each round runs `hearth bench --backend cpu --json` and then llama.cpp (llama-cpp-python
0.3.36, through the golden tools' loader: plain ggml-cpu kernels, no AMX/repacked buffers) on
the same prompt length and number of greedy steps, so both see the same machine load. The best
round of each is reported (the least disturbed one), with the ratio hearth / llama.cpp.

    python3 tools/bench_cpu.py models/SmolLM2-135M-Instruct.Q4_1.gguf [more.gguf ...]
        [--threads 2] [--prompt-tokens 128] [--gen-tokens 64] [--rounds 3] [--json]

llama-cpp-python is a benchmark dependency only: the first run builds it into a scratch venv
(`HEARTH_BENCH_VENV`, default /tmp/hearth-bench-venv; about 20 minutes) unless the running
Python already has it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN_TOOLS = REPO.parent / "shared" / "golden" / "tools"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"


def ensure_llama_cpp():
    """Re-runs this script in a venv that has llama-cpp-python, building it there if needed."""
    try:
        import llama_cpp  # noqa: F401
        return
    except ImportError:
        pass
    venv = Path(os.environ.get("HEARTH_BENCH_VENV", "/tmp/hearth-bench-venv"))
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"building {LLAMA_CPP_PYTHON} into {venv} (once; about 20 minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy", LLAMA_CPP_PYTHON], check=True)
    os.execv(str(py), [str(py), *sys.argv])


def hearth_bench(model, args):
    exe = REPO / "target" / "release" / "hearth"
    if not exe.exists():
        sys.exit(f"{exe} is missing: cargo build --release")
    env = dict(os.environ, HEARTH_THREADS=str(args.threads))
    out = subprocess.run(
        [str(exe), "bench", str(model), "--backend", "cpu", "--prompt-tokens", str(args.prompt_tokens),
         "--gen-tokens", str(args.gen_tokens), "--json"],
        check=True, capture_output=True, text=True, env=env)
    r = json.loads(out.stdout)
    return {"prefill": r["prefill_tok_s"], "decode": r["decode_tok_s"]}


def llama_bench(model, args):
    sys.path.insert(0, str(GOLDEN_TOOLS))
    import numpy as np
    from golden_common import load_llama

    n_ctx = max(512, args.prompt_tokens + args.gen_tokens + 16)
    llm = load_llama(str(model), n_threads=args.threads, n_threads_batch=args.threads, n_ctx=n_ctx,
                     n_batch=max(512, args.prompt_tokens), n_ubatch=max(512, args.prompt_tokens))
    # The same kind of synthetic prompt as `hearth bench`: ordinary ids from the vocabulary.
    prompt = [(1000 + 37 * i) % llm.n_vocab() for i in range(args.prompt_tokens)]
    # A first evaluation sizes llama.cpp's buffers; then the timed one from an empty cache.
    llm.eval(prompt[:8])
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    prefill = args.prompt_tokens / (time.perf_counter() - t0)
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    t0 = time.perf_counter()
    for _ in range(args.gen_tokens):
        llm.eval([tok])
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    decode = args.gen_tokens / (time.perf_counter() - t0)
    del llm
    return {"prefill": prefill, "decode": decode}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ensure_llama_cpp()
    results = []
    for model in args.models:
        best = {"hearth": {"prefill": 0.0, "decode": 0.0}, "llama.cpp": {"prefill": 0.0, "decode": 0.0}}
        for _ in range(args.rounds):
            for name, run in (("hearth", hearth_bench), ("llama.cpp", llama_bench)):
                r = run(model, args)
                for k in r:
                    best[name][k] = max(best[name][k], r[k])
        h, l = best["hearth"], best["llama.cpp"]
        results.append({"model": model.name, "threads": args.threads, "prompt_tokens": args.prompt_tokens,
                        "gen_tokens": args.gen_tokens, "rounds": args.rounds, "hearth": h, "llama.cpp": l,
                        "prefill_ratio": h["prefill"] / l["prefill"], "decode_ratio": h["decode"] / l["decode"]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{args.threads} threads, {args.prompt_tokens}-token prompt, {args.gen_tokens} greedy steps, best of {args.rounds} interleaved rounds (tok/s)")
    print(f"| model | hearth prefill | llama.cpp prefill | ratio | hearth decode | llama.cpp decode | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        h, l = r["hearth"], r["llama.cpp"]
        print(f"| {r['model']} | {h['prefill']:.1f} | {l['prefill']:.1f} | {r['prefill_ratio']:.2f}x | "
              f"{h['decode']:.1f} | {l['decode']:.1f} | {r['decode_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
