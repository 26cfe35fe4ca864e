#!/bin/bash
# CLI test for `mobileclip tokenize`.
# Expected ids are from open_clip's SimpleTokenizer (golden data).
set -u
cli="${MC_CLI:?MC_CLI not set}"
vocab="${MC_SHARED_DIR:?MC_SHARED_DIR not set}/vocab/bpe_simple_vocab_16e6.txt.gz"
fail=0; pass=0
check() { if [ "$1" = "$2" ]; then pass=$((pass+1)); else echo "FAIL: $3: got '$1' want '$2'"; fail=$((fail+1)); fi; }
zeros() { local s=""; for ((i = 0; i < $1; i++)); do s="$s,0"; done; echo "$s"; }

out=$("$cli" tokenize --vocab "$vocab" "a photo of a cat" "an astronaut in a white space suit, smiling!")
want1="[49406,320,1125,539,320,2368,49407$(zeros 70)]"
check "$(sed -n 1p <<<"$out")" "$want1" "first text"
check "$(wc -l <<<"$out" | tr -d ' ')" "2" "one line per text"
check "$("$cli" tokenize --vocab "$vocab" --context 8 -- "caf"$'\xc3\x83\xc2\xa9'" &amp; cr"$'\xc3\xa8'"me")" \
      "[49406,15304,261,1075,12138,614,49407,0]" "ftfy + html + context 8"

err=$("$cli" tokenize --vocab /nonexistent/vocab.gz "x" 2>&1 >/dev/null); rc=$?
check "$rc" "1" "missing vocab exit status"
check "${err%%:*}" "mobileclip tokenize" "missing vocab message prefix"
err=$("$cli" tokenize --vocab "$vocab" $'\xff' 2>&1 >/dev/null); rc=$?
check "$rc" "1" "invalid UTF-8 exit status"
check "$(grep -c 'invalid UTF-8' <<<"$err")" "1" "invalid UTF-8 message"
check "$("$cli" tokenize "a photo of a cat" 2>&1)" "$want1" "built-in vocabulary (no --vocab)"
check "$("$cli" tokenize --vocab="$vocab" "a photo of a cat" 2>&1)" "$want1" "--vocab=PATH"
"$cli" tokenize --vocab "$vocab" >/dev/null 2>&1; check "$?" "2" "no text (usage error)"
out=$("$cli" tokenize --vocab "$vocab" "a" $'b\xff' "c" 2>/dev/null); rc=$?
check "$rc" "1" "invalid second text exit status"
check "$out" "" "no partial output when a later text fails"
"$cli" tokenize --help >/dev/null; check "$?" "0" "--help"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
