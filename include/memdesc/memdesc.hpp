// memdesc/memdesc.hpp — the umbrella header: every public header of memdesc. Layer: umbrella
// (above every layer; no library source includes it). scripts/check-layers checks that it
// includes every header under include/memdesc/.
#pragma once
#include <memdesc/arena.hpp>      // IWYU pragma: export
#include <memdesc/constants.hpp>  // IWYU pragma: export
#include <memdesc/fault.hpp>      // IWYU pragma: export
#include <memdesc/flags.hpp>      // IWYU pragma: export
#include <memdesc/folio.hpp>      // IWYU pragma: export
#include <memdesc/frag.hpp>       // IWYU pragma: export
#include <memdesc/gfp.hpp>        // IWYU pragma: export
#include <memdesc/result.hpp>     // IWYU pragma: export
#include <memdesc/slab.hpp>       // IWYU pragma: export
#include <memdesc/version.hpp>    // IWYU pragma: export
#include <memdesc/word.hpp>       // IWYU pragma: export
#include <memdesc/zram.hpp>       // IWYU pragma: export
#include <memdesc/zsmalloc.hpp>   // IWYU pragma: export
