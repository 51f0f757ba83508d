// base/lock_rank.hpp — THE lock order of memdesc, and the lock type that enforces it.
//
// Locks are taken in increasing rank; a thread may take a lock only if its rank is greater than
// the rank of every lock it already holds. Checked builds (MEMDESC_CHECKED) keep a per-thread
// stack of held ranks and report an inversion as a fatal error; fast builds carry no cost.
// docs/LOCKING.md restates this table with what each lock protects; keep both in step.
#pragma once
#include <atomic>
#include <iterator>
#include <cstdint>
#include <mutex>

#include "base/compiler.hpp"
#include "base/thread_annotations.hpp"

namespace memdesc {

enum class LockRank : std::uint8_t {
  // zram/zram.cpp: striped per-entry mutexes of a compressed page store. Taken outermost: a
  // load holds one across its object read (pool and zspage read locks); a store only to swap
  // the entry, and frees the old object after dropping it.
  ZramEntry = 5,
  // page/page_cache.cpp: the registry of per-thread page caches (attach, thread exit, arena
  // teardown). Taken before a zone lock when a cache is drained.
  CacheRegistry = 10,
  // slab/slab_alloc.hpp: one per arena; guards the table of caches (create, destroy).
  SlabRegistry = 12,
  // zsmalloc/zs_pool.hpp: one per pool, a reader/writer lock. Readers (handle translation in
  // zs_free and the object access calls) hold it briefly; compaction and page migration hold
  // it for writing while handles are rewritten.
  ZsPool = 13,
  // zsmalloc/zs_pool.hpp: one per size class; its fullness lists, counters and the mutable
  // fields of its zspages. Never held while pages or descriptors are allocated or freed.
  ZsClass = 14,
  // slab/kmem_cache.hpp: one per kmem_cache; guards its slab lists, counters and the mutable fields
  // of its slab descriptors. Never held while pages are allocated or freed.
  SlabCache = 15,
  // page/buddy.hpp: one per zone; protects that zone's free-block bitmaps, counters and the
  // Buddy words of free blocks' first pages.
  Zone = 20,
  // slab/kmem_cache.hpp, checked builds only: one mutex per kmem_cache over its set of live
  // objects. A leaf: nothing is taken while it is held.
  SlabLive = 30,
  // frag/frag_alloc.hpp, checked builds only: one mutex per arena over its set of live page
  // fragments. A leaf.
  FragLive = 31,
};

// Every rank, lowest first: fork() (rcu/fork.hpp) takes the locks of each rank in this order.
inline constexpr LockRank kAllLockRanks[] = {LockRank::ZramEntry, LockRank::CacheRegistry, LockRank::SlabRegistry,
                                             LockRank::ZsPool,    LockRank::ZsClass,      LockRank::SlabCache,
                                             LockRank::Zone,      LockRank::SlabLive,     LockRank::FragLive};
constexpr bool lock_ranks_ascend() {
  for (unsigned i = 1; i < std::size(kAllLockRanks); ++i)
    if (kAllLockRanks[i - 1] >= kAllLockRanks[i]) return false;
  return true;
}
static_assert(lock_ranks_ascend(), "kAllLockRanks lists every rank in increasing order");

const char* lock_rank_name(LockRank r);

// Set by the fork child handler (rcu/fork.cpp) while it releases the locks it took in prepare:
// waiters that threads of the parent announced in a lock word do not exist in the child, so
// fork_release forgets them there. Only the forking thread writes it, with no other thread.
inline bool g_fork_child_releasing = false;

// One step of waiting for a lock another thread holds: pause for the first 64 steps, then give
// the CPU away (with more threads than cores the holder may need it). Every spinning lock uses it.
void spin_backoff(unsigned& spins);

namespace lock_witness {
void acquired(LockRank r);  // checked builds: verify order, push
void released(LockRank r);  // checked builds: pop
}  // namespace lock_witness

// What every lock type here shares: no copies, and its rank (a member `rank_` of the lock,
// fixed at construction). An empty base, so each lock's own word stays at offset 0.
template <class Lock>
class RankedLock {
 public:
  RankedLock(const RankedLock&) = delete;
  RankedLock& operator=(const RankedLock&) = delete;
  LockRank rank() const { return static_cast<const Lock*>(this)->rank_; }

 protected:
  constexpr RankedLock() = default;
  ~RankedLock() = default;
};

// A test-and-test-and-set spin lock with a rank. Short critical sections only (the zone lock is
// held for a bounded number of bitmap operations, never across a system call).
class CAPABILITY("mutex") SpinLock : public RankedLock<SpinLock> {
 public:
  explicit constexpr SpinLock(LockRank rank) : rank_(rank) {}

