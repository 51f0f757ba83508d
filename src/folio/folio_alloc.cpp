// folio/folio_alloc.cpp — see folio_alloc.hpp.
#include "folio/folio_alloc.hpp"

#include <cstdio>
#include <new>

#include "base/base.hpp"
#include "platform/platform.hpp"
#include "rcu/rcu.hpp"

namespace memdesc {

// ---- the public inline API's slow parts (memdesc/folio.hpp) ------------------------------

void folio_get_bad(const Folio* f) {
  report_bad_descriptor("folio_get", f, "folio", "reference taken on a folio whose refcount was 0 (free or unpublished)");
}

void folio_lock_slow(Folio* f) {
  // FOLIO-LOCK, a three-state futex lock: say "sleepers" (2) before sleeping, so the holder's
  // unlock knows to wake. Whoever swaps 0 out holds the lock (in state 2, conservatively).
  std::uint32_t c = f->lock_word.exchange(2, std::memory_order_acquire);
  while (c != 0) {
    platform::futex_wait(&f->lock_word, 2);
    c = f->lock_word.exchange(2, std::memory_order_acquire);
  }
}

void folio_unlock_slow(Folio* f, std::uint32_t prev) {
  if (prev == 0) {
    f->lock_word.store(0, std::memory_order_relaxed);  // undo the decrement before reporting
    report_bad_descriptor("folio_unlock", f, "folio", "the folio is not locked");
  }
  // prev == 2: the fetch_sub left 1; release the lock and wake one sleeper.
  f->lock_word.store(0, std::memory_order_release);
  platform::futex_wake(&f->lock_word, 1);
}

namespace folio {

void FolioAllocator::ctor(void* obj) {
  // Once per slot, when the slab first hands it out: FOLIO-REF (0 = not published) and an
  // unlocked lock. A free slot keeps both: the slab's link lives in mapcount.
  auto* f = static_cast<Folio*>(obj);
  new (&f->refcount) std::atomic<std::int32_t>(0);
  new (&f->lock_word) std::atomic<std::uint32_t>(0);
  new (&f->flags) std::atomic<std::uint32_t>(0);
}

Result<std::unique_ptr<FolioAllocator>> FolioAllocator::create(slab::SlabAllocator& sa, page::PageAllocator& pa) {
  std::unique_ptr<FolioAllocator> fa(new FolioAllocator());
  fa->sa_ = &sa;
  fa->pa_ = &pa;
  fa->mm_ = &pa.memmap();
  fa->desc_view_ = sa.meta_view();
  slab::SlabCreate small{"folio",       sizeof(Folio), alignof(Folio), SLAB_TYPESAFE_BY_RCU, &ctor,
                         offsetof(Folio, mapcount), /*descriptor=*/true};
  slab::SlabCreate large{"folio_large", sizeof(LargeFolio), alignof(LargeFolio), SLAB_TYPESAFE_BY_RCU, &ctor,
                         offsetof(Folio, mapcount), /*descriptor=*/true};
  auto s = sa.cache_create(small);
  if (!s.ok()) return s.error();
  auto l = sa.cache_create(large);
  if (!l.ok()) return l.error();
  fa->small_ = s.value();
  fa->large_ = l.value();
  return fa;
}

Folio* FolioAllocator::alloc(unsigned order, Gfp gfp, FolioKind kind) {
  if (order > mm_->max_order()) {
    set_last_error(Errc::out_of_memory, "order above the arena's max_order");
    return nullptr;
  }
  slab::KmemCache* c = order ? large_ : small_;
  auto* f = static_cast<Folio*>(sa_->alloc_descriptor(c));
  if (!f) return nullptr;
  // Not published yet (refcount 0): a stale lockless reader's try-get fails on it, and it
  // touches nothing else, so the plain stores below race with nobody.
  f->order = static_cast<std::uint8_t>(order);
  f->kind = kind;
  void* mem = pa_->alloc(order, gfp, word_of(f));  // MEMDESC-SAME: every page word
  if (!mem) {
    sa_->cache_free(c, f);  // unwinds: nothing else was taken
    return nullptr;
  }
  f->pfn = static_cast<std::uint32_t>(mm_->pfn(mem));
  f->flags.store(order ? std::uint32_t{FOLIO_LARGE} : 0u, std::memory_order_relaxed);
  f->lru_next = f->lru_prev = nullptr;
  f->mapping = nullptr;
  f->index = ~std::uint64_t{0};
  f->private_data = nullptr;
  f->mapcount.store(-1, std::memory_order_relaxed);
  f->reserved_ = 0;
  if (LargeFolio* lf = folio_large(f)) {
    lf->entire_mapcount.store(-1, std::memory_order_relaxed);
    lf->nr_pages_mapped.store(0, std::memory_order_relaxed);
    lf->pincount.store(0, std::memory_order_relaxed);
    lf->reserved2_ = 0;
    lf->deferred_next = lf->deferred_prev = nullptr;
  }
  live_[order != 0].fetch_add(1, std::memory_order_relaxed);
  f->refcount.store(1, std::memory_order_release);  // FOLIO-REF: publication
  return f;
}

void FolioAllocator::report_not_folio(const Folio* f, const char* op) const {
  if (!f) report_bad_argument(op, "null folio (a failed folio_alloc or folio_lookup is not a folio)");
  const core::Memmap& meta = sa_->meta_memmap();  // where folio descriptors live (META-OOB)
  if (mm_->contains(f))
    report_bad_descriptor(op, f, "folio", "not a folio: the address is arena memory (a page's address, not its folio?)");
  if (!meta.contains(f))
    report_bad_descriptor(op, f, "folio", "not a folio: the address is outside the arena's metadata region (a folio of another arena?)");
  MemdescWord w = meta.word(meta.pfn(f));
  if (slab::SlabAllocator::word_in_cache(w, small_) || slab::SlabAllocator::word_in_cache(w, large_))
    report_bad_descriptor(op, f, "folio", "not a folio: the address points inside a folio descriptor, not at its start");
  char text[96];
  format_word(w, text, sizeof text);
  char why[192];
  std::snprintf(why, sizeof why, "not a folio: the address lies in no folio descriptor slab (page word %s)", text);
  report_bad_descriptor(op, f, "folio", why);
}

void FolioAllocator::put_last_slow(Folio* f, std::int32_t prev) {
  if (prev <= 0) {
    f->refcount.fetch_add(1, std::memory_order_relaxed);  // undo, then report
    report_bad_descriptor("folio_put", f, "folio", "refcount was already 0: the folio is free (put once too often)");
  }
  // The last reference: nobody else can reach the folio except lockless readers, whose
  // try-get now fails.
  if (f->lock_word.load(std::memory_order_relaxed) != 0)
    report_bad_descriptor("folio_put", f, "folio", "last reference dropped while the folio is locked");
  if (f->mapcount.load(std::memory_order_relaxed) != -1)
    report_bad_descriptor("folio_put", f, "folio", "last reference dropped while the folio is mapped");
  if (f->lru_next || f->lru_prev)
    report_bad_descriptor("folio_put", f, "folio", "last reference dropped while the folio is on an LRU list");
  // Pages first (their words become Buddy, so a lookup stops finding f), then the descriptor.
  pa_->free(mm_->addr(f->pfn), word_of(f), "folio_put");
  live_[f->order != 0].fetch_sub(1, std::memory_order_relaxed);
  sa_->cache_free(f->order ? large_ : small_, f);
}

Folio* FolioAllocator::lookup(std::uint64_t pfn) {
  rcu::ReadGuard g;  // the descriptor stays a folio while we look (SLAB_TYPESAFE_BY_RCU)
  for (;;) {
    MemdescWord w = mm_->word(pfn);
    if (!is_folio_word(w)) return nullptr;
    Folio* f = w.desc_as<Folio>();
    if (!folio_try_get(f)) {
      if (mm_->word(pfn) != w) continue;  // freed and the page reused: look again
      return nullptr;                     // being born or being freed
    }
    if (mm_->word(pfn) == w) return f;  // FOLIO-LOOKUP: pinned, and still covering pfn
    // f was freed and reused elsewhere before our get: drop the reference (possibly the last).
    put(f);
  }
}

std::uint64_t FolioAllocator::validate_block(std::uint64_t pfn, MemdescWord w) const {
  const Folio* f = w.desc_as<Folio>();
  std::uint64_t n = folio_nr_pages(f);
  if (f->refcount.load(std::memory_order_relaxed) <= 0)
    report_invariant("FOLIO-REF", "pfn %llu: folio %p has refcount %d", static_cast<unsigned long long>(pfn),
                     static_cast<const void*>(f), f->refcount.load(std::memory_order_relaxed));
  if (f->pfn != pfn || (pfn & (n - 1)) || pfn + n > mm_->pages() || w != word_of(f))
    report_invariant("FOLIO-SAME", "pfn %llu: word %s but the folio says pfn %u order %u",
                     static_cast<unsigned long long>(pfn), to_string(w).c_str(), f->pfn, f->order);
  mm_->check_block_words("FOLIO-SAME", "folio", pfn, n, w);
  std::uint32_t lw = f->lock_word.load(std::memory_order_relaxed);
  if (lw > 2) report_invariant("FOLIO-LOCK", "folio %p has lock word %u", static_cast<const void*>(f), lw);
  return n;
}

}  // namespace folio
}  // namespace memdesc
