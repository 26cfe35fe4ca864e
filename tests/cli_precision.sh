#!/usr/bin/env bash
# --precision on the model commands: embed gives bf16 / int8 text embeddings close to f32's
# (cosine >= 0.999 / 0.995, the thresholds of tests/test_lowp.c; bf16 equal to f32 where it runs the
# f32 kernels) and f32 unchanged by the flag;
# bench reports the precision and its GEMM kernels; bad values are usage errors (2), a
# low precision with --training-form a one-line failure (1).
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}
T=$(mktemp -d /tmp/mc_prec_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if [ "$1" = "$2" ]; then pass=$((pass + 1)); else echo "FAIL $3: got '$1', want '$2'"; fail=$((fail + 1)); fi; }
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || exit 1
texts=(--text "a photo of a cat" --text "two dogs playing in the snow near a red barn")
for p in f32 bf16 int8; do
    "$CLI" embed --checkpoint "$T/s0.safetensors" --threads 1 --precision $p "${texts[@]}" --raw > "$T/$p.jsonl"
    check "$?" 0 "embed --precision $p"
done
"$CLI" embed --checkpoint "$T/s0.safetensors" --threads 1 "${texts[@]}" --raw > "$T/default.jsonl"
check "$(cmp -s "$T/default.jsonl" "$T/f32.jsonl" && echo same)" same "--precision f32 = the default"
# cosine of line i of two jsonl files (the numbers inside "embedding":[...])
cosines() {
    paste -d'|' <(sed 's/.*"embedding":\[\([^]]*\)\].*/\1/' "$1") <(sed 's/.*"embedding":\[\([^]]*\)\].*/\1/' "$2") |
        awk -F'|' '{ n = split($1, a, ","); split($2, b, ","); d = 0; x = 0; y = 0;
                     for (i = 1; i <= n; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i] }
                     printf "%.6f\n", d / sqrt(x * y) }'
}
# without AVX512-BF16 bf16 runs the f32 kernels (bench: "gemm_kernels":"f32"): f32's numbers exactly
bf16k=$("$CLI" bench --arch s0 --threads 1 --runs 1 --batch 1 --precision bf16 --json | grep -o '"gemm_kernels":"[^"]*"')
for pm in "bf16 0.999" "int8 0.995"; do
    set -- $pm
    if [ "$1" = bf16 ] && [ "$bf16k" = '"gemm_kernels":"f32"' ]; then
        check "$(cmp -s "$T/bf16.jsonl" "$T/f32.jsonl" && echo same)" same "bf16 on the f32 kernels = f32"
        continue
    fi
    rows=0
    for c in $(cosines "$T/$1.jsonl" "$T/f32.jsonl"); do
        rows=$((rows + 1))
        echo "$1 text $rows: cosine to f32 $c"
        check "$(awk -v c="$c" -v m="$2" 'BEGIN { print (c >= m && c < 1) ? "ok" : "bad" }')" ok "$1 row $rows cosine $c"
    done
    check "$rows" 2 "$1 rows"
done
out=$("$CLI" bench --arch s0 --threads 1 --runs 1 --batch 1 --precision int8 --json)
check "$(grep -c '"precision":"int8","gemm_kernels":"[a-z0-9]*"' <<<"$out")" 1 "bench --precision int8 --json"
for bad in "--precision int4" "--precision"; do
    "$CLI" embed --checkpoint "$T/s0.safetensors" $bad --text x >/dev/null 2>"$T/err"
    check "$?/$(wc -l < "$T/err")" "2/1" "embed $bad"
done
"$CLI" embed --checkpoint "$T/s0.safetensors" --training-form --precision bf16 --text x >/dev/null 2>"$T/err"
check "$?/$(wc -l < "$T/err")/$(grep -c reparameterized "$T/err")" "1/1/1" "--training-form --precision bf16"
echo "cli_precision: $pass passed, $fail failed"
exit $((fail > 0))
