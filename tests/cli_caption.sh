#!/usr/bin/env bash
# `mobileclip caption` with the tiny CoCa of tests/data/coca (64-id vocabulary: --sot 62 --eot 63):
# JSON lines and plain output, .pt and safetensors alike, --num, seeded sampling independent of
# threads and batch size, beam search deterministic, WebDataset shards (a sample without an image
# skipped with a warning), and bad input (a MobileCLIP checkpoint, a CoCa config that does not fit
# the checkpoint, usage errors) with one-line errors.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
DATA="$(cd "$(dirname "$0")" && pwd)/data/coca"
T=$(mktemp -d /tmp/mc_caption_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1' want '$2'"; fi; }

"$BUILD/make_test_checkpoint" "$DATA/params.tsv" "$T/tiny.pt" || { echo "FAIL cannot write the checkpoint"; exit 1; }
"$BUILD/make_test_checkpoint" "$DATA/params.tsv" "$T/tiny.safetensors" || exit 1
IMG1="$SHARED/images/chelsea.png"; IMG2="$SHARED/images/astronaut.png"; IMG3="$SHARED/images/rocket.jpg"
C=("$CLI" caption --arch "$DATA/config.json" --sot 62 --eot 63)

out=$("${C[@]}" --checkpoint "$T/tiny.pt" --json --num 3 --seed 5 "$IMG1" "$IMG2" "$IMG3"); st=$?
check "$st" 0 "json run exits 0"
check "$(wc -l <<<"$out" | tr -d ' ')" 3 "one line per image"
check "$(sed -n 2p <<<"$out" | grep -c "^{\"input\":\"$IMG2\",\"syn_text\":\[\"[^\"]*\",\"[^\"]*\",\"[^\"]*\"\]}$")" 1 \
    "line 2 is {\"input\": PATH, \"syn_text\": [3 captions]}"
out2=$("${C[@]}" --checkpoint "$T/tiny.safetensors" --json --num 3 --seed 5 --threads 1 --batch 1 "$IMG1" "$IMG2" "$IMG3")
check "$out2" "$out" "safetensors, 1 thread, batch 1: the same captions"
out3=$("${C[@]}" --checkpoint "$T/tiny.pt" --json --num 3 --seed 6 "$IMG1" "$IMG2" "$IMG3")
[ "$out3" != "$out" ] && ok "another seed, other captions" || bad "seed 6 gives the captions of seed 5"
plain=$("${C[@]}" --checkpoint "$T/tiny.pt" --num 2 --seed 5 "$IMG1")
check "$(wc -l <<<"$plain" | tr -d ' ')" 2 "plain output: one line per caption"
check "$(cut -f1 <<<"$plain" | sort -u)" "$IMG1" "plain output: PATH<TAB>caption"
b1=$("${C[@]}" --checkpoint "$T/tiny.pt" --method beam --num 2 --json "$IMG1")
b2=$("${C[@]}" --checkpoint "$T/tiny.pt" --method beam --num 2 --json --seed 9 --threads 2 "$IMG1")
check "$b1" "$b2" "beam search is deterministic"

# shards: 0001 (png), 0002 (jpg), 0003 (no image), 0004 (png)
mkdir -p "$T/s"
cp "$IMG1" "$T/s/0001.png"; echo "a cat" >"$T/s/0001.txt"
cp "$IMG3" "$T/s/0002.jpg"; echo "a rocket" >"$T/s/0002.txt"; echo "text only" >"$T/s/0003.txt"
cp "$IMG2" "$T/s/0004.png"
(cd "$T/s" && tar --format=ustar -cf "$T/shard-0.tar" 0001.png 0001.txt 0002.jpg 0002.txt 0003.txt &&
    tar --format=ustar -cf "$T/shard-1.tar" 0004.png)
"${C[@]}" --checkpoint "$T/tiny.pt" --num 2 --seed 5 --input "$T/shard-{0..1}.tar" --out "$T/caps.jsonl" 2>"$T/err"
st=$?
check "$st" 0 "shards exit 0"
check "$(grep -o '"key":"[0-9]*"' "$T/caps.jsonl" | tr '\n' ' ')" '"key":"0001" "key":"0002" "key":"0004" ' \
    "shard keys in order, the sample without an image left out"
grep -q "0003.*no image" "$T/err" && ok "skipped sample named on stderr" || { bad "no warning for 0003"; cat "$T/err"; }
img_line=$("${C[@]}" --checkpoint "$T/tiny.pt" --num 2 --seed 5 --json "$IMG1" "$IMG3" | sed -n 2p | sed 's/.*"syn_text"//')
check "$(sed -n 2p "$T/caps.jsonl" | sed 's/.*"syn_text"//')" "$img_line" "shard sample 2 = image 2 of a run (same stream)"

# bad input: status, one line on stderr, nothing on stdout
expect() {
    local want=$1 name=$2 needle=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; local st=$?
    if [ $st -eq "$want" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] && grep -qF -- "$needle" "$T/err"; then
        ok "$name: $(cat "$T/err")"
    else
        bad "$name: status $st"; cat "$T/err"
    fi
}
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || exit 1
expect 1 "MobileCLIP checkpoint as captioner" "MobileCLIP checkpoint" "${C[@]}" --checkpoint "$T/s0.safetensors" "$IMG1"
sed 's/"width": 96/"width": 128/' "$DATA/config.json" >"$T/wide.json"
expect 1 "config that does not fit" "visual.class_embedding" "${C[@]}" --checkpoint "$T/tiny.pt" --arch "$T/wide.json" "$IMG1"
expect 1 "CLIP config as captioner" "not a CoCa configuration" "$CLI" caption --checkpoint "$T/tiny.pt" --arch ViT-B-32 "$IMG1"
expect 1 "missing image" "nope.png" "${C[@]}" --checkpoint "$T/tiny.pt" "$T/nope.png"
expect 1 "sot outside the vocabulary" "vocabulary" "$CLI" caption --arch "$DATA/config.json" --checkpoint "$T/tiny.pt" \
    --sot 49406 "$IMG1"
d1=$("$CLI" caption --arch "$DATA/config.json" --checkpoint "$T/tiny.pt" --seed 5 "$IMG1")
check "$d1" "$("${C[@]}" --checkpoint "$T/tiny.pt" --seed 5 "$IMG1")" "a 64-id vocabulary starts and ends with its last two ids"
expect 2 "no --arch" "--arch" "$CLI" caption --checkpoint "$T/tiny.pt" "$IMG1"
expect 2 "unknown method" "unknown --method" "${C[@]}" --checkpoint "$T/tiny.pt" --method greedy "$IMG1"
expect 2 "bad --top-p" "--top-p" "${C[@]}" --checkpoint "$T/tiny.pt" --top-p 1.5 "$IMG1"
expect 2 "images and shards" "one of them" "${C[@]}" --checkpoint "$T/tiny.pt" --input "$T/shard-0.tar" "$IMG1"

echo "cli_caption: $pass passed, $fail failed"
[ $fail -eq 0 ]
