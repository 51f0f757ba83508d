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
#include <iterator>
#include <map>
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

// One arena per fuzzing process (creating one per input would cost more than the input):
// 16 MiB, so that inputs meet out-of-memory too. Each input gives back everything it took;
// end_of_input checks that.
inline Arena& arena() {
  static Arena* a = [] {
    ArenaConfig c;
    c.size = std::size_t{16} << 20;
    auto r = Arena::create(c);
    FUZZ_CHECK(r.ok());
    return r.value().release();  // for the life of the process
  }();
  return *a;
}

// Fault injection for the input's operations (the harness disarms it before its cleanup): one
// byte in four inputs fails every 2nd..9th page allocation and, or instead, every 2nd..5th
// descriptor allocation, so the unwinding of every allocator is fuzzed too. Whatever fails
// must be a clean error the model can skip, and end_of_input must still find the arena whole.
inline void arm_faults(FuzzedDataProvider& in) {
  std::uint8_t b = in.ConsumeIntegral<std::uint8_t>();
  if (b >= 64) return;
  std::uint64_t page_every = (b & 1) ? 2 + ((b >> 1) & 7) : 0;
  std::uint64_t desc_every = (b & 16) ? 2 + ((b >> 4) & 3) : ((b & 1) ? 0 : 3);
  set_fault_injection(page_every, desc_every);
}
inline void disarm_faults() { set_fault_injection(0, 0); }

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

// The model's intervals: a new block or object must overlap none that is live (a pattern at its
// ends could miss a block handed out inside a live larger one).
class Intervals {
 public:
  void add(const void* p, std::size_t n) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    auto next = live_.lower_bound(a);
    FUZZ_CHECK(next == live_.end() || next->first >= a + n);
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      FUZZ_CHECK(prev->first + prev->second <= a);
    }
    live_[a] = n;
  }
  void remove(const void* p) { FUZZ_CHECK(live_.erase(reinterpret_cast<std::uintptr_t>(p)) == 1); }

 private:
  std::map<std::uintptr_t, std::size_t> live_;
};

// Everything the input took was given back: no folio or page_frag block is left and the arena
// validates; every 64th input, once the caches are shrunk, no kmalloc object is active and
// every page is free again.
inline void end_of_input(Arena& a) {
  static unsigned inputs = 0;
  a.drain_thread_cache();
  a.validate();
  ArenaInfo i = a.info();
  FUZZ_CHECK(i.folios == 0 && i.frag_blocks == 0);
  if (++inputs % 64 == 0) {
    // (Objects in a cache's depot count as active until a shrink gives them back.)
    a.shrink();
    a.drain_thread_cache();
    for (const SlabCacheInfo& c : a.slabinfo())
      if (c.name.rfind("kmalloc-", 0) == 0) FUZZ_CHECK(c.active_objs == 0);
    FUZZ_CHECK(a.info().free_pages == i.pages);
  }
}

}  // namespace memdesc::fuzz
