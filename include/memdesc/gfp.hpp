// memdesc/gfp.hpp — allocation flags for page and object allocations. Layer: page (its public
// face).
//
// Gfp is a type of its own, not an unsigned: a call that swaps the order and the flags
// (`alloc_pages(GFP_ZERO, 2)`) does not compile. The kernel's names are kept; flags combine
// with | and test with & (which yields a Gfp that converts to bool explicitly).
#pragma once

namespace memdesc {

struct Gfp {
  unsigned bits = 0;

  constexpr Gfp() = default;
  explicit constexpr Gfp(unsigned b) : bits(b) {}
  explicit constexpr operator bool() const { return bits != 0; }
  friend constexpr Gfp operator|(Gfp a, Gfp b) { return Gfp(a.bits | b.bits); }
  friend constexpr Gfp operator&(Gfp a, Gfp b) { return Gfp(a.bits & b.bits); }
  constexpr Gfp operator~() const { return Gfp(~bits); }
  constexpr Gfp& operator|=(Gfp o) {
    bits |= o.bits;
    return *this;
  }
  friend constexpr bool operator==(Gfp, Gfp) = default;
};

inline constexpr Gfp GFP_NONE{};
inline constexpr Gfp GFP_MOVABLE{1u << 0};  // may be placed in the MOVABLE zone (preferred), else NORMAL
inline constexpr Gfp GFP_ZERO{1u << 1};     // the block reads as zero (clean blocks are not written)
inline constexpr Gfp GFP_NOCACHE{1u << 2};  // bypass the per-thread page cache: straight from the buddy

}  // namespace memdesc
