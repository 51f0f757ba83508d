// The page fragment cache: bump allocation from 32 KiB blocks, alignment, reuse in place,
// abandoned blocks freed by their last fragment, the order-0 fallback, requests too large,
// folio-backed blocks, failure unwinding.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct FaultGuard {
  FaultGuard(std::uint64_t page, std::uint64_t desc) { set_fault_injection(page, desc); }
  ~FaultGuard() { set_fault_injection(0, 0); }
};

class FragTest : public ::testing::TestWithParam<FragBlock> {};

TEST_P(FragTest, FragmentsAreCarvedUpwardFromOneBlock) {
  auto a = test::make_arena(16 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  std::vector<char*> ps;
  for (int i = 0; i < 16; ++i) ps.push_back(static_cast<char*>(nc.alloc(2048)));
  EXPECT_EQ(nc.block_bytes(), kFragMaxSize);
  MemdescWord w = *a->virt_to_memdesc(ps[0]);
  EXPECT_EQ(w.order(), kFragMaxOrder);
  EXPECT_TRUE(w.is(GetParam() == FragBlock::Frag ? MemdescType::Frag : MemdescType::Anon));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(ps[0]) % kFragMaxSize, 0u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(ps[i], ps[0] + i * 2048) << i;
    EXPECT_EQ(*a->virt_to_memdesc(ps[i]), w) << "every page of the block has the same word";
    test::fill(ps[i], 2048, i);
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(test::check(ps[i], 2048, i), SIZE_MAX);
  a->validate();
  for (char* p : ps) a->page_frag_free(p);
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, UsedUpBlockIsReusedInPlaceWhenEveryFragmentCameBack) {
  auto a = test::make_arena(16 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  std::vector<void*> first;
  for (int i = 0; i < 16; ++i) first.push_back(nc.alloc(2048));
  for (void* p : first) a->page_frag_free(p);
  void* again = nc.alloc(2048);  // the block is used up: retire, find it unused, reuse it
  EXPECT_EQ(again, first[0]);
  a->page_frag_free(again);
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, AbandonedBlockIsFreedByItsLastFragment) {
  auto a = test::make_arena(16 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  std::vector<void*> ps;
  for (int i = 0; i < 16; ++i) ps.push_back(nc.alloc(2048));
  void* next = nc.alloc(2048);  // fragments of the first block are out: a new block
  EXPECT_NE(a->pfn_of(next) >> kFragMaxOrder, a->pfn_of(ps[0]) >> kFragMaxOrder);
  for (int i = 0; i < 15; ++i) a->page_frag_free(ps[i]);
  EXPECT_FALSE(a->virt_to_memdesc(ps[15])->is(MemdescType::Buddy)) << "one fragment still holds the block";
  a->page_frag_free(ps[15]);
  EXPECT_TRUE(a->virt_to_memdesc(ps[0])->is(MemdescType::Buddy)) << "the last fragment freed the block";
  a->page_frag_free(next);
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, MixedSizesAndAlignmentsNeverOverlap) {
  auto a = test::make_arena(32 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  std::mt19937_64 rng(7);
  std::map<std::uintptr_t, std::pair<std::size_t, std::uint64_t>> live;  // start -> size, tag
  for (std::uint64_t tag = 1; tag <= 20000; ++tag) {
    std::size_t size = 1 + rng() % (rng() % 8 == 0 ? 4096 : 300);
    std::size_t align = std::size_t{1} << (rng() % 8);
    auto* p = static_cast<char*>(nc.alloc_align(size, align));
    ASSERT_NE(p, nullptr);
    auto u = reinterpret_cast<std::uintptr_t>(p);
    ASSERT_EQ(u % align, 0u);
    auto after = live.lower_bound(u);
    if (after != live.end()) {
      ASSERT_GE(after->first, u + size) << "overlaps the next fragment";
    }
    if (after != live.begin()) {
      auto before = std::prev(after);
      ASSERT_LE(before->first + before->second.first, u) << "overlaps the previous fragment";
    }
    std::memset(p, static_cast<int>(tag & 0xff), size);
    live[u] = {size, tag};
    if (live.size() > 500) {  // free a random one, checking its bytes
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      auto* q = reinterpret_cast<unsigned char*>(it->first);
      for (std::size_t i = 0; i < it->second.first; ++i) ASSERT_EQ(q[i], it->second.second & 0xff);
      a->page_frag_free(q);
      live.erase(it);
    }
  }
  for (auto& [u, st] : live) a->page_frag_free(reinterpret_cast<void*>(u));
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, RequestsNoBlockHoldsFailWithoutHarm) {
  auto a = test::make_arena(16 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  void* p = nc.alloc(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(nc.alloc(kFragMaxSize + 1), nullptr);
  EXPECT_EQ(last_error().code, Errc::invalid_request);
  EXPECT_EQ(nc.alloc(0), nullptr);
  void* q = nc.alloc(100);
  EXPECT_EQ(static_cast<char*>(q), static_cast<char*>(p) + 100) << "the cache is intact";
  void* whole = nc.alloc(kFragMaxSize);  // does not fit the rest: a new block
  ASSERT_NE(whole, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(whole) % kFragMaxSize, 0u);
  for (void* x : {p, q, whole}) a->page_frag_free(x);
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, FallsBackToOrderZeroWhenNoOrder3BlockIsFree) {
  auto a = test::make_arena(4 << 20, 10, 0, /*thread_cache=*/false);
  // Fill the arena with single pages, then free every other one: only order-0 blocks remain.
  std::vector<void*> pages;
  while (void* p = a->alloc_pages(0)) pages.push_back(p);
  for (std::size_t i = 0; i < pages.size(); i += 2) a->free_pages(pages[i]);
  PageFragCache nc = a->page_frag_cache(GetParam());
  auto* f = static_cast<char*>(nc.alloc(1024));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(a->virt_to_memdesc(f)->order(), 0u);
  EXPECT_EQ(nc.block_bytes(), kPageSize);
  EXPECT_EQ(nc.alloc(8192), nullptr) << "larger than any block that can be had";
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  auto* g = static_cast<char*>(nc.alloc(1024));
  EXPECT_EQ(g, f + 1024) << "the order-0 block is kept for smaller requests";
  // Space comes back: the next block is order 3 again.
  for (std::size_t i = 1; i < pages.size(); i += 2) a->free_pages(pages[i]);
  for (int i = 0; i < 3; ++i) a->page_frag_free(nc.alloc(1024));  // use up the page
  void* h = nc.alloc(1024);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(nc.block_bytes(), kFragMaxSize);
  for (void* x : {static_cast<void*>(f), static_cast<void*>(g), h}) a->page_frag_free(x);
  nc.drain();
  test::expect_all_returned(*a);
}

TEST_P(FragTest, DescriptorAndPageFailuresUnwind) {
  auto a = test::make_arena(16 << 20);
  {
    FaultGuard g(0, 1);
    PageFragCache nc = a->page_frag_cache(GetParam());
    EXPECT_EQ(nc.alloc(64), nullptr);
    EXPECT_EQ(last_error().code, Errc::out_of_memory);
  }
  {
    FaultGuard g(1, 0);
    PageFragCache nc = a->page_frag_cache(GetParam());
    EXPECT_EQ(nc.alloc(64), nullptr);
  }
  EXPECT_EQ(a->info().frag_blocks, 0u);
  EXPECT_EQ(a->info().folios, 0u);
  test::expect_all_returned(*a);
}

TEST_P(FragTest, MovedCacheKeepsItsBlockAndTheOldOneIsEmpty) {
  auto a = test::make_arena(16 << 20);
  PageFragCache nc = a->page_frag_cache(GetParam());
  auto* p = static_cast<char*>(nc.alloc(64));
  PageFragCache moved = std::move(nc);
  EXPECT_EQ(static_cast<char*>(moved.alloc(64)), p + 64);
  EXPECT_EQ(nc.block_bytes(), 0u);  // NOLINT(bugprone-use-after-move): documented state
  a->page_frag_free(p);
  a->page_frag_free(p + 64);
  moved.drain();
  test::expect_all_returned(*a);
}

INSTANTIATE_TEST_SUITE_P(Blocks, FragTest, ::testing::Values(FragBlock::Frag, FragBlock::Folio),
                         [](const auto& p) { return p.param == FragBlock::Frag ? "Frag" : "Folio"; });

}  // namespace
