// slab/kmem_cache.hpp — one object cache: its geometry, its slab lists, its depot, its
// deferred (RCU) slab frees.
//
// Locking: KmemCache::lock (rank SlabCache) guards the cache's lists, counters, depot and every
// mutable field of its slabs' descriptors (slab_desc.hpp). No page is allocated or freed under
// it. Immutable fields are written by cache_init before the cache is published (caches_ with
// release order) and read without a lock afterwards.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "base/base.hpp"
#include "core/core.hpp"
#include "page/page.hpp"
#include "rcu/rcu.hpp"
#include "slab/magazine_pair.hpp"
#include "slab/slab_desc.hpp"

namespace memdesc::slab {

class SlabAllocator;

inline constexpr unsigned kMinEmpty = 1;             // empty slabs a cache keeps
inline constexpr std::uint8_t kPoisonFree = 0x6b;    // checked builds, SLAB_POISON: a free object's bytes
inline constexpr std::uint8_t kRedZone = 0xbb;       // checked builds, SLAB_RED_ZONE: the guard bytes
inline constexpr std::uint32_t kRedZoneBytes = 16;

struct SlabCreate;

class KmemCache {
 public:
  // Immutable after creation (id excepted: kmem_cache_destroy sets kDeadCacheId in the shell,
  // when no thread may use the cache any more).
  char name[32] = {};
  std::uint16_t id = 0;
  std::uint16_t word_aux = 0;     // what its slab words carry in aux: id, | kInternalAux if internal (SLAB-INTERNAL)
  bool internal = false;          // a layer's own: kfree / ksize refuse its objects
  bool marked = false;            // hardened builds: free objects carry SLAB-FREE-MARK
  SlabAllocator* sa = nullptr;    // its arena's allocator: next to id, so the fast paths' arena check costs no line
  std::uint32_t object_size = 0;  // what the creator asked for
  std::uint32_t stride = 0;       // slot size: object (+ red zone) (+ out-of-object freeptr), aligned
  std::uint32_t align = 8;
  std::uint32_t freeptr_off = 0;  // where a free slot keeps its freelist link
  std::uint32_t redzone_off = 0;  // first red-zone byte (checked builds with SLAB_RED_ZONE), 0 = none
  std::uint64_t div_magic = 0;    // Lemire: off % stride == 0  <=>  off * div_magic < div_magic
  std::uint16_t objects = 0;      // slots per slab
  std::uint8_t order = 0;         // pages per slab = 2^order
  // Slots of each slab that are never handed out: 1 for the descriptor cache, whose object 0
  // is the slab's own descriptor (SLAB-SELF), else 0.
  std::uint8_t reserved_slots = 0;
  bool poison = false;            // checked builds with SLAB_POISON
  // ASan builds: free slots and an object's slack are poisoned (not for typesafe-by-RCU
  // caches, whose readers may read a freed object by design).
  bool asan_poison = false;
  std::uint32_t mag_cap_max = 0;  // the magazine capacity MAG-GROW stops at
  SlabFlags flags;
  void (*ctor)(void*) = nullptr;
  // Where its slabs come from: the arena for a user's cache, the metadata region for a layer's
  // own (META-OOB: no descriptor or handle shares a page range with user memory).
  const core::Memmap* mm = nullptr;     // slab pfns to addresses and descriptors
  page::PageAllocator* pa = nullptr;    // the pages of its slabs
  // Set by kmem_cache_destroy, which keeps the object as a shell (id kDeadCacheId) until the
  // arena goes, so that a later use of the cache is a precise report, not a use after free.
  std::atomic<bool> dead{false};

  // Guarded by lock (GUARDED_BY; the slab descriptors' mutable fields too, which the analysis
  // cannot name: the `_locked` functions that touch them REQUIRE this lock).
  mutable SpinLock lock{LockRank::SlabCache};
  std::uint32_t partial GUARDED_BY(lock) = kNil, empty GUARDED_BY(lock) = kNil;  // list heads (pfns)
  std::uint64_t nr_partial GUARDED_BY(lock) = 0, nr_empty GUARDED_BY(lock) = 0;
  std::uint64_t nr_slabs GUARDED_BY(lock) = 0, inuse GUARDED_BY(lock) = 0;  // inuse: slots handed out
  // Magazine capacity: every magazine the depot holds has mag_cap slots; a thread's pair of
  // another capacity is remade at its next slow path for this cache. Written under lock (it
  // only grows, MAG-GROW); owner threads read it without the lock to see whether their
  // magazines are current.
  std::atomic<std::uint32_t> mag_cap{0};
  // MAG-GROW bookkeeping: slow-path lock takings in this window, and how many found the lock
  // held. grow_due: a window's verdict is "grow"; set under lock, read by slow paths without it.
  std::uint32_t lock_trips GUARDED_BY(lock) = 0, lock_waits GUARDED_BY(lock) = 0;
  std::atomic<bool> grow_due{false};
  // The depot: full magazines (arrays of mag_cap objects) handed between threads whole, and
  // empty ones to swap in. Objects in the depot count as in use for their slabs. DEPOT-MAX:
  // nfull + nempty <= depot_max(), so a burst's magazines are reused, not remade, and the
  // depot's metadata stays bounded.
  void** depot_full[kDepotMax] GUARDED_BY(lock) = {};
  void** depot_empty[kDepotMax] GUARDED_BY(lock) = {};
  std::uint32_t nfull GUARDED_BY(lock) = 0, nempty GUARDED_BY(lock) = 0;
  std::uint32_t rcu_pending GUARDED_BY(lock) = kNil;   // discarded slabs waiting for the next grace period
  std::uint32_t rcu_inflight GUARDED_BY(lock) = kNil;  // discarded slabs whose grace period is running
  bool rcu_armed GUARDED_BY(lock) = false;
  // The deferred discard's callback argument: the head first, so the callback finds the cache.
  struct RcuHook {
    rcu::Head head{};
    KmemCache* cache = nullptr;
  } rcu_hook{{}, this};

