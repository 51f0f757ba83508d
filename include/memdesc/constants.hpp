// memdesc/constants.hpp — sizes every layer and every user agrees on. Layer: base (public face).
#pragma once
#include <cstddef>

namespace memdesc {

inline constexpr unsigned kPageShift = 12;
inline constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;  // one "physical" page

}  // namespace memdesc
