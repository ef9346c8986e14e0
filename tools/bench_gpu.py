#!/usr/bin/env python3
"""hearth's GPU backend against llama.cpp's CUDA build on the same GGUF, on an NVIDIA machine.

Each round runs `hearth bench --backend gpu --json` (wgpu on Vulkan) and then llama.cpp's own
`llama-bench` (CUDA, every layer offloaded) with the same prompt length and number of
generated tokens, so both see the same machine state. The best round of each is reported,
with the ratios hearth / llama.cpp and what each hearth token asked of the device
(dispatches, submits, readbacks, host µs encoding).

    python3 tools/bench_gpu.py models/SmolLM2-135M-Instruct.Q4_1.gguf [more.gguf ...]
        [--prompt-tokens 128] [--gen-tokens 128] [--rounds 3] [--json]
        [--llama-src SDIST_OR_DIR] [--llama-bench PATH] [--hearth PATH]

llama.cpp is built once, with CUDA, from the llama-cpp-python 0.3.36 sdist (its bundled
llama.cpp is commit 0c1e570, the version the golden references come from) into
`HEARTH_GPU_BENCH_DIR` (default /tmp/hearth-gpu-bench): the sdist is fetched with pip unless
`--llama-src` names it, its extracted llama.cpp folder, or a trimmed source tarball. On a
machine without network, make that tarball elsewhere (12 MB: the sdist is 77 MB) with
`python3 tools/bench_gpu.py --pack-llama-src llama-src.tgz` and pass it.
`--llama-bench` skips the build. Needs nvidia-smi, the CUDA toolkit (nvcc), cmake and a C++
compiler; hearth is built with cargo unless `--hearth` names a binary. Not part of the tests.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SDIST = "llama-cpp-python==0.3.36"
SCRATCH = Path(os.environ.get("HEARTH_GPU_BENCH_DIR", "/tmp/hearth-gpu-bench"))
# llama.cpp CUDA on an H100, SmolLM2-135M Q4_1 decode (the figure hearth is measured against).
REFERENCE = "llama.cpp CUDA decodes SmolLM2-135M Q4_1 at about 940 tok/s on an H100"


def need(tool, why):
    if shutil.which(tool) is None:
        sys.exit(f"error: {tool} not found: {why}")


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), file=sys.stderr)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def fetch_sdist():
    found = sorted(SCRATCH.glob("llama_cpp_python-0.3.36.tar.gz"))
    if not found:
        SCRATCH.mkdir(parents=True, exist_ok=True)
        try:
            run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", SDIST, "-d", SCRATCH])
        except subprocess.CalledProcessError:
            sys.exit(f"error: could not download the {SDIST} sdist (no network?): make a source tarball elsewhere "
                     "with --pack-llama-src and pass it as --llama-src")
        found = sorted(SCRATCH.glob("llama_cpp_python-0.3.36.tar.gz"))
    return found[0]


def llama_source(arg):
    """The llama.cpp source folder: --llama-src (a folder, the sdist or a packed tarball), or
    the sdist fetched with pip."""
    if arg and Path(arg).is_dir():
        return Path(arg)
    archive = Path(arg) if arg else fetch_sdist()
    dest = SCRATCH / "src" / archive.name.split(".t")[0]
    if not dest.is_dir():
        dest.mkdir(parents=True)
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    for root in (dest, *dest.glob("*/vendor/llama.cpp")):
        if (root / "CMakeLists.txt").exists() and (root / "tools" / "llama-bench").is_dir():
            return root
    sys.exit(f"error: {archive} holds no llama.cpp source with tools/llama-bench")


def pack_llama_src(out):
    """A trimmed copy of the sdist's llama.cpp (no models, docs, examples or git data)."""
    src = llama_source(None)
    skip = {"./models", "./.git", "./docs", "./examples", "./tools/server/public"}
    with tarfile.open(out, "w:gz") as t:
        t.add(src, arcname=".", filter=lambda ti: None if ti.name in skip else ti)
    print(f"{out}: {Path(out).stat().st_size} bytes (pass it as --llama-src)")


def build_llama_bench(src):
    exe = SCRATCH / "build" / "bin" / "llama-bench"
    if exe.exists():
        return exe
    need("cmake", "pip install cmake, or your distribution's package")
    need("nvcc", "llama.cpp's CUDA build needs the CUDA toolkit")
    build = SCRATCH / "build"
    run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_CUDA=ON", "-DLLAMA_CURL=OFF",
         "-DCMAKE_CUDA_ARCHITECTURES=native", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DLLAMA_BUILD_SERVER=OFF"])
    run(["cmake", "--build", build, "--target", "llama-bench", "-j", str(os.cpu_count() or 4)])
    if not exe.exists():
        sys.exit(f"error: the build did not produce {exe}")
    return exe


