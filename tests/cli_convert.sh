#!/usr/bin/env bash
# mobileclip convert and the converted file on the model commands: converting a checkpoint
# (f32, int8) and the weight rule; `embed` from the converted file prints exactly what it prints
# from the checkpoint at the same precision (images and texts); --precision on a converted file
# repacks (= the checkpoint at that precision); bench reports load_ms / peak_rss_mb / weights_mb
# for it; --training-form, another --arch and training refuse it with one line; usage errors (2).
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
T=$(mktemp -d /tmp/mc_conv_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if [ "$1" = "$2" ]; then pass=$((pass + 1)); else echo "FAIL $3: got '$1', want '$2'"; fail=$((fail + 1)); fi; }
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || exit 1
img=$(ls "$SHARED"/images/* | head -1)
inputs=(--threads 1 --image "$img" --text "a photo of a cat" --text "two dogs playing in the snow" --raw)
for p in f32 int8; do
    "$CLI" convert --checkpoint "$T/s0.safetensors" --precision $p --out "$T/s0_$p.mcm" > "$T/out" 2>"$T/err"
    check "$?/$(grep -c "s0_$p.mcm: mobileclip_s0, $p" "$T/out")" "0/1" "convert --precision $p"
    "$CLI" embed --checkpoint "$T/s0.safetensors" --precision $p "${inputs[@]}" > "$T/ckpt_$p.jsonl"
    check "$?" 0 "embed checkpoint $p"
    "$CLI" embed --checkpoint "$T/s0_$p.mcm" "${inputs[@]}" > "$T/conv_$p.jsonl"
    check "$?" 0 "embed converted $p"
    check "$(cmp -s "$T/ckpt_$p.jsonl" "$T/conv_$p.jsonl" && echo same)/$(wc -l < "$T/conv_$p.jsonl")" "same/3" \
        "embed from the converted $p file = from the checkpoint"
done
# an f32 file asked for int8: repacked from its f32 plan
"$CLI" embed --checkpoint "$T/s0_f32.mcm" --precision int8 "${inputs[@]}" > "$T/repack.jsonl"
check "$(cmp -s "$T/ckpt_int8.jsonl" "$T/repack.jsonl" && echo same)" same "f32 file with --precision int8"
# classify works from it too
"$CLI" classify --checkpoint "$T/s0_int8.mcm" --threads 1 --image "$img" --labels cat,dog > "$T/cls" 2>"$T/err"
check "$?" 0 "classify from a converted file"
# the weight rule
"$CLI" convert --arch s0 --out "$T/rule.mcm" > /dev/null 2>"$T/err"
check "$?" 0 "convert --arch s0 (weight rule)"
out=$("$CLI" bench --checkpoint "$T/rule.mcm" --threads 1 --runs 1 --batch 1 --json)
check "$?/$(grep -o '"load_ms":[0-9.]*,' <<<"$out" | wc -l)/$(grep -o '"peak_rss_mb":[0-9.]*,' <<<"$out" | wc -l)/$(grep -o '"weights_mb":[0-9.]*,' <<<"$out" | wc -l)" \
    "0/1/1/1" "bench --checkpoint FILE.mcm --json"
# refusals: one line, exit 1
"$CLI" embed --checkpoint "$T/s0_f32.mcm" --training-form --text x > /dev/null 2>"$T/err"
check "$?/$(wc -l < "$T/err")/$(grep -c 'inference plan only' "$T/err")" "1/1/1" "--training-form on a converted file"
"$CLI" embed --checkpoint "$T/s0_f32.mcm" --arch b --text x > /dev/null 2>"$T/err"
check "$?/$(wc -l < "$T/err")/$(grep -c 'converted from' "$T/err")" "1/1/1" "--arch b on an s0 file"
mkdir -p "$T/shards"
"$CLI" train --data "$T/shards/{0000..0000}.tar" --arch s0 --init "$T/s0_f32.mcm" --steps 1 --out "$T/train" > /dev/null 2>"$T/err"
check "$?/$(grep -c 'converted model' "$T/err")" "1/1" "train --init on a converted file"
head -c 1000 "$T/s0_f32.mcm" > "$T/short.mcm"
"$CLI" embed --checkpoint "$T/short.mcm" --text x > /dev/null 2>"$T/err"
check "$?/$(wc -l < "$T/err")/$(grep -c 'short.mcm: truncated converted model' "$T/err")" "1/1/1" "a truncated file"
# usage errors
for bad in "--arch s0" "--out $T/x.mcm" "--arch s0 --config x.json --out $T/x.mcm" "--arch s0 --out $T/x.mcm --precision int4" "--arch s0 --out $T/x.mcm --training-form"; do
    "$CLI" convert $bad > /dev/null 2>"$T/err"
    check "$?/$(wc -l < "$T/err")" "2/1" "convert $bad"
done
check "$(ls "$T" | grep -c 'x.mcm')" 0 "no output left by a usage error"
echo "cli_convert: $pass passed, $fail failed"
exit $((fail > 0))
