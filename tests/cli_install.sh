#!/usr/bin/env bash
# `cmake --install` into a temporary prefix: the header, both libraries, the CLI and the
# pkg-config file are there; the README's C example builds with `pkg-config --cflags --libs
# mobileclip` against the shared library (and against the static one with --static), runs,
# and prints the cosine of the image and text embeddings that the installed CLI computes.
set -u
BUILD=${MC_BUILD_DIR:?run via ctest}; SHARED=${MC_SHARED_DIR:?}
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/mc_install_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

P="$T/prefix"
if cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then ok "cmake --install"; else bad "cmake --install"; cat "$T/install.log"; fi
pc=$(find "$P" -name mobileclip.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")
for f in "$P/bin/mobileclip" "$P/include/mobileclip.h" "$libdir/libmobileclip.a" "$libdir/libmobileclip.so" "$pc"; do
    if [ -e "$f" ]; then ok "installed ${f#"$P"/}"; else bad "missing ${f#"$P"/}"; fi
done
# the shared library exports the public API only
if nm -D --defined-only "$libdir/libmobileclip.so" | awk '$2 == "T" && $3 !~ /^mobileclip_/ { bad = 1 } END { exit bad }'; then
    ok "libmobileclip.so exports only mobileclip_*"
else
    bad "libmobileclip.so exports internal symbols"
fi

# the example exactly as the README shows it
awk '/^<!-- example.c/ { on = 1; next } on && /^```c/ { code = 1; next } code && /^```/ { exit } code' \
    "$SRC/README.md" >"$T/example.c"
[ -s "$T/example.c" ] || bad "no example in README.md"
extra=()
# a sanitizer build's library needs the sanitizer runtime in the program
grep -q '^MC_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" && extra=(-fsanitize=address,undefined)
export PKG_CONFIG_PATH="$(dirname "$pc")"
if cc "${extra[@]}" "$T/example.c" -o "$T/example" $(pkg-config --cflags --libs mobileclip) 2>"$T/cc.log"; then
    ok "example builds with pkg-config --cflags --libs mobileclip"
else
    bad "example does not build"; cat "$T/cc.log"
fi
if cc "${extra[@]}" "$T/example.c" -o "$T/example_static" $(pkg-config --cflags mobileclip) "$libdir/libmobileclip.a" \
        $(pkg-config --static --libs mobileclip | sed 's/-lmobileclip//') 2>"$T/cc.log"; then
    ok "example builds against libmobileclip.a with pkg-config --static"
else
    bad "static example does not build"; cat "$T/cc.log"
fi

"$BUILD/make_test_checkpoint" s0 "$T/s0.pt" || bad "cannot write test checkpoint"
IMG="$SHARED/images/chelsea.png"; TEXT="a photo of a cat"
# the reference: the installed CLI's embeddings, cosine computed here
"$P/bin/mobileclip" embed --checkpoint "$T/s0.pt" --image "$IMG" --text "$TEXT" >"$T/emb.jsonl" || bad "installed CLI"
want=$(awk -F'"embedding":\\[' '{ sub(/\]\}$/, "", $2); n = split($2, v, ","); for (i = 1; i <= n; i++) e[NR, i] = v[i] }
    END { s = 0; for (i = 1; i <= n; i++) s += e[1, i] * e[2, i]; printf "%.6f", s }' "$T/emb.jsonl")
for ex in example example_static; do
    got=$(LD_LIBRARY_PATH="$libdir" "$T/$ex" "$T/s0.pt" "$IMG" "$TEXT" 2>"$T/run.log")
    if [ -n "$got" ] && awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 2e-6 && d > -2e-6) }'; then
        ok "$ex prints cosine $got (CLI: $want)"
    else
        bad "$ex printed '$got', CLI gives $want"; cat "$T/run.log"
    fi
done
if LD_LIBRARY_PATH="$libdir" ldd "$T/example" | grep -qF "$libdir/libmobileclip.so"; then
    ok "example uses the installed shared library"
else
    bad "example is not linked to the installed libmobileclip.so"
fi

echo "cli_install: $pass passed, $fail failed"
[ $fail -eq 0 ]
