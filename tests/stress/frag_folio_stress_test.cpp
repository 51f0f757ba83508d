// Stress tier for folios and page fragments:
//   * producers carve fragments of mixed sizes and alignments, write a pattern into every byte
//     and pass them through rings; consumers check every byte, then page_frag_free them;
//   * lockless folio lookups from several threads while others allocate, free and reuse
//     folios of mixed orders: a lookup returns a folio that covers the page asked about, or null.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct Frag {
  void* p;
  std::uint32_t size;
  std::uint32_t tag;
};

using Ring = test::SpscRing<Frag, 512>;

std::uint8_t byte_of(std::uint32_t tag, std::size_t i) { return static_cast<std::uint8_t>(tag * 31 + i * 7); }

void run_producers_consumers(FragBlock kind) {
  auto a = test::make_arena(64 << 20);
  constexpr unsigned kPairs = 2;
  const unsigned per_producer = test::stress_scale(60000);
  Ring rings[kPairs];
  std::atomic<unsigned> damaged{0}, consumed{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < kPairs; ++t) {
    ts.emplace_back([&, t] {  // producer t
      PageFragCache nc = a->page_frag_cache(kind);
      std::mt19937 rng(t + 1);
      for (std::uint32_t tag = 0; tag < per_producer; ++tag) {
        std::uint32_t size = 1 + rng() % (rng() % 16 == 0 ? 8192 : 2048);
        std::size_t align = std::size_t{1} << (rng() % 7);
        auto* p = static_cast<std::uint8_t*>(nc.alloc_align(size, align));
        if (!p) {
          damaged.fetch_add(1);  // the arena is large enough: a null is a failure
          continue;
        }
        if (reinterpret_cast<std::uintptr_t>(p) % align) damaged.fetch_add(1);
        for (std::size_t i = 0; i < size; ++i) p[i] = byte_of(tag, i);
        while (!rings[t].push({p, size, tag})) std::this_thread::yield();
      }
      while (!rings[t].push({nullptr, 0, 0})) std::this_thread::yield();
    });
    ts.emplace_back([&, t] {  // consumer t: frees what producer t made
      Frag f;
      for (;;) {
        if (!rings[t].pop(f)) {
          std::this_thread::yield();
          continue;
        }
        if (!f.p) break;
        auto* p = static_cast<const std::uint8_t*>(f.p);
        for (std::size_t i = 0; i < f.size; ++i)
          if (p[i] != byte_of(f.tag, i)) {
            damaged.fetch_add(1);
            break;
          }
        a->page_frag_free(f.p);
        consumed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(damaged.load(), 0u);
  EXPECT_EQ(consumed.load(), kPairs * per_producer);
  EXPECT_EQ(a->info().frag_blocks, 0u) << "every block went back (the caches drained at producer exit)";
  test::expect_all_returned(*a);
}

TEST(FragStress, ProducersConsumersFragBlocks) { run_producers_consumers(FragBlock::Frag); }
TEST(FragStress, ProducersConsumersFolioBlocks) { run_producers_consumers(FragBlock::Folio); }

TEST(FolioStress, LocklessLookupsWhileFoliosAreAllocatedFreedAndReused) {
  auto a = test::make_arena(16 << 20, 6, 0);  // small: pages are reused constantly
  const std::uint64_t pages = a->pages();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> found{0}, wrong{0}, lookups{0};
  std::atomic<unsigned> lookers{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {  // churners
      // On a loaded machine the churners could otherwise run while no looker does: they wait
      // for both lookers, and go on past their rounds (up to 100x) until one found a folio.
      while (lookers.load() < 2) std::this_thread::yield();
      std::mt19937 rng(t + 11);
      std::vector<Folio*> mine;
      const unsigned rounds = test::stress_scale(40000);
      for (unsigned i = 0; i < rounds || (found.load(std::memory_order_relaxed) == 0 && i < 100 * rounds); ++i) {
        if (mine.size() < 64 && rng() % 3 != 0) {
          unsigned order = rng() % 5 == 0 ? rng() % 7 : rng() % 3;
          if (Folio* f = a->folio_alloc(order, GFP_NONE, rng() % 2 ? FolioKind::Anon : FolioKind::File))
            mine.push_back(f);
        } else if (!mine.empty()) {
          std::size_t k = rng() % mine.size();
          folio_lock(mine[k]);  // the lookers lock too: contention on the descriptor's lock
          folio_unlock(mine[k]);
          a->folio_put(mine[k]);
          mine[k] = mine.back();
          mine.pop_back();
        }
        if (i % 64 == 0) {  // other memory types on the same pages now and then
          void* p = a->kmalloc(100 + rng() % 5000);
          a->kfree(p);
        }
      }
      for (Folio* f : mine) a->folio_put(f);
    });
  for (unsigned t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {  // lookers
      std::mt19937_64 rng(t + 101);
      lookers.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        std::uint64_t pfn = rng() % pages;
        Folio* f = a->folio_lookup_pfn(pfn);
        lookups.fetch_add(1, std::memory_order_relaxed);
        if (!f) continue;
        // FOLIO-LOOKUP: pinned, and it covers pfn.
        if (folio_ref_count(f) < 1 || pfn < folio_pfn(f) || pfn >= folio_pfn(f) + folio_nr_pages(f))
          wrong.fetch_add(1);
        if (rng() % 8 == 0) {
          folio_lock(f);
          if (!folio_test_locked(f)) wrong.fetch_add(1);
          folio_unlock(f);
        }
        found.fetch_add(1, std::memory_order_relaxed);
        a->folio_put(f);
      }
    });
  ts[0].join();
  ts[1].join();
  stop = true;
  ts[2].join();
  ts[3].join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(found.load(), 0u) << "lookups must have found live folios (" << lookups.load() << " lookups)";
  EXPECT_EQ(a->info().folios, 0u);
  test::expect_all_returned(*a);
}

}  // namespace
