// memdesc/memdesc.hpp — the umbrella header: everything a user of memdesc needs.
#pragma once
#include <memdesc/arena.hpp>   // IWYU pragma: export
#include <memdesc/constants.hpp>  // IWYU pragma: export
#include <memdesc/fault.hpp>   // IWYU pragma: export
#include <memdesc/folio.hpp>   // IWYU pragma: export
#include <memdesc/frag.hpp>    // IWYU pragma: export
#include <memdesc/gfp.hpp>     // IWYU pragma: export
#include <memdesc/slab.hpp>    // IWYU pragma: export
#include <memdesc/result.hpp>  // IWYU pragma: export
#include <memdesc/word.hpp>    // IWYU pragma: export
