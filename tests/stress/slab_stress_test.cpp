// Stress tier for the slab layer: producer/consumer kmalloc across threads, frees from other
// threads, thread churn; every object carries a pattern checked before it is freed.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct Item {
  void* p;
  std::size_t size;
  std::uint64_t tag;
};

using Ring = test::SpscRing<Item, 1024>;


}  // namespace

TEST(SlabStress, ProducerConsumer) {
  auto a = test::make_arena(std::size_t{256} << 20);
  const unsigned n = test::stress_scale(400000);
  Ring ring;
  std::atomic<std::uint64_t> bad{0};
  std::thread consumer([&] {
    Item it;
    for (unsigned got = 0; got < n;) {
      if (!ring.pop(it)) continue;
      if (test::check(it.p, it.size & ~std::size_t{7}, it.tag) != SIZE_MAX) bad.fetch_add(1);
      a->kfree(it.p);
      ++got;
    }
  });
  std::mt19937_64 rng(7);
  for (unsigned i = 0; i < n; ++i) {
    std::size_t size = 8 + rng() % 2040;
    Item it{a->kmalloc(size), size, i + 1u};
    ASSERT_NE(it.p, nullptr);
    test::fill(it.p, size & ~std::size_t{7}, it.tag);
    while (!ring.push(it)) std::this_thread::yield();
  }
  consumer.join();
  EXPECT_EQ(bad.load(), 0u);
  test::expect_all_returned(*a);
}

TEST(SlabStress, EveryThreadFreesItsNeighboursObjects) {
  auto a = test::make_arena(std::size_t{256} << 20);
  KmemCache* c = a->kmem_cache_create("stress", 176).value();
  constexpr unsigned kThreads = 4;
  const unsigned rounds = test::stress_scale(40);
  std::vector<std::vector<Item>> handoff(kThreads);
  std::atomic<unsigned> arrived{0};
  std::atomic<std::uint64_t> bad{0};
  auto barrier = [&](unsigned generation) {
    arrived.fetch_add(1);
    while (arrived.load() < generation * kThreads) std::this_thread::yield();
  };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (unsigned r = 0; r < rounds; ++r) {
        std::vector<Item> mine;
        for (int i = 0; i < 2000; ++i) {
          bool cache = rng() & 1;
          std::size_t size = cache ? 176 : 1 + rng() % 3000;
          void* p = cache ? a->kmem_cache_alloc(c) : a->kmalloc(size);
          Item it{p, cache ? 0 : size, (std::uint64_t{t} << 48) | (r << 20) | i};
          test::fill(p, (cache ? 176 : size) & ~std::size_t{7}, it.tag);
          mine.push_back(it);
        }
        handoff[t] = std::move(mine);
        barrier(2 * r + 1);
        for (const Item& it : handoff[(t + 1) % kThreads]) {  // free the neighbour's objects
          std::size_t size = it.size ? it.size : 176;
          if (test::check(it.p, size & ~std::size_t{7}, it.tag) != SIZE_MAX) bad.fetch_add(1);
          if (it.size) a->kfree(it.p);
          else a->kmem_cache_free(c, it.p);
        }
        barrier(2 * r + 2);
      }
    });
  for (auto& th : ts) th.join();
  EXPECT_EQ(bad.load(), 0u);
  a->kmem_cache_destroy(c);
  test::expect_all_returned(*a);
}

TEST(SlabStress, ThreadChurn) {
  auto a = test::make_arena(std::size_t{64} << 20);
  std::atomic<std::uint64_t> bad{0};
  for (int round = 0; round < 20; ++round) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t)
      ts.emplace_back([&, t] {
        std::mt19937_64 rng(round * 10 + t);
        std::vector<Item> v;
        for (unsigned i = 0; i < test::stress_scale(3000); ++i) {
          std::size_t size = 1 + rng() % 600;
          Item it{a->kmalloc(size), size, rng()};
          test::fill(it.p, size & ~std::size_t{7}, it.tag);
          v.push_back(it);
          if (rng() % 3 == 0) {
            Item& x = v[rng() % v.size()];
            if (test::check(x.p, x.size & ~std::size_t{7}, x.tag) != SIZE_MAX) bad.fetch_add(1);
            a->kfree(x.p);
            x = v.back();
            v.pop_back();
          }
        }
        for (const Item& x : v) a->kfree(x.p);  // the thread exits with full magazines
      });
    for (auto& th : ts) th.join();
  }
  EXPECT_EQ(bad.load(), 0u);
  test::expect_all_returned(*a);
}

// kmem_cache_destroy (and a zsmalloc pool's destruction) flush every thread's magazines for
// the cache, from the destroying thread, while those threads go on with other caches: the
// contexts' shared fields (chunk pointers, byte counts) are atomics, so TSan sees no race.
TEST(SlabStress, DestroyWhileTheCachesUsersGoOnWithOthers) {
  auto a = test::make_arena(128 << 20);
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    KmemCache* c = a->kmem_cache_create("doomed", 200).value();
    auto pool = a->zs_create_pool({}).value();
    std::atomic<int> done_with_c{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> users;
    for (int t = 0; t < 2; ++t)
      users.emplace_back([&] {
        void* p = a->kmem_cache_alloc(c);
        a->kmem_cache_free(c, p);  // now in this thread's magazine for c
        ZsHandle h = pool->malloc(300).value();
        pool->free(h);
        done_with_c.fetch_add(1, std::memory_order_release);
        // Other caches, whose first use makes new magazine chunks and changes the byte count.
        std::vector<KmemCache*> mine;
        for (int i = 0; i < 4; ++i) mine.push_back(a->kmem_cache_create("other", 64 + i * 16).value());
        while (!stop.load(std::memory_order_relaxed))
          for (KmemCache* o : mine) a->kmem_cache_free(o, a->kmem_cache_alloc(o));
        for (KmemCache* o : mine) a->kmem_cache_destroy(o);
      });
    while (done_with_c.load(std::memory_order_acquire) < 2) std::this_thread::yield();
    a->kmem_cache_destroy(c);
    pool.reset();
    stop = true;
    for (auto& u : users) u.join();
  }
  a->shrink();
  a->validate();
}
