#!/usr/bin/env bash
# `mobileclip train --config CAPTIONER.json` (an open_clip CoCa configuration) on small plain
# shards (tests/common/dr_shards.h's images and captions) with tests/data/configs/tiny_coca.json:
#  - trains with CoCaLoss (contrastive + caption columns), the loss goes down;
#  - the checkpoint captions with `mobileclip caption`;
#  - resume is bit-exact: 6 steps == 3 (--stop-after) + --resume (model, optimizer, log);
#  - teacher / distillation options and DR data are refused with a clear message.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG="$HERE/data/configs/tiny_coca.json"
T=$(mktemp -d /tmp/mc_train_coca_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; tail -5 "$T/err"; fi; }

mkdir -p "$T/d"
"$BUILD/make_dr_shards" "$T/d" 2 8 8 48 0 || { echo "FAIL cannot write the shards"; exit 1; }
ARGS=(--config "$CFG" --data-kind plain --data "$T/d/{00..01}.tar" --batch 4 --steps 6 --threads 2 --seed 3 --lr 3e-3)
"$CLI" train "${ARGS[@]}" --out "$T/a" >"$T/out" 2>"$T/err"; st=$?
check "6 steps exit 0, checkpoint files" '[ $st -eq 0 ] && [ -s "$T/a/model.pt" ] && [ -s "$T/a/optim-6.pt" ] && [ -s "$T/a/state.json" ]'
check "log.csv: CoCa columns, 6 finite rows" '[ "$(head -1 "$T/a/log.csv" | cut -d, -f5,6)" = "contrastive,caption" ] &&
    [ "$(wc -l <"$T/a/log.csv")" -eq 7 ] && awk -F, "NR>1 && !(\$5 > 0 && \$6 > 0 && \$4 < 100) {bad=1} END {exit bad}" "$T/a/log.csv"'
check "the loss goes down" 'awk -F, "NR==2 {a=\$4} END {exit !(\$4 < 0.9 * a)}" "$T/a/log.csv"'
check "loss.png is a PNG" '[ "$(head -c 8 "$T/a/loss.png" | od -An -tx1 | tr -d " ")" = "89504e470d0a1a0a" ]'
"$CLI" caption --checkpoint "$T/a/model.pt" --arch "$CFG" --seq-len 10 --method top_k "$SHARED/images/chelsea.png" >"$T/cap" 2>"$T/err"; st=$?
check "the checkpoint captions" '[ $st -eq 0 ] && [ "$(cut -f2 "$T/cap" | wc -w)" -ge 1 ]'
"$CLI" train "${ARGS[@]}" --out "$T/b" --stop-after 3 >"$T/out" 2>"$T/err" &&
    "$CLI" train "${ARGS[@]}" --out "$T/b" --resume >"$T/out" 2>>"$T/err"; st=$?
check "3 steps + --resume == 6 steps (bit-exact)" '[ $st -eq 0 ] && cmp -s "$T/a/model-6.pt" "$T/b/model-6.pt" &&
    cmp -s "$T/a/optim-6.pt" "$T/b/optim-6.pt" && [ "$(cut -d, -f1-8 "$T/a/log.csv")" = "$(cut -d, -f1-8 "$T/b/log.csv")" ]'
cp -r "$T/b" "$T/c" && printf '{"step": 3, "seed": 3' >"$T/c/state.json"
"$CLI" train "${ARGS[@]}" --out "$T/c" --resume >"$T/out" 2>"$T/err"; st=$?
check "a truncated state.json: exit 1 naming it" '[ $st -eq 1 ] && grep -q "state.json" "$T/err" && [ "$(wc -l <"$T/err")" -le 2 ]'
printf '{"step": 3, "seed": 3, "samples": 12, "bad": 0, "batch": 4, "model": "../../etc/x", "optim": "o", "positions": [0, 12]}' >"$T/c/state.json"
"$CLI" train "${ARGS[@]}" --out "$T/c" --resume >"$T/out" 2>"$T/err"; st=$?
check "state.json naming a file outside the folder: refused" '[ $st -eq 1 ] && grep -q "not file names" "$T/err"'
"$CLI" train --config "$HERE/../data/configs/fmnist_captioner.json" --data-kind plain --data "$T/d/00.tar" \
    --init "$T/a/model.pt" --batch 4 --steps 1 --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "--init of another configuration's checkpoint: exit 1 naming the tensor" '[ $st -eq 1 ] &&
    grep -q "model.pt: tensor .visual.class_embedding. has shape \[32\], expected \[96\]" "$T/err"'
"$CLI" train "${ARGS[@]}" --lambda 0.5 --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "--lambda refused for a captioner" '[ $st -eq 2 ] && grep -q "does not apply to a CoCa captioner" "$T/err"'
"$CLI" train --config "$CFG" --data "$T/d/00.tar" --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "DR data refused for a captioner" '[ $st -eq 2 ] && grep -q "use --data-kind plain" "$T/err"'
"$CLI" train "${ARGS[@]}" --batch 1 --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "batch 1: usage error" '[ $st -eq 2 ]'
echo "cli_train_coca: $pass passed, $fail failed"
[ $fail -eq 0 ]
