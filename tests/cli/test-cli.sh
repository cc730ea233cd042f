#!/bin/sh
# The headless subcommands: exit statuses and the facts their output must carry.
# usage: test-cli.sh DREAMLOOM
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out" "$tmp/err" 2>/dev/null; }
check() { # description, then a command that must succeed
  d="$1"; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}

"$bin" --help >"$tmp/out" 2>"$tmp/err"
check "--help exits 0 and lists the commands" grep -q "devices" "$tmp/out"

"$bin" --version >"$tmp/out" 2>"$tmp/err"
check "--version prints a version" grep -q "^dreamloom [0-9]" "$tmp/out"

"$bin" no-such-command >"$tmp/out" 2>"$tmp/err"; st=$?
check "an unknown command exits 2" test "$st" -eq 2
check "an unknown command is named" grep -q "no-such-command" "$tmp/err"

"$bin" devices >"$tmp/out" 2>"$tmp/err"; st=$?
check "devices exits 0" test "$st" -eq 0
for field in "type:" "fp16 arithmetic:" "16-bit storage:" "int8 arithmetic:" "subgroup size:" \
             "cooperative matrix (KHR):" "max storage buffer range:" "max shared memory:" \
             "memory heap 0:" "timestamps:" "Dreamloom would use device"; do
  check "devices reports '$field'" grep -qF "$field" "$tmp/out"
done

DREAMLOOM_DEVICE=no-such-gpu "$bin" bench matmul --size 8x8x8 --iters 1 >"$tmp/out" 2>"$tmp/err"; st=$?
check "an unknown DREAMLOOM_DEVICE is an error" test "$st" -eq 1
check "the error names the selector" grep -q "no-such-gpu" "$tmp/err"

"$bin" bench matmul --size 64x48x40 --size 7x129x33 --iters 2 >"$tmp/out" 2>"$tmp/err"; st=$?
check "bench matmul exits 0" test "$st" -eq 0
check "bench matmul prints GFLOP/s" grep -q "GFLOP/s" "$tmp/out"
check "bench matmul prints one row per size" test "$(grep -cE '^ +(64|7) ' "$tmp/out")" -eq 2

"$bin" bench matmul --size 0x1x1 >"$tmp/out" 2>"$tmp/err"; st=$?
check "bench matmul rejects a bad size" test "$st" -eq 2

echo "1..$n"
exit $fail
