// Test support: small arenas, patterns, and stress sizing shared by the test tiers.
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memdesc/memdesc.hpp>
#include <memory>

namespace memdesc {
// The two memmaps of an arena, for tests that write words on purpose (corruption tests).
struct ArenaTestAccess {
  static core::Memmap& arena(Arena& a) { return *a.mm_; }
  static core::Memmap& metadata_region(Arena& a) { return *a.meta_mm_; }
};
}  // namespace memdesc

namespace memdesc::test {

inline std::unique_ptr<Arena> make_arena(ArenaConfig cfg) {
  auto r = Arena::create(cfg);
  if (!r.ok()) {
    ADD_FAILURE() << "Arena::create: " << describe(r.error());
    return nullptr;
  }
  return std::move(r.value());
}

inline std::unique_ptr<Arena> make_arena(std::size_t size = std::size_t{64} << 20, unsigned max_order = 10,
                                         unsigned movable_percent = 25, bool thread_cache = true) {
  ArenaConfig c;
  c.size = size;
  c.max_order = max_order;
  c.movable_percent = movable_percent;
  c.thread_cache = thread_cache;
  return make_arena(c);
}

// The largest arena the tests reserve: 1 TiB, except under TSan, whose shadow mappings make a
// reservation that large fail at random (TSan's limit, not memdesc's).
#if defined(MEMDESC_TSAN)
inline constexpr std::size_t kHugeArena = std::size_t{64} << 30;
#else
inline constexpr std::size_t kHugeArena = std::size_t{1} << 40;
#endif

// The 64-bit pattern word i of a block holds for a given tag.
inline std::uint64_t pattern(std::uint64_t tag, std::uint64_t i) { return (tag * 0x9E3779B97F4A7C15ull) ^ (i * 0xBF58476D1CE4E5B9ull) ^ i; }

inline void fill(void* p, std::size_t bytes, std::uint64_t tag) {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < bytes / 8; ++i) w[i] = pattern(tag, i);
}

// Index of the first word that does not hold the pattern, or SIZE_MAX.
inline std::size_t check(const void* p, std::size_t bytes, std::uint64_t tag) {
  auto* w = static_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < bytes / 8; ++i)
    if (w[i] != pattern(tag, i)) return i;
  return SIZE_MAX;
}

// A bounded single-producer single-consumer ring of N slots.
template <class T, std::size_t N>
struct SpscRing {
  T slots[N];
  std::atomic<std::size_t> head{0}, tail{0};
  bool push(const T& v) {
    std::size_t h = head.load(std::memory_order_relaxed);
    if (h - tail.load(std::memory_order_acquire) == N) return false;
    slots[h % N] = v;
    head.store(h + 1, std::memory_order_release);
    return true;
  }
  bool pop(T& v) {
    std::size_t t = tail.load(std::memory_order_relaxed);
    if (t == head.load(std::memory_order_acquire)) return false;
    v = slots[t % N];
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
};

// Multiplier for the stress tier (MEMDESC_STRESS_SCALE, default 1); smaller under TSan.
inline unsigned stress_scale(unsigned base) {
  const char* s = std::getenv("MEMDESC_STRESS_SCALE");
  double f = s ? std::atof(s) : 1.0;
#if defined(MEMDESC_TSAN)
  f /= 4;
#endif
  unsigned n = static_cast<unsigned>(base * f);
  return n ? n : 1;
}

// Every page of every zone is in the buddy, and every free block is of the largest order.
inline void expect_fully_coalesced(const Arena& a) {
  ArenaInfo i = a.info();
  EXPECT_EQ(i.free_pages, i.pages);
  EXPECT_EQ(i.cached_pages, 0u);
  for (const ZoneInfo& z : i.zones) {
    EXPECT_EQ(z.free_pages, z.pages) << z.name;
    EXPECT_EQ(z.nr_free[i.max_order], z.pages >> i.max_order) << z.name;
    for (unsigned k = 0; k < i.max_order; ++k) EXPECT_EQ(z.nr_free[k], 0u) << z.name << " order " << k;
  }
}

// Everything freed, flushed and shrunk: the arena is whole max-order blocks again (the calling
// thread's magazines and page cache are emptied; other threads must have exited), and so is the
// metadata region: no descriptor or handle slab is left (a leak of descriptors shows here).
inline void expect_all_returned(Arena& a) {
  a.shrink();
  a.drain_thread_cache();
  a.validate();
  expect_fully_coalesced(a);
  ArenaInfo i = a.info();
  EXPECT_EQ(i.metadata_region_free_pages, i.metadata_region_bytes / kPageSize);
  EXPECT_EQ(i.metadata.descriptors, 0u);
}

}  // namespace memdesc::test
