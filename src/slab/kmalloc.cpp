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
  void* p = pa_->alloc(order, gfp | GFP_NOCACHE, MemdescWord::misc(MiscSubtype::KmallocLarge, order));
  if (p) asan::poison(static_cast<char*>(p) + size, (kPageSize << order) - size);  // the slack (ksize unpoisons it)
  return p;
}

// A Slab word that kfree and ksize may not follow: an internal cache's (SLAB-INTERNAL), or an
// aux that names no cache. Fatal.
void SlabAllocator::report_unreachable_object(const char* op, const void* p, MemdescWord w) const {
  KmemCache* c = w.aux() & kInternalAux ? caches_[cache_id_of_aux(w.aux())].load(std::memory_order_acquire) : nullptr;
  if (c && c->word_aux == w.aux())
    report_bad_object(op, p, c->name, "an object of an internal cache (the arena's own descriptors or handles): only its layer frees it");
  char text[96];
  format_word(w, text, sizeof text);
  report_wrong_type(op, p, "a slab object of a kmalloc or user cache", text);
}

// A pointer into the metadata region (META-OOB): one of the arena's own descriptors or handles
// (SLAB-INTERNAL), or memory between them.
void SlabAllocator::check_not_metadata(const char* op, const void* p) const {
  if (!meta_mm_->contains(p)) return;
  MemdescWord w = meta_mm_->word(meta_mm_->pfn(p));
  if (w.is(MemdescType::Slab)) report_unreachable_object(op, p, w);
  report_bad_argument(op, "the address lies in the arena's metadata region (its descriptors), not in the arena");
}

void* SlabAllocator::kmalloc_class_slow(unsigned id, std::size_t size, Gfp gfp) {
  KmemCache* c = caches_[id].load(std::memory_order_relaxed);
  if (MEMDESC_UNLIKELY(!c)) {
    set_last_error(Errc::out_of_memory, "kmalloc: size above the largest block");
    return nullptr;
  }
  void* p = alloc_slow(c, gfp);
  // ASan builds: the slack after the size asked for is poisoned too (ksize unpoisons it).
  if (p && c->asan_poison && size < c->object_size) asan::poison(static_cast<char*>(p) + size, c->object_size - size);
  return p;
}

void SlabAllocator::kfree_other_slow(void* p) {
  if (p == nullptr || p == kZeroSizePtr) return;
  check_not_metadata("kfree", p);
  core::check_in_arena(*mm_, "kfree", p);
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Slab)) report_unreachable_object("kfree", p, w);
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
  check_not_metadata("ksize", p);
  core::check_in_arena(*mm_, "ksize", p);
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Slab)) {
    if (w.aux() >= kMaxCaches) report_unreachable_object("ksize", p, w);
    KmemCache* c = caches_[w.aux()].load(std::memory_order_acquire);
    std::uint64_t in = view_.offset(p) & ((kPageSize << c->order) - 1);
    if (!c->on_slot_boundary(in)) report_bad_object("ksize", p, c->name, "not the start of an object");
    // A typesafe-by-RCU reader may hold a freed object legitimately (it re-checks after).
    if (kChecked && !(c->flags & SLAB_TYPESAFE_BY_RCU) && !is_live_object(c, p)) report_bad_object("ksize", p, c->name, "object is not allocated (freed, or never allocated)");
    if (c->asan_poison) asan::unpoison(p, c->object_size);  // ksize says all of it is the caller's
    return c->object_size;
  }
  if (w.is(MemdescType::Misc) && w.misc_subtype() == MiscSubtype::KmallocLarge) {
    asan::unpoison(p, kPageSize << w.order());
    return kPageSize << w.order();
  }
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