  // Checked builds: the exact set of objects handed to users (per-object state), guarded by
  // live_mu (rank SlabLive, a leaf: nothing is taken under it).
  mutable RankedMutex live_mu{LockRank::SlabLive};
  std::unordered_set<std::uintptr_t> live GUARDED_BY(live_mu);

  [[nodiscard]] Error init(const SlabCreate& a, unsigned cache_id, SlabAllocator* owner, const core::Memmap* memmap,
                           page::PageAllocator* pages);
  // A layer's own cache (descriptors always are, and the descriptor cache): unreachable through
  // kfree / ksize (SLAB-INTERNAL), its slabs in the metadata region (META-OOB).
  static bool is_internal(const SlabCreate& a, unsigned cache_id);
  bool on_slot_boundary(std::uint64_t off) const { return off * div_magic < div_magic; }
  Slab* slab_at(std::uint32_t pfn) const { return mm->word(pfn).desc_as<Slab>(); }  // a slab of this cache

  // The lists (SLAB-LIST) and the objects on slabs (SLAB-COUNT, MAG-TOP at the slab), with
  // the lock held: the cache's counters and its slabs' descriptors change together.
  void list_add_locked(Slab* s, SlabList l) REQUIRES(lock);
  void list_del_locked(Slab* s) REQUIRES(lock);
  void* take_object_locked(Slab* s) REQUIRES(lock);              // the next free object of s
  std::uint32_t put_object_locked(Slab* s, void* p) REQUIRES(lock);  // a pfn to discard, or kNil
  // Magazines, full or empty, the depot may hold at the current capacity (DEPOT-MAX).
  std::uint32_t depot_max() const { return depot_max_for(mag_cap.load(std::memory_order_relaxed), stride); }
  // A magazine slow path took the lock, after finding it held if `waited` (MAG-GROW). Lock held.
  void count_lock_taking(bool waited) REQUIRES(lock) {
    if (mag_cap.load(std::memory_order_relaxed) >= mag_cap_max) return;
    ++lock_trips;
    lock_waits += waited;
    if (lock_trips < kGrowWindow) return;
    if (lock_waits >= kGrowWaits) grow_due.store(true, std::memory_order_relaxed);
    lock_trips = lock_waits = 0;
  }
};

// The lock of a magazine slow path (depot, refill, flush): counts the takings that found it
// held, the contention MAG-GROW answers with larger magazines.
class SCOPED_CAPABILITY MagLockGuard {
 public:
  // The analysis cannot follow a lock taken by try-or-lock; it is held on both branches.
  explicit MagLockGuard(KmemCache* c) ACQUIRE(c->lock) NO_THREAD_SAFETY_ANALYSIS : c_(c) {
    bool waited = !c->lock.try_lock();
    if (waited) c->lock.lock();
    c->count_lock_taking(waited);
  }
  ~MagLockGuard() RELEASE() NO_THREAD_SAFETY_ANALYSIS { c_->lock.unlock(); }
  MagLockGuard(const MagLockGuard&) = delete;
  MagLockGuard& operator=(const MagLockGuard&) = delete;

 private:
  KmemCache* c_;
};

struct SlabCreate {
  const char* name = "";
  std::size_t size = 0;
  std::size_t align = 0;           // 0: 8 (16 for sizes >= 16)
  SlabFlags flags = SLAB_NONE;
  void (*ctor)(void*) = nullptr;
  std::size_t freeptr_offset = ~std::size_t{0};  // a 4-byte field free slots may reuse
  bool descriptor = false;  // a memdesc cache (folio, frag, ...): must be typesafe by RCU; internal
  bool internal = false;    // a layer's own cache (descriptors always are): unreachable through kfree / ksize
};

}  // namespace memdesc::slab
