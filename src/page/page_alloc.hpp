// page/page_alloc.hpp — the page allocator: zones, per-thread caches, alloc/free of blocks.
//
// Allocation code overview (fast paths are MEMDESC_FAST_PATH, slow ones end in _slow):
//
//   alloc(order, gfp, word)
//     ├─ order <= 3, no GFP_ZERO / GFP_NOCACHE, the TLS slot names this arena and the list for
//     │  (zone, order) is non-empty: pop a pfn, store `word` into its 2^order page words.
//     │  Cost (order 0): one TLS load of two words, three compares, two loads and three
//     │  stores; no lock, no atomic RMW, no call, no system call. An order-0 alloc+free pair
//     │  is ~4 ns here (bench/micro_pages BM_PairCached/0 keeps it honest).
//     └─ alloc_slow: attach the thread cache; refill `batch` blocks under the zone lock; else
//        take one block straight from the buddy (falling back NORMAL after MOVABLE for
//        GFP_MOVABLE); else drain this thread's cache and retry; else null + last_error.
//        GFP_ZERO memsets only dirty blocks (BUDDY-WORD).
//
//   free_pages(addr) / free(addr, word)
//     ├─ misuse checks on the page word (one load, one compare): inside the arena, the
//     │  expected word, at the first byte of its block; a failure goes to a _bad_slow
//     │  function that reports precisely.
//     ├─ order <= 3 and the list is not full: store the Buddy words, push. Same cost as alloc.
//     └─ free_slow: a full list grows (if it was refilled since it last overflowed) or drains
//        its `batch` coldest blocks to the buddy, then pushes; larger orders, or a thread
//        without a cache, return the block to the buddy under the zone lock.
#pragma once
#include <cstring>
#include <memdesc/gfp.hpp>
#include <memory>

#include "base/base.hpp"
#include "page/buddy.hpp"
#include "page/page_cache.hpp"
#include "rcu/rcu.hpp"

namespace memdesc::page {

struct PageAllocConfig {
  unsigned pcp_high = 64;        // initial blocks per order-0 list before draining; order k: >> k (min 8)
  unsigned pcp_batch = 32;       // blocks moved per refill or drain; order k: batch >> k (min 2)
  unsigned pcp_high_max = 2048;  // the most an order-0 list grows to (8 MiB); order k: >> k
  bool thread_cache = true;      // per-thread caches on/off
};

struct ZoneSnapshot {
  core::ZoneId id;
  std::uint64_t pages = 0, free_pages = 0;
  std::uint64_t nr_free[MemdescWord::kMaxOrder + 1] = {};
};

class PageAllocator {
 public:
  static Result<std::unique_ptr<PageAllocator>> create(core::Memmap& mm, const PageAllocConfig& cfg);
  ~PageAllocator();
  PageAllocator(const PageAllocator&) = delete;
  PageAllocator& operator=(const PageAllocator&) = delete;

  core::Memmap& memmap() const { return *mm_; }

  // Allocates a block of 2^order pages and writes `w` into every page word [MEMDESC-SAME].
  // Returns null (and sets the last error, base/last_error.hpp) when no block can be had.
  MEMDESC_FAST_PATH void* alloc(unsigned order, Gfp gfp, MemdescWord w) {
    if (MEMDESC_UNLIKELY(fault::armed())) return alloc_fault_slow(order, gfp, w);  // a tail call
    // GFP_NOCACHE and GFP_ZERO (which may memset) take the slow path.
    if (MEMDESC_LIKELY(order < pcp_orders_ && !(gfp & (GFP_NOCACHE | GFP_ZERO)))) {
      TlsPageCacheSlot slot = tls_page_cache;
      if (MEMDESC_LIKELY(slot.id == view_.id)) {
        PcpList& l = slot.cache->lists[zone_index(gfp)][order];
        std::uint32_t n = l.count.load(std::memory_order_relaxed);
        if (MEMDESC_LIKELY(n != 0)) {
          l.count.store(n - 1, std::memory_order_relaxed);
          return finish_alloc(l.pfns[n - 1], order, w);
        }
      }
    }
    return alloc_slow(order, gfp, w);
  }

