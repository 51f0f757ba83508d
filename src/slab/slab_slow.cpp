// slab/slab_slow.cpp — the slow partners of the fast paths (slab_alloc.hpp): alloc_slow and
// free_slow (through the magazine layer, magazine.cpp), then bulk calls and shrinking.
#include <algorithm>
#include <cstring>

#include "slab/slab_alloc.hpp"

namespace memdesc::slab {

void* SlabAllocator::alloc_slow(KmemCache* c, Gfp gfp) {
  check_alive(c, "kmem_cache_alloc");
  ThreadSlabCtx* ctx = mags_.current();
  MagazinePair* m = ctx ? mags_.pair(ctx, c) : nullptr;
  void* p = nullptr;
  if (m) {
    if (MEMDESC_UNLIKELY(c->grow_due.load(std::memory_order_relaxed))) mags_.grow(c);
    if (MEMDESC_UNLIKELY(m->cap != c->mag_cap.load(std::memory_order_relaxed))) mags_.remake_pair(ctx, c, *m);
    if (!m->count) {
      if (m->prev_count) mags_.swap(*m);  // the previous magazine is full: no lock needed
      else if (!mags_.refill(c, *m)) return nullptr;  // the last error says why
    }
    p = m->objs[--m->count];
  } else {
    // No magazine (thread exiting, or no memory for one): straight from a slab.
    MagazinePair one{0, 1, 0, &p};
    if (!mags_.refill(c, one)) return nullptr;
  }
  if (c->asan_poison) asan::unpoison(p, c->stride);
  if constexpr (kHardened)
    if (c->marked) clear_free_mark(p);  // SLAB-FREE-MARK
  if constexpr (kChecked) checked_on_alloc(c, p);
  if (c->asan_poison) asan::poison(static_cast<char*>(p) + c->object_size, c->stride - c->object_size);
  if (gfp & GFP_ZERO) std::memset(p, 0, c->object_size);
  return p;
}

void SlabAllocator::free_slow(KmemCache* c, void* p, const char* op) {
  if (c->asan_poison) asan::unpoison(p, c->stride);  // the red zone is read below
  if constexpr (kChecked) checked_on_free(c, p, op);
  if (c->asan_poison) asan::poison(p, c->stride);
  ThreadSlabCtx* ctx = mags_.current();
  MagazinePair* m = ctx ? mags_.pair(ctx, c) : nullptr;
  if (!m) return put_to_slab(c, p);  // no magazine: straight to the slab
  if ((m->objs + m->count)[-1] == p) double_free_slow(c, p, op);  // MAG-TOP, as free_object
  if (MEMDESC_UNLIKELY(c->grow_due.load(std::memory_order_relaxed))) mags_.grow(c);
  if (MEMDESC_UNLIKELY(m->cap != c->mag_cap.load(std::memory_order_relaxed))) mags_.remake_pair(ctx, c, *m);
  if (m->count == m->cap) {
    if (!m->prev && (m->prev = mags_.new_magazine(m->cap))) ctx->add_bytes(mags_.magazine_bytes(m->cap));
    if (m->prev && !m->prev_count) mags_.swap(*m);  // the previous magazine is empty: no lock needed
    else discard_slabs(c, mags_.unload(c, *m));
  }
  push(*m, p);
}

// ---- bulk, shrink ------------------------------------------------------------------------

std::size_t SlabAllocator::alloc_bulk(KmemCache* c, Gfp gfp, std::size_t n, void** out) {
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = cache_alloc(c, gfp);
    if (!out[i]) {  // all or nothing
      free_bulk(c, i, out);
      return 0;
    }
  }
  return n;
}

void SlabAllocator::free_bulk(KmemCache* c, std::size_t n, void** objs) {
  for (std::size_t i = 0; i < n; ++i) cache_free(c, objs[i]);
}

std::size_t SlabAllocator::shrink(KmemCache* c) {
  check_alive(c, "kmem_cache_shrink");
  if (tls_slab.id == view_.id) discard_slabs(c, mags_.flush_pair(c, tls_slab.ctx->pair_of(c->id)));
  discard_slabs(c, mags_.depot_drain(c));
  std::uint32_t list = kNil;
  std::size_t pages = 0;
  {
    LockGuard g(c->lock);
    while (c->empty != kNil) {
      Slab* s = c->slab_at(c->empty);
      c->list_del_locked(s);
      --c->nr_slabs;
      s->next = list;
      list = s->pfn;
      pages += std::size_t{1} << c->order;
    }
  }
  discard_slabs(c, list);
  return pages;
}

std::size_t SlabAllocator::shrink_all() {
  mags_.flush_thread();
  std::size_t pages = 0;
  // Descriptor cache last: discarding the others' slabs empties its slabs.
  for (unsigned id = 1; id < kMaxCaches; ++id)
    if (KmemCache* c = caches_[id].load(std::memory_order_acquire)) {
      pages += shrink(c);
      if (c->flags & SLAB_TYPESAFE_BY_RCU) rcu_wait_idle(c);
    }
  pages += shrink(desc_cache_);
  rcu_wait_idle(desc_cache_);
  return pages;
}

}  // namespace memdesc::slab
