#!/usr/bin/env bash
# Command-line conventions: for every subcommand, each flag of its usage lines is described in
# its options list and the reverse, and the parser knows each of them (none is answered with
# "unknown option"); --name=value works like --name value; --version; bench_embed --help.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
T=$(mktemp -d /tmp/mc_opts_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
check() { if [ "$1" = "$2" ]; then pass=$((pass + 1)); else echo "FAIL $3: got '$1', want '$2'"; fail=$((fail + 1)); fi; }

for cmd in embed classify tokenize index search; do
    help=$("$CLI" $cmd --help); st=$?
    check "$st" 0 "$cmd --help exit status"
    usage_flags=$(sed '/^$/q' <<<"$help" | grep -o -- '--[a-z][a-z-]*' | grep -vx -- --help | sort -u)
    option_flags=$(grep -E '^  +--[a-z]' <<<"$help" | grep -o -- '^ *--[a-z][a-z-]*' | tr -d ' ' | grep -vx -- --help | sort -u)
    check "$usage_flags" "$option_flags" "$cmd: flags of the usage lines = flags described"
    for f in $option_flags; do
        err=$("$CLI" $cmd "$f" </dev/null 2>&1 >/dev/null)
        check "$(grep -c 'unknown option' <<<"$err")" 0 "$cmd $f is parsed"
    done
done

# --name=value is --name value (the test model is small and fast)
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || exit 1
IMG="$SHARED/images/chelsea.png"
a=$("$CLI" classify --checkpoint "$T/s0.safetensors" --image "$IMG" --labels "cat,dog" --templates simple --top 2 --json)
b=$("$CLI" classify --checkpoint="$T/s0.safetensors" --image="$IMG" --labels=cat,dog --templates=simple --top=2 --json)
check "$b" "$a" "classify --opt=value"
check "$("$CLI" tokenize --context=8 "a cat")" "$("$CLI" tokenize --context 8 "a cat")" "tokenize --context=8"
# a value that itself looks like --x=y stays whole after a value-taking option
check "$("$CLI" tokenize --context 5 -- "--x=y" | wc -l)" 1 "-- keeps --x=y one text"
check "$("$CLI" embed --checkpoint "$T/s0.safetensors" --text "--x=y" | grep -o '"input":"[^"]*"')" '"input":"--x=y"' \
      "the value of --text stays whole"
"$CLI" embed --bogus=1 >/dev/null 2>"$T/err"; check "$?" 2 "unknown --bogus=1 is a usage error"
check "$(grep -c "unknown option '--bogus'" "$T/err")" 1 "unknown --bogus=1 named"

# --version: version, compiler, features; exit 0
v=$("$CLI" --version); st=$?
check "$st" 0 "--version exit status"
check "$(grep -c '^mobileclip [0-9]' <<<"$v")" 1 "--version first line"
check "$(grep -c '^built for:' <<<"$v")" 1 "--version lists the build's features"
"$BUILD/bench_embed" --help >"$T/out"; check "$?" 0 "bench_embed --help"
check "$(grep -c -- '^  --iters' "$T/out")" 1 "bench_embed --help describes --iters"
"$BUILD/bench_embed" --bogus >/dev/null 2>&1; check "$?" 2 "bench_embed unknown option"

echo "cli_options: $pass passed, $fail failed"
[ $fail -eq 0 ]
