// The zsmalloc concurrency suite: readers, writers, frees, compaction and page migration at
// the same time on one pool.
//
// A table of slots holds objects; each slot has a tiny lock so the thread that reads, rewrites
// or frees an object owns it for that moment (a handle is single-owner, as in zram). Every
// object carries a checksum of its contents in its first 8 bytes, verified on each read, and
// its exact contents are known from (seed, size). Sizes are drawn to force straddling objects
// (class 1200: 4 of 17 objects straddle), huge objects and small ones. While mutators and
// readers run, one thread compacts and one migrates random pages of the pool (first, last,
// middle and tail-only pages alike), putting back pages it could not move. After each phase
// everything stops, the pool is validated (the ZS-* invariants) and every object is read.
//
// Sized by MEMDESC_STRESS_SCALE (the CI run is short; the stress tier can run it long).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memdesc/zram.hpp>
#include <random>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

constexpr std::size_t kMin = 16;

std::uint64_t checksum(const unsigned char* b, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

void make_payload(std::vector<unsigned char>& b, std::uint64_t seed, std::size_t size) {
  b.resize(size);
  for (std::size_t i = 8; i < size; ++i) b[i] = static_cast<unsigned char>(test::pattern(seed, i / 8) >> (i % 8 * 8));
  std::uint64_t c = checksum(b.data() + 8, size - 8);
  std::memcpy(b.data(), &c, 8);
}

struct Slot {
  std::atomic<bool> busy{false};
  ZsHandle h = 0;  // guarded by busy
  std::size_t size = 0;
  std::uint64_t seed = 0;
  bool try_own() { return !busy.exchange(true, std::memory_order_acquire); }
  void release() { busy.store(false, std::memory_order_release); }
};

std::size_t draw_size(std::mt19937_64& rng, std::size_t huge) {
  switch (rng() % 6) {
    case 0: return 1192;                                 // class 1200: straddles
    case 1: return huge + rng() % (kZsMaxAllocSize - huge + 1);  // huge class
    case 2: return kMin + rng() % 200;
    default: return kMin + rng() % (kZsMaxAllocSize - kMin + 1);
  }
}

struct Suite {
  std::unique_ptr<Arena> arena = test::make_arena(std::size_t{256} << 20);
  std::unique_ptr<ZsPool> pool;
  std::vector<Slot> slots = std::vector<Slot>(4096);
  std::atomic<unsigned> bad{0};
  std::atomic<std::uint64_t> reads{0}, writes{0}, frees{0}, compactions{0}, migrated{0}, busy{0}, freed_pages{0};

  Suite() {
    ZsPoolConfig c;
    c.name = "stress";
    pool = std::move(arena->zs_create_pool(c).value());
  }

  bool verify(Slot& s) {  // s owned
    std::vector<unsigned char> copy(s.size), want;
    auto* m = static_cast<const unsigned char*>(pool->read_begin(s.h, copy.data(), s.size));
    std::uint64_t c;
    std::memcpy(&c, m, 8);
    bool ok = c == checksum(m + 8, s.size - 8);
    make_payload(want, s.seed, s.size);
    ok = ok && std::memcmp(m, want.data(), s.size) == 0;
    pool->read_end(s.h, m);
    if (!ok) bad.fetch_add(1);
    return ok;
  }

  void mutator(unsigned id, std::atomic<bool>& stop) {
    std::mt19937_64 rng(id * 7919 + 1);
    std::vector<unsigned char> b;
    const std::size_t huge = pool->huge_class_size();
    while (!stop.load(std::memory_order_relaxed)) {
      Slot& s = slots[rng() % slots.size()];
      if (!s.try_own()) continue;
      if (s.h && rng() % 3 == 0) {  // free (after checking it)
        verify(s);
        pool->free(s.h);
        s.h = 0;
        frees.fetch_add(1, std::memory_order_relaxed);
      } else if (s.h && rng() % 2 == 0) {  // rewrite in place
        verify(s);
        s.seed = rng();
        make_payload(b, s.seed, s.size);
        pool->write(s.h, b.data(), s.size);
        writes.fetch_add(1, std::memory_order_relaxed);
      } else if (!s.h) {
        std::size_t size = draw_size(rng, huge);
        auto r = pool->malloc(size);
        if (!r.ok()) {
          bad.fetch_add(1);  // 256 MiB hold far more than the table: a failure is a bug
        } else {
          s.h = r.value();
          s.size = size;
          s.seed = rng();
          make_payload(b, s.seed, size);
          pool->write(s.h, b.data(), size);
          writes.fetch_add(1, std::memory_order_relaxed);
        }
      }
      s.release();
    }
  }

  void reader(unsigned id, std::atomic<bool>& stop) {
    std::mt19937_64 rng(id * 104729 + 3);
    while (!stop.load(std::memory_order_relaxed)) {
      Slot& s = slots[rng() % slots.size()];
      if (!s.try_own()) continue;
      if (s.h) {
        // Hold the object open a little while: compaction and migration must step around it.
        std::vector<unsigned char> copy(s.size);
        const void* m = pool->read_begin(s.h, copy.data(), s.size);
        for (int i = 0; i < 200; ++i) __builtin_ia32_pause();
        std::uint64_t c;
        std::memcpy(&c, m, 8);
        if (c != checksum(static_cast<const unsigned char*>(m) + 8, s.size - 8)) bad.fetch_add(1);
        pool->read_end(s.h, m);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
      s.release();
    }
  }

  void compactor(std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
      freed_pages.fetch_add(pool->compact(), std::memory_order_relaxed);
      compactions.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  void migrator(std::atomic<bool>& stop) {
    std::mt19937_64 rng(99);
    while (!stop.load(std::memory_order_relaxed)) {
      std::vector<ZsPageInfo> pages = pool->pages();
      if (pages.empty()) continue;
      for (int k = 0; k < 32 && !stop.load(std::memory_order_relaxed); ++k) {
        void* page = pages[rng() % pages.size()].addr;  // may be stale by now: isolate decides
        if (!pool->isolate_page(page)) continue;
        ZsMigrateResult r = pool->migrate_page(page);
        if (r == ZsMigrateResult::migrated) migrated.fetch_add(1, std::memory_order_relaxed);
        else if (r == ZsMigrateResult::busy || r == ZsMigrateResult::no_memory) {
          busy.fetch_add(1, std::memory_order_relaxed);
          pool->putback_page(page);
        } else {
          bad.fetch_add(1);  // we isolated it: it cannot be "not isolated"
        }
      }
    }
  }

  void phase(std::chrono::milliseconds len) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    ts.emplace_back([&] { mutator(1, stop); });
    ts.emplace_back([&] { mutator(2, stop); });
    ts.emplace_back([&] { reader(3, stop); });
    ts.emplace_back([&] { reader(4, stop); });
    ts.emplace_back([&] { compactor(stop); });
    ts.emplace_back([&] { migrator(stop); });
    std::this_thread::sleep_for(len);
    stop.store(true);
    for (auto& t : ts) t.join();
    pool->validate();
    for (Slot& s : slots)
      if (s.h) verify(s);
  }
};

TEST(ZsStress, ReadersWritersFreesCompactionAndMigrationTogether) {
  Suite st;
  const unsigned phases = 3;
  const auto len = std::chrono::milliseconds(test::stress_scale(4) * 100);  // 400 ms; less under TSan
  for (unsigned i = 0; i < phases; ++i) st.phase(len);
  EXPECT_EQ(st.bad.load(), 0u);
  EXPECT_GT(st.reads.load(), 0u);
  EXPECT_GT(st.frees.load(), 0u);
  EXPECT_GT(st.compactions.load(), 0u);
  EXPECT_GT(st.migrated.load(), 0u);
  // Drain: free everything, compact, and the pool must give every page back.
  for (Slot& s : st.slots)
    if (s.h) st.pool->free(s.h), s.h = 0;
  st.pool->compact();
  st.pool->validate();
  EXPECT_EQ(st.pool->total_pages(), 0u);
  std::printf("zs stress: %llu reads, %llu writes, %llu frees, %llu compactions (%llu pages), %llu pages migrated, %llu busy\n",
              (unsigned long long)st.reads.load(), (unsigned long long)st.writes.load(), (unsigned long long)st.frees.load(),
              (unsigned long long)st.compactions.load(), (unsigned long long)st.freed_pages.load(),
              (unsigned long long)st.migrated.load(), (unsigned long long)st.busy.load());
}

TEST(ZsStress, CompressedStoreUnderConcurrentStoresLoadsAndCompaction) {
  auto a = test::make_arena(std::size_t{128} << 20);
  ZramConfig cfg;
  cfg.pages = 2048;
  auto z = ZramStore::create(std::move(a->zs_create_pool().value()), cfg);
  ASSERT_TRUE(z.ok());
  ZramStore& s = *z.value();
  // Thread t owns indices i with i % 2 == t; it keeps the expected version of each page.
  std::atomic<bool> stop{false};
  std::atomic<unsigned> bad{0};
  auto page_of = [](std::uint64_t index, std::uint64_t version, unsigned char* b) {
    for (std::size_t i = 0; i < kPageSize; ++i)  // compressible: runs of a few distinct bytes
      b[i] = static_cast<unsigned char>((version % 3 == 0) ? 0 : (index + version + i / 64) % 7);
  };
  const unsigned rounds = test::stress_scale(6000);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {
      std::vector<std::uint64_t> version(cfg.pages, 0);
      std::mt19937_64 rng(t + 5);
      std::vector<unsigned char> b(kPageSize), out(kPageSize);
      for (unsigned r = 0; r < rounds; ++r) {
        std::uint64_t i = (rng() % (cfg.pages / 2)) * 2 + t;
        if (rng() % 2) {
          version[i] = rng() % 1000 + 1;
          page_of(i, version[i], b.data());
          if (s.store(i, b.data())) bad.fetch_add(1);
        } else if (version[i]) {
          page_of(i, version[i], b.data());
          if (s.load(i, out.data()) || std::memcmp(out.data(), b.data(), kPageSize) != 0) bad.fetch_add(1);
        }
      }
    });
  std::thread compactor([&] {
    while (!stop.load()) {
      s.compact();
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  for (auto& t : ts) t.join();
  stop.store(true);
  compactor.join();
  s.pool().validate();
  EXPECT_EQ(bad.load(), 0u);
}

}  // namespace
