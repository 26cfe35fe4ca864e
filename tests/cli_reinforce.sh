#!/bin/bash
# CLI test for `mobileclip reinforce` on the fixture of tests/common/reinforce_fixture.h:
# the summary of skipped samples, byte-identical output whatever --threads, a run killed with
# SIGKILL midway and re-run equals an uninterrupted run byte for byte (no partial shard under a
# final name), --shard-index/--num-shards, bf16 storage, and the fatal errors (missing teacher
# file, teacher of the wrong shape, unwritable output directory, a missing captioner) as one line;
# --captioner (in-process CoCa captions) equals `mobileclip caption` fed back with --syn.
set -u
cli="${MC_CLI:?MC_CLI not set}"
fixture="${MC_BUILD_DIR:?MC_BUILD_DIR not set}/make_reinforce_fixture"
vocab="${MC_SHARED_DIR:?MC_SHARED_DIR not set}/vocab/bpe_simple_vocab_16e6.txt.gz"
fail=0; pass=0
check() { if [ "$1" = "$2" ]; then pass=$((pass+1)); else echo "FAIL: $3: got '$1' want '$2'"; fail=$((fail+1)); fi; }
d=$(mktemp -d /tmp/mc_cli_reinforce_XXXXXX)
trap 'rm -rf "$d"' EXIT
"$fixture" "$d" || { echo "FAIL: fixture"; exit 1; }
ta="$d/teacher_a.safetensors:$d/teacher_a.json"; tb="$d/teacher_b.safetensors:$d/teacher_b.json"
base=(reinforce --input "$d/in/{00000..00004}.tar" --teacher "$ta" --teacher "$tb" --num-aug 3
      --syn "$d/syn.jsonl" --seed 7)
