#!/usr/bin/env bash
# `mobileclip experiment` (Fashion-MNIST, docs/EXPERIMENT.md):
#  - configs: every built-in configuration is written byte for byte as shipped in data/configs,
#    and each one loads and runs forward (`embed --config` on a make_test_checkpoint model:
#    one image and one text embedding of the configuration's width); --time measures them;
#  - fmnist-shards: the same seed gives byte-identical shards; `caption-quality` reading the
#    shards back counts exactly what the converter counted while writing them;
#  - fmnist --limit 64 (every stage, tiny): the final zero-shot top-1/top-5 and R@1/R@5 of two
#    student runs and a teacher equal what the independent `eval zeroshot --fashion-mnist`,
#    `eval zeroshot --shards` and `eval retrieval --shards` commands measure on the checkpoints
#    and shards it leaves; a second run with 2 threads reproduces results.json exactly (timings
#    aside); --reuse keeps shards, teachers, captioner, captions and reinforced shards and gives the same figures;
#  - bad input: one line naming the file or option, non-zero status.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
FM=/usr/share/datasets/fashion-mnist
IMG="$SHARED/images/chelsea.png"
export OMP_WAIT_POLICY=passive     # the CI machine may be shared: no spinning threads
T=$(mktemp -d /tmp/mc_experiment_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi; }
[ -f "$FM/train-images-idx3-ubyte.gz" ] || { echo "FAIL Fashion-MNIST missing: install dataset-fashion-mnist"; exit 1; }
# a JSON number field: num FILE KEY
num() { grep -o "\"$2\": *[-0-9.e]*" "$1" | head -1 | sed 's/.*: *//'; }
same() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && (a - b < 1e-6 && b - a < 1e-6)) }'; }

# ---- configs ----
"$CLI" experiment configs --write "$T/cfg" >"$T/out" 2>"$T/err"; st=$?
check "configs --write exits 0" '[ $st -eq 0 ] && [ ! -s "$T/err" ]'
for f in "$HERE"/../data/configs/*.json; do
    n=$(basename "$f" .json)
    case $n in *_captioner)   # an open_clip CoCa configuration: built in and written, not a CLIP model
        check "$n: written as shipped" 'cmp -s "$f" "$T/cfg/$n.json"'; continue ;; esac
    check "$n: written as shipped" 'cmp -s "$f" "$T/cfg/$n.json" && grep -q "^$n " "$T/out"'
    "$BUILD/make_test_checkpoint" "$f" "$T/$n.safetensors" >/dev/null 2>&1
    dim=$(grep -o '"embed_dim": *[0-9]*' "$f" | sed 's/.*: *//')
    "$CLI" embed --config "$f" --checkpoint "$T/$n.safetensors" --threads 1 --image "$IMG" \
        --text "a black cotton tee, free shipping" >"$T/emb" 2>"$T/err"
    check "$n: loads and embeds (width $dim)" '[ "$(grep -c "\"embedding\"" "$T/emb")" -eq 2 ] &&
        [ "$(tail -1 "$T/emb" | sed "s/.*\"embedding\":\[//; s/\].*//" | tr "," "\n" | wc -l)" -eq "$dim" ]'
done
"$CLI" experiment configs --time --n 1 --threads 1 >"$T/time" 2>"$T/err"; st=$?
check "configs --time: a cost per image and per text for each" '[ $st -eq 0 ] &&
    [ "$(awk "NR > 1 && \$7 > 0 && \$8 > 0" "$T/time" | wc -l)" -eq "$(ls "$HERE"/../data/configs/*.json | grep -vc _captioner)" ]'
cat "$T/time"

# ---- shards and caption quality ----
"$CLI" experiment fmnist-shards --out "$T/s1" --seed 5 --limit 250 --per-shard 100 --json >"$T/s1.json" 2>"$T/err"; st=$?
check "fmnist-shards exits 0" '[ $st -eq 0 ] && [ ! -s "$T/err" ]'
"$CLI" experiment fmnist-shards --out "$T/s2" --seed 5 --limit 250 --per-shard 100 --json >"$T/s2.json" 2>&1
check "same seed: byte-identical shards" '[ "$(ls "$T/s1" | wc -l)" -eq 10 ] && [ -s "$T/s1/manifest.json" ] && diff -r "$T/s1" "$T/s2" >/dev/null && cmp -s "$T/s1.json" "$T/s2.json"'
"$CLI" experiment fmnist-shards --out "$T/s2" --seed 5 --limit 100 --per-shard 100 >/dev/null 2>&1
check "a smaller conversion into the same folder leaves no stale shards" '[ "$(ls "$T/s2" | tr "\n" " ")" = "heldout-00000.tar manifest.json test-00000.tar train-00000.tar " ]'
"$CLI" experiment caption-quality --shards "$T/s1/train-{00000..00002}.tar" --json >"$T/q.json" 2>"$T/err"; st=$?
train_q=$(sed 's/.*"train": {[^{]*"quality": \({[^}]*}\).*/\1/' "$T/s1.json")
check "caption-quality on the shards = the converter's counts" '[ $st -eq 0 ] && [ "$(cat "$T/q.json")" = "$train_q" ]'
echo "  $train_q"
check "captions: mostly right, some wrong, none and mixed" 'awk -v r="$(num "$T/q.json" right_fraction)" -v w="$(num "$T/q.json" wrong_fraction)" \
    -v n="$(num "$T/q.json" none_fraction)" "BEGIN { exit !(r > 0.6 && r < 0.8 && w > 0.08 && w < 0.22 && n > 0.04 && n < 0.16) }"'

