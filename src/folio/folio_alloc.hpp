// folio/folio_alloc.hpp — the folio layer: descriptor caches, allocation, the last put, lookups.
//
// Allocation follows the kernel's memdesc plan for folios, descriptor first:
//   1. a descriptor from "folio" (order 0, 64 B) or "folio_large" (96 B); both caches are
//      SLAB_TYPESAFE_BY_RCU with a constructor that zeroes refcount and lock once per slot;
//   2. alloc_pages_desc: the block's every word becomes File/Anon(folio, order) [MEMDESC-SAME];
//      on failure the descriptor goes back and the caller gets null;
//   3. the fields, then refcount = 1 with release: publication [FOLIO-REF].
// The last folio_put checks the folio is unlocked, unmapped and off any LRU list, frees the
// pages (words become Buddy), then the descriptor.
//
// Lockless lookup (folio_lookup), the RCU protocol of docs/ARCHITECTURE.md:
//   read section { w = word(pfn) (acquire); not File/Anon → null; f = ptr(w);
//                  try_get(f) fails → word changed? retry : null (being born or freed);
//                  word(pfn) != w → put, retry;  return f }
// A successful try-get pins the folio; the unchanged word then proves it still covers pfn
// [FOLIO-LOOKUP]. Typesafe-by-RCU caches guarantee the stale f is a folio descriptor.
//
// Invariants (validate_block() checks them; docs/INVARIANTS.md lists them):
//   FOLIO-REF     refcount == 0 exactly when free or not yet published; > 0 while published.
//   FOLIO-SAME    a live folio's 2^order page words all equal File/Anon(f, order), starting at
//                 f->pfn, which is aligned to 2^order.
//   FOLIO-LOCK    lock_word is 0, 1 or 2; a folio is freed only with lock_word == 0.
#pragma once
#include <memdesc/folio.hpp>
#include <memdesc/gfp.hpp>
#include <memory>

#include "core/core.hpp"
#include "page/page.hpp"
#include "slab/slab.hpp"

namespace memdesc::folio {

class FolioAllocator {
 public:
  static Result<std::unique_ptr<FolioAllocator>> create(slab::SlabAllocator& sa, page::PageAllocator& pa);

  Folio* alloc(unsigned order, Gfp gfp, FolioKind kind);  // null + last_error on failure

  // Drops one reference; the last one frees pages and descriptor. Only a folio descriptor is
  // accepted: null, a pointer that lies in no slab of the folio caches or inside a descriptor,
  // is a report, never a decrement of whatever it points at (a word load, two compares and a
  // slot-boundary multiply before the atomic).
  void put(Folio* f) {
    if (MEMDESC_UNLIKELY(!is_descriptor(f))) report_not_folio(f, "folio_put");
    std::int32_t prev = f->refcount.fetch_sub(1, std::memory_order_acq_rel);
    if (__builtin_expect(prev <= 1, 0)) put_last_slow(f, prev);
  }

  void* address(const Folio* f) const {
    if (MEMDESC_UNLIKELY(!is_descriptor(f))) report_not_folio(f, "folio_address");
    return mm_->addr(f->pfn);
  }
  // f lies in a slab of this arena's folio caches (a folio of another arena does not).
  bool is_descriptor(const Folio* f) const {
    std::uint64_t off = desc_view_.offset(f);
    if (off >= desc_view_.bytes) return false;
    MemdescWord w = desc_view_.word_at(off);
    // The start of a slot, not a pointer into one (an interior pointer would decrement
    // whatever field it lands on): slabs are naturally aligned in the region.
    const slab::KmemCache* c = slab::SlabAllocator::word_in_cache(w, small_) ? small_
                               : slab::SlabAllocator::word_in_cache(w, large_) ? large_ : nullptr;
    return c && c->on_slot_boundary(off & ((kPageSize << c->order) - 1));
  }

  // The folio whose page `pfn` is, or null for any other page. No reference is taken: the
  // caller must otherwise know the folio stays (it holds a reference or a lock).
  Folio* page_folio(std::uint64_t pfn) const {
    MemdescWord w = mm_->word(pfn);
    return is_folio_word(w) ? w.desc_as<Folio>() : nullptr;
  }
  // The folio covering `pfn` with a reference taken, or null (FOLIO-LOOKUP).
  Folio* lookup(std::uint64_t pfn);

  static bool is_folio_word(MemdescWord w) { return w.is(MemdescType::Anon) || w.is(MemdescType::File); }
  static MemdescWord word_of(const Folio* f) {
    return MemdescWord::describe(f->kind == FolioKind::Anon ? MemdescType::Anon : MemdescType::File, f, f->order);
  }

  // The folio whose first page is pfn (word w, a folio word): FOLIO-* checks; its page count.
  // Arena::validate calls it for every folio in its one walk of the words; call when quiescent.
  std::uint64_t validate_block(std::uint64_t pfn, MemdescWord w) const;
  std::uint64_t live_small() const { return live_[0].load(std::memory_order_relaxed); }
  std::uint64_t live_large() const { return live_[1].load(std::memory_order_relaxed); }
  slab::KmemCache* small_cache() const { return small_; }
  slab::KmemCache* large_cache() const { return large_; }

 private:
  FolioAllocator() = default;
  MEMDESC_SLOW_PATH void put_last_slow(Folio* f, std::int32_t prev);
  [[noreturn]] MEMDESC_SLOW_PATH void report_not_folio(const Folio* f, const char* op) const;
  static void ctor(void* obj);

  slab::SlabAllocator* sa_ = nullptr;
  page::PageAllocator* pa_ = nullptr;
  core::Memmap* mm_ = nullptr;
  core::ArenaView desc_view_;  // the metadata region's fast-path fields, where descriptors live (put's check; META-OOB)
  slab::KmemCache* small_ = nullptr;  // order-0 folios
  slab::KmemCache* large_ = nullptr;  // order > 0
  std::atomic<std::uint64_t> live_[2] = {};  // published folios: [0] order 0, [1] larger (stats)
};

}  // namespace memdesc::folio
