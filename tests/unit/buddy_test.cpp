// Unit tests for the buddy allocator as seen through the arena: splitting, coalescing, zones,
// words, flags, exhaustion and purge. Most run with the per-thread cache off so the buddy's
// state after each step is exact.
#include <gtest/gtest.h>

#include <vector>

#include "page/page.hpp"
#include "platform/os.hpp"
#include "test_support.hpp"

using namespace memdesc;
using memdesc::test::make_arena;

TEST(Buddy, FreshArenaIsAllMaxOrderBlocks) {  // BUDDY-WORD: a fresh zero word array is all free
  auto a = make_arena(64 << 20, 10, 25, false);
  ASSERT_TRUE(a);
  a->validate();
  test::expect_fully_coalesced(*a);
  ArenaInfo i = a->info();
  EXPECT_EQ(i.pages, 16384u);
  EXPECT_EQ(i.zones[0].pages + i.zones[1].pages, i.pages);
  EXPECT_EQ(i.zones[1].pages, 4096u);  // 25 % of 64 MiB = 16 MiB = 4 blocks of 4 MiB
}

TEST(Buddy, FirstOrderZeroSplitsEveryOrderOnce) {
  auto a = make_arena(16 << 20, 10, 0, false);
  void* p = a->alloc_pages(0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a->pfn_of(p), 0u);  // address-ordered: the lowest block
  ZoneInfo z = a->info().zones[0];
  for (unsigned k = 0; k < 10; ++k) EXPECT_EQ(z.nr_free[k], 1u) << "order " << k;
  EXPECT_EQ(z.nr_free[10], 3u);
  a->validate();
  a->free_pages(p);
  a->validate();
  test::expect_fully_coalesced(*a);
}

TEST(Buddy, EveryOrderIsAlignedAndEveryPageHasTheWord) {  // BUDDY-ALIGN, MEMDESC-SAME
  auto a = make_arena(64 << 20, 10, 25, false);
  std::vector<void*> blocks;
  for (unsigned k = 0; k <= 10; ++k) {
    void* p = a->alloc_pages(k);
    ASSERT_NE(p, nullptr) << k;
    EXPECT_EQ(a->pfn_of(p) % (1u << k), 0u);
    for (unsigned i = 0; i < (1u << k); ++i)
      ASSERT_EQ(a->pfn_to_memdesc(a->pfn_of(p) + i), MemdescWord::misc(MiscSubtype::Pages, k));
    blocks.push_back(p);
  }
  a->validate();
  for (void* p : blocks) a->free_pages(p);
  a->validate();
  test::expect_fully_coalesced(*a);
}

TEST(Buddy, ExhaustionReturnsNullWithReasonAndEverythingComesBack) {
  auto a = make_arena(8 << 20, 9, 0, false);  // 2048 pages
  std::vector<void*> v;
  while (void* p = a->alloc_pages(0)) v.push_back(p);
  EXPECT_EQ(v.size(), 2048u);
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  EXPECT_EQ(a->alloc_pages(3), nullptr);
  a->validate();
  for (size_t i = 0; i < v.size(); i += 2) a->free_pages(v[i]);  // every other page: nothing merges
  ZoneInfo z = a->info().zones[0];
  EXPECT_EQ(z.nr_free[0], 1024u);
  EXPECT_EQ(a->alloc_pages(1), nullptr);  // fragmented: no order-1 block
  for (size_t i = 1; i < v.size(); i += 2) a->free_pages(v[i]);
  a->validate();
  test::expect_fully_coalesced(*a);
}

TEST(Buddy, OrderAboveMaxFailsCleanly) {
  auto a = make_arena(16 << 20, 4, 0);
  EXPECT_EQ(a->alloc_pages(5), nullptr);
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  EXPECT_EQ(a->alloc_pages(16), nullptr);
}

TEST(Buddy, MovableZonePreferredThenNormal) {
  auto a = make_arena(16 << 20, 10, 25, false);  // 3 normal blocks, 1 movable
  ArenaInfo i = a->info();
  std::uint64_t movable_start = i.zones[1].start_pfn;
  void* m = a->alloc_pages(10, GFP_MOVABLE);
  ASSERT_NE(m, nullptr);
  EXPECT_GE(a->pfn_of(m), movable_start);
  void* m2 = a->alloc_pages(10, GFP_MOVABLE);  // movable zone full: falls back to normal
  ASSERT_NE(m2, nullptr);
  EXPECT_LT(a->pfn_of(m2), movable_start);
  void* n = a->alloc_pages(0);
  EXPECT_LT(a->pfn_of(n), movable_start);  // normal allocations never use the movable zone
  a->free_pages(m);
  a->free_pages(m2);
  a->free_pages(n);
  a->validate();
  test::expect_fully_coalesced(*a);  // ZONE-ALIGN: each zone coalesced on its own
}

