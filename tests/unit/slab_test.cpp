// Unit tests for the slab layer: kmalloc classes and dispatch, kmem_cache life cycle, ctor,
// alignment, bulk, shrink, TYPESAFE_BY_RCU, magazines across threads, accounting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "base/compiler.hpp"
#include "rcu/rcu.hpp"
#include "slab/slab.hpp"
#include "zsmalloc/zsmalloc.hpp"
#include "test_support.hpp"

using namespace memdesc;

namespace {

std::unique_ptr<Arena> arena64() { return test::make_arena(std::size_t{64} << 20); }


}  // namespace

TEST(Kmalloc, SizeClasses) {
  auto a = arena64();
  const std::pair<std::size_t, std::size_t> cases[] = {{1, 8},     {8, 8},     {9, 16},    {24, 32},   {33, 64},
                                                        {64, 64},  {65, 96},   {96, 96},   {97, 128},  {129, 192},
                                                        {192, 192}, {193, 256}, {257, 512}, {1000, 1024}, {1025, 2048},
                                                        {4096, 4096}, {4097, 8192}, {8192, 8192}};
  for (auto [size, cls] : cases) {
    void* p = a->kmalloc(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(a->ksize(p), cls) << size;
    MemdescWord w = *a->virt_to_memdesc(p);
    EXPECT_TRUE(w.is(MemdescType::Slab)) << size;
    if ((cls & (cls - 1)) == 0) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % std::min<std::size_t>(cls, 4096), 0u) << size;
    }
    std::memset(p, 0xA5, size);
    a->kfree(p);
  }
  test::expect_all_returned(*a);
}

