// Fault injection: with every Nth page and descriptor allocation failing, the slab and kmalloc
// paths return null with out_of_memory, never crash, and leak nothing.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct FaultGuard {
  FaultGuard(std::uint64_t page, std::uint64_t desc) { set_fault_injection(page, desc); }
  ~FaultGuard() { set_fault_injection(0, 0); }
};

void random_workload(Arena& a, KmemCache* c, unsigned seed, std::uint64_t& failures) {
  std::mt19937_64 rng(seed);
  std::map<void*, std::pair<KmemCache*, std::uint64_t>> live;  // object -> (cache or null for kmalloc, tag)
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 100 < 55) {
      void* p;
      std::size_t size;
      KmemCache* from = nullptr;
      if (rng() % 4 == 0) {
        p = a.kmem_cache_alloc(c);
        from = c;
        size = 200;
      } else {
        size = 1 + rng() % ((rng() % 10 == 0) ? 40000 : 2000);  // some kmalloc_large
        p = a.kmalloc(size);
      }
      if (!p) {
        ASSERT_EQ(last_error().code, Errc::out_of_memory);
        ++failures;
        continue;
      }
      std::uint64_t tag = rng() & ((1ull << 40) - 1);
      test::fill(p, size & ~std::size_t{7}, tag);
      live[p] = {from, tag | (std::uint64_t{size} << 40)};
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      std::size_t size = it->second.second >> 40;
      ASSERT_EQ(test::check(it->first, size & ~std::size_t{7}, it->second.second & ((1ull << 40) - 1)), SIZE_MAX);
      if (it->second.first) a.kmem_cache_free(it->second.first, it->first);
      else a.kfree(it->first);
      live.erase(it);
    }
  }
  for (auto& [p, v] : live) {
    if (v.first) a.kmem_cache_free(v.first, p);
    else a.kfree(p);
  }
}

}  // namespace

TEST(FaultInjection, EveryFailureIsCleanAndNothingLeaks) {
  for (auto [page_every, desc_every] : {std::pair<std::uint64_t, std::uint64_t>{7, 0}, {0, 3}, {5, 2}, {1, 0}}) {
    auto a = test::make_arena(std::size_t{64} << 20);
    KmemCache* c = a->kmem_cache_create("fault", 200).value();
    std::uint64_t failures = 0;
    {
      FaultGuard g(page_every, desc_every);
      random_workload(*a, c, static_cast<unsigned>(page_every * 10 + desc_every), failures);
      FaultCounts fc = fault_injection_counts();
      EXPECT_GT(fc.page_failed + fc.desc_failed, 0u) << page_every << "/" << desc_every;
    }
    EXPECT_GT(failures, 0u);
    a->kmem_cache_destroy(c);  // reports a leak if any failure kept an object
    a->shrink();
    a->drain_thread_cache();
    a->validate();
    test::expect_fully_coalesced(*a);
  }
}

TEST(FaultInjection, PagesFailEveryNth) {
  auto a = test::make_arena(std::size_t{16} << 20);
  FaultGuard g(4, 0);
  int ok = 0, failed = 0;
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) {
    void* p = a->alloc_pages(0);
    if (p) ++ok, v.push_back(p);
    else ++failed;
  }
  EXPECT_EQ(failed, 25);
  EXPECT_EQ(ok, 75);
  for (void* p : v) a->free_pages(p);
}
