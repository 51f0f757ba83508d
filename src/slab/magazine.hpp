// slab/magazine.hpp — the magazine layer of one arena's slab allocator: thread contexts and
// their life cycle, magazine pairs (made, grown under contention, flushed), the exchange of
// whole magazines through each cache's depot, and the transfers between magazines and slabs.
//
// The fast paths (slab_alloc.hpp) pop and push on a thread's magazine pair themselves; every
// other touch of a magazine comes through here. Invariants: MAG-OWNER, MAG-TOP, MAG-GROW,
// DEPOT-MAX (slab/slab.hpp, docs/INVARIANTS.md). Locking: the cache lock (MagLockGuard, which counts contention for
// MAG-GROW) for depot exchanges and transfers; the registry lock for thread contexts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <cstdlib>
#include <utility>

#include "base/base.hpp"
#include "core/core.hpp"
#include "page/page.hpp"
#include "slab/kmem_cache.hpp"
#include "slab/magazine_pair.hpp"

namespace memdesc::slab {

class SlabAllocator;

class Magazines {
 public:
  Magazines() = default;
  Magazines(const Magazines&) = delete;
  Magazines& operator=(const Magazines&) = delete;

  // Takes this arena's per-thread extension slot in the page layer's thread caches.
  void init(SlabAllocator* sa, page::PageAllocator* pa, core::Memmap* mm);
  void detach();  // every thread's context released (the allocator is going)

  // ---- thread contexts
  ThreadSlabCtx* attach_ctx();  // the calling thread's, made on first use; null: thread exiting or no memory
  ThreadSlabCtx* current() { return tls_slab.id == id_ ? tls_slab.ctx : attach_ctx(); }
  void flush_ctx(ThreadSlabCtx* ctx);  // every pair of ctx back to the slabs, discards done
  void flush_thread();                 // the calling thread's context, if it has one
  // Every thread's pair for c back to the slabs, their arrays freed (kmem_cache_destroy; the
  // caller guarantees no thread uses c); the slabs to discard are returned.
  [[nodiscard]] std::uint32_t flush_everywhere(KmemCache* c);
  // Called by the page layer's registry: at thread exit with the arena alive, or on release.
  static void ctx_thread_exit(void* ctx);
  static void ctx_release(void* ctx);
  // In a fork child, a dead thread's context: every object of its magazines that is still a
  // handed-out slot of its cache goes back to its slab; anything else (a torn magazine) is left.
  static void ctx_fork_orphan(void* ctx);

  // ---- magazine pairs
  // This thread's pair for c; the first use makes its chunk and loaded magazine (null: no memory).
  MEMDESC_FAST_PATH MagazinePair* pair(ThreadSlabCtx* ctx, KmemCache* c) {
    MagazinePair& m = ctx->pair_of(c->id);  // kNoMagazines: cap 0
    return MEMDESC_LIKELY(m.cap != 0) ? &m : make_pair(ctx, c);
  }
  // Lock-free: the counts go to 0 first and come back last, so a fork that stops the thread
  // anywhere here leaves the child a pair whose counts never cover another array's slots.
  static void swap(MagazinePair& m) {
    std::uint32_t c = m.count, pc = m.prev_count;
    m.count = m.prev_count = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::swap(m.objs, m.prev);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    m.count = pc;
    m.prev_count = c;
  }
  // MAG-GROW due for c: double its capacity (up to mag_cap_max), emptying its depot, whose
  // magazines have the old size; and this thread's pair for c remade at the current capacity.
  void grow(KmemCache* c);
  void remake_pair(ThreadSlabCtx* ctx, KmemCache* c, MagazinePair& m);
  // Magazines: `cap` slots after a null sentinel (objs[-1], read by the free fast path's
  // double-free test), counted as metadata.
  void** new_magazine(std::uint32_t cap);
  void free_magazine(void** objs, std::uint32_t cap);
  static std::size_t magazine_bytes(std::uint32_t cap) { return (std::size_t{cap} + 1) * sizeof(void*); }
  // The memory of a magazine made by new_magazine, with no accounting (teardown; free_magazine counts).
  static void free_magazine_memory(void** objs) {
    if (objs) std::free(objs - 1);  // the sentinel slot is the allocation's start
  }
  std::size_t release_pair(MagazinePair& m);  // frees both magazines; returns the bytes released

  // ---- between magazines, the depot and slabs
  // An empty m: a full magazine from the depot, else objects from slabs (making a slab if
  // none has a free slot); false when no memory.
  bool refill(KmemCache* c, MagazinePair& m);
  // The first `n` (coldest) objects of m back to their slabs; the slabs to discard are returned
  // as a pfn-linked list for the caller to discard once it holds no lock.
  [[nodiscard]] std::uint32_t flush(KmemCache* c, MagazinePair& m, std::uint32_t n);
  [[nodiscard]] std::uint32_t flush_locked(KmemCache* c, MagazinePair& m, std::uint32_t n) REQUIRES(c->lock);
  [[nodiscard]] std::uint32_t flush_pair(KmemCache* c, MagazinePair& m);  // both magazines, whole
  // A full m: it stays in the depot whole (an empty one takes its place), else (depot full, or
  // an old-size magazine) half of its objects go back to their slabs; discards returned.
  [[nodiscard]] std::uint32_t unload(KmemCache* c, MagazinePair& m);
  std::uint32_t depot_drain(KmemCache* c);  // every depot object back to its slab; discards returned
  [[nodiscard]] std::uint32_t splice(const KmemCache* c, std::uint32_t list, std::uint32_t onto);  // pfn-linked slab lists

 private:
  MagazinePair* make_pair(ThreadSlabCtx* ctx, KmemCache* c);
  void reclaim_orphan(KmemCache* c, void* const* objs, std::uint32_t n);
  bool depot_get_locked(KmemCache* c, MagazinePair& m) REQUIRES(c->lock);  // an empty m takes a full one
  // depot_drain's work under c->lock: the objects to their slabs, the magazines into `arrays`
  // for the caller to free after unlocking.
  [[nodiscard]] std::uint32_t depot_drain_locked(KmemCache* c, void** arrays[kDepotMax], unsigned& narrays) REQUIRES(c->lock);
  // Objects back to their slabs; the slabs that empty beyond what c keeps are pushed on `discard`.
  [[nodiscard]] std::uint32_t put_objects_locked(KmemCache* c, void* const* objs, std::uint32_t n, std::uint32_t discard)
      REQUIRES(c->lock);

  SlabAllocator* sa_ = nullptr;  // slabs: made, discarded, found from an object
  page::PageAllocator* pa_ = nullptr;
  core::Memmap* mm_ = nullptr;
  std::uint64_t id_ = 0;    // the arena's: keys the TLS slot
  unsigned ext_slot_ = 0;   // this layer's slot in the page layer's thread caches
};

}  // namespace memdesc::slab
