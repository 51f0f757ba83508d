// Stress tier: several threads allocate blocks of mixed orders, write a pattern into every
// page they hold, check it before freeing, and pass a share of their blocks to a neighbour
// that checks and frees them (cross-thread free). At the end the arena validates and coalesces.
#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct Mailbox {
  std::mutex m;
  std::deque<std::pair<void*, std::uint64_t>> q;  // block, tag (order is in the page word)
};

// Returns the number of blocks allocated (and written, checked and freed).
std::uint64_t run_stress(Arena& a, unsigned nthreads, unsigned ops, unsigned max_order_used) {
  std::vector<Mailbox> boxes(nthreads);
  std::atomic<std::uint64_t> errors{0}, allocated{0};
  auto order_of = [&](void* p) { return a.virt_to_memdesc(p)->order(); };
  auto verify_and_free = [&](void* p, std::uint64_t tag) {
    if (test::check(p, kPageSize << order_of(p), tag) != SIZE_MAX) errors.fetch_add(1);
    a.free_pages(p);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < nthreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t * 7919 + 1);
      std::vector<std::pair<void*, std::uint64_t>> held;
      std::uint64_t tag = std::uint64_t{t} << 40;
      for (unsigned i = 0; i < ops; ++i) {
        unsigned r = static_cast<unsigned>(rng() % 100);
        if (r < 50 || held.empty()) {
          unsigned order = std::min<unsigned>(max_order_used, static_cast<unsigned>(std::countr_zero(rng() | 1u << 16)));
          void* p = a.alloc_pages(order, (rng() & 1) ? GFP_MOVABLE : GFP_NONE);
          if (!p) continue;  // the arena may be full for a moment
          allocated.fetch_add(1, std::memory_order_relaxed);
          test::fill(p, kPageSize << order, ++tag);
          held.emplace_back(p, tag);
        } else if (r < 85) {
          std::size_t k = rng() % held.size();
          verify_and_free(held[k].first, held[k].second);
          held[k] = held.back();
          held.pop_back();
        } else {
          std::size_t k = rng() % held.size();
          Mailbox& mb = boxes[(t + 1) % nthreads];
          {
            std::lock_guard<std::mutex> g(mb.m);
            mb.q.push_back(held[k]);
          }
          held[k] = held.back();
          held.pop_back();
        }
        if (i % 64 == 0) {  // drain our mailbox: blocks another thread allocated and wrote
          std::deque<std::pair<void*, std::uint64_t>> in;
          {
            std::lock_guard<std::mutex> g(boxes[t].m);
            in.swap(boxes[t].q);
          }
          for (auto& [p, tg] : in) verify_and_free(p, tg);
        }
      }
      for (auto& [p, tg] : held) verify_and_free(p, tg);
    });
  for (auto& th : threads) th.join();
  for (auto& mb : boxes)
    for (auto& [p, tg] : mb.q) verify_and_free(p, tg);
  EXPECT_EQ(errors.load(), 0u);
  a.drain_thread_cache();
  a.validate();
  test::expect_fully_coalesced(a);
  return allocated.load();
}

}  // namespace

TEST(PagesStress, MixedOrdersCrossThread) {
  auto a = test::make_arena(std::size_t{256} << 20);
  unsigned ops = test::stress_scale(100000);
  EXPECT_GT(run_stress(*a, 4, ops, 5), 4ull * ops / 3);  // about half the ops allocate
}

TEST(PagesStress, TinyArenaUnderPressure) {  // constant exhaustion: null returns race with frees
  ArenaConfig c;
  c.size = 2 << 20;
  c.max_order = 4;
  c.pcp_high = 16;
  c.pcp_batch = 4;
  auto a = test::make_arena(c);
  EXPECT_GT(run_stress(*a, 3, test::stress_scale(40000), 4), 0u);
}

TEST(PagesStress, ThreadChurn) {  // threads come and go; their caches drain at exit
  auto a = test::make_arena(std::size_t{64} << 20);
  unsigned ops = test::stress_scale(4000);
  for (int round = 0; round < 10; ++round) EXPECT_GT(run_stress(*a, 2, ops, 3), ops / 2);  // ~ops allocate
}