TEST(Kmalloc, LargeGoesToTheBuddyWithTheOrderInTheWord) {
  auto a = arena64();
  void* p = a->kmalloc(8193);  // 3 pages -> order 2
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(a->ksize(p), 16384u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(*a->virt_to_memdesc(static_cast<char*>(p) + i * 4096), MemdescWord::misc(MiscSubtype::KmallocLarge, 2));
  a->kfree(p);
  EXPECT_EQ(a->kmalloc(std::size_t{8} << 20), nullptr);  // above the largest block (4 MiB)
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  test::expect_all_returned(*a);
}

TEST(Kmalloc, ZeroSizeAndNull) {
  auto a = arena64();
  void* z = a->kmalloc(0);
  EXPECT_EQ(z, kZeroSizePtr);
  EXPECT_EQ(a->ksize(z), 0u);
  a->kfree(z);
  a->kfree(nullptr);
  EXPECT_EQ(a->ksize(nullptr), 0u);
}

TEST(Kmalloc, KzallocIsZeroEvenOnReuse) {
  auto a = arena64();
  for (int round = 0; round < 3; ++round) {
    std::vector<unsigned char*> v;
    for (int i = 0; i < 200; ++i) {
      auto* p = static_cast<unsigned char*>(a->kzalloc(100));
      for (int j = 0; j < 100; ++j) ASSERT_EQ(p[j], 0) << round << " " << i << " " << j;
      std::memset(p, 0xFF, 100);
      v.push_back(p);
    }
    for (auto* p : v) a->kfree(p);
  }
  test::expect_all_returned(*a);
}

TEST(Kmalloc, KcallocChecksOverflow) {
  auto a = arena64();
  EXPECT_EQ(a->kcalloc(SIZE_MAX / 2, 4), nullptr);
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  auto* p = static_cast<int*>(a->kcalloc(100, sizeof(int)));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(p[i], 0);
  a->kfree(p);
}

TEST(Kmalloc, KreallocKeepsContents) {
  auto a = arena64();
  auto* p = static_cast<unsigned char*>(a->kmalloc(40));
  for (int i = 0; i < 40; ++i) p[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(a->krealloc(p, 60), p);  // 40 -> kmalloc-64: fits in place
  auto* q = static_cast<unsigned char*>(a->krealloc(p, 5000));
  ASSERT_NE(q, nullptr);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(q[i], i);
  auto* r = static_cast<unsigned char*>(a->krealloc(q, 100000));  // to kmalloc_large
  ASSERT_NE(r, nullptr);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(r[i], i);
  EXPECT_EQ(a->krealloc(r, 0), kZeroSizePtr);
  void* n = a->krealloc(nullptr, 10);
  EXPECT_EQ(a->ksize(n), 16u);
  a->kfree(n);
  test::expect_all_returned(*a);
}

namespace {
std::atomic<int> g_ctor_calls{0};
void counting_ctor(void* p) {
  g_ctor_calls.fetch_add(1);
  std::memset(p, 0x42, 48);
}
}  // namespace

TEST(KmemCache, CtorRunsOncePerSlotAndStateSurvivesFree) {
  auto a = arena64();
  g_ctor_calls = 0;
  auto r = a->kmem_cache_create("ctor-test", 48, 0, SLAB_NONE, counting_ctor);
  ASSERT_TRUE(r.ok()) << describe(r.error());
  KmemCache* c = r.value();
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) v.push_back(a->kmem_cache_alloc(c));
  int after_first = g_ctor_calls.load();
  EXPECT_GE(after_first, 100);
  for (void* p : v) {
    auto* b = static_cast<unsigned char*>(p);
    for (int j = 0; j < 48; ++j) ASSERT_EQ(b[j], 0x42);
    a->kmem_cache_free(c, p);
  }
  v.clear();
  for (int i = 0; i < 100; ++i) {
    void* p = a->kmem_cache_alloc(c);
    auto* b = static_cast<unsigned char*>(p);
    for (int j = 0; j < 48; ++j) ASSERT_EQ(b[j], 0x42) << "constructed state lost";  // freeptr is outside
    v.push_back(p);
  }
  EXPECT_EQ(g_ctor_calls.load(), after_first);  // reused objects are not constructed again
  for (void* p : v) a->kmem_cache_free(c, p);
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(KmemCache, AlignmentAndBadArguments) {
  auto a = arena64();
  auto hw = a->kmem_cache_create("hw", 40, 0, SLAB_HWCACHE_ALIGN);
  auto al = a->kmem_cache_create("al256", 100, 256);
  ASSERT_TRUE(hw.ok() && al.ok());
  for (int i = 0; i < 50; ++i) {
    void* p = a->kmem_cache_alloc(hw.value());
    void* q = a->kmem_cache_alloc(al.value());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(q) % 256, 0u);
    a->kmem_cache_free(hw.value(), p);
    a->kmem_cache_free(al.value(), q);
  }
  a->kmem_cache_destroy(hw.value());
  a->kmem_cache_destroy(al.value());
  EXPECT_FALSE(a->kmem_cache_create("zero", 0).ok());
  EXPECT_FALSE(a->kmem_cache_create("align", 64, 48).ok());
  EXPECT_FALSE(a->kmem_cache_create("poison-rcu", 64, 0, SLAB_POISON | SLAB_TYPESAFE_BY_RCU).ok());
  EXPECT_FALSE(a->kmem_cache_create("freeptr", 64, 0, SLAB_TYPESAFE_BY_RCU, nullptr, 62).ok());
  test::expect_all_returned(*a);
}

TEST(KmemCache, BigObjects) {  // objects above 8 KiB: multi-page slabs, small magazines
  auto a = arena64();
  auto r = a->kmem_cache_create("big", 100000);
  ASSERT_TRUE(r.ok()) << describe(r.error());
  std::vector<void*> v;
  for (int i = 0; i < 20; ++i) {
    void* p = a->kmem_cache_alloc(r.value());
    ASSERT_NE(p, nullptr);
    test::fill(p, 100000 & ~7, static_cast<std::uint64_t>(i));
    v.push_back(p);
  }
  for (int i = 0; i < 20; ++i) ASSERT_EQ(test::check(v[i], 100000 & ~7, static_cast<std::uint64_t>(i)), SIZE_MAX);
  for (const auto& s : a->slabinfo()) {
    if (s.name == "big") {
      EXPECT_GE(s.objs_per_slab, 2u);
      EXPECT_GE(s.pages_per_slab * 4096u, 2u * 100000u);
    }
  }
  for (void* p : v) a->kmem_cache_free(r.value(), p);
  a->kmem_cache_destroy(r.value());
  test::expect_all_returned(*a);
}

TEST(KmemCache, BulkAllocAllOrNothing) {
  auto a = test::make_arena(std::size_t{4} << 20, 4, 0);  // small: bulk can run out
  auto c = a->kmem_cache_create("bulk", 1000).value();
  std::vector<void*> v(100);
  ASSERT_EQ(a->kmem_cache_alloc_bulk(c, v.size(), v.data()), v.size());
  std::set<void*> distinct(v.begin(), v.end());
  EXPECT_EQ(distinct.size(), v.size());
  a->kmem_cache_free_bulk(c, v.size(), v.data());
  std::vector<void*> big(100000);
  EXPECT_EQ(a->kmem_cache_alloc_bulk(c, big.size(), big.data()), 0u);  // too many: none kept
  a->kmem_cache_destroy(c);  // would report a leak if the failed bulk kept any
  test::expect_all_returned(*a);
}

TEST(KmemCache, ShrinkGivesEmptySlabsBack) {
  auto a = arena64();
  auto c = a->kmem_cache_create("shrink", 512).value();
  std::vector<void*> v;
  for (int i = 0; i < 2000; ++i) v.push_back(a->kmem_cache_alloc(c));
  std::uint64_t free_before = a->info().free_pages + a->info().cached_pages;
  for (void* p : v) a->kmem_cache_free(c, p);
  EXPECT_GT(a->kmem_cache_shrink(c), 0u);
  a->drain_thread_cache();
  EXPECT_GT(a->info().free_pages, free_before);
  for (const auto& s : a->slabinfo()) {
    if (s.name == "shrink") {
      EXPECT_EQ(s.slabs, 0u);
    }
  }
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(KmemCache, SlabinfoCounts) {
  auto a = arena64();
  auto c = a->kmem_cache_create("info", 200).value();
  std::vector<void*> v;
  for (int i = 0; i < 300; ++i) v.push_back(a->kmem_cache_alloc(c));
  bool found = false;
  for (const auto& s : a->slabinfo()) {
    if (s.name != "info") continue;
    found = true;
    EXPECT_EQ(s.object_size, 200u);
    EXPECT_GE(s.active_objs, 300u);  // plus what this thread's magazine holds
    EXPECT_GE(s.num_objs, s.active_objs);
    EXPECT_EQ(s.num_objs, s.slabs * s.objs_per_slab);
    EXPECT_EQ(s.descriptor_bytes, s.slabs * 32);
  }
  EXPECT_TRUE(found);
  EXPECT_GT(a->info().metadata.descriptors, 0u);  // the descriptor cache's pages are counted
  for (void* p : v) a->kmem_cache_free(c, p);
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(KmemCache, FreesFromAnotherThreadAndThreadExit) {
  auto a = arena64();
  std::vector<void*> v;
  for (int i = 0; i < 5000; ++i) v.push_back(a->kmalloc(static_cast<std::size_t>(8 + (i % 300))));
  std::thread t([&] {
    for (void* p : v) a->kfree(p);  // into that thread's magazines; flushed at its exit
  });
  t.join();
  test::expect_all_returned(*a);
}

// Bursts larger than a thread's two magazines go through the depot; a thread whose allocations
// and frees alternate at a full magazine swaps its magazines instead. Every object comes back, and
// every magazine array is counted while it lives and uncounted when it goes; a burst reuses the
// arrays the previous one left in the depot (DEPOT-MAX) rather than making more.
TEST(KmemCache, MagazinesAndDepotKeepEveryObject) {
  auto a = arena64();
  std::thread t([&] {
    std::vector<std::uint64_t*> v(900);  // 7 magazines of 128: within the depot's 8 arrays
    std::uint64_t after_free = 0;
    for (int round = 0; round < 3; ++round) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = static_cast<std::uint64_t*>(a->kmalloc(64));
        *v[i] = i * 7 + static_cast<std::size_t>(round);
      }
      // The burst emptied the depot's magazines; their arrays stay there, counted, for the
      // next burst of frees.
      if (round > 0) {
        EXPECT_EQ(a->info().metadata.caches, after_free) << "round " << round;
      }
      std::set<void*> distinct(v.begin(), v.end());
      EXPECT_EQ(distinct.size(), v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        EXPECT_EQ(*v[i], i * 7 + static_cast<std::size_t>(round));
        a->kfree(v[i]);
      }
      if (round > 0) {
        EXPECT_EQ(a->info().metadata.caches, after_free) << "round " << round;  // no array made
      }
      after_free = a->info().metadata.caches;
    }
    std::vector<std::uint64_t*> big(3000);  // more than the depot holds: the rest goes to slabs
    for (auto& p : big) p = static_cast<std::uint64_t*>(a->kmalloc(64));
    EXPECT_EQ(std::set<void*>(big.begin(), big.end()).size(), big.size());
    for (auto* p : big) a->kfree(p);
    // Alternate around a full magazine: no object is lost or handed out twice.
    std::vector<void*> w;
    for (int i = 0; i < 200; ++i) w.push_back(a->kmalloc(64));
    for (int i = 0; i < 1000; ++i) {
      a->kfree(w[static_cast<std::size_t>(i % 200)]);
      w[static_cast<std::size_t>(i % 200)] = a->kmalloc(64);
    }
    std::set<void*> distinct(w.begin(), w.end());
    EXPECT_EQ(distinct.size(), w.size());
    for (void* p : w) a->kfree(p);
  });
  t.join();
  a->validate();                             // DEPOT-MAX among the rest
  EXPECT_GT(a->info().metadata.caches, 0u);  // the exited thread's full magazines wait in the depot
  // Shrink from a thread of its own: discarding slabs frees their descriptors into that
  // thread's magazines, and its exit takes them (and their count) away.
  std::thread([&] { a->shrink(); }).join();
  EXPECT_EQ(a->info().metadata.caches, 0u);  // depot arrays freed and uncounted
  test::expect_all_returned(*a);
}

// MAG-GROW: a cache of big objects starts with small magazines. One thread alone never grows them
// (it never finds the cache lock held); two threads working the cache at once do (fast
// builds). No object is lost, handed out twice or changed while magazines are remade and the
// depot is emptied.
TEST(KmemCache, MagazinesGrowUnderContentionAndKeepEveryObject) {
  auto a = arena64();
  auto info = [&](const char* name) {
    for (const SlabCacheInfo& c : a->slabinfo())
      if (c.name == name) return c;
    return SlabCacheInfo{};
  };
  EXPECT_EQ(info("kmalloc-64").limit, 128u);  // small objects start at their largest magazines
  EXPECT_EQ(info("kmalloc-64").max_limit, 128u);
  EXPECT_EQ(info("kmalloc-96").max_limit, 64u);
  ASSERT_EQ(info("kmalloc-4k").limit, 4u);  // 16 KiB of objects
  ASSERT_EQ(info("kmalloc-4k").max_limit, 16u);

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, rounds{0};
  auto churn = [&](std::uint64_t seed, unsigned min_rounds) {
    std::vector<std::uint64_t*> v(48);  // 12 magazines' worth at the start
    std::set<void*> distinct;
    for (unsigned r = 0; r < min_rounds || !stop.load(std::memory_order_relaxed); ++r) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] = static_cast<std::uint64_t*>(a->kmalloc(4096));
        if (!v[i]) {
          bad.fetch_add(1);
          return;
        }
        for (std::size_t w = 0; w < 512; w += 511) v[i][w] = seed ^ (std::uint64_t{r} << 32) ^ (i << 16) ^ w;
      }
      distinct.clear();
      distinct.insert(v.begin(), v.end());
      if (distinct.size() != v.size()) bad.fetch_add(1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        for (std::size_t w = 0; w < 512; w += 511)  // the first and last words: the lock stays busy
          if (v[i][w] != (seed ^ (std::uint64_t{r} << 32) ^ (i << 16) ^ w)) {
            bad.fetch_add(1);
            break;
          }
        a->kfree(v[i]);
      }
      rounds.fetch_add(1, std::memory_order_relaxed);
    }
  };
  stop = true;  // 300 rounds, then stop
  std::thread([&] { churn(1, 300); }).join();
  EXPECT_EQ(info("kmalloc-4k").limit, 4u) << "one thread alone grew the magazines";
  stop = false;

  // Two threads until the magazines have grown (a window of 256 lock takings with 1 in 8 finding
  // the lock held doubles them), or the deadline. How far they grow depends on how busy the
  // lock stays at each size; 16 is the cap.
  // Checked builds send every call through the slow paths and serialise them on the per-object
  // state's mutex, so the cache lock is seldom found held there and the magazines need not grow:
  // the threads run 2000 rounds each, for the objects' sake.
  stop = kChecked;
  std::thread t1([&] { churn(2, 2000); }), t2([&] { churn(3, 2000); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!kChecked && info("kmalloc-4k").limit == 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // more magazine remakes under way
  stop = true;
  t1.join();
  t2.join();
  SlabCacheInfo grown = info("kmalloc-4k");
  if (!kChecked) {
    EXPECT_GT(grown.limit, 4u) << rounds.load() << " rounds";
  }
  EXPECT_LE(grown.limit, 16u);
  EXPECT_EQ(bad.load(), 0u);
  a->validate();  // DEPOT-MAX at the new size among the rest
  std::thread([&] { a->shrink(); }).join();
  EXPECT_EQ(info("kmalloc-4k").active_objs, 0u);
  EXPECT_EQ(a->info().metadata.caches, 0u);  // every array, of either size, uncounted when freed
  test::expect_all_returned(*a);
}

// SLAB-LIST: a refill that finds no slab with a free slot makes one outside the cache lock; if
// another thread leaves a full magazine in the depot meanwhile, the refill takes that instead,
// and the new slab (nothing handed out) must wait on the empty list, not the partial one. Each
// round lines the two up: B frees two magazines' worth and more (to the depot) while A's first
// allocation finds the cache bare.
TEST(KmemCache, ASlabMadeWhileTheDepotFillsWaitsOnTheEmptyList) {
  auto a = arena64();
  KmemCache* c = a->kmem_cache_create("depot-race", 4096).value();  // 8 a slab, magazines of 4
  const unsigned rounds = kChecked ? 300 : 2000;
  for (unsigned r = 0; r < rounds; ++r) {
    std::atomic<int> ready{0};
    std::vector<void*> objs(16);
    std::thread b([&] {
      for (void*& p : objs) p = a->kmem_cache_alloc(c);  // two whole slabs
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (unsigned i = 0; i < (r % 100) * 16; ++i) __builtin_ia32_pause();  // slide across A's refill
      for (void* p : objs) a->kmem_cache_free(c, p);  // 8 fill the magazines; the rest go to the depot
    });
    std::thread t([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      void* p = a->kmem_cache_alloc(c);  // no magazine yet, no partial slab: a refill
      ASSERT_NE(p, nullptr);
      a->kmem_cache_free(c, p);
    });
    b.join();
    t.join();
    a->validate();
    a->kmem_cache_shrink(c);  // the depot's objects back to their slabs, every slab freed
  }
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(KmemCache, TypesafeByRcuPagesOutliveReaders) {  // SLAB-RCU
  auto a = arena64();
  auto c = a->kmem_cache_create("rcu-objs", 256, 0, SLAB_TYPESAFE_BY_RCU).value();
  constexpr int kSlots = 64;
  std::atomic<void*> slots[kSlots] = {};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> checks{0}, bad{0};
  auto reader = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      rcu::ReadGuard g;
      for (auto& s : slots) {
        void* p = s.load(std::memory_order_acquire);
        if (!p) continue;
        // The object may have been freed and reused, but its page is still this cache's.
        MemdescWord w = *a->virt_to_memdesc(p);
        if (!w.is(MemdescType::Slab) || a->ksize(p) != 256) bad.fetch_add(1);
        checks.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread r1(reader), r2(reader);
  for (int round = 0; round < 300 || checks.load() < 10000; ++round) {
    for (auto& s : slots) {
      void* p = a->kmem_cache_alloc(c);
      ASSERT_NE(p, nullptr) << "round " << round;
      s.store(p, std::memory_order_release);
    }
    for (auto& s : slots) a->kmem_cache_free(c, s.exchange(nullptr, std::memory_order_acq_rel));
    a->kmem_cache_shrink(c);  // slabs leave the cache; their pages wait for a grace period
    // With the readers starved of CPU (other tests running), rounds can outpace grace periods:
    // wait for the deferred frees now and then, so the pages waiting stay bounded.
    if (round % 64 == 63) a->shrink();
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(checks.load(), 0u);
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(KmemCache, ManyCachesAndIdsAreReused) {
  auto a = arena64();
  for (int round = 0; round < 3; ++round) {
    std::vector<KmemCache*> cs;
    for (int i = 0; i < 100; ++i) {
      auto r = a->kmem_cache_create("many", static_cast<std::size_t>(16 + i));
      ASSERT_TRUE(r.ok());
      cs.push_back(r.value());
      a->kmem_cache_free(cs.back(), a->kmem_cache_alloc(cs.back()));
    }
    for (KmemCache* c : cs) a->kmem_cache_destroy(c);
  }
  test::expect_all_returned(*a);
}

// MEMDESC-RCU: a cache of memdescs must be SLAB_TYPESAFE_BY_RCU (lockless lookups read
// descriptors through stale words); asking for one without it is refused.
TEST(KmemCache, ADescriptorCacheMustBeTypesafeByRcu) {
  auto mm = core::Memmap::create(16 << 20, 10, 0);
  auto pa = page::PageAllocator::create(*mm.value(), {});
  auto meta_mm = core::Memmap::create(16 << 20, 10, 0);
  auto meta = page::PageAllocator::create(*meta_mm.value(), {.thread_cache = false});
  auto sa = slab::SlabAllocator::create(*pa.value(), *meta.value());
  ASSERT_TRUE(sa.ok());
  slab::SlabCreate plain{.name = "desc", .size = 32, .descriptor = true};
  auto bad = sa.value()->cache_create(plain);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::invalid_config);
  EXPECT_STREQ(bad.error().what, "a descriptor cache must be SLAB_TYPESAFE_BY_RCU");
  slab::SlabCreate rcu{.name = "desc", .size = 32, .flags = SLAB_TYPESAFE_BY_RCU, .descriptor = true};
  auto good = sa.value()->cache_create(rcu);
  ASSERT_TRUE(good.ok());
  sa.value()->cache_destroy(good.value());
}

// Destroyed user caches stay as shells for precise reports, but only the newest kMaxShells of
// them: a program that makes and destroys caches in a loop keeps bounded memory. A layer's own
// caches (a zsmalloc pool's) leave no shell.
TEST(KmemCache, ShellsOfDestroyedCachesAreBounded) {
  auto mm = core::Memmap::create(16 << 20, 10, 0);
  auto pa = page::PageAllocator::create(*mm.value(), {});
  auto meta_mm = core::Memmap::create(16 << 20, 10, 0);
  auto meta = page::PageAllocator::create(*meta_mm.value(), {.thread_cache = false});
  auto sa = slab::SlabAllocator::create(*pa.value(), *meta.value());
  ASSERT_TRUE(sa.ok());
  slab::SlabAllocator& s = *sa.value();
  for (int i = 0; i < 300; ++i) {
    slab::SlabCreate c{.name = "loop", .size = 64};
    auto r = s.cache_create(c);
    ASSERT_TRUE(r.ok()) << i;
    void* p = s.cache_alloc(r.value(), GFP_NONE);
    ASSERT_NE(p, nullptr);
    s.cache_free(r.value(), p);
    s.cache_destroy(r.value());
    EXPECT_EQ(s.destroyed_shells(), std::min<std::size_t>(i + 1, slab::SlabAllocator::kMaxShells));
  }
  for (int i = 0; i < 50; ++i) {
    auto pool = zsmalloc::Pool::create(s, *pa.value(), {.name = "p"});
    ASSERT_TRUE(pool.ok());
    ZsHandle h = pool.value()->malloc(100, GFP_NONE).value();
    pool.value()->free(h);
  }
  EXPECT_EQ(s.destroyed_shells(), slab::SlabAllocator::kMaxShells) << "a pool's own caches left shells";
}

// SLAB_POISON and SLAB_RED_ZONE caches hand out fresh and reused objects without a report when
// nobody misbehaves. (A never-used slot did not hold the free pattern, so the first allocation
// of every poisoned cache reported "poison overwritten": the fuzzer's first find.)
TEST(KmemCache, PoisonAndRedZoneCachesWorkWhenUsedCorrectly) {
  auto a = test::make_arena(16 << 20);
  for (SlabFlags f : {SLAB_POISON, SLAB_RED_ZONE, SLAB_POISON | SLAB_RED_ZONE})
    for (std::size_t size : {1u, 7u, 8u, 37u, 64u, 1000u}) {
      KmemCache* c = a->kmem_cache_create("checked", size, 0, f).value();
      std::vector<void*> v;
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 300; ++i) {
          void* p = a->kmem_cache_alloc(c);
          ASSERT_NE(p, nullptr);
          std::memset(p, 0x11, size);
          v.push_back(p);
        }
        for (void* p : v) a->kmem_cache_free(c, p);
        v.clear();
      }
      a->kmem_cache_destroy(c);
    }
  a->validate();
}
