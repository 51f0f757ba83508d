// Property test: random kmalloc / kfree / krealloc / kmem_cache sequences against a model of
// live objects. Contents are checked before every free and realloc; objects never overlap;
// ksize is at least what was asked; at the end everything returns to the buddy.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "test_support.hpp"

using namespace memdesc;

class KmallocModel : public ::testing::TestWithParam<unsigned> {};

TEST_P(KmallocModel, RandomSequencesMatchTheModel) {
  auto a = test::make_arena(std::size_t{64} << 20);
  KmemCache* caches[2] = {a->kmem_cache_create("model-a", 72).value(),
                          a->kmem_cache_create("model-b", 3000, 64, SLAB_HWCACHE_ALIGN).value()};
  struct Obj {
    std::size_t size;
    std::uint64_t tag;
    int cache;  // -1: kmalloc
  };
  std::map<std::uintptr_t, Obj> live;
  std::mt19937_64 rng(GetParam());
  auto size_of_draw = [&] {
    switch (rng() % 8) {
      case 0: return std::size_t{1} + rng() % 16;
      case 1: return std::size_t{100} + rng() % 100;
      case 7: return std::size_t{8000} + rng() % 30000;  // kmalloc_large
      default: return std::size_t{1} + rng() % 4096;
    }
  };
  auto check_no_overlap = [&](std::uintptr_t p, std::size_t n) {
    auto next = live.lower_bound(p);
    if (next != live.end()) {
      ASSERT_GE(next->first, p + n);
    }
    if (next != live.begin()) {
      auto prev = std::prev(next);
      ASSERT_LE(prev->first + prev->second.size, p);
    }
  };
  std::uint64_t tag = 0;
  for (int step = 0; step < 30000; ++step) {
    unsigned op = rng() % 100;
    if (live.empty() || op < 45) {
      int ci = (rng() % 5 == 0) ? static_cast<int>(rng() % 2) : -1;
      std::size_t n = ci < 0 ? size_of_draw() : (ci == 0 ? 72 : 3000);
      void* p = ci < 0 ? a->kmalloc(n) : a->kmem_cache_alloc(caches[ci]);
      ASSERT_NE(p, nullptr);
      if (ci < 0) {
        ASSERT_GE(a->ksize(p), n);
      }
      check_no_overlap(reinterpret_cast<std::uintptr_t>(p), n);
      test::fill(p, n & ~std::size_t{7}, ++tag);
      live[reinterpret_cast<std::uintptr_t>(p)] = {n, tag, ci};
    } else if (op < 85) {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      ASSERT_EQ(test::check(reinterpret_cast<void*>(it->first), it->second.size & ~std::size_t{7}, it->second.tag), SIZE_MAX);
      if (it->second.cache < 0) a->kfree(reinterpret_cast<void*>(it->first));
      else a->kmem_cache_free(caches[it->second.cache], reinterpret_cast<void*>(it->first));
      live.erase(it);
    } else {  // krealloc a kmalloc object
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      if (it->second.cache >= 0) continue;
      Obj o = it->second;
      std::size_t n = size_of_draw();
      void* q = a->krealloc(reinterpret_cast<void*>(it->first), n);
      ASSERT_NE(q, nullptr);
      std::size_t kept = std::min(o.size, n) & ~std::size_t{7};
      ASSERT_EQ(test::check(q, kept, o.tag), SIZE_MAX) << "krealloc lost contents";
      live.erase(it);
      check_no_overlap(reinterpret_cast<std::uintptr_t>(q), n);
      test::fill(q, n & ~std::size_t{7}, ++tag);
      live[reinterpret_cast<std::uintptr_t>(q)] = {n, tag, -1};
    }
    if (step % 5000 == 0) a->validate();
  }
  for (auto& [p, o] : live) {
    ASSERT_EQ(test::check(reinterpret_cast<void*>(p), o.size & ~std::size_t{7}, o.tag), SIZE_MAX);
    if (o.cache < 0) a->kfree(reinterpret_cast<void*>(p));
    else a->kmem_cache_free(caches[o.cache], reinterpret_cast<void*>(p));
  }
  for (KmemCache* c : caches) a->kmem_cache_destroy(c);
  a->shrink();
  a->drain_thread_cache();
  a->validate();
  test::expect_fully_coalesced(*a);
}

INSTANTIATE_TEST_SUITE_P(Seeds, KmallocModel, ::testing::Values(1u, 2u, 3u));
