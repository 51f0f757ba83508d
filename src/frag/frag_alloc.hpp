// frag/frag_alloc.hpp — the page_frag layer: block descriptors, refill, the free by address.
//
// Blocks: order 3 (32 KiB) first, order 0 when no order-3 block can be had. A FragBlock::Frag
// block is described by a 16-byte PageFrag from the "page_frag" cache (typesafe by RCU, like
// every descriptor cache) and its words are Frag(desc, order); a FragBlock::Folio block is an
// ordinary folio, Anon(folio, order). docs/FRAG.md compares the two.
//
// Reference counting (FRAG-BIAS): a block the cache holds has
//     refcount == bias + outstanding fragments (+ transient lookups, for folios),  bias >= 1,
// so the cache's bias alone never frees it. Retiring a used-up block drops bias - 1 references
// first: a result of 1 means nobody else holds it, and it is reused in place (refcount raised
// back by kFragBias - 1); otherwise the cache drops its last reference and forgets the block.
// Whoever drops the last reference (page_frag_free on any thread, or the cache) frees pages
// then descriptor.
//
// Invariants (validate_block() checks them; docs/INVARIANTS.md lists them):
//   FRAG-BIAS   as above; refcount > 0 for every block with Frag words.
//   FRAG-SAME   a Frag block's 2^order words all equal Frag(desc, order); desc->pfn is the
//               first page, aligned to 2^order.
#pragma once
#include <memdesc/frag.hpp>
#include <memory>
#include <unordered_map>

#include "core/core.hpp"
#include "folio/folio.hpp"
#include "page/page.hpp"
#include "slab/slab.hpp"

namespace memdesc::frag {

struct alignas(16) PageFrag {
  std::atomic<std::int32_t> refcount;  // FRAG-BIAS; atomic, any thread
  std::uint32_t pfn;                   // written by the cache before the first fragment leaves
  std::uint8_t order;                  // ditto
  std::uint8_t reserved_[3];
  std::uint32_t free_link;             // the slab's freelist link while the descriptor is free
};
static_assert(sizeof(PageFrag) == 16, "a page_frag block costs 16 bytes of descriptor");

class FragAllocator {
 public:
  static Result<std::unique_ptr<FragAllocator>> create(slab::SlabAllocator& sa, page::PageAllocator& pa,
                                                       folio::FolioAllocator& fa);

  PageFragCache make_cache(FragBlock kind) {
    PageFragCache c;
    c.owner_ = this;
    live_caches_.fetch_add(1, std::memory_order_relaxed);
    c.kind_ = kind;
    return c;
  }

  // page_frag_free: drops the fragment's reference on its block, from any thread.
  // Cost: a bounds check, one word load, a type test and one atomic decrement (~5 ns
  // uncontended; the cache line is shared with other freeing threads only).
  MEMDESC_FAST_PATH void free(const void* addr) {
    std::uint64_t off = view_.offset(addr);
    if (MEMDESC_UNLIKELY(off >= view_.bytes)) free_bad_slow(addr);
    MemdescWord w = view_.word_at(off, std::memory_order_acquire);
    if (MEMDESC_LIKELY(w.is(MemdescType::Frag))) {
      if constexpr (kTrack) checked_on_free(addr);  // FRAG-LIVE
      auto* d = w.desc_as<PageFrag>();
      std::int32_t prev = d->refcount.fetch_sub(1, std::memory_order_acq_rel);
      if (MEMDESC_UNLIKELY(prev <= 1)) free_last_slow(d, prev);
      return;
    }
    free_other_slow(addr, w);
  }

  void* alloc_slow(PageFragCache& c, std::size_t size, std::size_t align);
  void drain(PageFragCache& c);
  // The Frag block whose first page is pfn (word w): FRAG-* checks; its page count.
  // Arena::validate calls it for every Frag block in its one walk; call when quiescent.
  std::uint64_t validate_block(std::uint64_t pfn, MemdescWord w) const;
  slab::KmemCache* desc_cache() const { return cache_; }
  std::uint64_t live_blocks() const { return live_.load(std::memory_order_relaxed); }  // Frag-described
  // PageFragCache values made by make_cache and not yet destroyed (the arena must outlive them).
  std::uint64_t live_caches() const { return live_caches_.load(std::memory_order_relaxed); }

 private:
  friend class memdesc::PageFragCache;  // release() counts itself out of live_caches_
  FragAllocator() = default;
  // A fresh block of order 3 (or the arena's largest below that), else of min_order; false
  // + last_error when neither can be had.
  bool refill(PageFragCache& c, unsigned min_order);
  bool retire(PageFragCache& c);                       // true: the block is reused in place
  static void forget(PageFragCache& c);                // the cache no longer has a block
  void* carve(PageFragCache& c, std::size_t size, std::size_t align);  // null: no room in the block
  void checked_on_free(const void* addr);  // checked builds: addr must be a live fragment (FRAG-LIVE)
  // Every build: a block's refcount `prev` when its cache let it go is at least the bias (FRAG-BIAS).
  void check_bias(const PageFragCache& c, std::int32_t prev) const;
  std::atomic<std::int32_t>& refcount_of(const PageFragCache& c) const;
  void release_block(PageFrag* d);                     // the last reference is gone: pages, then d
  MEMDESC_SLOW_PATH void free_last_slow(PageFrag* d, std::int32_t prev);
  MEMDESC_SLOW_PATH void free_other_slow(const void* addr, MemdescWord w);
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_slow(const void* addr);

  slab::SlabAllocator* sa_ = nullptr;
  page::PageAllocator* pa_ = nullptr;
  folio::FolioAllocator* fa_ = nullptr;
  core::Memmap* mm_ = nullptr;
  slab::KmemCache* cache_ = nullptr;  // "page_frag" descriptors
  std::atomic<std::uint64_t> live_{0};  // blocks with a PageFrag descriptor (stats)
  std::atomic<std::uint64_t> live_caches_{0};  // PageFragCache::release decrements
  // Copies for the free fast path (immutable).
  core::ArenaView view_;  // the memmap's fast-path fields
  // Checked and ASan builds: every fragment handed out and not yet freed, with its size
  // (FRAG-LIVE; ASan poisons it when it is freed). A leaf lock: nothing is taken under it.
  static constexpr bool kTrack = kChecked || asan::kOn;
  RankedMutex live_mu_{LockRank::FragLive};
  std::unordered_map<std::uintptr_t, std::uint32_t> live_frags_ GUARDED_BY(live_mu_);
  rcu::ForkHook fork_hook_;  // live_mu_ across fork()
  static void fork_acquire(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  static void fork_release(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
};

}  // namespace memdesc::frag
