#!/usr/bin/env bash
# The build enforces the layering (cmake/layers.cmake): a layer's files see only their own
# layer and the layers below it. Usage: upward_include.sh CXX LAYER_ROOT
# Each case compiles one line with the include root a layer's target has; a control case that
# must compile shows the failures are about visibility, not a broken command.
set -uo pipefail
cxx=$1 root=$2
fail=0
try() {  # layer, include line, expect (ok|fail)
  local out
  out=$(printf '%s\n' "$2" | "$cxx" -std=c++20 -fsyntax-only -I "$root/$1" -x c++ - 2>&1)
  local rc=$?
  if [ "$3" = ok ] && [ $rc -ne 0 ]; then echo "FAIL: in $1, '$2' should compile:"; echo "$out" | head -5; fail=1;
  elif [ "$3" = fail ] && { [ $rc -eq 0 ] || ! grep -qE "No such file|file not found" <<<"$out"; }; then
    echo "FAIL: in $1, '$2' should fail with 'No such file' or 'file not found' (rc $rc)"; fail=1;
  else echo "ok: in $1, '$2' -> $3"; fi
}
try core '#include "core/memmap.hpp"' ok
try core '#include "base/check.hpp"' ok
try core '#include <memdesc/word.hpp>' ok
try core '#include "slab/slab.hpp"' fail
try core '#include "page/page_alloc.hpp"' fail
try core '#include <memdesc/slab.hpp>' fail
try base '#include "platform/os.hpp"' fail
try page '#include "page/page_alloc.hpp"' ok
try page '#include "zsmalloc/zs_pool.hpp"' fail
try slab '#include "folio/folio_alloc.hpp"' fail
try folio '#include "frag/frag_alloc.hpp"' fail
try zsmalloc '#include "folio/folio_alloc.hpp"' fail
try api '#include <memdesc/zram.hpp>' fail
try zram '#include <memdesc/zram.hpp>' ok
[ $fail -eq 0 ] && echo "layering: every case as expected"
exit $fail
