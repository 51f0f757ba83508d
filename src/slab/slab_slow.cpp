// slab/slab_slow.cpp — the slow partners of the fast paths (slab_alloc.hpp): refill and flush
// of a thread's magazines, then bulk calls and shrinking.
#include <algorithm>
#include <cstring>

#include "slab/slab_alloc.hpp"

namespace memdesc::slab {

void* SlabAllocator::alloc_slow(KmemCache* c, Gfp gfp) {
  check_alive(c, "kmem_cache_alloc");
  ThreadSlabCtx* ctx = (tls_slab.id == view_.id) ? tls_slab.ctx : attach_ctx();
  MagazinePair* m = ctx ? magazine(ctx, c) : nullptr;
  void* p = nullptr;
  if (m) {
    if (MEMDESC_UNLIKELY(c->grow_due.load(std::memory_order_relaxed))) grow_magazines(c);
    if (MEMDESC_UNLIKELY(m->cap != c->mag_cap.load(std::memory_order_relaxed))) restack(ctx, c, *m);
    if (!m->count) {
      if (m->prev_count) swap_stacks(*m);  // the previous stack is full: no lock needed
      else if (!refill(c, *m)) return nullptr;  // the last error says why
    }
    p = m->objs[--m->count];
  } else {
    // No magazine (thread exiting, or no memory for one): straight from a slab.
    MagazinePair one{0, 1, 0, &p};
    if (!refill(c, one)) return nullptr;
  }
  if constexpr (kChecked) checked_on_alloc(c, p);
  if (gfp & GFP_ZERO) std::memset(p, 0, c->object_size);
  return p;
}

void SlabAllocator::free_slow(KmemCache* c, void* p, const char* op) {
  if constexpr (kChecked) checked_on_free(c, p, op);
  ThreadSlabCtx* ctx = (tls_slab.id == view_.id) ? tls_slab.ctx : attach_ctx();
  MagazinePair* m = ctx ? magazine(ctx, c) : nullptr;
  if (!m) return put_to_slab(c, p);  // no magazine: straight to the slab
  if ((m->objs + m->count)[-1] == p) double_free_slow(c, p, op);  // MAG-TOP, as free_object
  if (MEMDESC_UNLIKELY(c->grow_due.load(std::memory_order_relaxed))) grow_magazines(c);
  if (MEMDESC_UNLIKELY(m->cap != c->mag_cap.load(std::memory_order_relaxed))) restack(ctx, c, *m);
  if (m->count == m->cap) {
    if (!m->prev && (m->prev = new_stack(m->cap))) ctx->bytes += stack_bytes(m->cap);
    if (m->prev && !m->prev_count) swap_stacks(*m);  // the previous stack is empty: no lock needed
    else discard_slabs(c, unload(c, *m));
  }
  m->objs[m->count++] = p;
}

bool SlabAllocator::refill(KmemCache* c, MagazinePair& m) {
  void* fresh[128];
  for (;;) {
    std::uint32_t nfresh = 0;
    {
      MagLockGuard g(c);
      if (depot_get_locked(c, m)) return true;  // a whole magazine, in the same lock hold
      while (m.count < batch_of(m)) {
        std::uint32_t head = c->partial != kNil ? c->partial : c->empty;
        if (head == kNil) break;
        Slab* s = slab_of(mm_->addr(head));
        if (s->list == SlabList::Empty) {  // an empty slab starts to be used: partial
          c->list_del_locked(s);
          c->list_add_locked(s, SlabList::Partial);
        }
        bool from_bump = !s->freelist;
        void* obj = c->take_object_locked(s);
        if (from_bump && c->ctor) fresh[nfresh++] = obj;
        m.objs[m.count++] = obj;
      }
    }
    for (std::uint32_t i = 0; i < nfresh; ++i) c->ctor(fresh[i]);  // outside the lock
    if (m.count) return true;
    Slab* s = new_slab(c);
    if (!s) return false;
    LockGuard g(c->lock);
    ++c->nr_slabs;
    // Nothing is handed out yet: the empty list (SLAB-LIST). The retry may find a magazine
    // another thread left in the depot meanwhile and take that; the slab then waits there.
    c->list_add_locked(s, SlabList::Empty);
  }
}

std::uint32_t SlabAllocator::flush(KmemCache* c, MagazinePair& m, std::uint32_t n) {
  MagLockGuard g(c);
  return flush_locked(c, m, n);
}

std::uint32_t SlabAllocator::flush_locked(KmemCache* c, MagazinePair& m, std::uint32_t n) {
  n = std::min<std::uint32_t>(n, m.count);
  std::uint32_t discard = kNil;
  for (std::uint32_t i = 0; i < n; ++i) {  // the bottom of the stack is the coldest
    void* obj = m.objs[i];
    Slab* s = slab_of(obj);
    std::uint32_t d = c->put_object_locked(s, obj);
    if (d != kNil) {
      s->next = discard;
      discard = d;
    }
  }
  std::copy(m.objs + n, m.objs + m.count, m.objs);
  m.count -= n;
  return discard;
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
  if (tls_slab.id == view_.id) discard_slabs(c, flush_magazine(c, tls_slab.ctx->chunk[c->id / kMagChunk][c->id % kMagChunk]));
  discard_slabs(c, depot_drain(c));
  std::uint32_t list = kNil;
  std::size_t pages = 0;
  {
    LockGuard g(c->lock);
    while (c->empty != kNil) {
      Slab* s = slab_of(mm_->addr(c->empty));
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
  flush_thread();
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
