#!/usr/bin/env bash
# One training step of ours (build/bench_train_step) beside the reference PyTorch model's
# (bench/torch_train_step.py) on the same shapes, in the same run; prints both and the ratios.
#   [ROUNDS=N] bench/train_vs_torch.sh ML_MOBILECLIP_CHECKOUT [PYTHON] [--arch s0 --batch 32 --threads 2 --steps 2 --warmup 1 --mode dr]
# PYTHON: an interpreter with torch + timm (see torch_train_step.py). The machine's load average is
# printed with the figures: on a shared machine compare the CPU times (wall times include waiting).
set -eu
SRC=$1; shift
PY=python3
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then PY=$1; shift; fi
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${MC_BUILD_DIR:-$HERE/../build}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
args=("$@"); [[ " $* " == *" --mode "* ]] || args+=(--mode dr)
# ROUNDS=N (default 1): ours and PyTorch alternate N times; on a shared host whose speed drifts
# between runs the median of the per-round ratios is the figure to quote
ROUNDS=${ROUNDS:-1}
ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
    ours=$("$BUILD/bench_train_step" "${args[@]}" | tee >(cat >&2) | grep -E '^(dr|dr0|clip) ' | head -1)
    theirs=$("$PY" "$HERE/torch_train_step.py" --mobileclip-src "$SRC" "${args[@]}" | tee >(cat >&2))
    w1=$(sed -E 's/.*step ([0-9.]+) s wall.*/\1/' <<<"$ours"); c1=$(sed -E 's/.* ([0-9.]+) s CPU.*/\1/' <<<"$ours")
    w2=$(sed -E 's/.*step ([0-9.]+) s wall.*/\1/' <<<"$theirs"); c2=$(sed -E 's/.* ([0-9.]+) s CPU.*/\1/' <<<"$theirs")
    ratios+=("$(awk -v w1="$w1" -v w2="$w2" 'BEGIN { printf "%.3f", w2 / w1 }')")
    awk -v w1="$w1" -v c1="$c1" -v w2="$w2" -v c2="$c2" 'BEGIN { printf "PyTorch / ours: wall %.2fx, CPU %.2fx\n", w2 / w1, c2 / c1 }'
done
if [ "$ROUNDS" -gt 1 ]; then
    printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "PyTorch / ours, wall, median of %d rounds: %.2fx (min %.2fx, max %.2fx)\n", NR, m, v[1], v[NR] }'
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
