#!/usr/bin/env bash
# Bad input through the command line: each case must exit with status 1 (not a crash, not a
# sanitizer report), print exactly one line on stderr that names the offending file (or
# says what is wrong), and print nothing on stdout.
set -u
CLI=${MC_CLI:?run via ctest}; BUILD=${MC_BUILD_DIR:?}; SHARED=${MC_SHARED_DIR:?}
VOCAB="$SHARED/vocab/bpe_simple_vocab_16e6.txt.gz"
T=$(mktemp -d /tmp/mc_bad_XXXXXX); trap 'rm -rf "$T"' EXIT
pass=0; fail=0

# expect_error NAME NEEDLE -- command...   (runtime failure: status 1)
# expect_usage NAME NEEDLE -- command...   (usage error: status 2)
expect_status() {
    local want=$1 name=$2 needle=$3; shift 4
    "$@" >"$T/out" 2>"$T/err"; local st=$?
    local lines; lines=$(wc -l <"$T/err")
    if [ $st -eq "$want" ] && [ "$lines" -eq 1 ] && [ ! -s "$T/out" ] && grep -qF -- "$needle" "$T/err"; then
        pass=$((pass + 1)); echo "ok   $name: $(cat "$T/err")"
    else
        fail=$((fail + 1)); echo "FAIL $name: status $st, $lines stderr lines, stdout $(wc -c <"$T/out") bytes"; cat "$T/err"
    fi
}
expect_error() { expect_status 1 "$@"; }
expect_usage() { expect_status 2 "$@"; }

"$BUILD/make_test_checkpoint" s0 "$T/s0.pt" || { echo "FAIL cannot write test checkpoint"; exit 1; }
"$BUILD/make_test_checkpoint" s0 "$T/s0.safetensors" || { echo "FAIL cannot write test checkpoint"; exit 1; }
IMG="$SHARED/images/chelsea.png"

# --- checkpoints ---
expect_error "missing checkpoint" "$T/nope.pt" -- "$CLI" embed --checkpoint "$T/nope.pt" --image "$IMG"
expect_error "directory checkpoint" "$T" -- "$CLI" embed --checkpoint "$T" --image "$IMG"
: >"$T/empty.pt"
expect_error "empty checkpoint" "$T/empty.pt" -- "$CLI" embed --checkpoint "$T/empty.pt" --image "$IMG"
for n in 100 5000 1000000 100000000; do
    head -c $n "$T/s0.pt" >"$T/trunc.pt"
    expect_error "checkpoint truncated to $n bytes" "$T/trunc.pt" -- "$CLI" embed --checkpoint "$T/trunc.pt" --image "$IMG"
    head -c $n "$T/s0.safetensors" >"$T/trunc.safetensors"
    expect_error "safetensors truncated to $n bytes" "$T/trunc.safetensors" -- "$CLI" embed --checkpoint "$T/trunc.safetensors" --image "$IMG"
done
head -c 4096 /dev/urandom >"$T/random.pt"
expect_error "random bytes checkpoint" "$T/random.pt" -- "$CLI" embed --checkpoint "$T/random.pt" --image "$IMG"
cp "$T/s0.pt" "$T/corrupt.pt"
# overwrite the zip central directory region near the end of the file
size=$(stat -c %s "$T/corrupt.pt")
printf '\xde\xad\xbe\xef%.0s' $(seq 1 64) | dd of="$T/corrupt.pt" bs=1 seek=$((size - 2000)) conv=notrunc status=none
expect_error "corrupt zip directory" "$T/corrupt.pt" -- "$CLI" embed --checkpoint "$T/corrupt.pt" --image "$IMG"
expect_error "checkpoint of another model (s0 as s1)" "image_encoder.model" -- "$CLI" embed --arch s1 --checkpoint "$T/s0.pt" --image "$IMG"
expect_error "checkpoint of another model (s0 as b)" "image_encoder.model" -- "$CLI" embed --arch b --checkpoint "$T/s0.safetensors" --image "$IMG"
expect_error "not a MobileCLIP checkpoint" "$SHARED/golden/preprocess.safetensors" -- "$CLI" embed --checkpoint "$SHARED/golden/preprocess.safetensors" --image "$IMG"
expect_error "legacy torch file of another model" "big_endian_or_legacy.pt" -- "$CLI" embed --checkpoint "$SHARED/golden/torch_format/big_endian_or_legacy.pt" --image "$IMG"