TEST(Buddy, NormalNeverTakesMovable) {
  auto a = make_arena(16 << 20, 10, 25, false);
  std::vector<void*> v;
  while (void* p = a->alloc_pages(10)) v.push_back(p);
  EXPECT_EQ(v.size(), 3u);
  void* m = a->alloc_pages(10, GFP_MOVABLE);
  EXPECT_NE(m, nullptr);
  for (void* p : v) a->free_pages(p);
  a->free_pages(m);
  test::expect_fully_coalesced(*a);
}

TEST(Buddy, DescriptorWordOnEveryPage) {
  auto a = make_arena(16 << 20, 10, 0);
  alignas(16) static char fake_desc[32];
  auto w = MemdescWord::describe(MemdescType::Movable, fake_desc, 2, 7);
  void* p = a->alloc_pages_desc(2, w);
  ASSERT_NE(p, nullptr);
  for (unsigned i = 0; i < 4; ++i) {
    auto got = a->virt_to_memdesc(static_cast<char*>(p) + i * 4096 + 100);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, w);
    EXPECT_EQ(got->desc(), fake_desc);
  }
  a->free_pages_desc(p, w);
  a->drain_thread_cache();
  a->validate();
  test::expect_fully_coalesced(*a);
  int on_stack;
  EXPECT_FALSE(a->virt_to_memdesc(&on_stack).has_value());
}

TEST(Buddy, ZeroFlagAndDirtyTracking) {
  auto a = make_arena(16 << 20, 10, 0, false);
  // Fresh memory is clean: GFP_ZERO needs no memset and the block reads zero.
  auto* p = static_cast<unsigned char*>(a->alloc_pages(4, GFP_ZERO));
  for (size_t i = 0; i < (4096u << 4); ++i) ASSERT_EQ(p[i], 0);
  std::memset(p, 0x5A, 4096u << 4);
  a->free_pages(p);
  EXPECT_TRUE(a->pfn_to_memdesc(a->pfn_of(p)).buddy_dirty());
  auto* q = static_cast<unsigned char*>(a->alloc_pages(4, GFP_ZERO));
  ASSERT_EQ(q, p);  // address-ordered: same block again
  for (size_t i = 0; i < (4096u << 4); ++i) ASSERT_EQ(q[i], 0) << i;
  a->free_pages(q);
  a->validate();
}

TEST(Buddy, PurgeDropsResidentMemory) {
  auto a = make_arena(64 << 20, 10, 0, false);
  std::vector<void*> v;
  for (int i = 0; i < 8; ++i) {
    void* p = a->alloc_pages(10);
    std::memset(p, 1, 4096u << 10);
    v.push_back(p);
  }
  void* base = a->pfn_to_virt(0);
  EXPECT_GE(platform::resident_bytes(base, 64 << 20), std::size_t{32} << 20);
  for (void* p : v) a->free_pages(p);
  auto r = a->purge(0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), std::size_t{32} << 20);
  EXPECT_EQ(platform::resident_bytes(base, 64 << 20), 0u);
  a->validate();
  test::expect_fully_coalesced(*a);
  for (unsigned k = 0; k < 8; ++k) EXPECT_FALSE(a->pfn_to_memdesc(k << 10).buddy_dirty());
  EXPECT_EQ(a->purge(0).value(), 0u);  // nothing dirty left
}

TEST(Buddy, SmallMaxOrderAndTinyArena) {
  auto a = make_arena(4096 * 4, 2, 50, true);  // one block per zone at most
  ASSERT_TRUE(a);
  void* p = a->alloc_pages(2);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a->alloc_pages(2), nullptr);
  a->free_pages(p);
  a->drain_thread_cache();
  test::expect_fully_coalesced(*a);
}

// A layer's per-thread state goes in a slot it registered; an unregistered slot is refused, so
// no context is ever stored without the operations that release it.
TEST(ThreadCacheExt, OnlyARegisteredSlotTakesAContext) {
  auto mm = core::Memmap::create(16 << 20, 10, 0);
  auto pa = page::PageAllocator::create(*mm.value(), {});
  ASSERT_TRUE(pa.ok());
  page::ThreadPageCache* pc = page::attach_thread_cache(pa.value().get());
  ASSERT_NE(pc, nullptr);
  static int released = 0;
  static const page::CacheExtOps ops{[](void* c) { delete static_cast<int*>(c); ++released; },
                                     [](void* c) { delete static_cast<int*>(c); ++released; }};
  int* ctx = new int(7);
  EXPECT_FALSE(page::set_cache_ext(pc, 0, ctx)) << "slot 0 is not registered yet";
  EXPECT_EQ(page::cache_ext(pc, 0), nullptr);
  unsigned slot = page::register_cache_ext(pa.value().get(), &ops);
  EXPECT_TRUE(page::set_cache_ext(pc, slot, ctx));
  EXPECT_EQ(page::cache_ext(pc, slot), ctx);
  page::detach_cache_ext(pa.value().get(), slot);  // releases the context
  EXPECT_EQ(released, 1);
  EXPECT_EQ(page::cache_ext(pc, slot), nullptr);
}
