// frag/frag_alloc.cpp — see frag_alloc.hpp.
#include "frag/frag_alloc.hpp"

#include <algorithm>

#include "base/base.hpp"

namespace memdesc {

// ---- PageFragCache's out-of-line parts (memdesc/frag.hpp) ----------------------------------

void* PageFragCache::alloc_slow(std::size_t size, std::size_t align) {
  if (!owner_)
    report_bad_argument("page_frag_alloc", "the cache does not belong to an arena (default-constructed or moved from)");
  return owner_->alloc_slow(*this, size, align);
}

void PageFragCache::drain() {
  if (owner_ && va_) owner_->drain(*this);
}

void PageFragCache::release() {
  if (!owner_) return;
  drain();
  owner_->live_caches_.fetch_sub(1, std::memory_order_relaxed);
  owner_ = nullptr;
}

namespace frag {
namespace {

MemdescWord frag_word(const PageFrag* d, unsigned order) { return MemdescWord::describe(MemdescType::Frag, d, order); }

}  // namespace

Result<std::unique_ptr<FragAllocator>> FragAllocator::create(slab::SlabAllocator& sa, page::PageAllocator& pa,
                                                             folio::FolioAllocator& fa) {
  std::unique_ptr<FragAllocator> f(new FragAllocator());
  f->sa_ = &sa;
  f->pa_ = &pa;
  f->fa_ = &fa;
  f->mm_ = &pa.memmap();
  f->view_ = f->mm_->view();
  slab::SlabCreate d{"page_frag", sizeof(PageFrag), alignof(PageFrag), SLAB_TYPESAFE_BY_RCU, nullptr,
                     offsetof(PageFrag, free_link), /*descriptor=*/true};
  auto c = sa.cache_create(d);
  if (!c.ok()) return c.error();
  f->cache_ = c.value();
  static const rcu::ForkOps kForkOps{&fork_acquire, &fork_release, nullptr};
  f->fork_hook_.enable(f.get(), &kForkOps);
  return f;
}

void FragAllocator::fork_acquire(void* self, LockRank r) {
  if (r == LockRank::FragLive) static_cast<FragAllocator*>(self)->live_mu_.fork_acquire();
}

void FragAllocator::fork_release(void* self, LockRank r) {
  if (r == LockRank::FragLive) static_cast<FragAllocator*>(self)->live_mu_.fork_release();
}

std::atomic<std::int32_t>& FragAllocator::refcount_of(const PageFragCache& c) const {
  if (c.kind_ == FragBlock::Folio) return static_cast<Folio*>(c.desc_)->refcount;
  return static_cast<PageFrag*>(c.desc_)->refcount;
}

void FragAllocator::release_block(PageFrag* d) {
  // (Folio-backed blocks are freed by folio_put.) Pages first (their words stop naming d), then the descriptor.
  pa_->free(mm_->addr(d->pfn), frag_word(d, d->order), "page_frag_free");
  live_.fetch_sub(1, std::memory_order_relaxed);
  sa_->cache_free(cache_, d);
}

bool FragAllocator::refill(PageFragCache& c, unsigned min_order) {
  const unsigned top = std::min(kFragMaxOrder, mm_->max_order());
  if (c.kind_ == FragBlock::Folio) {
    for (unsigned order = top;; order = min_order) {
      if (Folio* f = fa_->alloc(order, GFP_NONE, FolioKind::Anon)) {
        f->refcount.fetch_add(kFragBias - 1, std::memory_order_relaxed);  // an add: lookups may hold refs
        c.desc_ = f;
        c.va_ = reinterpret_cast<std::uintptr_t>(fa_->address(f));
        c.size_ = static_cast<std::uint32_t>(kPageSize << order);
        break;
      }
      if (order == min_order) return false;
    }
  } else {
    // Descriptor first: the page words point at it from the moment the pages are ours.
    auto* d = static_cast<PageFrag*>(sa_->alloc_descriptor(cache_));
    if (!d) return false;
    for (unsigned order = top;; order = min_order) {
      if (void* mem = pa_->alloc(order, GFP_NONE, frag_word(d, order))) {
        d->pfn = static_cast<std::uint32_t>(mm_->pfn(mem));
        d->order = static_cast<std::uint8_t>(order);
        d->refcount.store(kFragBias, std::memory_order_relaxed);  // nobody else can see d yet
        live_.fetch_add(1, std::memory_order_relaxed);
        c.desc_ = d;
        c.va_ = reinterpret_cast<std::uintptr_t>(mem);
        c.size_ = static_cast<std::uint32_t>(kPageSize << order);
        break;
      }
      if (order == min_order) {
        sa_->cache_free(cache_, d);  // unwind
        return false;
      }
    }
  }
  c.offset_ = 0;
  c.bias_ = kFragBias;
  c.fast_limit_ = kTrack ? 0 : c.size_;
  asan::poison(reinterpret_cast<void*>(c.va_), c.size_);  // fragments are unpoisoned one by one
  return true;
}

void FragAllocator::forget(PageFragCache& c) {
  c.va_ = 0;
  c.size_ = c.offset_ = c.fast_limit_ = 0;
  c.bias_ = 0;
  c.desc_ = nullptr;
}

// FRAG-BIAS in every build: while the cache holds its block, refcount >= bias (each fragment out
// holds one reference more). Found below it when the cache lets go: a fragment of the block was
// freed twice (before it could free the block under a live fragment).
void FragAllocator::check_bias(const PageFragCache& c, std::int32_t prev) const {
  if (MEMDESC_UNLIKELY(prev < static_cast<std::int32_t>(c.bias_)))
    report_bad_descriptor("page_frag_free", reinterpret_cast<const void*>(c.va_), "page_frag block",
                          "more frees than fragments handed out: a fragment of this block was freed twice "
                          "(found when its cache let the block go)");
}

bool FragAllocator::retire(PageFragCache& c) {
  std::atomic<std::int32_t>& ref = refcount_of(c);
  // FRAG-BIAS: keep one reference while looking, so the block cannot be freed under us.
  std::int32_t prev = ref.fetch_sub(c.bias_ - 1, std::memory_order_acq_rel);
  check_bias(c, prev);
  if (prev == static_cast<std::int32_t>(c.bias_)) {
    // Only our reference is left: every fragment came back. Reuse the block in place.
    ref.fetch_add(kFragBias - 1, std::memory_order_relaxed);
    c.bias_ = kFragBias;
    c.offset_ = 0;
    return true;
  }
  // Fragments are still out: they own the block now; the last page_frag_free frees it.
  if (c.kind_ == FragBlock::Folio) fa_->put(static_cast<Folio*>(c.desc_));
  else if (ref.fetch_sub(1, std::memory_order_acq_rel) == 1) release_block(static_cast<PageFrag*>(c.desc_));
  forget(c);
  return false;
}

void FragAllocator::drain(PageFragCache& c) {
  std::atomic<std::int32_t>& ref = refcount_of(c);
  if (c.kind_ == FragBlock::Folio) {
    check_bias(c, ref.fetch_sub(c.bias_ - 1, std::memory_order_acq_rel));
    fa_->put(static_cast<Folio*>(c.desc_));
  } else {
    std::int32_t prev = ref.fetch_sub(c.bias_, std::memory_order_acq_rel);
    check_bias(c, prev);
    if (prev == static_cast<std::int32_t>(c.bias_)) release_block(static_cast<PageFrag*>(c.desc_));
  }
  forget(c);
}

// The fast path's bump against the whole block (checked builds come here for every fragment,
// and record it); null when the current block has no room.
void* FragAllocator::carve(PageFragCache& c, std::size_t size, std::size_t align) {
  std::size_t off = (std::size_t{c.offset_} + align - 1) & ~(align - 1);
  if (!c.va_ || off >= c.size_ || size > c.size_ - off) return nullptr;
  --c.bias_;  // FRAG-BIAS
  c.offset_ = static_cast<std::uint32_t>(off + size);
  void* p = reinterpret_cast<void*>(c.va_ + off);
  if constexpr (kTrack) {
    asan::unpoison(p, size);
    MutexGuard g(live_mu_);
    live_frags_[reinterpret_cast<std::uintptr_t>(p)] = static_cast<std::uint32_t>(size);
  }
  return p;
}

void FragAllocator::checked_on_free(const void* addr) {
  std::uint32_t size;
  {
    MutexGuard g(live_mu_);
    auto it = live_frags_.find(reinterpret_cast<std::uintptr_t>(addr));
    if (it == live_frags_.end())
      report_bad_descriptor("page_frag_free", addr, "fragment", "not a live fragment: freed twice, or never allocated");
    size = it->second;
    live_frags_.erase(it);
  }
  asan::poison(addr, size);  // before its reference goes: the block may be freed (and reused) at once
}

void* FragAllocator::alloc_slow(PageFragCache& c, std::size_t size, std::size_t align) {
  if (align == 0 || (align & (align - 1)) || align > kPageSize)
    report_bad_argument("page_frag_alloc", "alignment must be a power of two no larger than 4096");
  const unsigned top = std::min(kFragMaxOrder, mm_->max_order());
  if (size == 0 || size > (kPageSize << top)) {
    set_last_error(Errc::invalid_request, "page_frag_alloc: a fragment is 1 B .. one block (32 KiB)");
    return nullptr;
  }
  if (void* p = carve(c, size, align)) return p;
  if (c.va_ && size > c.size_) {
    // The current block is an order-0 fallback that could never hold this. Keep it unless a
    // full-size block can be had (a failed request must not cost the cache its block).
    PageFragCache fresh = make_cache(c.kind_);
    if (!refill(fresh, top)) {
      set_last_error(Errc::out_of_memory, "page_frag_alloc: no 32 KiB block for a fragment above 4 KiB");
      return nullptr;
    }
    c = std::move(fresh);  // gives back the old block's references, takes the new block
    return carve(c, size, align);
  }
  // The block is used up for this request: reuse it in place if every fragment came back
  // (then it holds the request: size <= its size, and offset 0 meets any alignment <= 4 KiB),
  // else let it go and take a fresh one.
  if (c.va_ && retire(c)) return carve(c, size, align);
  if (!refill(c, 0)) return nullptr;
  if (size > c.size_) {  // only an order-0 block could be had; the cache keeps it
    set_last_error(Errc::out_of_memory, "page_frag_alloc: no 32 KiB block for a fragment above 4 KiB");
    return nullptr;
  }
  return carve(c, size, align);  // fits now
}

// ---- free ------------------------------------------------------------------------------------

void FragAllocator::free_last_slow(PageFrag* d, std::int32_t prev) {
  if (prev <= 0) {
    d->refcount.fetch_add(1, std::memory_order_relaxed);
    report_bad_descriptor("page_frag_free", d, "page_frag block",
                          "the block's refcount was already 0: a fragment freed twice");
  }
  release_block(d);
}

void FragAllocator::free_other_slow(const void* addr, MemdescWord w) {
  if (folio::FolioAllocator::is_folio_word(w)) {
    if constexpr (kTrack) checked_on_free(addr);
    fa_->put(w.desc_as<Folio>());  // a folio-backed block (or any folio): one reference
    return;
  }
  core::report_bad_word(*mm_, "page_frag_free", addr, "Frag(page_frag block) or a folio");
}

void FragAllocator::free_bad_slow(const void* addr) {
  core::report_foreign(*mm_, "page_frag_free", addr);
}

std::uint64_t FragAllocator::validate_block(std::uint64_t pfn, MemdescWord w) const {
  const auto* d = w.desc_as<PageFrag>();
  std::uint64_t n = std::uint64_t{1} << d->order;
  if (d->pfn != pfn || d->order != w.order() || (pfn & (n - 1)) || pfn + n > mm_->pages())
    report_invariant("FRAG-SAME", "pfn %llu: word %s but the descriptor says pfn %u order %u",
                     static_cast<unsigned long long>(pfn), to_string(w).c_str(), d->pfn, d->order);
  mm_->check_block_words("FRAG-SAME", "block", pfn, n, w);
  if (d->refcount.load(std::memory_order_relaxed) <= 0)
    report_invariant("FRAG-BIAS", "block at pfn %llu has refcount %d", static_cast<unsigned long long>(pfn),
                     d->refcount.load(std::memory_order_relaxed));
  return n;
}

}  // namespace frag
}  // namespace memdesc
