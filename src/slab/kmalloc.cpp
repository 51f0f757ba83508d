// slab/kmalloc.cpp — the kmalloc family's out-of-line parts: large blocks straight from the
// buddy, kfree of what is not a slab object, ksize, krealloc, kcalloc.
#include <cstring>

#include "base/base.hpp"
#include "slab/slab_alloc.hpp"

namespace memdesc::slab {

void* SlabAllocator::kmalloc_large_slow(std::size_t size, Gfp gfp) {
  if (size == 0) return kZeroSizePtr;
  std::uint64_t pages = div_ceil(size, kPageSize);
  unsigned order = pages <= 1 ? 0 : 64 - static_cast<unsigned>(__builtin_clzll(pages - 1));
  if (size > (kPageSize << mm_->max_order())) {
    set_last_error(Errc::out_of_memory, "kmalloc: size above the largest block");
    return nullptr;
  }
  // Misc(kmalloc_large, order) in every page: kfree finds the order in the word. Straight from
  // the buddy, as kfree gives the block straight back: through this thread's page cache, each
  // refill would take a batch of 16-32 KiB blocks that only this thread could then use.
  return pa_->alloc(order, gfp | GFP_NOCACHE, MemdescWord::misc(MiscSubtype::KmallocLarge, order));
}

void SlabAllocator::kfree_other_slow(void* p) {
  if (p == nullptr || p == kZeroSizePtr) return;
  core::check_in_arena(*mm_, "kfree", p);
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Misc) && w.misc_subtype() == MiscSubtype::KmallocLarge) {
    // Straight to the buddy (checking that p is the block's first byte): a large block parked
    // in this thread's page cache could not merge with its neighbours, and other threads
    // could not reuse it.
    pa_->free_direct(p, w, "kfree");
    return;
  }
  core::report_bad_word(*mm_, "kfree", p, "a slab object or a kmalloc_large block");
}

std::size_t SlabAllocator::ksize(const void* p) const {
  if (p == nullptr || p == kZeroSizePtr) return 0;
  core::check_in_arena(*mm_, "ksize", p);
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Slab)) return caches_[w.aux()].load(std::memory_order_relaxed)->object_size;
  if (w.is(MemdescType::Misc) && w.misc_subtype() == MiscSubtype::KmallocLarge) return kPageSize << w.order();
  core::report_bad_word(*mm_, "ksize", p, "a slab object or a kmalloc_large block", /*buddy_is_double_free=*/false);
}

void* SlabAllocator::krealloc(void* p, std::size_t size, Gfp gfp) {
  if (p == nullptr || p == kZeroSizePtr) return kmalloc(size, gfp);
  if (size == 0) {
    kfree(p);
    return kZeroSizePtr;
  }
  std::size_t have = ksize(p);
  if (size <= have) return p;  // fits where it is
  void* q = kmalloc(size, gfp & ~GFP_ZERO);
  if (!q) return nullptr;  // p is untouched
  std::memcpy(q, p, have);
  if (gfp & GFP_ZERO) std::memset(static_cast<char*>(q) + have, 0, ksize(q) - have);
  kfree(p);
  return q;
}

void* SlabAllocator::kcalloc(std::size_t n, std::size_t size, Gfp gfp) {
  std::size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    set_last_error(Errc::out_of_memory, "kcalloc: n * size overflows");
    return nullptr;
  }
  return kmalloc(bytes, gfp | GFP_ZERO);
}

}  // namespace memdesc::slab
