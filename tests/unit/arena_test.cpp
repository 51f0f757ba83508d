// Unit tests for the arena: configuration, metadata accounting, per-thread caches and their
// life cycle, large arenas.
#include <gtest/gtest.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

#include "core/memmap.hpp"
#include "platform/os.hpp"
#include "test_support.hpp"

using namespace memdesc;
using memdesc::test::make_arena;

TEST(Arena, BadConfigIsAnError) {
  ArenaConfig c;
  c.max_order = 16;
  auto r = Arena::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_config);
  c = {};
  c.pcp_batch = 0;
  EXPECT_FALSE(Arena::create(c).ok());
  c = {};
  c.movable_percent = 101;
  EXPECT_FALSE(Arena::create(c).ok());
  c = {};
  c.size = std::size_t{32} << 40;  // 32 TiB: pfns would not fit 32 bits
  EXPECT_FALSE(Arena::create(c).ok());
}

TEST(Arena, MetadataIsAboutEightBytesPerPage) {
  auto a = make_arena(std::size_t{1} << 30);
  ArenaInfo i = a->info();
  EXPECT_EQ(i.metadata.words, i.pages * 8);  // MEMDESC-SIZE
  EXPECT_GT(i.metadata.free_state, 0u);
  EXPECT_LE(i.bytes_per_page, 8.5);
  EXPECT_EQ(i.metadata.total, i.metadata.words + i.metadata.free_state + i.metadata.caches + i.metadata.descriptors);
  void* p = a->alloc_pages(0);  // creates this thread's cache: counted
  EXPECT_GT(a->info().metadata.caches, 0u);
  a->free_pages(p);
}

TEST(Arena, OneTebibyteIsQuickAndSmall) {
  std::size_t rss0 = platform::rss_bytes();
  auto a = make_arena(test::kHugeArena);
  ASSERT_TRUE(a);
  ArenaInfo i = a->info();
  EXPECT_EQ(i.pages, test::kHugeArena / kPageSize);
  EXPECT_LT(i.init_seconds, 1.0);
  EXPECT_LT(platform::rss_bytes(), rss0 + (std::size_t{300} << 20));
  void* p = a->alloc_pages(0);
  void* q = a->alloc_pages(10, GFP_MOVABLE);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(q, nullptr);
  a->free_pages(p);
  a->free_pages(q);
}

TEST(Arena, ThreadCacheServesAndDrains) {
  auto a = make_arena(64 << 20);
  void* p = a->alloc_pages(0);  // refills a batch into this thread's cache
  ArenaInfo i = a->info();
  EXPECT_GT(i.cached_pages, 0u);
  EXPECT_EQ(i.free_pages + i.cached_pages + 1, i.pages);
  a->free_pages(p);
  void* q = a->alloc_pages(0);
  EXPECT_EQ(q, p);  // LIFO: the hottest page comes back
  a->free_pages(q);
  a->validate();
  a->drain_thread_cache();
  test::expect_fully_coalesced(*a);
}

TEST(Arena, CacheHighWaterDrainsToBuddy) {
  ArenaConfig c;
  c.size = 64 << 20;
  c.pcp_high = 16;
  c.pcp_batch = 8;
  c.pcp_high_max = 16;  // no growth
  auto a = make_arena(c);
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) v.push_back(a->alloc_pages(0));
  for (void* p : v) a->free_pages(p);
  EXPECT_LE(a->info().cached_pages, 16u);  // never above high
  a->validate();
  a->drain_thread_cache();
  test::expect_fully_coalesced(*a);
}

TEST(Arena, BurstyThreadGrowsItsCacheOneWayFlowDoesNot) {
  ArenaConfig c;
  c.size = 64 << 20;
  c.movable_percent = 0;
  c.pcp_high = 16;
  c.pcp_batch = 8;
  c.pcp_high_max = 128;
  auto a = make_arena(c);
  std::vector<void*> v(100);
  // Only freeing (blocks another thread allocated): the list never grows past its first high.
  std::thread producer([&] {
    for (auto& p : v) p = a->alloc_pages(0);
  });
  producer.join();
  for (void* p : v) a->free_pages(p);
  EXPECT_LE(a->info().cached_pages, 16u);
  a->drain_thread_cache();
  // Bursts of 100 allocations then 100 frees: the list grows until a burst fits.
  std::uint64_t caches_before = a->info().metadata.caches;
  for (int round = 0; round < 6; ++round) {
    for (auto& p : v) p = a->alloc_pages(0);
    for (void* p : v) a->free_pages(p);
  }
  EXPECT_GE(a->info().cached_pages, 100u);  // the whole burst stayed in the cache
  EXPECT_LE(a->info().cached_pages, 128u);  // never above high_max
  EXPECT_GT(a->info().metadata.caches, caches_before);  // the grown stack is counted
  a->validate();
  a->drain_thread_cache();
  test::expect_fully_coalesced(*a);
}