# --- images ---
expect_error "missing image" "$T/nope.png" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/nope.png"
expect_error "directory image" "$T" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T"
: >"$T/empty.png"
expect_error "empty image" "$T/empty.png" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/empty.png"
head -c 3000 "$IMG" >"$T/trunc.png"
expect_error "truncated PNG" "$T/trunc.png" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/trunc.png"
head -c 2000 "$SHARED/images/rocket.jpg" >"$T/trunc.jpg"
expect_error "truncated JPEG" "$T/trunc.jpg" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/trunc.jpg"
head -c 4096 /dev/urandom >"$T/random.jpg"
expect_error "random bytes image" "$T/random.jpg" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/random.jpg"
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00\x27\x30\x9c\x9f\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x60\xa0\x0c\x00\x00\x00\x40\x00\x01\xb7\x34\x7c\xef\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' >"$T/huge.png"
expect_error "PNG claiming 100000x100000" "$T/huge.png" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/huge.png"
printf '\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x11\x00\x02\x11\x00\x03\x11\x00\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00\x00\x00\x00\x00\xff\xd9' >"$T/huge.jpg"
expect_error "JPEG claiming 65535x65535" "$T/huge.jpg" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/huge.jpg"
printf 'GIF89a\x01\x00\x01\x00' >"$T/x.gif"
expect_error "unsupported image format" "$T/x.gif" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --image "$T/x.gif"

# --- text and usage ---
expect_error "invalid UTF-8 text" "text 2: invalid UTF-8" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --vocab "$VOCAB" --text "fine" --text $'\xff\xfe bad'
expect_error "missing vocabulary" "$T/nope.txt.gz" -- "$CLI" embed --checkpoint "$T/s0.safetensors" --vocab "$T/nope.txt.gz" --text "a cat"
head -c 1000 "$VOCAB" >"$T/trunc.txt.gz"
expect_error "corrupt vocabulary" "$T/trunc.txt.gz" -- "$CLI" tokenize --vocab "$T/trunc.txt.gz" "a cat"
expect_error "empty label list" "label" -- "$CLI" classify --checkpoint "$T/s0.safetensors" --vocab "$VOCAB" --image "$IMG" --labels " , ,"

expect_usage "no checkpoint" "--checkpoint" -- "$CLI" embed --image "$IMG"
expect_usage "unknown option" "--bogus" -- "$CLI" classify --bogus
expect_error "duplicate labels" "duplicate label 'cat'" -- "$CLI" classify --checkpoint "$T/s0.safetensors" --vocab "$VOCAB" --image "$IMG" --labels "cat,dog,cat"
if [ -w /dev/full ]; then
    expect_error "output cannot be written" "cannot write" -- sh -c '"$0" embed --checkpoint "$1" --image "$2" >/dev/full' "$CLI" "$T/s0.safetensors" "$IMG"
fi

# labels with NUL bytes are refused; a 1 MB label is tokenized (truncated to 77 ids, with a warning), not refused
printf 'cat\n\0dog\n' >"$T/nul.txt"
expect_error "label file with NUL bytes" "$T/nul.txt" -- "$CLI" classify --checkpoint "$T/s0.safetensors" --vocab "$VOCAB" --image "$IMG" --labels-file "$T/nul.txt"
{ echo cat; head -c 1048576 /dev/zero | tr '\0' 'a'; echo; } >"$T/big.txt"
if "$CLI" classify --checkpoint "$T/s0.safetensors" --vocab "$VOCAB" --image "$IMG" --labels-file "$T/big.txt" \
        --templates simple --json >"$T/out" 2>"$T/err" && [ "$(wc -l <"$T/out")" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] \
        && grep -q "warning: label 2 .* longer than 77 tokens" "$T/err"; then
    pass=$((pass + 1)); echo "ok   1 MB label classified, with a truncation warning"
else
    fail=$((fail + 1)); echo "FAIL 1 MB label"; cat "$T/err"
fi

echo "cli_bad_input: $pass passed, $fail failed"
[ $fail -eq 0 ]
