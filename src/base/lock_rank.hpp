// base/lock_rank.hpp — THE lock order of memdesc, and the lock type that enforces it.
//
// Locks are taken in increasing rank; a thread may take a lock only if its rank is greater than
// the rank of every lock it already holds. Checked builds (MEMDESC_CHECKED) keep a per-thread
// stack of held ranks and report an inversion as a fatal error; fast builds carry no cost.
// docs/LOCKING.md restates this table with what each lock protects; keep both in step.
#pragma once
#include <atomic>
#include <cstdint>

#include "base/compiler.hpp"

namespace memdesc {

enum class LockRank : std::uint8_t {
  // page/page_cache.cpp: the registry of per-thread page caches (attach, thread exit, arena
  // teardown). Taken before a zone lock when a cache is drained.
  CacheRegistry = 10,
  // slab/slab.cpp: one per arena; guards the table of caches (create, destroy).
  SlabRegistry = 12,
  // slab/slab.hpp: one per kmem_cache; guards its slab lists, counters and the mutable fields
  // of its slab descriptors. Never held while pages are allocated or freed.
  SlabCache = 15,
  // page/buddy.hpp: one per zone; protects that zone's free-block bitmaps, counters and the
  // Buddy words of free blocks' first pages.
  Zone = 20,
};

const char* lock_rank_name(LockRank r);

namespace lock_witness {
void acquired(LockRank r);  // checked builds: verify order, push
void released(LockRank r);  // checked builds: pop
}  // namespace lock_witness

// A test-and-test-and-set spin lock with a rank. Short critical sections only (the zone lock is
// held for a bounded number of bitmap operations, never across a system call).
class SpinLock {
 public:
  explicit constexpr SpinLock(LockRank rank) : rank_(rank) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() {
    if (MEMDESC_UNLIKELY(locked_.exchange(true, std::memory_order_acquire))) lock_slow();
    if constexpr (kChecked) lock_witness::acquired(rank_);
  }
  void unlock() {
    if constexpr (kChecked) lock_witness::released(rank_);
    locked_.store(false, std::memory_order_release);
  }
  LockRank rank() const { return rank_; }

 private:
  MEMDESC_SLOW_PATH void lock_slow();

  std::atomic<bool> locked_{false};
  LockRank rank_;
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace memdesc