  // Frees a block whose word must equal `expected` exactly (the owner of a descriptor frees
  // its blocks so). `op` names the public operation in reports.
  MEMDESC_FAST_PATH void free(void* addr, MemdescWord expected, const char* op) {
    free_block(checked_pfn(addr, expected, op), expected.order());
  }
  // The pfn of the block at addr, whose word must be `expected` and which must start at addr
  // (BUDDY-ALIGN); anything else is a report. Two compares and a test.
  MEMDESC_FAST_PATH std::uint64_t checked_pfn(void* addr, MemdescWord expected, const char* op) {
    std::uint64_t off = view_.offset(addr);
    if (MEMDESC_UNLIKELY(off >= view_.bytes)) free_bad_slow(addr, expected, op);
    if (MEMDESC_UNLIKELY(view_.raw_word_at(off) != expected.raw() ||
                         (off & ((kPageSize << expected.order()) - 1)) != 0))
      free_bad_slow(addr, expected, op);
    return off >> kPageShift;
  }

  // Like free(), but straight to the buddy, bypassing this thread's cache (for frees made on a
  // thread that should not hoard pages, such as the RCU callback thread).
  void free_direct(void* addr, MemdescWord expected, const char* op);

  // Frees a block from alloc_pages (word Misc(pages, order)). The order is read from the
  // Misc order bits whatever the type is; a word of another type, or another subtype, cannot
  // equal the Misc(pages) word rebuilt from them, so one compare checks type, subtype and order.
  MEMDESC_FAST_PATH void free_pages(void* addr) {
    std::uint64_t off = view_.offset(addr);
    if (MEMDESC_UNLIKELY(off >= view_.bytes)) free_pages_bad_slow(addr);
    std::uint64_t w = view_.raw_word_at(off);
    unsigned order = static_cast<unsigned>(w >> MemdescWord::kMiscOrderShift) & MemdescWord::kMaxOrder;
    std::uint64_t want = MemdescWord::misc(MiscSubtype::Pages, order).raw();
    if (MEMDESC_UNLIKELY(w != want || (off & ((kPageSize << order) - 1)) != 0)) free_pages_bad_slow(addr);
    free_block(off >> kPageShift, order);
  }

  // Returns a validated block to the cache or the buddy.
  MEMDESC_FAST_PATH void free_block(std::uint64_t pfn, unsigned order) {
    // (The block was noted as poisonable when it was handed out: finish_alloc.)
    if constexpr (asan::kOn) asan::poison(reinterpret_cast<void*>(view_.base + (pfn << kPageShift)), kPageSize << order);
    if (MEMDESC_LIKELY(order < pcp_orders_)) {
      TlsPageCacheSlot slot = tls_page_cache;
      if (MEMDESC_LIKELY(slot.id == view_.id)) {
        PcpList& l = slot.cache->lists[pfn >= movable_start_][order];
        std::uint32_t n = l.count.load(std::memory_order_relaxed);
        if (MEMDESC_LIKELY(n < l.high)) {
          view_.words[pfn].store(MemdescWord::buddy(true).raw(), std::memory_order_release);  // PCP-WORD
          l.pfns[n] = static_cast<std::uint32_t>(pfn);
          // Release (a plain store on x86): the slot is written before the count covers it, so
          // a fork that stops this thread here never leaves a stale pfn under the count.
          l.count.store(n + 1, std::memory_order_release);
          // Last, so that little is live across the loop. Only this thread may touch the
          // block's words until it is handed out again (PCP-OWNER).
          if (order) store_words(pfn + 1, (std::uint64_t{1} << order) - 1, MemdescWord::buddy(false));
          return;
        }
      }
    }
    free_slow(pfn, order);
  }

  // Drains the calling thread's cache for this allocator into the buddy.
  void drain_local();
  // Returns the memory of free blocks of order >= min_order to the OS (RSS falls). Blocks are
  // isolated under the zone lock and purged outside it. Returns the bytes purged.
  Result<std::size_t> purge(unsigned min_order);

  ZoneSnapshot zone_snapshot(core::ZoneId z) const;
  std::uint64_t cached_pages() const;  // pages sitting in per-thread caches (approximate if busy)
  // Checks every buddy invariant and that cached blocks have Buddy words. Call when quiescent.
  void validate() const;

  core::ZoneId preferred_zone(Gfp gfp) const { return static_cast<core::ZoneId>(zone_index(gfp)); }

  // The page layer's own (page_cache.cpp, pcp.cpp); layers above use the cache_ext calls.
  ThreadPageCache* new_thread_cache();
  void drain_cache(ThreadPageCache* c);  // returns every cached block to the buddy
  // In a fork child: the cache of a thread that did not survive the fork. Its lists may be
  // torn (the thread stopped anywhere), so each block is checked (bounds, alignment, a Buddy
  // first word, not already in the buddy) and freed with its words rewritten; the rest is
  // left (leaked in the child, never handed out twice).
  void reclaim_orphan_cache(ThreadPageCache* c);