# ---- the driver ----
# A tiny run (64 samples per split): every stage runs (teachers, reinforcement, students), the
# figures are not meaningful at this size; the checks are that the driver's figures are the
# independent eval commands' on the checkpoints it leaves, and that it reproduces itself.
L=64
"$CLI" experiment fmnist --limit $L --threads 1 --out "$T/q1" >"$T/run1" 2>"$T/err"; st=$?
check "fmnist --limit $L exits 0" '[ $st -eq 0 ] && [ -s "$T/q1/results.json" ] && [ -s "$T/q1/report.md" ] && [ -s "$T/q1/accuracy.png" ]'
cat "$T/run1"; [ $st -eq 0 ] || tail -5 "$T/err"
printf 'T-shirt/top\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nAnkle boot\n' >"$T/classes.txt"
R="$T/q1/results.json"
# the last evaluation line of model NAME in results.json: lastev NAME
lastev() { awk -v n="\"name\": \"$1\"" 'index($0, n) { f = 1 } f && /test_images/ { l = $0 } f && /\]\}/ { print l; exit }' "$R" >"$T/ev.$1"; }
evnum() { num "$T/ev.$1" "$2"; }
jnum() { grep -o "\"$2\":[0-9.e-]*" "$1" | head -1 | cut -d: -f2; }
for m in plain dr_lambda1.0 fmnist_teacher_attn; do
    lastev $m
    case $m in fmnist_teacher*) C="$T/q1/configs/$m.json"; K="$T/q1/teachers/$m/model.pt" ;;
        *) C="$T/q1/configs/fmnist_student_mct.json"; K="$T/q1/students/$m/model.pt" ;; esac
    "$CLI" eval zeroshot --json --threads 1 --config "$C" --checkpoint "$K" --fashion-mnist "$FM" --limit $L >"$T/ez" 2>/dev/null
    check "$m: test zero-shot = eval zeroshot --fashion-mnist" '[ -s "$T/ev.$m" ] && same "$(evnum $m zeroshot_top1)" "$(jnum "$T/ez" top1)" &&
        same "$(evnum $m zeroshot_top5)" "$(jnum "$T/ez" top5)"'
    "$CLI" eval zeroshot --json --threads 1 --config "$C" --checkpoint "$K" --shards "$T/q1/shards/heldout-00000.tar" --limit $L \
        --classes "$T/classes.txt" >"$T/eh" 2>/dev/null
    check "$m: held-out zero-shot = eval zeroshot --shards" 'same "$(evnum $m heldout_zeroshot_top1)" "$(jnum "$T/eh" top1)"'
    "$CLI" eval retrieval --json --threads 1 --config "$C" --checkpoint "$K" --shards "$T/q1/shards/test-00000.tar" --limit $L >"$T/er" 2>/dev/null
    check "$m: R@1, R@5 both ways = eval retrieval --shards" 'same "$(evnum $m i2t_r1)" "$(jnum "$T/er" i2t_r1)" &&
        same "$(evnum $m t2i_r1)" "$(jnum "$T/er" t2i_r1)" && same "$(evnum $m i2t_r5)" "$(jnum "$T/er" i2t_r5)" &&
        same "$(evnum $m t2i_r5)" "$(jnum "$T/er" t2i_r5)"'
done
# the seen-sample counts of model NAME's evaluations, space separated
seen() { awk -v n="\"name\": \"$1\"" 'index($0, n) { f = 1 } f && /test_images/ { sub(/.*"seen_samples": /, ""); sub(/,.*/, ""); printf "%s ", $0 } f && /\]\}/ { exit }' "$R"; }
check "students: evaluation points a factor sqrt(2) apart, the same for each run" '[ "$(seen plain)" = "16 32 48 64 96 128 " ] &&
    [ "$(seen syn_lambda0)" = "$(seen plain)" ] && [ "$(seen dr_lambda0.7)" = "$(seen plain)" ] && [ "$(seen dr_lambda1.0)" = "$(seen plain)" ]'
