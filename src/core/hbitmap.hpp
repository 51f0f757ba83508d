// core/hbitmap.hpp — a hierarchical bitmap: find the first set bit among 2^32 in a few loads.
//
// Level 0 holds the bits; bit j of level L+1 is set exactly when word j of level L is non-zero
// [HBITMAP-SUMMARY]. The top level is one word. find_first descends from the top, one ctz per
// level (4 levels for 2^24 bits, 5 for 2^30). The owner provides zero-filled storage of
// words_for(nbits) words (the page allocator gives every zone's bitmaps one platform
// reservation, so an empty bitmap costs address space, not RSS). Not thread-safe: the owner
// locks.
#pragma once
#include <cstddef>
#include <cstdint>

#include <memdesc/result.hpp>

namespace memdesc::core {

class HierBitmap {
 public:
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};
  static constexpr unsigned kMaxLevels = 8;

  HierBitmap() = default;
  HierBitmap(const HierBitmap&) = delete;
  HierBitmap& operator=(const HierBitmap&) = delete;

  // Words of storage a bitmap of nbits needs (all levels).
  static std::size_t words_for(std::uint64_t nbits);
  // `storage` must hold words_for(nbits) zero words and outlive the bitmap. nbits >= 1.
  void init(std::uint64_t nbits, std::uint64_t* storage);

  bool test(std::uint64_t i) const { return (level_[0][i >> 6] >> (i & 63)) & 1; }
  void set(std::uint64_t i);
  void clear(std::uint64_t i);
  void set_all();                              // bits [0, size())
  std::uint64_t find_first() const;            // lowest set bit or kNone
  std::uint64_t find_next(std::uint64_t from) const;  // lowest set bit >= from, or kNone

  std::uint64_t size() const { return nbits_; }
  bool summary_consistent() const;              // re-derives HBITMAP-SUMMARY; O(size/64)

 private:
  std::uint64_t find_next_at(unsigned level, std::uint64_t pos) const;

  std::uint64_t* level_[kMaxLevels] = {};
  std::uint64_t bits_[kMaxLevels] = {};  // number of valid bits per level
  unsigned nlevels_ = 0;
  std::uint64_t nbits_ = 0;
};

}  // namespace memdesc::core
