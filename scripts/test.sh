#!/usr/bin/env bash
# The project's test command (`.ci/run` runs exactly this): format and lint checks, one build
# of every crate and test, what the tests need (the default model via pip, llama.cpp's
# vocabulary test files), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# No module of a crate imports a module that imports it back.
python3 scripts/module-cycles.py
# One build for everything below: the model is pulled with the binary this build made, so no
# crate is compiled a second time with other features.
cargo build --workspace --all-targets
./target/debug/longctx model pull smollm2-135m
bash scripts/fetch-test-vocabs.sh
cargo test --workspace
