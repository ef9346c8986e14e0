#!/usr/bin/env python3
"""llama.cpp's ids for every pre-tokenizer hearth accepts: tests/fixtures/pre_tokenizers.json.

SmolLM2's vocabulary and merges are written into a tensor-less GGUF once per
`tokenizer.ggml.pre` value, llama.cpp (llama-cpp-python 0.3.36, vocab only) tokenizes a set of
texts that tell the pre-tokenizers apart (digit runs, contractions in capitals, whitespace and
newline runs, punctuation, letters of other scripts), and the ids are stored per value.
tests/tokenizer_golden.rs builds the same vocabulary with each value and compares.

    /tmp/v/bin/python tools/golden_pre.py --donor models/SmolLM2-135M-Instruct.Q4_1.gguf
(needs gguf 0.19.0 and llama-cpp-python 0.3.36, as tools/golden_rope.py)
"""
import argparse
import json
import os
import tempfile

import gguf

HERE = os.path.dirname(os.path.abspath(__file__))

# Every value src/tokenizer/pre.rs accepts except "gpt2" (hearth's alias of "gpt-2", which
# llama.cpp does not know).
PRES = ["default", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling", "jina-v1-en", "jina-v2-code",
        "roberta-bpe", "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "llama3",
        "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx", "smaug-bpe",
        "chatglm-bpe", "glm4", "qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "solar-open",
        "falcon", "bloom", "gpt3-finnish"]

TEXTS = [
    "Hello world! It's 2024-05-09, 3.14159 and 1234567 apples.",
    "DON'T, I'LL, we've, she'd  --  a+b=c ^_^ ~~ || <tag>",
    "line1\n\nline2\r\n   indented\t\ttabs   \n  ",
    "naïve café Ünïcödé — 你好，世界 123你好 ١٢٣ Ⅻ",
    "    def f(x):\n        return x**2  # comment...",
    "!!!???...,,, $$$ %%% `code` 'quoted' \"double\"",
]


def write_vocab(src, dst, pre):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, "llama")
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = pre if name == "tokenizer.ggml.pre" else field.contents()
        w.add_key_value(name, value, vtype, sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()


def main():
    from llama_cpp import Llama

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--donor", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "../tests/fixtures/pre_tokenizers.json"))
    a = ap.parse_args()
    out = {"generator": "tools/golden_pre.py (llama-cpp-python 0.3.36, vocab_only, SmolLM2's vocabulary and merges)",
           "texts": TEXTS, "ids": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRES:
            path = os.path.join(tmp, f"{pre}.gguf")
            write_vocab(a.donor, path, pre)
            llm = Llama(model_path=path, vocab_only=True, verbose=False)
            out["ids"][pre] = [llm.tokenize(t.encode(), add_bos=False, special=False) for t in TEXTS]
            llm.close()
    with open(a.out, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
