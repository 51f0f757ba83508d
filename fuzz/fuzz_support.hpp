// fuzz/fuzz_support.hpp — what every harness shares: a small arena per input, patterns that
// prove no byte was handed out twice, and the end-of-input checks (everything given back, the
// arena validates and coalesces).
#pragma once
#include <fuzzer/FuzzedDataProvider.h>
#include <memdesc/memdesc.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace memdesc::fuzz {

// A failed check is a crash libFuzzer records with the input that caused it.
#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "fuzz check failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

inline std::unique_ptr<Arena> small_arena(FuzzedDataProvider& in, bool thread_cache = true) {
  ArenaConfig c;
  c.size = std::size_t{8} << 20;
  c.max_order = in.ConsumeIntegralInRange<unsigned>(3, 10);
  c.movable_percent = in.ConsumeIntegralInRange<unsigned>(0, 50);
  c.thread_cache = thread_cache && in.ConsumeBool();
  auto r = Arena::create(c);
  FUZZ_CHECK(r.ok());
  return std::move(r.value());
}

// The byte pattern of object `tag`: a byte that changes along the object.
inline unsigned char pat(std::uint64_t tag, std::size_t i) { return static_cast<unsigned char>(tag * 131 + i * 7 + 1); }
inline void fill(void* p, std::size_t n, std::uint64_t tag) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = pat(tag, i);
}
inline bool intact(const void* p, std::size_t n, std::uint64_t tag) {
  auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != pat(tag, i)) return false;
  return true;
}

// Everything was given back: after draining, every page is free again in max-order blocks.
inline void expect_all_free(Arena& a) {
  a.drain_thread_cache();
  a.shrink();
  a.validate();
  ArenaInfo i = a.info();
  FUZZ_CHECK(i.free_pages == i.pages);
}

}  // namespace memdesc::fuzz
