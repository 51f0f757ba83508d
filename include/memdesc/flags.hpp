// memdesc/flags.hpp — a set of flags that is a type of its own. Layer: base (public face).
//
// Each flag type (Gfp, SlabFlags) is FlagSet<its own tag>: it converts from no integer and to no
// other flag type, so an argument list cannot be swapped silently. Flags combine with | and
// test with &, which yields a FlagSet that converts to bool explicitly.
#pragma once

namespace memdesc {

template <class Tag>
struct FlagSet {
  unsigned bits = 0;

  constexpr FlagSet() = default;
  explicit constexpr FlagSet(unsigned b) : bits(b) {}
  explicit constexpr operator bool() const { return bits != 0; }
  friend constexpr FlagSet operator|(FlagSet a, FlagSet b) { return FlagSet(a.bits | b.bits); }
  friend constexpr FlagSet operator&(FlagSet a, FlagSet b) { return FlagSet(a.bits & b.bits); }
  constexpr FlagSet operator~() const { return FlagSet(~bits); }
  constexpr FlagSet& operator|=(FlagSet o) {
    bits |= o.bits;
    return *this;
  }
  friend constexpr bool operator==(FlagSet, FlagSet) = default;
};

}  // namespace memdesc
