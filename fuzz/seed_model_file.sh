#!/bin/bash
# Builds the seed corpus of fuzz_model_file in $1: converted files (f32, bf16, int8) of a tiny
# configuration with a small vocabulary, made by the release build's CLI (so they carry this
# build's version), each cut at its data offset (the target zero-fills the data section).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${MC_BUILD_DIR:-$here/../build}
out=${1:?usage: seed_model_file.sh OUT_DIR}
mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed -e 's/"vocab_size": 49408/"vocab_size": 256/' -e 's/"context_length": 16/"context_length": 8/' \
    "$here/../tests/data/configs/tiny_mci.json" > "$tmp/tiny.json"
"$build/make_test_checkpoint" "$tmp/tiny.json" "$tmp/tiny.safetensors" > /dev/null
for p in f32 bf16 int8; do
    "$build/mobileclip" convert --config "$tmp/tiny.json" --checkpoint "$tmp/tiny.safetensors" --precision $p \
        --out "$tmp/$p.mcm" > /dev/null
    doff=$(od -An -t u8 -j 160 -N 8 "$tmp/$p.mcm" | tr -d ' ')
    head -c "$doff" "$tmp/$p.mcm" > "$out/tiny_$p.meta"
done
echo "3 seeds in $out"
