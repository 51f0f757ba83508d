// core/hbitmap.cpp — see hbitmap.hpp.
#include "core/hbitmap.hpp"

#include "base/base.hpp"

namespace memdesc::core {

std::size_t HierBitmap::words_for(std::uint64_t nbits) {
  std::size_t total = 0;
  for (std::uint64_t words = div_ceil(nbits, 64);; words = div_ceil(words, 64)) {
    total += words;
    if (words <= 1) return total;
  }
}

void HierBitmap::init(std::uint64_t nbits, std::uint64_t* storage) {
  nbits_ = nbits;
  nlevels_ = 0;
  std::uint64_t bits = nbits;
  for (;;) {
    std::uint64_t words = div_ceil(bits, 64);
    bits_[nlevels_] = bits;
    level_[nlevels_++] = storage;
    storage += words;
    if (words <= 1) break;
    bits = words;
  }
}

void HierBitmap::set(std::uint64_t i) {
  for (unsigned l = 0; l < nlevels_; ++l) {
    std::uint64_t& w = level_[l][i >> 6];
    bool was_empty = (w == 0);
    w |= std::uint64_t{1} << (i & 63);
    if (!was_empty) return;  // the summary above already says "non-empty"
    i >>= 6;
  }
}

void HierBitmap::clear(std::uint64_t i) {
  for (unsigned l = 0; l < nlevels_; ++l) {
    std::uint64_t& w = level_[l][i >> 6];
    w &= ~(std::uint64_t{1} << (i & 63));
    if (w != 0) return;  // word still non-empty: the summary bit stays
    i >>= 6;
  }
}

void HierBitmap::set_all() {
  for (unsigned l = 0; l < nlevels_; ++l) {
    std::uint64_t full = bits_[l] / 64, rest = bits_[l] % 64;
    for (std::uint64_t w = 0; w < full; ++w) level_[l][w] = ~std::uint64_t{0};
    if (rest) level_[l][full] = (std::uint64_t{1} << rest) - 1;
  }
}

std::uint64_t HierBitmap::find_first() const {
  unsigned top = nlevels_ - 1;
  if (level_[top][0] == 0) return kNone;
  std::uint64_t idx = 0;
  for (int l = static_cast<int>(top); l >= 0; --l) idx = (idx << 6) + ctz64(level_[l][idx]);
  return idx;
}

std::uint64_t HierBitmap::find_next_at(unsigned level, std::uint64_t pos) const {
  if (pos >= bits_[level]) return kNone;
  std::uint64_t w = pos >> 6;
  std::uint64_t word = level_[level][w] & (~std::uint64_t{0} << (pos & 63));
  if (word) return (w << 6) + ctz64(word);
  if (level + 1 == nlevels_) return kNone;
  std::uint64_t nw = find_next_at(level + 1, w + 1);  // next non-empty word of this level
  if (nw == kNone) return kNone;
  return (nw << 6) + ctz64(level_[level][nw]);
}

std::uint64_t HierBitmap::find_next(std::uint64_t from) const { return find_next_at(0, from); }

bool HierBitmap::summary_consistent() const {
  for (unsigned l = 0; l + 1 < nlevels_; ++l) {
    for (std::uint64_t w = 0; w < bits_[l + 1]; ++w) {
      bool nonempty = level_[l][w] != 0;
      bool summary = (level_[l + 1][w >> 6] >> (w & 63)) & 1;
      if (nonempty != summary) return false;
    }
  }
  return true;
}

}  // namespace memdesc::core
