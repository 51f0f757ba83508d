#!/usr/bin/env bash
# The memdesc command refuses bad input with exit code 2 and a message that says what is wrong,
# and never reads without end, blocks, or claims a success it did not have.
#   bad_input.sh MEMDESC_BINARY
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect_error "message regex" args...: exit code 2 within 20 s, the message on stderr.
expect_error() {
  local want=$1
  shift
  local out rc
  out=$(timeout 20 "$bin" "$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 2 ]] || ! grep -Eq -- "$want" <<<"$out"; then
    echo "FAIL: memdesc $* -> exit $rc, stderr: $out (wanted exit 2 and /$want/)"
    fails=$((fails + 1))
  else
    echo "ok: memdesc $* -> $out"
  fi
}

for size in inf nan 1e30 -5 abc 1.2.3 . ""; do
  expect_error "not a size|unknown size suffix|size must be positive" info --arena "$size"
done
expect_error "size too large" info --arena 99999999T
expect_error "is not a regular file" zram /dev/zero
expect_error "is not a regular file" zram /dev/urandom
mkfifo "$tmp/fifo"
expect_error "is not a regular file" zram "$tmp/fifo"
# The demo reports its picture in its own output, and fails when the picture did not get written.
out=$(timeout 60 "$bin" demo --arena 16M --ops 100 --png /dev/full 2>&1)
rc=$?
if [[ $rc -eq 0 ]] || ! grep -q "cannot write /dev/full: No space left on device" <<<"$out"; then
  echo "FAIL: memdesc demo --png /dev/full -> exit $rc (wanted a failure naming the write)"
  fails=$((fails + 1))
else
  echo "ok: memdesc demo --png /dev/full -> exit $rc, cannot write /dev/full"
fi
help=$("$bin" bench --help 2>&1)
if grep -q "^  pages " <<<"$help"; then  # (presets without the benchmarks have no suites)
  expect_error "no case matches --only 'no-such-case'" bench pages --smoke --only no-such-case
fi
out=$(timeout 120 "$bin" zsmalloc stats --objects 4294967295 --json 2>&1)
if ! python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["objects_asked"]==4294967295 and j["objects_allocated"] < j["objects_asked"]' "$out"; then
  echo "FAIL: zsmalloc stats --objects 4294967295 does not say how many fitted"
  fails=$((fails + 1))
fi

if [[ $fails -ne 0 ]]; then
  echo "bad_input: $fails case(s) failed"
  exit 1
fi
echo "bad_input: every case as expected"
