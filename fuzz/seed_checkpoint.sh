#!/bin/bash
# Builds the seed corpus of fuzz_checkpoint in $1 (default fuzz/corpus_checkpoint) from the
# golden torch_format files, tests/data/torch_extra and a tiny safetensors file. Each seed is
# one mode byte (see fuzz_checkpoint.c) followed by the file; raw data.pkl pickles get mode 8.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${MC_SHARED_DIR:-$here/../../shared}
out=${1:-$here/corpus_checkpoint}
mkdir -p "$out"
n=0
for f in "$shared"/golden/torch_format/*.pt "$here"/../tests/data/torch_extra/*.pt; do
    b=$(basename "$f" .pt)
    for mode in 0 1 6 7; do
        { printf "\\x0$mode"; cat "$f"; } > "$out/$b.m$mode"; n=$((n + 1))
    done
    if pk=$(unzip -Z1 "$f" 2>/dev/null | grep '/data.pkl$'); then
        { printf '\x08'; unzip -p "$f" "$pk"; } > "$out/$b.pkl"; n=$((n + 1))
        { printf '\x0e'; unzip -p "$f" "$pk"; } > "$out/$b.pkl.keep"; n=$((n + 1))
    fi
done
# safetensors: u64 header length, JSON header, data
hdr='{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[],"data_offsets":[16,24]},"__metadata__":{"k":"v"}}'
len=${#hdr}
{ printf '\x00'; printf "$(printf '\\x%02x' $((len & 255)) $((len >> 8 & 255)))\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr";
  head -c 24 /dev/zero | tr '\0' '\1'; } > "$out/tiny.safetensors"; n=$((n + 1))
echo "$n seeds in $out"
