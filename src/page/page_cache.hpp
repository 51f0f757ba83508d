// page/page_cache.hpp — per-thread page caches (the kernel's per-CPU page lists, per thread).
//
// Each thread that allocates from an arena gets, on its first allocation, one ThreadPageCache
// for that arena: for each zone and each order 0..kPcpMaxOrder a stack of free blocks
// (pfns). Allocation pops, free pushes; both touch only the calling thread's memory [PCP-OWNER].
// An empty stack refills `batch` blocks under the zone lock; a full one (count == high) drains
// its `batch` coldest blocks to the buddy — unless it was refilled since it last overflowed: a
// thread that allocates a burst and frees it again then doubles `high` (up to high_max) so the
// next burst stays in the cache, as the kernel's per-CPU lists tune their high mark. One-way
// flows (a thread that only frees, or only allocates) never grow. A thread's caches drain
// completely when it exits or calls drain; when an arena dies first, its caches are orphaned and
// freed by their thread.
//
// Blocks in a cache are free for misuse checks: their words are Buddy (first page: Buddy with
// the dirty flag, never the head bit; others 0) [BUDDY-WORD]; but the buddy's bitmaps do not
// list them (they are "allocated" from the buddy's point of view) [PCP-WORD].
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/base.hpp"
#include "core/core.hpp"

namespace memdesc::page {

class PageAllocator;

// The lock (rank CacheRegistry) that guards ThreadPageCache::owner, the registry links and the
// extension slots. One per process; constant-initialised.
inline constinit SpinLock g_cache_registry{LockRank::CacheRegistry};
inline SpinLock& cache_registry_lock() RETURN_CAPABILITY(g_cache_registry) { return g_cache_registry; }

inline constexpr unsigned kPcpMaxOrder = 3;  // orders 0..3 are cached, as the kernel's "costly" bound
inline constexpr unsigned kPcpOrders = kPcpMaxOrder + 1;

struct PcpList {
  std::atomic<std::uint32_t> count{0};  // written by the owner thread only; others read relaxed
  std::uint32_t high = 0;               // owner only: current limit == capacity of pfns
  std::uint32_t* pfns = nullptr;        // owner only: [0, count) cached; pfns[count-1] is hottest
  std::uint32_t batch = 0;              // immutable after creation
  std::uint32_t high_max = 0;           // immutable: the most `high` grows to
  bool refilled = false;                // owner only: refilled since the last overflow
};

// A higher layer's per-thread state hung off the page cache, so that one registry governs every
// per-thread cache of an arena. A layer registers once per arena (register_cache_ext) and gets
// the slot its contexts use; the page layer knows no layer above it. `ops` says what to do at
// the end: at thread exit with the arena alive (registry lock held; may free pages), or
// release when the arena is gone or the layer detaches (free the context only).
// fork_orphan: in a fork child, the context of a thread that did not survive the fork (no
// lock held; its state may be torn: check everything before trusting it), then free it.
struct CacheExtOps {
  void (*thread_exit)(void* ctx);
  void (*release)(void* ctx);
  void (*fork_orphan)(void* ctx);
};
struct CacheExt {
  void* ctx = nullptr;                // owner thread writes it once; registry lock to clear
  const CacheExtOps* ops = nullptr;
};
inline constexpr unsigned kMaxCacheExt = 2;  // layers with per-thread state: slots per cache

struct ThreadPageCache {
  PcpList lists[core::kNrZones][kPcpOrders];  // owner thread only (PCP-OWNER)
  CacheExt ext[kMaxCacheExt];
  // Guarded by the cache registry lock (rank CacheRegistry): the allocator (null once it is
  // destroyed: the cache is an orphan) and the links of the allocator's list of caches.
  PageAllocator* owner GUARDED_BY(g_cache_registry) = nullptr;
  ThreadPageCache* reg_prev GUARDED_BY(g_cache_registry) = nullptr;
  ThreadPageCache* reg_next GUARDED_BY(g_cache_registry) = nullptr;
  std::uint64_t owner_id = 0;  // immutable: Memmap::id() of the owner's arena
  std::size_t bytes = 0;       // owner only: this struct and its stacks, for metadata accounting
};

// Frees a cache, its stacks and released extensions (no accounting: the caller settles that).
void free_thread_cache(ThreadPageCache* c);

// The fast-path slot: the cache the calling thread used last. Trivial, constant-initialised, so
// reading it is one TLS load with no guard.
struct TlsPageCacheSlot {
  std::uint64_t id = 0;
  ThreadPageCache* cache = nullptr;
};
inline constinit thread_local TlsPageCacheSlot tls_page_cache{};

// Slow path: find or create the calling thread's cache for `pa`; null when the thread is
// exiting or the cache cannot be allocated (the caller then uses the buddy directly).
ThreadPageCache* attach_thread_cache(PageAllocator* pa);
// The calling thread's cache for `pa`, or null; never creates one.
ThreadPageCache* find_thread_cache(const PageAllocator* pa);
// Called by ~PageAllocator: orphans every cache of `pa` and frees the calling thread's.
void detach_all_thread_caches(PageAllocator* pa);
// A higher layer's slot in every thread cache of `pa`, with what to do with its contexts at the
// end; fatal when all kMaxCacheExt slots are taken. Call once, before the first context.
unsigned register_cache_ext(PageAllocator* pa, const CacheExtOps* ops);
// The context in `slot` of a thread cache (owner thread, or with the registry lock held).
inline void* cache_ext(const ThreadPageCache* c, unsigned slot) { return c->ext[slot].ctx; }
// The owner thread sets its context once (takes the registry lock). False, and nothing stored,
// when the cache's arena is gone or the slot is not registered: the caller keeps the context.
[[nodiscard]] bool set_cache_ext(ThreadPageCache* c, unsigned slot, void* ctx);
// Calls fn(ctx) for the context in `slot` of every live thread cache of `pa`, with the
// registry lock held: fn may touch the context but must not take a lock of rank <= CacheRegistry.
template <class Fn>
void for_each_cache_ext(PageAllocator* pa, unsigned slot, Fn&& fn);
// Releases extension `slot` of every cache of `pa` (a higher layer going away first).
void detach_cache_ext(PageAllocator* pa, unsigned slot);

// fork(): the registry lock is held across it (registered once, by the first allocator); in the
// child, every cache of `pa` that is not the surviving thread's is taken off the registry and
// reclaimed (extensions' fork_orphan, then PageAllocator::reclaim_orphan_cache).
void enable_registry_fork_hook();
void reclaim_dead_thread_caches(PageAllocator* pa);

}  // namespace memdesc::page
