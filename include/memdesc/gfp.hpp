// memdesc/gfp.hpp — allocation flags for page allocations. Layer: page (its public face).
#pragma once

namespace memdesc {

enum Gfp : unsigned {
  GFP_NONE = 0,
  GFP_MOVABLE = 1u << 0,  // may be placed in the MOVABLE zone (preferred), else NORMAL
  GFP_ZERO = 1u << 1,     // the block reads as zero (clean blocks are not written)
  GFP_NOCACHE = 1u << 2,  // bypass the per-thread page cache: straight from the buddy
};

}  // namespace memdesc
