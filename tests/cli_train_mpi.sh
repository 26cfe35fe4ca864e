#!/usr/bin/env bash
# Data-parallel training: `mpirun -np 2 mobileclip train --batch 2` (each rank its stream of the
# shards, features all-gathered with gradients through the gather, one all-reduce of the
# gradient arena, BatchNorm per rank, rank 0 saving) against ONE process with --batch 4
# --bn-groups 2 (the same two data streams, the towers on the two halves with their own
# BatchNorm statistics, the loss over the whole batch, running statistics from group 0 as
# DDP's broadcast_buffers keeps rank 0's).
# Tolerances (reduction order only: MPI sums the two ranks' gradients, the single process
# accumulates both groups into one arena, ~1e-7 relative): logged losses and gradient norms
# rel <= 1e-5; after 3 AdamW steps at lr 1e-3 every parameter and buffer within 1e-3 absolute
# (Adam normalises each element's step, so an element whose gradient is rounding noise may
# move differently by up to about lr per step; measured 2.3e-5) and every tensor within 1e-2
# relative L2 (measured 3.2e-3, a bias that has moved only 3 lr from 0); the optimizer moments
# likewise (measured 1.9e-8 absolute).
# With --accum 2 (open_clip's --accum-freq) the two agree the same way.
# A build without MPI fails here when mpirun exists: CI installs openmpi-bin libopenmpi-dev.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG="$HERE/data/configs/tiny_mci.json"
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"; exit 0; fi
T=$(mktemp -d /tmp/mc_mpi_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; tail -5 "$T/err"; fi; }
"$BUILD/make_dr_shards" "$T" 2 8 8 48 0 || { echo "FAIL cannot write the shards"; exit 1; }
# Under the sanitizers (CI's second pass) OpenMPI's own allocations are reported as leaks at exit:
# the ranks run without leak detection (the one-process runs keep it: they are the same code).
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
export_mpi=(-x ASAN_OPTIONS)
common=(train --data "$T/{00..01}.tar" --config "$CFG" --teacher-dims 8,8 --steps 3 --threads 1 --loader-threads 1 --seed 3)

mpirun -np 2 --allow-run-as-root --oversubscribe "${export_mpi[@]}" "$CLI" "${common[@]}" --batch 2 --out "$T/mpi" >"$T/out" 2>"$T/err"; st=$?
cat "$T/err" | tail -3
check "mpirun -np 2: exit 0, 2 processes" '[ $st -eq 0 ] && grep -q "2 processes x batch 2 x 1 micro-batches" "$T/err"'
ASAN_OPTIONS="${ASAN_OPTIONS%:detect_leaks=0}" "$CLI" "${common[@]}" --batch 4 --bn-groups 2 --out "$T/one" >"$T/out" 2>"$T/err"; st=$?
check "one process, 2 BatchNorm groups: exit 0" '[ $st -eq 0 ]'
check "same losses and gradient norms (rel 1e-5)" 'paste -d, "$T/mpi/log.csv" "$T/one/log.csv" | awk -F, "NR>1 {
    for (k = 4; k <= 11; k++) { a = \$k; b = \$(k + 13); d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b;
        if (d > 1e-5 * s + 1e-7) bad = 1 } } END { exit bad }"'
check "same parameters and buffers" '"$BUILD/compare_checkpoints" "$T/mpi/model.pt" "$T/one/model.pt" 1e-3 1e-2'
check "same optimizer moments" '"$BUILD/compare_checkpoints" "$T/mpi/optim-3.pt" "$T/one/optim-3.pt" 1e-6 1e-2'
check "the same data positions saved" '[ "$(grep -o "\"positions\": .*" "$T/mpi/state.json")" = "$(grep -o "\"positions\": .*" "$T/one/state.json")" ]'
# resume of the data-parallel run: 2 + 1 steps == 3 steps
mpirun -np 2 --allow-run-as-root --oversubscribe "${export_mpi[@]}" "$CLI" "${common[@]}" --batch 2 --out "$T/mpi2" --stop-after 2 >"$T/out" 2>"$T/err" &&
mpirun -np 2 --allow-run-as-root --oversubscribe "${export_mpi[@]}" "$CLI" "${common[@]}" --batch 2 --out "$T/mpi2" --resume >"$T/out" 2>"$T/err"; st=$?
check "mpirun: 2 steps + resume == 3 steps (bytes)" '[ $st -eq 0 ] && cmp -s "$T/mpi/model.pt" "$T/mpi2/model.pt" && cmp -s "$T/mpi/optim-3.pt" "$T/mpi2/optim-3.pt"'
# open_clip's --accum-freq across ranks: the loss over both ranks' two micro-batches each (the
# gathered rows in rank order; the one process orders them by micro-batch: the same loss)
mpirun -np 2 --allow-run-as-root --oversubscribe "${export_mpi[@]}" "$CLI" "${common[@]}" --batch 2 --accum 2 --out "$T/mpia" >"$T/out" 2>"$T/err"; st=$?
check "mpirun -np 2 --accum 2: exit 0" '[ $st -eq 0 ] && grep -q "2 processes x batch 2 x 2 micro-batches" "$T/err"'
ASAN_OPTIONS="${ASAN_OPTIONS%:detect_leaks=0}" "$CLI" "${common[@]}" --batch 4 --bn-groups 2 --accum 2 --out "$T/onea" >"$T/out" 2>"$T/err"; st=$?
check "--accum 2: same losses and gradient norms as one process (rel 1e-5)" '[ $st -eq 0 ] && paste -d, "$T/mpia/log.csv" "$T/onea/log.csv" | awk -F, "NR>1 {
    for (k = 4; k <= 11; k++) { a = \$k; b = \$(k + 13); d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b;
        if (d > 1e-5 * s + 1e-7) bad = 1 } } END { exit bad }"'
check "--accum 2: same parameters and buffers" '"$BUILD/compare_checkpoints" "$T/mpia/model.pt" "$T/onea/model.pt" 1e-3 1e-2'
echo "cli_train_mpi: $pass passed, $fail failed"
[ $fail -eq 0 ]
