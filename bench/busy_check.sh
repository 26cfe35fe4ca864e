#!/usr/bin/env bash
# bench/busy_check.sh - the busy-machine check of issue 9: with a CPU-bound process pinned to
# one core, N threads must not be more than 1.3x slower than 1 thread on the idle core.
#
#   bench/busy_check.sh [--arch s0] [--runs 10] [--rounds 3] [--cli build/mobileclip] [--cli2 OTHER]
#
# Per round (interleaved, so drifting load hits all alike): 1 thread pinned to core 0 with
# the hog on core 1, then 2 threads unpinned with the hog, then (--cli2) the same for another
# build. Prints the image and text medians of each and the ratio 2 threads / 1 thread.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=s0 runs=10 rounds=3 cli=build/mobileclip cli2=""
while [ $# -gt 0 ]; do
    case "$1" in
    --arch) arch=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --cli) cli=$2; shift 2 ;;
    --cli2) cli2=$2; shift 2 ;;
    *) echo "busy_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(nproc)" -ge 2 ] || { echo "busy_check.sh: needs 2 cores" >&2; exit 1; }
taskset -c 1 sh -c 'while :; do :; done' &
hog=$!
trap 'kill $hog' EXIT
field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
    for c in $cli $cli2; do
        one=$(taskset -c 0 "$c" bench --arch "$arch" --threads 1 --runs "$runs" --batch 1 --json)
        two=$("$c" bench --arch "$arch" --threads 2 --runs "$runs" --batch 1 --json)
        i1=$(echo "$one" | field image_ms_p50) t1=$(echo "$one" | field text_ms_p50)
        i2=$(echo "$two" | field image_ms_p50) t2=$(echo "$two" | field text_ms_p50)
        awk -v c="$c" -v r="$r" -v i1="$i1" -v i2="$i2" -v t1="$t1" -v t2="$t2" 'BEGIN {
            printf "round %d %s: image 1T(idle core) %.1f ms, 2T %.1f ms, ratio %.2f | text 1T %.1f ms, 2T %.1f ms, ratio %.2f\n",
                   r, c, i1, i2, i2 / i1, t1, t2, t2 / t1 }'
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
