#!/usr/bin/env bash
# `mobileclip train --eval-every N --eval SPEC` on small reinforced shards with the tiny
# configuration:
#  - eval.csv has one row per set at step 0, every N steps and the last step;
#  - its figures equal the independent `mobileclip eval zeroshot / retrieval` commands run on the
#    checkpoint of the same step (Fashion-MNIST IDX, class folders, WebDataset captions);
#  - evaluating changes nothing in training (model bytes equal a run without --eval);
#  - resume-safe: stop + resume, and SIGKILL + resume, give the same eval.csv as one run (no row
#    lost or repeated);
#  - bad specs and options are one-line errors.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG="$HERE/data/configs/tiny_mci.json"
FM=/usr/share/datasets/fashion-mnist
T=$(mktemp -d /tmp/mc_train_eval_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; tail -5 "$T/err"; fi; }
[ -f "$FM/t10k-images-idx3-ubyte.gz" ] || { echo "FAIL Fashion-MNIST missing: install dataset-fashion-mnist"; exit 1; }

mkdir -p "$T/clean" "$T/folders/cat" "$T/folders/astronaut"
"$BUILD/make_dr_shards" "$T/clean" 2 8 8 48 0 || { echo "FAIL cannot write the shards"; exit 1; }
for f in chelsea coffee; do [ -f "$SHARED/images/$f.png" ] && cp "$SHARED/images/$f.png" "$T/folders/cat/"; done
for f in astronaut camera; do [ -f "$SHARED/images/$f.png" ] && cp "$SHARED/images/$f.png" "$T/folders/astronaut/"; done
SH="$T/clean/{00..01}.tar"
ARGS=(--data "$SH" --config "$CFG" --teacher-dims 8,8 --batch 4 --steps 5 --threads 2 --loader-threads 2
      --seed 3 --warmup 1 --lr 5e-3)
EV=(--eval-every 2 --eval "fmnist:$FM" --eval "shards:$SH" --eval "folders:$T/folders" --eval-limit 20
    --eval-templates simple)

"$CLI" train "${ARGS[@]}" "${EV[@]}" --out "$T/a" >"$T/out" 2>"$T/err"; st=$?
check "train with --eval: exit 0" '[ $st -eq 0 ] && [ -s "$T/a/eval.csv" ]'
check "eval.csv: header + 3 sets x steps 0, 2, 4, 5" '[ "$(head -1 "$T/a/eval.csv")" = "step,samples,set,images,texts,top1,i2t_r1,t2i_r1" ] &&
    [ "$(tail -n +2 "$T/a/eval.csv" | cut -d, -f1 | tr "\n" " ")" = "0 0 0 2 2 2 4 4 4 5 5 5 " ] &&
    [ "$(tail -n +2 "$T/a/eval.csv" | cut -d, -f3 | sort -u | tr "\n" " ")" = "fmnist folders shards " ]'
check "eval.csv: seen samples = step x batch" 'awk -F, "NR>1 && \$2 != 4 * \$1 {bad=1} END {exit bad}" "$T/a/eval.csv"'
check "progress output has the evaluations" 'grep -q "eval step 4 (16 samples):  fmnist top-1 .*%  shards R@1 i2t .*% t2i .*%  folders top-1" "$T/err"'

"$CLI" train "${ARGS[@]}" --out "$T/n" >"$T/out" 2>"$T/err"
check "evaluating changes nothing in training (model bytes)" 'cmp -s "$T/a/model.pt" "$T/n/model.pt"'

