// memdesc/gfp.hpp — allocation flags for page and object allocations. Layer: page (its public
// face).
//
// Gfp is a type of its own (memdesc/flags.hpp), not an unsigned: a call that swaps the order and
// the flags (`alloc_pages(GFP_ZERO, 2)`) does not compile. The kernel's names are kept.
#pragma once
#include <memdesc/flags.hpp>

namespace memdesc {

struct GfpTag;
using Gfp = FlagSet<GfpTag>;

inline constexpr Gfp GFP_NONE{};
inline constexpr Gfp GFP_MOVABLE{1u << 0};  // may be placed in the MOVABLE zone (preferred), else NORMAL
inline constexpr Gfp GFP_ZERO{1u << 1};     // the block reads as zero (clean blocks are not written)
inline constexpr Gfp GFP_NOCACHE{1u << 2};  // bypass the per-thread page cache: straight from the buddy

}  // namespace memdesc