def hearth_binary(arg):
    if arg:
        return Path(arg)
    exe = REPO / "target" / "release" / "hearth"
    if not exe.exists():
        need("cargo", "build hearth elsewhere and pass --hearth PATH")
        run(["cargo", "build", "--release", "--bin", "hearth"], cwd=REPO)
    return exe


def hearth_bench(exe, model, args):
    out = run([exe, "bench", model, "--backend", "gpu", "--prompt-tokens", args.prompt_tokens, "--gen-tokens",
               args.gen_tokens, "--json"], capture_output=True, text=True)
    r = json.loads(out.stdout)
    return {"prefill": r["prefill_tok_s"], "decode": r["decode_tok_s"], "backend": r.get("backend"),
            "traffic": r.get("decode_traffic_per_token")}


def llama_bench(exe, model, args):
    # One repetition per round: the rounds interleave with hearth's instead.
    out = run([exe, "-m", model, "-p", args.prompt_tokens, "-n", args.gen_tokens, "-ngl", "99", "-r", "1", "-o", "json"],
              capture_output=True, text=True)
    rows = json.loads(out.stdout)
    pp = next(r for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0)
    tg = next(r for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0)
    return {"prefill": pp["avg_ts"], "decode": tg["avg_ts"], "backend": pp.get("gpu_info") or pp.get("backends")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--llama-src", help="the llama-cpp-python 0.3.36 sdist, or its vendor/llama.cpp folder")
    ap.add_argument("--llama-bench", help="an existing llama-bench binary (skips the build)")
    ap.add_argument("--hearth", help="an existing hearth binary (skips cargo)")
    ap.add_argument("--pack-llama-src", metavar="OUT.tgz", help="write a trimmed llama.cpp source tarball and exit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.pack_llama_src:
        return pack_llama_src(args.pack_llama_src)
    if not args.models:
        ap.error("name at least one model")
    for m in args.models:
        if not m.exists():
            sys.exit(f"error: {m} not found (./build.sh model)")
    need("nvidia-smi", "this comparison needs an NVIDIA GPU")
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    llama = Path(args.llama_bench) if args.llama_bench else build_llama_bench(llama_source(args.llama_src))
    hearth = hearth_binary(args.hearth)
    results = []
    for model in args.models:
        best = {"hearth": None, "llama.cpp": None}
        for _ in range(args.rounds):
            for name, fn, exe in (("hearth", hearth_bench, hearth), ("llama.cpp", llama_bench, llama)):
                r = fn(exe, model, args)
                b = best[name]
                if b is None:
                    best[name] = r
                else:
                    for k in ("prefill", "decode"):
                        if r[k] > b[k]:
                            b[k] = r[k]
                            if k == "decode" and "traffic" in r:
                                b["traffic"] = r["traffic"]
        h, l = best["hearth"], best["llama.cpp"]
        results.append({"model": model.name, "gpu": gpu, "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
                        "rounds": args.rounds, "hearth": h, "llama.cpp": l,
                        "prefill_ratio": h["prefill"] / l["prefill"], "decode_ratio": h["decode"] / l["decode"]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"{gpu}: {args.prompt_tokens}-token prompt, {args.gen_tokens} generated tokens, best of {args.rounds} interleaved rounds (tok/s)")
    print("| model | hearth prefill | llama.cpp prefill | ratio | hearth decode | llama.cpp decode | ratio | hearth per token: dispatches, submits, readbacks, host µs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        h, l, t = r["hearth"], r["llama.cpp"], r["hearth"].get("traffic") or {}
        per = f"{t.get('dispatches', 0):.0f}, {t.get('submits', 0):.3f}, {t.get('readbacks', 0):.3f}, {t.get('encode_us', 0):.0f}"
        print(f"| {r['model']} | {h['prefill']:.1f} | {l['prefill']:.1f} | {r['prefill_ratio']:.2f}x | "
              f"{h['decode']:.1f} | {l['decode']:.1f} | {r['decode_ratio']:.2f}x | {per} |")
    print(f"(reference: {REFERENCE})")


if __name__ == "__main__":
    main()