TEST(Arena, ThreadExitDrainsItsCache) {
  auto a = make_arena(64 << 20);
  std::thread t([&] {
    std::vector<void*> v;
    for (int i = 0; i < 300; ++i) v.push_back(a->alloc_pages(i % 4));
    for (void* p : v) a->free_pages(p);
    EXPECT_GT(a->info().cached_pages, 0u);
  });
  t.join();
  a->validate();
  test::expect_fully_coalesced(*a);
  EXPECT_EQ(a->info().metadata.caches, 0u);  // the cache's bytes are no longer counted
}

TEST(Arena, CrossThreadFreeGoesToTheFreeingThread) {
  auto a = make_arena(64 << 20);
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) v.push_back(a->alloc_pages(i % 3));
  std::thread t([&] {
    for (void* p : v) a->free_pages(p);
  });
  t.join();
  a->drain_thread_cache();
  a->validate();
  test::expect_fully_coalesced(*a);
}

TEST(Arena, ArenaDestroyedWhileThreadHoldsACache) {
  auto a = make_arena(16 << 20);
  std::mutex m;
  std::condition_variable cv;
  int stage = 0;
  std::thread t([&] {
    void* p = a->alloc_pages(0);
    a->free_pages(p);  // this thread now has a cache for `a`
    std::unique_lock<std::mutex> l(m);
    stage = 1;
    cv.notify_all();
    cv.wait(l, [&] { return stage == 2; });
    // `a` is gone; a new arena works and the orphaned cache is freed at exit (ASan: no leak).
    auto b = make_arena(16 << 20);
    void* q = b->alloc_pages(1);
    EXPECT_NE(q, nullptr);
    b->free_pages(q);
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return stage == 1; });
    a.reset();
    stage = 2;
    cv.notify_all();
  }
  t.join();
}

// An arena in a static variable is destroyed after the main thread's thread-local caches.
TEST(Arena, StaticArenaOutlivesTheThreadCaches) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static std::unique_ptr<Arena> a = make_arena(16 << 20);
        void* p = a->alloc_pages(0);
        a->free_pages(p);  // the main thread now has a cache for `a`
        std::exit(0);      // thread_local destructors, then static ones
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(Arena, ManyArenasInOneThread) {
  for (int i = 0; i < 50; ++i) {
    auto a = make_arena(8 << 20, 9);
    void* p = a->alloc_pages(i % 4);
    ASSERT_NE(p, nullptr);
    a->free_pages(p);
  }
}

// Flags are types: swapping the order and the flags of a call does not compile.
template <class A>
constexpr bool flags_and_order_swap_compiles = requires(A& a) { a.alloc_pages(GFP_ZERO, 2u); };
template <class A>
constexpr bool unsigned_flags_compile = requires(A& a) { a.alloc_pages(2u, 2u); };
static_assert(!flags_and_order_swap_compiles<Arena>);
static_assert(!unsigned_flags_compile<Arena>);
static_assert(requires(Arena& a) { a.alloc_pages(2u, GFP_ZERO | GFP_MOVABLE); });
template <class A>
constexpr bool slab_flags_from_unsigned = requires(A& a) { a.kmem_cache_create("x", 8, 0, 1u); };
static_assert(!slab_flags_from_unsigned<Arena>);

// API edges: max_order 0 is inside the documented range and makes a working arena (with no
// kmalloc class above a page); a size that would wrap when rounded up is refused as too large;
// free_pages(NULL) does nothing, like kfree(NULL).
TEST(ArenaEdges, MaxOrderZeroWorks) {
  auto a = test::make_arena(16 << 20, /*max_order=*/0);
  ASSERT_NE(a, nullptr);
  void* p = a->alloc_pages(0);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a->alloc_pages(1), nullptr);
  for (std::size_t size : {8u, 100u, 4096u}) {
    void* k = a->kmalloc(size);
    ASSERT_NE(k, nullptr) << size;
    a->kfree(k);
  }
  EXPECT_EQ(a->kmalloc(4097), nullptr);
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  Folio* f = a->folio_alloc(0);
  ASSERT_NE(f, nullptr);
  a->folio_put(f);
  PageFragCache nc = a->page_frag_cache();
  void* fr = nc.alloc(1000);
  ASSERT_NE(fr, nullptr);
  a->page_frag_free(fr);
  nc.drain();
  auto pool = a->zs_create_pool({}).value();
  ZsHandle h = pool->malloc(3000).value();
  pool->free(h);
  pool.reset();
  a->free_pages(p);
  a->shrink();
  a->validate();
}

TEST(ArenaEdges, SizeNearSizeMaxIsTooLargeNotZero) {
  for (std::size_t size : {SIZE_MAX, SIZE_MAX - 4095, (std::size_t{16} << 40) + 1}) {
    auto r = Arena::create({.size = size});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::invalid_config);
    EXPECT_NE(describe(r.error()).find("larger than 16 TiB"), std::string::npos) << describe(r.error());
  }
}

TEST(ArenaEdges, FreePagesOfNullIsANoOp) {
  auto a = test::make_arena(16 << 20);
  a->free_pages(nullptr);
  a->kfree(nullptr);
  a->validate();
}

