#!/usr/bin/env bash
# `mobileclip train` on small reinforced shards (tests/common/dr_shards.h) with the tiny
# configuration (tests/data/configs/tiny_mci.json):
#  - resume is bit-exact: 4 steps in one run == 2 steps (--stop-after) + --resume, and
#    == a run killed with SIGKILL at a random moment + --resume (model and optimizer files
#    byte-identical, the log's loss columns identical);
#  - with dropout and stochastic depth on (--drop, --drop-path for the image tower, text_cfg
#    dropout / attn_dropout / ffn_dropout / embed_dropout): resume is still bit-exact, 1 and 2
#    threads give byte-identical checkpoints, the losses differ from the run without, the arena
#    grows by the masks, and config.json records the rates;
#  - embed and classify load the checkpoint directly (with the written config.json);
#  - the log, the plot, plain CLIP training (--data-kind plain --lambda 0), skipped bad
#    samples (exit 3, one line each), usage and data errors.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG="$HERE/data/configs/tiny_mci.json"
IMG="$SHARED/images/chelsea.png"
T=$(mktemp -d /tmp/mc_train_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; tail -5 "$T/err"; fi; }

mkdir -p "$T/clean" "$T/dirty"
"$BUILD/make_dr_shards" "$T/clean" 2 8 8 48 0 && "$BUILD/make_dr_shards" "$T/dirty" 1 9 8 48 3 ||
    { echo "FAIL cannot write the shards"; exit 1; }
ARGS=(--data "$T/clean/{00..01}.tar" --config "$CFG" --teacher-dims 8,8 --batch 4 --steps 4
      --threads 2 --loader-threads 2 --seed 7 --warmup 1)
train() { "$CLI" train "${ARGS[@]}" "$@"; }

train --out "$T/a" >"$T/out" 2>"$T/err"; st=$?
check "4 steps exit 0" '[ $st -eq 0 ] && [ -s "$T/a/model.pt" ] && [ -s "$T/a/optim-4.pt" ]'
check "log.csv: header + 4 rows, finite losses" '[ "$(wc -l <"$T/a/log.csv")" -eq 5 ] &&
    awk -F, "NR>1 && !(\$4 > 0 && \$4 < 100) {bad=1} END {exit bad}" "$T/a/log.csv"'
check "loss.png is a PNG" '[ "$(head -c 8 "$T/a/loss.png" | od -An -tx1 | tr -d " ")" = "89504e470d0a1a0a" ]'
check "progress lines name step, loss parts, lr, samples/s, ETA" 'grep -q "step 4/4  loss .*contrastive .*distill .*lr .*samples/s  ETA" "$T/err"'
check "state.json names the step-4 files" 'grep -q "\"step\": 4.*\"model\": \"model-4.pt\", \"optim\": \"optim-4.pt\"" "$T/a/state.json"'

train --out "$T/b" --stop-after 2 >"$T/out" 2>"$T/err" && train --out "$T/b" --resume >"$T/out" 2>>"$T/err"; st=$?
check "2 steps + resume: exit 0" '[ $st -eq 0 ]'
check "2 steps + resume == 4 steps (model, optimizer bytes)" 'cmp -s "$T/a/model.pt" "$T/b/model.pt" && cmp -s "$T/a/optim-4.pt" "$T/b/optim-4.pt"'
check "2 steps + resume: same logged losses" 'diff <(cut -d, -f1-12 "$T/a/log.csv") <(cut -d, -f1-12 "$T/b/log.csv") >/dev/null'
check "the older checkpoint files are removed" '[ ! -e "$T/b/model-2.pt" ] && [ ! -e "$T/b/optim-2.pt" ]'