# the figures of a step against the independent eval commands on that step's model.pt
row() { awk -F, -v s="$1" -v n="$2" -v c="$3" '$1 == s && $3 == n {print $c}' "$T/a/eval.csv"; }
jnum() { grep -o "\"$1\":[0-9.e+-]*" "$2" | head -1 | cut -d: -f2; }
same() { awk -v a="$1" -v b="$2" 'BEGIN {d = a - b; exit !(a != "" && b != "" && d < 1e-6 && d > -1e-6)}'; }
figures() { # step dir
    S=$1 # (check's eval sees its own $1)
    local M=(--config "$2/config.json" --checkpoint "$2/model.pt" --threads 2 --json)
    "$CLI" eval zeroshot "${M[@]}" --fashion-mnist "$FM" --limit 20 --templates simple >"$T/ez" 2>"$T/err"
    check "step $1: fmnist top-1 = eval zeroshot --fashion-mnist" 'same "$(row $S fmnist 6)" "$(jnum top1 "$T/ez")"'
    "$CLI" eval zeroshot "${M[@]}" --dataset "$T/folders" --templates simple >"$T/ed" 2>"$T/err"
    check "step $1: folders top-1 = eval zeroshot --dataset" 'same "$(row $S folders 6)" "$(jnum top1 "$T/ed")"'
    "$CLI" eval retrieval "${M[@]}" --shards "$SH" --limit 20 >"$T/er" 2>"$T/err"
    check "step $1: shards R@1 both ways = eval retrieval --shards" 'same "$(row $S shards 7)" "$(jnum i2t_r1 "$T/er")" &&
        same "$(row $S shards 8)" "$(jnum t2i_r1 "$T/er")"'
}
figures 5 "$T/a"

"$CLI" train "${ARGS[@]}" "${EV[@]}" --out "$T/b" --stop-after 2 >"$T/out" 2>"$T/err"; st=$?
check "stop after 2: exit 0" '[ $st -eq 0 ] && [ "$(tail -n +2 "$T/b/eval.csv" | cut -d, -f1 | tr "\n" " ")" = "0 0 0 2 2 2 " ]'
figures 2 "$T/b"
"$CLI" train "${ARGS[@]}" "${EV[@]}" --out "$T/b" --resume >"$T/out" 2>>"$T/err"; st=$?
check "stop after 2 + resume: the same eval.csv as one run" '[ $st -eq 0 ] && cmp -s "$T/a/eval.csv" "$T/b/eval.csv"'

# SIGKILL after the first save (every step saves), then resume
"$CLI" train "${ARGS[@]}" "${EV[@]}" --out "$T/c" --save-every 1 >"$T/out" 2>"$T/err" &
pid=$!
for i in $(seq 1 600); do [ -e "$T/c/state.json" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
sleep 0.$((RANDOM % 10))
if kill -9 $pid 2>/dev/null; then echo "     killed after $(grep -o '"step": [0-9]*' "$T/c/state.json")"; else echo "     (the run ended before the kill)"; fi
wait $pid 2>/dev/null
"$CLI" train "${ARGS[@]}" "${EV[@]}" --out "$T/c" --save-every 1 --resume >"$T/out" 2>"$T/err"; st=$?
check "killed + resume: the same eval.csv (no row lost or repeated)" '[ $st -eq 0 ] && cmp -s "$T/a/eval.csv" "$T/c/eval.csv"'

bad() { "$CLI" train "${ARGS[@]}" --out "$T/x" "$@" >"$T/out" 2>"$T/err"; st=$?; }
bad --eval-every 2; check "--eval-every without --eval: usage error" '[ $st -eq 2 ] && grep -q "go together" "$T/err"'
bad --eval-every 2 --eval "imagenet:/x"; check "unknown spec kind: one-line error" '[ $st -eq 1 ] && grep -q "expected fmnist:DIR, folders:DIR or shards:SPEC" "$T/err"'
bad --eval-every 2 --eval "fmnist:$T/none"; check "missing Fashion-MNIST files: error naming the file" '[ $st -eq 1 ] && grep -q "$T/none/t10k-images" "$T/err"'
bad --eval-every 2 --eval "shards:$SH" --eval-classes fmnist; check "shards without cls + --eval-classes: error" '[ $st -eq 1 ] && grep -q "no .cls member" "$T/err"'
bad --eval-every 0 --eval "shards:$SH"; check "--eval-every 0: usage error" '[ $st -eq 2 ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