  void lock() ACQUIRE() {
    if (MEMDESC_UNLIKELY(locked_.exchange(true, std::memory_order_acquire))) lock_slow();
    if constexpr (kChecked) lock_witness::acquired(rank_);
  }
  // Takes the lock only if it is free at once (no spinning).
  bool try_lock() TRY_ACQUIRE(true) {
    if (locked_.load(std::memory_order_relaxed) || locked_.exchange(true, std::memory_order_acquire)) return false;
    if constexpr (kChecked) lock_witness::acquired(rank_);
    return true;
  }
  void unlock() RELEASE() {
    if constexpr (kChecked) lock_witness::released(rank_);
    locked_.store(false, std::memory_order_release);
  }
  // fork() (rcu/fork.hpp): the forking thread holds every lock of the process across the fork,
  // rank by rank, many of one rank at once, so without the witness. Released by the same
  // thread in the parent and in the child.
  void fork_acquire() ACQUIRE() {
    if (MEMDESC_UNLIKELY(locked_.exchange(true, std::memory_order_acquire))) lock_slow();
  }
  void fork_release() RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  MEMDESC_SLOW_PATH void lock_slow();

  friend class RankedLock<SpinLock>;
  std::atomic<bool> locked_{false};
  LockRank rank_;
};

// Holds a lock (SpinLock, RankedMutex) for a scope, visible to the thread-safety analysis.
template <class Lock>
class SCOPED_CAPABILITY ScopedLock {
 public:
  explicit ScopedLock(Lock& l) ACQUIRE(l) : l_(l) { l_.lock(); }
  ~ScopedLock() RELEASE() { l_.unlock(); }
  ScopedLock(const ScopedLock&) = delete;
  ScopedLock& operator=(const ScopedLock&) = delete;

 private:
  Lock& l_;
};
using LockGuard = ScopedLock<SpinLock>;

// A reader/writer spin lock with a rank, writer-preferring: a waiting writer stops new readers.
// Readers and writers hold it for short sections only (never across user code or a system
// call). `contended()` tells a long-running writer that others wait, so it can yield.
class CAPABILITY("mutex") RwSpinLock : public RankedLock<RwSpinLock> {
 public:
  explicit constexpr RwSpinLock(LockRank rank) : rank_(rank) {}

  void read_lock() ACQUIRE_SHARED() {
    std::uint32_t v = state_.load(std::memory_order_relaxed);
    if (MEMDESC_UNLIKELY((v & kWriterBits) != 0 ||
                         !state_.compare_exchange_weak(v, v + kReader, std::memory_order_acquire,
                                                       std::memory_order_relaxed)))
      read_lock_slow();
    if constexpr (kChecked) lock_witness::acquired(rank_);
  }
  void read_unlock() RELEASE_SHARED() {
    if constexpr (kChecked) lock_witness::released(rank_);
    state_.fetch_sub(kReader, std::memory_order_release);
  }
  void write_lock() ACQUIRE() {
    std::uint32_t v = 0;
    if (MEMDESC_UNLIKELY(!state_.compare_exchange_strong(v, kWriter, std::memory_order_acquire,
                                                         std::memory_order_relaxed)))
      write_lock_slow();
    if constexpr (kChecked) lock_witness::acquired(rank_);
  }
  void write_unlock() RELEASE() {
    if constexpr (kChecked) lock_witness::released(rank_);
    state_.fetch_and(~kWriter, std::memory_order_release);  // a waiting writer's bit stays
  }
  // fork(): as SpinLock's, for writing.
  void fork_acquire() ACQUIRE() {
    std::uint32_t v = 0;
    if (!state_.compare_exchange_strong(v, kWriter, std::memory_order_acquire, std::memory_order_relaxed)) write_lock_slow();
  }
  void fork_release() RELEASE() {
    if (g_fork_child_releasing) {  // the parent's waiting readers and writers are not here
      read_waiters_.store(0, std::memory_order_relaxed);
      state_.store(0, std::memory_order_release);
      return;
    }
    state_.fetch_and(~kWriter, std::memory_order_release);
  }
  // Someone waits for the lock (a reader spinning, or a writer announced).
  bool contended() const {
    return read_waiters_.load(std::memory_order_relaxed) != 0 ||
           (state_.load(std::memory_order_relaxed) & kWriterWaiting) != 0;
  }

 private:
  static constexpr std::uint32_t kWriter = 1, kWriterWaiting = 2, kWriterBits = 3, kReader = 4;
  MEMDESC_SLOW_PATH void read_lock_slow();
  MEMDESC_SLOW_PATH void write_lock_slow();

  std::atomic<std::uint32_t> state_{0};  // bit 0 writer holds, bit 1 writer waits, readers << 2
  friend class RankedLock<RwSpinLock>;
  std::atomic<std::uint32_t> read_waiters_{0};
  LockRank rank_;
};

// A std::mutex with a rank, for sections that may block (the zram entry stripes) or that
// guard libc containers (the checked-build live sets). Held with MutexGuard.
class CAPABILITY("mutex") RankedMutex : public RankedLock<RankedMutex> {
 public:
  explicit RankedMutex(LockRank rank) : rank_(rank) {}

  void lock() ACQUIRE() {
    m_.lock();
    if constexpr (kChecked) lock_witness::acquired(rank_);
  }
  void unlock() RELEASE() {
    if constexpr (kChecked) lock_witness::released(rank_);
    m_.unlock();
  }
  void fork_acquire() ACQUIRE() { m_.lock(); }  // fork(): as SpinLock's
  void fork_release() RELEASE() { m_.unlock(); }

 private:
  friend class RankedLock<RankedMutex>;
  std::mutex m_;
  LockRank rank_;
};

using MutexGuard = ScopedLock<RankedMutex>;

}  // namespace memdesc