# SIGKILL at some moment after the first save (every step saves), then resume
# (the command itself in the background, not the shell function: $! must be the process killed)
"$CLI" train "${ARGS[@]}" --out "$T/c" --save-every 1 >"$T/out" 2>"$T/err" &
pid=$!
for i in $(seq 1 600); do [ -e "$T/c/state.json" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.05; done
sleep 0.$((RANDOM % 10))
if kill -9 $pid 2>/dev/null; then echo "     killed after $(grep -o '"step": [0-9]*' "$T/c/state.json")"; else echo "     (the run ended before the kill)"; fi
wait $pid 2>/dev/null
train --out "$T/c" --resume >"$T/out" 2>"$T/err"; st=$?
check "killed + resume: exit 0" '[ $st -eq 0 ]'
check "killed + resume == 4 steps (model, optimizer bytes)" 'cmp -s "$T/a/model.pt" "$T/c/model.pt" && cmp -s "$T/a/optim-4.pt" "$T/c/optim-4.pt"'
check "killed + resume: the log has each step once" 'diff <(cut -d, -f1-12 "$T/a/log.csv") <(cut -d, -f1-12 "$T/c/log.csv") >/dev/null'

# dropout on: the masks of step s come from (seed, step, rank), so resume and threads change nothing
sed 's/"model_name": "mct"/"model_name": "mct", "dropout": 0.1, "attn_dropout": 0.2, "ffn_dropout": 0.1, "embed_dropout": 0.1/' \
    "$CFG" >"$T/drop.json"
DARGS=(--config "$T/drop.json" --drop 0.1 --drop-path 0.2)
train "${DARGS[@]}" --out "$T/da" >"$T/out" 2>"$T/err"; st=$?
check "dropout on: 4 steps exit 0" '[ $st -eq 0 ] && [ -s "$T/da/model.pt" ]'
check "dropout on: the losses differ from the run without" '! diff <(cut -d, -f4 "$T/a/log.csv") <(cut -d, -f4 "$T/da/log.csv") >/dev/null'
act() { grep -o "activations [0-9]* MiB" "$1" | grep -o "[0-9]*"; }
cp "$T/err" "$T/da.err"
train --out "$T/a0" --steps 1 --drop 0 --drop-path 0 >"$T/out" 2>"$T/a0.err"
check "dropout on: the activation arena holds the masks (and not without)" '[ "$(act "$T/da.err")" -gt "$(act "$T/a0.err")" ] &&
    grep -q "activations $(act "$T/a0.err") MiB" "$T/a0.err"'
check "dropout on: config.json records the rates" 'grep -q "\"drop_rate\": 0.1" "$T/da/config.json" &&
    grep -q "\"drop_path_rate\": 0.2" "$T/da/config.json" && grep -q "\"attn_dropout\": 0.2" "$T/da/config.json" &&
    grep -q "\"embed_dropout\": 0.1" "$T/da/config.json"'
train "${DARGS[@]}" --out "$T/db" --stop-after 2 >"$T/out" 2>"$T/err" &&
    train "${DARGS[@]}" --out "$T/db" --resume >"$T/out" 2>>"$T/err"; st=$?
check "dropout on: 2 steps + resume == 4 steps (model, optimizer bytes)" '[ $st -eq 0 ] &&
    cmp -s "$T/da/model.pt" "$T/db/model.pt" && cmp -s "$T/da/optim-4.pt" "$T/db/optim-4.pt"'
train "${DARGS[@]}" --out "$T/dc" --threads 1 >"$T/out" 2>"$T/err"; st=$?
check "dropout on: 1 thread == 2 threads (model, optimizer bytes)" '[ $st -eq 0 ] &&
    cmp -s "$T/da/model.pt" "$T/dc/model.pt" && cmp -s "$T/da/optim-4.pt" "$T/dc/optim-4.pt"'
"$CLI" embed --config "$T/da/config.json" --checkpoint "$T/da/model.pt" --image "$IMG" --text "a photo" >"$T/out" 2>"$T/err"; st=$?
check "dropout on: embed loads the checkpoint with the written config.json" '[ $st -eq 0 ]'

"$CLI" embed --config "$T/a/config.json" --checkpoint "$T/a/model.pt" --image "$IMG" --text "a photo" >"$T/out" 2>"$T/err"; st=$?
check "embed loads the trained checkpoint" '[ $st -eq 0 ] && [ "$(grep -c "\"embedding\"" "$T/out")" -eq 2 ]'
"$CLI" classify --config "$T/a/config.json" --checkpoint "$T/a/model.pt" --image "$IMG" --labels "cat,dog" >"$T/out" 2>"$T/err"; st=$?
check "classify loads the trained checkpoint" '[ $st -eq 0 ] && grep -q "cat" "$T/out"'

"$CLI" train --data "$T/clean/{00..01}.tar" --config "$CFG" --data-kind plain --lambda 0 --batch 4 --steps 2 \
    --threads 2 --out "$T/p" >"$T/out" 2>"$T/err"; st=$?
check "plain CLIP training: contrastive loss only" '[ $st -eq 0 ] && awk -F, "NR>1 && !(\$5 > 0 && \$6 == 0) {bad=1} END {exit bad}" "$T/p/log.csv"'

"$CLI" train --data "$T/dirty/00.tar" --config "$CFG" --teacher-dims 8,8 --batch 4 --steps 2 --threads 2 \
    --out "$T/d" >"$T/out" 2>"$T/err"; st=$?
check "bad samples: exit 3, each named" '[ $st -eq 3 ] && grep -q "skipped: .*truncated PNG\|skipped: .*image" "$T/err" &&
    grep -q "skipped: .*missing member syn.json" "$T/err" && grep -q "skipped: .*18 wide, expected 16" "$T/err" &&
    grep -q "3 skipped" "$T/err"'

# --teacher-scale: one scale for every teacher, or one per teacher
train --out "$T/s1" --teacher-scale 100,100 >"$T/out" 2>"$T/err"; st=$?
check "--teacher-scale 100,100 == the default 100 (model bytes)" '[ $st -eq 0 ] && cmp -s "$T/a/model.pt" "$T/s1/model.pt"'
train --out "$T/s2" --teacher-scale 12,30 >"$T/out" 2>"$T/err"; st=$?
check "--teacher-scale 12,30: the distillation losses differ" '[ $st -eq 0 ] &&
    ! diff <(cut -d, -f6 "$T/a/log.csv") <(cut -d, -f6 "$T/s2/log.csv") >/dev/null'
train --out "$T/s3" --teacher-scale 12,30,5 >"$T/out" 2>"$T/err"; st=$?
check "--teacher-scale with 3 scales for 2 teachers: usage error" '[ $st -eq 2 ] && grep -q "3 scales for 2 teachers" "$T/err"'
train --out "$T/s3" --teacher-scale 12,x >"$T/out" 2>"$T/err"; st=$?
check "--teacher-scale 12,x: usage error" '[ $st -eq 2 ] && grep -q "teacher-scale expects" "$T/err"'

"$CLI" train --config "$CFG" --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "no --data: usage error" '[ $st -eq 2 ] && grep -q "\-\-data SHARDS is required" "$T/err"'
"$CLI" train --data "$T/clean/00.tar" --config "$CFG" --data-kind plain --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "plain data with lambda 1: usage error" '[ $st -eq 2 ] && grep -q "use --lambda 0" "$T/err"'
train --out "$T/a" --resume --batch 2 >"$T/out" 2>"$T/err"; st=$?
check "resume with another batch: one line" '[ $st -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "resume with the same" "$T/err"'
"$CLI" train --data "$T/none/{00..01}.tar" --config "$CFG" --teacher-dims 8,8 --batch 4 --steps 1 --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "missing shards: exit 1 naming the file" '[ $st -eq 1 ] && grep -q "none/0[01].tar: cannot open" "$T/err"'

echo "cli_train: $pass passed, $fail failed"
[ $fail -eq 0 ]
