#!/usr/bin/env bash
# The lock annotations are live (clang builds): a read of a GUARDED_BY field without its lock
# fails to compile with the project's flags, and the same read under the lock compiles.
# Usage: thread_safety.sh CXX LAYER_ROOT
set -uo pipefail
cxx=$1 root=$2
body='#include "base/base.hpp"
struct S { memdesc::SpinLock lock{memdesc::LockRank::Zone}; int n GUARDED_BY(lock) = 0; };'
flags=(-std=c++20 -fsyntax-only -Wthread-safety -Werror=thread-safety -I "$root/base" -x c++ -)
bad=$(printf '%s\nint f(S& s) { return s.n; }\n' "$body" | "$cxx" "${flags[@]}" 2>&1) && {
  echo "FAIL: an unguarded read compiled"; exit 1; }
grep -q "requires holding mutex" <<<"$bad" || { echo "FAIL: not the analysis' error:"; echo "$bad" | head -3; exit 1; }
good=$(printf '%s\nint f(S& s) { memdesc::LockGuard g(s.lock); return s.n; }\n' "$body" | "$cxx" "${flags[@]}" 2>&1) || {
  echo "FAIL: a guarded read did not compile:"; echo "$good" | head -3; exit 1; }
echo "thread safety: the analysis rejects the unguarded read and accepts the guarded one"
