#!/usr/bin/env bash
# --config FILE on the command line: a small custom model (tests/data/configs/tiny_mci.json)
# written by make_test_checkpoint embeds images and texts with its own width (64) and context
# (16 tokens); --config next to --arch is a usage error; a bad configuration or a checkpoint
# of another model fails with one line naming the key / tensor.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG="$HERE/data/configs/tiny_mci.json"
VOCAB="$SHARED/vocab/bpe_simple_vocab_16e6.txt.gz"
IMG="$SHARED/images/chelsea.png"
T=$(mktemp -d /tmp/mc_cfg_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }

"$BUILD/make_test_checkpoint" "$CFG" "$T/tiny.pt" || { echo "FAIL cannot write the tiny checkpoint"; exit 1; }
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || { echo "FAIL cannot write test checkpoint"; exit 1; }

"$CLI" embed --config "$CFG" --checkpoint "$T/tiny.pt" --vocab "$VOCAB" --image "$IMG" \
    --text "a photo of a cat, a very long caption that is cut at the sixteenth token of the context" >"$T/out" 2>"$T/err"
st=$?
check "embed with --config exits 0" '[ $st -eq 0 ]'
check "the long text is cut at the configuration's 16 tokens (warning)" 'grep -q "longer than 16 tokens" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]'
check "two embeddings of 64 values" '[ "$(grep -c "\"embedding\"" "$T/out")" -eq 2 ] &&
    [ "$(head -1 "$T/out" | sed "s/.*\"embedding\":\[//; s/\].*//" | tr "," "\n" | wc -l)" -eq 64 ]'
# the rows are unit vectors
check "unit-norm embeddings" 'sed "s/.*\"embedding\":\[//; s/\].*//" "$T/out" | awk -F, "{s=0; for(i=1;i<=NF;i++) s+=\$i*\$i; if (s<0.9999||s>1.0001) bad=1} END{exit bad}"'

"$CLI" embed --config "$CFG" --arch s0 --checkpoint "$T/tiny.pt" --image "$IMG" >"$T/out" 2>"$T/err"; st=$?
check "--config with --arch is a usage error" '[ $st -eq 2 ] && grep -q "either --arch or --config" "$T/err"'

printf '{"embed_dim": 64, "image_cfg": {"image_size": 64, "model_name": "mci9"}}' >"$T/bad.json"
"$CLI" embed --config "$T/bad.json" --checkpoint "$T/tiny.pt" --image "$IMG" >"$T/out" 2>"$T/err"; st=$?
check "bad configuration: one line naming the key" '[ $st -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "image_cfg.model_name" "$T/err" && [ ! -s "$T/out" ]'

"$CLI" embed --config "$CFG" --checkpoint "$T/s0.safetensors" --image "$IMG" >"$T/out" 2>"$T/err"; st=$?
check "checkpoint of another model: names a tensor" '[ $st -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "image_encoder.model" "$T/err"'
cat "$T/err"

echo "cli_config: $pass passed, $fail failed"
[ $fail -eq 0 ]
