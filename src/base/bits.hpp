// base/bits.hpp — small bit and size helpers used by every layer.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memdesc/constants.hpp>

namespace memdesc {

constexpr bool is_pow2(std::uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }
constexpr std::uint64_t align_up(std::uint64_t x, std::uint64_t a) { return (x + a - 1) & ~(a - 1); }
constexpr std::uint64_t align_down(std::uint64_t x, std::uint64_t a) { return x & ~(a - 1); }
constexpr std::uint64_t div_ceil(std::uint64_t x, std::uint64_t d) { return (x + d - 1) / d; }
constexpr unsigned ctz64(std::uint64_t x) { return static_cast<unsigned>(std::countr_zero(x)); }

}  // namespace memdesc