// META-OOB: every descriptor and handle lives in the metadata region, never in the arena, so no
// write past a user object reaches one. Every layer that makes descriptors is exercised, then
// every word of the arena that carries a pointer is checked.
TEST(ArenaLayout, DescriptorsAndHandlesLiveInTheMetadataRegion) {
  auto a = make_arena(16 << 20);
  ASSERT_TRUE(a);
  ArenaInfo before = a->info();
  EXPECT_GE(before.metadata_region_bytes, before.arena_bytes / 4);  // room for the worst case
  void* k = a->kmalloc(64);
  auto c = a->kmem_cache_create("user", 200).value();
  void* o = a->kmem_cache_alloc(c);
  Folio* f0 = a->folio_alloc(0);
  Folio* f2 = a->folio_alloc(2);
  PageFragCache fc = a->page_frag_cache();
  void* frag = fc.alloc(100);
  auto pool = a->zs_create_pool().value();
  ZsHandle h = pool->malloc(40).value();
  ASSERT_TRUE(k && o && f0 && f2 && frag);
  for (const void* d : {static_cast<const void*>(f0), static_cast<const void*>(f2), reinterpret_cast<const void*>(h)})
    EXPECT_FALSE(a->contains(d)) << d;
  std::uint64_t pointers = 0;
  for (std::uint64_t pfn = 0; pfn < a->pages(); ++pfn) {
    MemdescWord w = a->pfn_to_memdesc(pfn);
    if (!type_has_pointer(w.type())) continue;
    ++pointers;
    EXPECT_FALSE(a->contains(w.desc())) << "pfn " << pfn << ": " << to_string(w);
  }
  EXPECT_GE(pointers, 6u);  // kmalloc and user slabs, two folios (5 pages), a frag block, a zspage
  EXPECT_GT(a->info().metadata.descriptors, before.metadata.descriptors);
  EXPECT_LT(a->info().metadata_region_free_pages, before.metadata_region_free_pages);
  a->validate();
  pool->free(h);
  pool.reset();
  fc.drain();
  a->folio_put(f2);
  a->folio_put(f0);
  a->kmem_cache_free(c, o);
  a->kmem_cache_destroy(c);
  a->kfree(k);
  a->shrink();
  a->validate();
}

// ARENA-GUARD: a write that runs off either end of the arena, or of the metadata region,
// faults at once (in every build) instead of landing in the next mapping. `where` picks the
// byte in a fresh arena; the death is SIGSEGV (a sanitizer catches the signal and says SEGV).
template <class Where>
void expect_write_faults(Where where) {
#if defined(MEMDESC_SANITIZED)
  EXPECT_DEATH(
      {
        auto a = make_arena(16 << 20);
        *where(*a) = 1;
      },
      "SEGV");
#else
  EXPECT_EXIT(
      {
        auto a = make_arena(16 << 20);
        *where(*a) = 1;
      },
      ::testing::KilledBySignal(SIGSEGV), "");
#endif
}

TEST(ArenaLayoutDeath, WritesPastEitherEndFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  using Byte = volatile char*;
  expect_write_faults([](Arena& a) { return static_cast<Byte>(a.pfn_to_virt(a.pages() - 1)) + kPageSize; });  // past the end
  expect_write_faults([](Arena& a) { return static_cast<Byte>(a.pfn_to_virt(0)) - 1; });  // before the start
  expect_write_faults([](Arena& a) {  // before the metadata region
    return reinterpret_cast<Byte>(ArenaTestAccess::metadata_region(a).base()) - 1;
  });
  expect_write_faults([](Arena& a) {  // past its end
    auto& region = ArenaTestAccess::metadata_region(a);
    return reinterpret_cast<Byte>(region.base() + region.bytes());
  });
}

// A metadata region too small for the workload (ArenaConfig::metadata_bytes) runs out before
// the arena: every allocation that needs a descriptor then fails cleanly, the arena still has
// pages, and everything given back leaves both whole.
TEST(ArenaLayout, AFullMetadataRegionIsACleanOutOfMemory) {
  ArenaConfig c;
  c.size = std::size_t{512} << 20;
  c.metadata_bytes = 1;  // rounded up to the least, one 4 MiB block
  auto a = make_arena(c);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->info().metadata_region_bytes, std::size_t{4} << 20);
  std::vector<Folio*> folios;
  for (;;) {
    Folio* f = a->folio_alloc(0);
    if (!f) break;
    folios.push_back(f);
    ASSERT_LT(folios.size(), 100000u);
  }
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  EXPECT_GT(folios.size(), 50000u);  // 4 MiB of 64-byte descriptors, less the slabs' own
  EXPECT_GT(a->info().free_pages, a->info().pages / 2);  // the arena did not run out
  EXPECT_EQ(a->info().metadata_region_free_pages, 0u);
  auto pool = a->zs_create_pool();
  ASSERT_TRUE(pool.ok());
  EXPECT_FALSE(pool.value()->malloc(100).ok());  // a handle: none to be had
  pool.value().reset();
  for (Folio* f : folios) a->folio_put(f);
  a->validate();
  test::expect_all_returned(*a);
}