# the synthetic captions: the captioner ran, every train image has num_syn of them in the reinforced
# shards, and their quality is what caption-quality measures on those shards
"$CLI" experiment caption-quality --shards "$T/q1/reinforced/train-00000.tar" --member syn.json --json >"$T/sq.json" 2>/dev/null
check "captioner ran; syn.jsonl has a line for each of the $L train images, 2 captions each in the reinforced shards" 'grep -q "\"captioner\": {\"ran\": true" "$R" &&
    [ "$(wc -l <"$T/q1/syn.jsonl")" -eq $L ] && [ "$(num "$T/sq.json" captions)" -eq $((2 * L)) ]'
check "synthetic captions' quality in results.json = caption-quality of the reinforced syn.json" '[ "$(num "$T/sq.json" captions)" = "$(sed -n "s/.*\"synthetic_captions\": {\"captions\": \([0-9]*\).*/\1/p" "$R")" ] &&
    same "$(num "$T/sq.json" right_fraction)" "$(sed -n "s/.*\"synthetic_captions\": {[^}]*\"right\": \([0-9.]*\).*/\1/p" "$R")"'
check "syn_lambda0 ran" 'grep -q "\"name\": \"syn_lambda0\", .*\"ran\": true" "$R"'
check "reinforced shards: images, paug.json, npz and syn.json per sample" '[ "$(tar tf "$T/q1/reinforced/train-00000.tar" | sed "s/^[0-9]*\.//" | sort -u | tr "\n" " ")" = "cls npz paug.json png syn.json txt " ]'
check "report.md says what did not run" 'grep -q "not run" "$T/q1/report.md" || grep -q "synthetic (CoCa" "$T/q1/report.md"'
if [ -n "${MC_TEST_SHORT:-}" ]; then
    echo "skip the second and third runs (MC_TEST_SHORT)"
else
    # the same seed with another thread count: the same figures (training and evaluation do not depend on threads)
    "$CLI" experiment fmnist --limit $L --threads 2 --out "$T/q2" >/dev/null 2>&1
    check "same seed, 2 threads: same results.json (timings aside), same student checkpoint" 'diff <(grep -v -e _seconds -e ms_per_step "$R") <(grep -v -e _seconds -e ms_per_step "$T/q2/results.json") >/dev/null &&
        cmp -s "$T/q1/students/dr_lambda1.0/model.pt" "$T/q2/students/dr_lambda1.0/model.pt" && diff -r "$T/q1/shards" "$T/q2/shards" >/dev/null'
    touch "$T/marker"; sleep 1
    "$CLI" experiment fmnist --limit $L --threads 1 --reuse --out "$T/q2" >/dev/null 2>"$T/err"
    check "--reuse keeps the shards, teachers, captioner, captions and reinforced shards, same results" 'grep -q "reusing the shards" "$T/err" && grep -q "reusing teachers/fmnist_teacher_mci" "$T/err" &&
        grep -q "reusing the captions and the reinforced shards" "$T/err" &&
        [ -z "$(find "$T/q2/shards" "$T/q2/teachers" "$T/q2/captioner" "$T/q2/reinforced" "$T/q2/syn.jsonl" -name "*.tar" -newer "$T/marker" -o -name "model.pt" -newer "$T/marker" -o -name "syn.jsonl" -newer "$T/marker")" ] &&
        grep -q "\"reinforced\": {\"ran\": true, .*\"reused\": true" "$T/q2/results.json" &&
        diff <(grep -v -e _seconds -e ms_per_step -e reused "$R") <(grep -v -e _seconds -e ms_per_step -e reused "$T/q2/results.json") >/dev/null'
fi

# ---- bad input ----
"$CLI" experiment fmnist-shards --out "$T/x" --data /nonexistent >"$T/out" 2>"$T/err"; st=$?
check "missing data: one line naming the file" '[ $st -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "/nonexistent/train-images-idx3-ubyte.gz" "$T/err"'
"$CLI" experiment fmnist --student nope --out "$T/x" >"$T/out" 2>"$T/err"; st=$?
check "unknown student configuration: usage error" '[ $st -eq 2 ] && grep -q "nope" "$T/err"'
"$CLI" experiment fmnist-shards --out "$T/x" --limit 0 >"$T/out" 2>"$T/err"; st=$?
check "bad number: usage error" '[ $st -eq 2 ] && grep -q "\-\-limit" "$T/err"'
"$CLI" experiment caption-quality --shards "$T/q1/report.md" >"$T/out" 2>"$T/err"; st=$?
check "caption-quality of a non-shard: one line naming it" '[ $st -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "report.md" "$T/err"'
"$CLI" experiment nothing >"$T/out" 2>"$T/err"; st=$?
check "unknown experiment: usage error" '[ $st -eq 2 ]'

echo "cli_experiment: $pass passed, $fail failed"
[ $fail -eq 0 ]