 private:
  // The registry (page_cache.cpp) keeps this allocator's list of thread caches and extension
  // slots here; nothing outside it and the walks below touches them.
  friend ThreadPageCache* attach_thread_cache(PageAllocator* pa);
  friend unsigned register_cache_ext(PageAllocator* pa, const CacheExtOps* ops);
  friend bool set_cache_ext(ThreadPageCache* c, unsigned slot, void* ctx);
  friend void detach_cache_ext(PageAllocator* pa, unsigned slot);
  friend void detach_all_thread_caches(PageAllocator* pa);
  friend void reclaim_dead_thread_caches(PageAllocator* pa);
  template <class Fn>
  friend void for_each_cache_ext(PageAllocator* pa, unsigned slot, Fn&& fn);
  // page_cache.cpp's own: takes c off its allocator's list (thread exit); declared only here.
  friend void unlink_thread_cache_locked(ThreadPageCache* c) REQUIRES(g_cache_registry);

  ThreadPageCache* caches_head GUARDED_BY(g_cache_registry) = nullptr;
  const CacheExtOps* ext_ops[kMaxCacheExt] GUARDED_BY(g_cache_registry) = {};  // registered slots

  PageAllocator() = default;
  static void fork_acquire(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  static void fork_release(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  static void fork_child(void* self);

  MEMDESC_FAST_PATH unsigned zone_index(Gfp gfp) const { return (gfp & GFP_MOVABLE) && has_movable_; }

  // Writes `w` into n words from pfn (release: publishes whatever `w` points at).
  MEMDESC_FAST_PATH void store_words(std::uint64_t pfn, std::uint64_t n, MemdescWord w) const {
    view_.set_words(pfn, n, w);
  }

  // Writes the block's words; the block is the caller's from here. GFP_ZERO is the slow
  // path's business (zero_if_dirty before this).
  MEMDESC_FAST_PATH void* finish_alloc(std::uint64_t pfn, unsigned order, MemdescWord w) {
    if (MEMDESC_LIKELY(order == 0)) view_.words[pfn].store(w.raw(), std::memory_order_release);  // MEMDESC-SAME
    else store_words(pfn, std::uint64_t{1} << order, w);
    void* p = reinterpret_cast<void*>(view_.base + (pfn << kPageShift));
    if constexpr (asan::kOn) {  // free pages are poisoned (base/asan.hpp); its owner may poison parts of it
      asan::unpoison(p, kPageSize << order);
      mm_->note_poisoned(pfn << kPageShift, kPageSize << order);
    }
    return p;
  }

  void zero_if_dirty(std::uint64_t pfn, unsigned order) const;
  MEMDESC_SLOW_PATH void* alloc_slow(unsigned order, Gfp gfp, MemdescWord w);
  MEMDESC_SLOW_PATH void* alloc_fault_slow(unsigned order, Gfp gfp, MemdescWord w);
  MEMDESC_SLOW_PATH void free_slow(std::uint64_t pfn, unsigned order);
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_slow(void* addr, MemdescWord expected, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void free_pages_bad_slow(void* addr);
  [[noreturn]] void report_bad_free(void* addr, MemdescWord expected, bool any_order, const char* op) const;
  Block take_from_zones(unsigned order, Gfp gfp);
  void refill(PcpList& l, core::ZoneId z, unsigned order);
  void drain_list(PcpList& l, core::ZoneId z, unsigned order, std::uint32_t n);
  bool grow(ThreadPageCache* c, PcpList& l);

  // Copies of Memmap fields read by the fast paths, so they need no load through mm_.
  // Immutable after create().
  core::ArenaView view_;  // the memmap's fast-path fields; view_.id keys the TLS slot
  std::uint64_t movable_start_ = 0;              // first MOVABLE pfn (== pages when none)
  core::Memmap* mm_ = nullptr;
  PageAllocConfig cfg_;
  unsigned pcp_orders_ = 0;  // orders [0, pcp_orders_) go through the caches; 0 when caches are off
  bool has_movable_ = false;
  BuddyZone zones_[core::kNrZones];
  void* bitmap_mem_ = nullptr;  // every zone's free-state bitmaps, one reservation
  std::size_t bitmap_bytes_ = 0;
  rcu::ForkHook fork_hook_;  // the zone locks across fork(); the child reclaims dead threads' caches
};

template <class Fn>
void for_each_cache_ext(PageAllocator* pa, unsigned slot, Fn&& fn) {
  LockGuard g(cache_registry_lock());
  for (ThreadPageCache* c = pa->caches_head; c; c = c->reg_next)
    if (void* ctx = c->ext[slot].ctx) fn(ctx);
}

}  // namespace memdesc::page
