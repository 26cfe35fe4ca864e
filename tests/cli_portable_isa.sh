#!/usr/bin/env bash
# A default (MC_NATIVE=OFF) build is portable: no object of the library or the CLI holds an
# AVX/AVX2/AVX-512 instruction (a mnemonic starting with "v": VEX/EVEX encodings) outside
# the per-ISA kernel files (which must hold them, so the check looks at the right objects) and
# outside functions named for their instruction set (`*avx2*`, `*avx512*`: built with a target
# attribute and called only when the CPU has it, e.g. src/index/search.c).
# Skipped (77) for an MC_NATIVE=ON build, where every file may use the build CPU's ISA.
set -euo pipefail
build=${MC_BUILD_DIR:?MC_BUILD_DIR not set}
if grep -q '^MC_NATIVE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "MC_NATIVE=ON build: portability not checked"
    exit 77
fi
command -v objdump >/dev/null || { echo "objdump (binutils) not found"; exit 1; }
case "$(uname -m)" in x86_64|amd64) ;; *) echo "not x86-64: nothing to check"; exit 77 ;; esac

# vector mnemonics (field 2 of `objdump -d --no-show-raw-insn` lines) per object, not counting
# those in functions named for an instruction set (all of them when $2 is "all")
vec_count() {
    objdump -d --no-show-raw-insn "$1" | awk -F'\t' -v all="${2:-}" '
        /^[0-9a-f]+ <.*>:$/ { named = ($0 ~ /avx2|avx512/) }
        NF >= 2 { split($2, w, " "); if (w[1] ~ /^v/ && (all == "all" || !named)) n++ }
        END { print n + 0 }'
}

mapfile -t objs < <(find "$build/CMakeFiles/mobileclip_core.dir" "$build/CMakeFiles/mobileclip.dir" -name '*.o' | sort)
[ "${#objs[@]}" -gt 20 ] || { echo "only ${#objs[@]} objects found under $build/CMakeFiles"; exit 1; }
fail=0 checked=0
for o in "${objs[@]}"; do
    case "$o" in
    *kernels_avx2.c.o|*kernels_avx512.c.o)
        n=$(vec_count "$o" all)
        if [ "$n" -lt 100 ]; then echo "FAIL $o: only $n AVX instructions in an AVX kernel file"; fail=1; fi ;;
    *dwgrad_avx2.c.o) # the depthwise weight-gradient kernel (src/nn/dwgrad.h), built for AVX2
        n=$(vec_count "$o" all)
        if [ "$n" -lt 10 ]; then echo "FAIL $o: only $n AVX instructions in an AVX kernel file"; fail=1; fi ;;
    *)
        n=$(vec_count "$o")
        checked=$((checked + 1))
        if [ "$n" -ne 0 ]; then echo "FAIL $o: $n AVX instructions outside the per-ISA kernel files and ISA-named functions"; fail=1; fi ;;
    esac
done
z=$(objdump -d --no-show-raw-insn "$build/CMakeFiles/mobileclip_core.dir/src/nn/kernels_avx512.c.o" | grep -c '%zmm' || true)
[ "$z" -gt 0 ] || { echo "FAIL kernels_avx512.c.o uses no zmm register"; fail=1; }
echo "$checked portable objects without AVX instructions; kernels_avx512.c.o: $z zmm uses"
exit $fail