same_dirs() { # same .tar files with the same bytes
    [ "$(cd "$1" && ls *.tar)" = "$(cd "$2" && ls *.tar)" ] || return 1
    for f in "$1"/*.tar; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
}

"$cli" "${base[@]}" --out "$d/out1" --threads 1 2>"$d/err1"; check "$?" "0" "uninterrupted run"
check "$(ls "$d/out1" | tr '\n' ' ')" "00000.tar 00001.tar 00002.tar 00003.tar 00004.tar " "output shard names"
check "$(grep -c 'written, 0 already complete' "$d/err1")" "1" "summary line"
check "$(grep -c 'skipped 1: no image member' "$d/err1")" "1" "summary: caption without image"
check "$(grep -c 'skipped 1: undecodable image' "$d/err1")" "1" "summary: undecodable image"
check "$(grep -c 'skipped 1: unreadable tar data' "$d/err1")" "1" "summary: truncated member"
check "$(grep -c 'skipped 2: missing or malformed synthetic captions' "$d/err1")" "1" "summary: syn captions"
check "$(grep -c '2 malformed lines' "$d/err1")" "1" "syn file validation line"
check "$(tar tf "$d/out1/00001.tar" | sed -n 1,6p | tr '\n' ' ')" \
      "s00001_0.json s00001_0.npz s00001_0.paug.json s00001_0.syn.json s00001_0.txt s00001_0.url.txt " "members"

"$cli" "${base[@]}" --out "$d/out2" --threads 2 --progress 2>"$d/err2"; check "$?" "0" "2-thread run"
check "$(grep -c 'samples/s  ETA' "$d/err2")" "1" "--progress line"
same_dirs "$d/out1" "$d/out2"; check "$?" "0" "same bytes with 1 and 2 threads"

# killed midway: wait until shard 00001 is being written, then SIGKILL
"$cli" "${base[@]}" --out "$d/out3" --threads 1 --batch 3 2>/dev/null &
pid=$!
killed=0
for _ in $(seq 1 3000); do
    if compgen -G "$d/out3/00001.tar.tmp.*" >/dev/null || compgen -G "$d/out3/00002.tar.tmp.*" >/dev/null; then
        kill -KILL "$pid" 2>/dev/null && killed=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
done
wait "$pid" 2>/dev/null
check "$killed" "1" "killed while a shard was being written"
check "$(compgen -G "$d/out3/*.tmp.*" | wc -l | tr -d ' ')" "1" "the killed shard is only a temporary file"
partial_ok=0
for f in "$d"/out3/*.tar; do [ -e "$f" ] && { cmp -s "$f" "$d/out1/$(basename "$f")" || partial_ok=1; }; done
check "$partial_ok" "0" "every shard under a final name is complete"
"$cli" "${base[@]}" --out "$d/out3" --threads 2 2>"$d/err3"; check "$?" "0" "re-run after the kill"
same_dirs "$d/out1" "$d/out3"; check "$?" "0" "killed + re-run equals an uninterrupted run"
check "$(compgen -G "$d/out3/*.tmp.*" | wc -l | tr -d ' ')" "0" "temporary file cleaned up"
check "$(grep -c 'already complete' "$d/err3")" "1" "re-run verified the finished shards"

# partitioning: two processes
"$cli" "${base[@]}" --out "$d/out4" --shard-index 0 --num-shards 2 2>/dev/null; check "$?" "0" "part 0"
check "$(ls "$d/out4" | tr '\n' ' ')" "00000.tar 00002.tar 00004.tar " "part 0 shards"
"$cli" "${base[@]}" --out "$d/out4" --shard-index 1 --num-shards 2 2>/dev/null; check "$?" "0" "part 1"
same_dirs "$d/out1" "$d/out4"; check "$?" "0" "two parts equal one run"

# bf16
"$cli" "${base[@]}" --out "$d/out5" --dtype bf16 --keep-images 2>/dev/null; check "$?" "0" "bf16 run"
check "$(tar tf "$d/out5/00000.tar" | sed -n 1,7p | tr '\n' ' ')" \
      "s00000_0.json s00000_0.paug.json s00000_0.png s00000_0.pth.gz s00000_0.syn.json s00000_0.txt s00000_0.url.txt " \
      "bf16 members with the image"

# fatal errors: one line, non-zero
one_line() { check "$(wc -l <"$d/e" | tr -d ' ')" "1" "$1: one line"; check "$(grep -c "$2" "$d/e")" "1" "$1: names the problem"; }
"$cli" "${base[@]/$ta/$d/missing.safetensors:ViT-B-16}" --out "$d/o6" 2>"$d/e"; check "$?" "1" "missing teacher exit"
one_line "missing teacher" "missing.safetensors"
"$cli" reinforce --input "$d/in/00000.tar" --teacher "$d/teacher_a.safetensors:ViT-B-16" --num-aug 1 --vocab "$vocab" \
    --out "$d/o7" 2>"$d/e"; check "$?" "1" "wrong-shape teacher exit"
one_line "wrong-shape teacher" "teacher_a.safetensors"
"$cli" "${base[@]}" --out "$d/syn.jsonl/sub" 2>"$d/e"; check "$?" "1" "unwritable output exit"
one_line "unwritable output" "syn.jsonl/sub"
check "$(ls "$d/o6" 2>/dev/null | wc -l | tr -d ' ')" "0" "nothing written after a fatal error"
"$cli" reinforce --input "$d/in/00000.tar" --teacher "$ta" --num-aug 1 --vocab "$vocab" --out "$d/o8" \
    --captioner "$d/coca.pt" --num-syn 5 2>"$d/e"; check "$?" "1" "missing captioner exit"
one_line "missing captioner" "coca.pt"

# --captioner: captions generated in-process equal `mobileclip caption` given back with --syn
coca="$(cd "$(dirname "$0")" && pwd)/data/coca"
"${MC_BUILD_DIR}/make_test_checkpoint" "$coca/params.tsv" "$d/tiny_coca.pt" || { echo "FAIL: coca checkpoint"; exit 1; }
"$cli" caption --checkpoint "$d/tiny_coca.pt" --arch "$coca/config.json" --num 2 --seed 7 --no-progress \
    --input "$d/in/{00000..00004}.tar" --out "$d/gen.jsonl" 2>/dev/null; check "$?" "0" "caption the shards"
cap=(reinforce --input "$d/in/{00000..00004}.tar" --teacher "$ta" --teacher "$tb" --num-aug 3 --seed 7)
"$cli" "${cap[@]}" --syn "$d/gen.jsonl" --out "$d/o_syn" 2>/dev/null; check "$?" "0" "reinforce with the captions"
"$cli" "${cap[@]}" --captioner "$d/tiny_coca.pt:$coca/config.json" --num-syn 2 --out "$d/o_cap" 2>"$d/e"
check "$?" "0" "reinforce --captioner"
same_dirs "$d/o_syn" "$d/o_cap"; check "$?" "0" "--captioner shards = caption + --syn shards, byte for byte"
check "$(tar -xOf "$d/o_cap/00001.tar" s00001_0.syn.json | grep -o '", "' | wc -l | tr -d ' ')" "1" \
    "two synthetic captions per sample"
"$cli" reinforce --input x --teacher "$ta" --vocab "$vocab" --out "$d/o9" 2>/dev/null; check "$?" "2" "no --num-aug"
"$cli" "${base[@]}" --out "$d/o9" --shard-index 2 --num-shards 2 2>/dev/null; check "$?" "2" "shard index out of range"
mkdir -p "$d/dup"; cp "$d/in/00000.tar" "$d/dup/"
"$cli" reinforce --input "$d/in/00000.tar::$d/dup/00000.tar" --teacher "$ta" --num-aug 1 --vocab "$vocab" \
    --out "$d/o10" 2>"$d/e"; check "$?" "1" "two inputs of one name"
one_line "two inputs of one name" "would both write"
"$cli" reinforce --help >/dev/null; check "$?" "0" "--help"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
