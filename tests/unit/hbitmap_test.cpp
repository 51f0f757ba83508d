// Unit tests for the hierarchical bitmap behind the buddy allocator's free-block sets.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "core/hbitmap.hpp"

using memdesc::core::HierBitmap;

namespace {
// A bitmap with its own zeroed storage.
struct OwnedBitmap : HierBitmap {
  std::vector<std::uint64_t> mem;
  explicit OwnedBitmap(std::uint64_t n) : mem(words_for(n)) { init(n, mem.data()); }
};
}  // namespace

TEST(HierBitmap, EmptyHasNoBits) {
  OwnedBitmap b(1000);
  EXPECT_EQ(b.find_first(), HierBitmap::kNone);
  EXPECT_EQ(b.find_next(0), HierBitmap::kNone);
  EXPECT_TRUE(b.summary_consistent());
}

TEST(HierBitmap, SetAllCoversExactlyTheRange) {
  for (uint64_t n : {1ull, 63ull, 64ull, 65ull, 4096ull, 262145ull}) {
    OwnedBitmap b(n);
    b.set_all();
    EXPECT_TRUE(b.summary_consistent()) << n;
    EXPECT_EQ(b.find_first(), 0u);
    EXPECT_EQ(b.find_next(n - 1), n - 1);
    EXPECT_EQ(b.find_next(n), HierBitmap::kNone);
  }
}

// Property: against std::set, random set/clear keep find_first/find_next/test exact and the
// summary levels consistent (HBITMAP-SUMMARY).
TEST(HierBitmap, MatchesModel) {
  for (uint64_t n : {100ull, 5000ull, 300000ull}) {
    OwnedBitmap b(n);
    std::set<uint64_t> model;
    std::mt19937_64 rng(n);
    for (int i = 0; i < 20000; ++i) {
      uint64_t x = rng() % n;
      if (rng() & 1) {
        b.set(x);
        model.insert(x);
      } else {
        b.clear(x);
        model.erase(x);
      }
      ASSERT_EQ(b.test(x), model.count(x) == 1);
      uint64_t want = model.empty() ? HierBitmap::kNone : *model.begin();
      ASSERT_EQ(b.find_first(), want);
      uint64_t from = rng() % n;
      auto it = model.lower_bound(from);
      ASSERT_EQ(b.find_next(from), it == model.end() ? HierBitmap::kNone : *it);
    }
    EXPECT_TRUE(b.summary_consistent());
  }
}
