// slab/magazine.cpp — the magazine layer (slab/magazine.hpp): thread contexts and their magazine
// pairs (make, grow, remake_pair, flush, thread exit), transfers to and from slabs, and the depot.
#include "slab/magazine.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "page/page.hpp"
#include "slab/slab_alloc.hpp"

namespace memdesc::slab {
namespace {

const page::CacheExtOps kCtxOps{&Magazines::ctx_thread_exit, &Magazines::ctx_release, &Magazines::ctx_fork_orphan};

}  // namespace

// ---- thread contexts ---------------------------------------------------------------------

void Magazines::init(SlabAllocator* sa, page::PageAllocator* pa, core::Memmap* mm) {
  sa_ = sa;
  pa_ = pa;
  mm_ = mm;
  id_ = mm->id();
  ext_slot_ = page::register_cache_ext(pa_, &kCtxOps);
}

void Magazines::detach() {
  page::detach_cache_ext(pa_, ext_slot_);  // contexts of every thread: released
  if (tls_slab.id == id_) tls_slab = {};
}

std::uint32_t Magazines::flush_everywhere(KmemCache* c) {
  std::uint32_t discard = kNil;
  page::for_each_cache_ext(pa_, ext_slot_, [&](void* p) {
    auto* ctx = static_cast<ThreadSlabCtx*>(p);
    MagazinePair& m = ctx->pair_of(c->id);  // kNoMagazines: cap 0
    if (!m.cap) return;
    discard = splice(c, flush_pair(c, m), discard);
    ctx->sub_bytes(release_pair(m));
  });
  return discard;
}

ThreadSlabCtx* Magazines::attach_ctx() {
  page::ThreadPageCache* pc = page::attach_thread_cache(pa_);
  if (!pc) return nullptr;  // thread exiting, or no memory for a cache
  auto* ctx = static_cast<ThreadSlabCtx*>(page::cache_ext(pc, ext_slot_));
  if (!ctx) {
    ctx = new (std::nothrow) ThreadSlabCtx();
    if (!ctx) return nullptr;
    ctx->mags = this;
    ctx->id = id_;
    ctx->chunk[0].store(ctx->kmalloc_mags, std::memory_order_relaxed);
    for (unsigned i = 1; i < kMaxCaches / kMagChunk; ++i) ctx->chunk[i].store(kNoMagazines, std::memory_order_relaxed);
    if (!page::set_cache_ext(pc, ext_slot_, ctx)) {  // the arena is going: no context
      delete ctx;
      return nullptr;
    }
    ctx->bytes.store(sizeof(ThreadSlabCtx), std::memory_order_relaxed);
    mm_->metadata().caches.fetch_add(sizeof(ThreadSlabCtx), std::memory_order_relaxed);
  }
  tls_slab = {id_, ctx};
  return ctx;
}

void Magazines::flush_ctx(ThreadSlabCtx* ctx) {
  for (unsigned ch = 0; ch < kMaxCaches / kMagChunk; ++ch) {
    MagazinePair* chunk = ctx->chunk[ch].load(std::memory_order_relaxed);
    if (chunk == kNoMagazines) continue;
    for (unsigned j = 0; j < kMagChunk; ++j) {
      MagazinePair& m = chunk[j];
      if (!m.count && !m.prev_count) continue;
      KmemCache* c = sa_->caches_[ch * kMagChunk + j].load(std::memory_order_acquire);
      sa_->discard_slabs(c, flush_pair(c, m));
    }
  }
}

void Magazines::flush_thread() {
  if (tls_slab.id == id_) flush_ctx(tls_slab.ctx);
}

void Magazines::ctx_thread_exit(void* p) {
  auto* ctx = static_cast<ThreadSlabCtx*>(p);
  if (tls_slab.ctx == ctx) tls_slab = {};
  ctx->mags->flush_ctx(ctx);  // frees made now bypass this thread's (dying) caches
  ctx->mags->mm_->metadata().caches.fetch_sub(ctx->bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ctx_release(ctx);
}

void Magazines::ctx_fork_orphan(void* p) {
  auto* ctx = static_cast<ThreadSlabCtx*>(p);
  Magazines* self = ctx->mags;
  for (unsigned ch = 0; ch < kMaxCaches / kMagChunk; ++ch) {
    MagazinePair* chunk = ctx->chunk[ch].load(std::memory_order_relaxed);
    if (chunk == kNoMagazines) continue;
    for (unsigned j = 0; j < kMagChunk; ++j) {
      const MagazinePair m = chunk[j];
      KmemCache* c = self->sa_->caches_[ch * kMagChunk + j].load(std::memory_order_acquire);
      if (!c || !m.cap) continue;
      if (m.objs) self->reclaim_orphan(c, m.objs, std::min(m.count, m.cap));
      if (m.prev && m.prev != m.objs) self->reclaim_orphan(c, m.prev, std::min(m.prev_count, m.cap));
    }
  }
  self->mm_->metadata().caches.fetch_sub(ctx->bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ctx_release(ctx);
}

void Magazines::reclaim_orphan(KmemCache* c, void* const* objs, std::uint32_t n) {
  std::uint32_t discard = kNil;
  {
    LockGuard g(c->lock);
    for (std::uint32_t i = 0; i < n; ++i) {
      if (!sa_->is_handed_out_locked(c, objs[i])) continue;  // torn, or already back: left
      Slab* s = sa_->slab_of(c, objs[i]);
      if (std::uint32_t d = c->put_object_locked(s, objs[i]); d != kNil) {
        s->next = discard;
        discard = d;
      }
    }
  }
  sa_->discard_slabs(c, discard);
}

void Magazines::ctx_release(void* p) {
  auto* ctx = static_cast<ThreadSlabCtx*>(p);
  if (tls_slab.ctx == ctx) tls_slab = {};
  // Metadata accounting for the whole context (magazines included) was settled by the caller:
  // ctx_thread_exit subtracts ctx->bytes; an orphaned context goes with its arena.
  for (auto& slot : ctx->chunk) {
    MagazinePair* chunk = slot.load(std::memory_order_relaxed);
    if (chunk == kNoMagazines) continue;
    for (unsigned j = 0; j < kMagChunk; ++j) {
      free_magazine_memory(chunk[j].objs);
      free_magazine_memory(chunk[j].prev);
    }
    if (chunk != ctx->kmalloc_mags) std::free(chunk);
  }
  delete ctx;
}

// ---- magazine pairs --------------------------------------------------------------------------

MagazinePair* Magazines::make_pair(ThreadSlabCtx* ctx, KmemCache* c) {
  std::atomic<MagazinePair*>& slot = ctx->chunk[c->id / kMagChunk];
  MagazinePair* chunk = slot.load(std::memory_order_relaxed);
  if (chunk == kNoMagazines) {
    auto* fresh = static_cast<MagazinePair*>(std::calloc(kMagChunk, sizeof(MagazinePair)));
    if (!fresh) return nullptr;
    chunk = fresh;
    slot.store(fresh, std::memory_order_release);
    ctx->add_bytes(kMagChunk * sizeof(MagazinePair));
    mm_->metadata().caches.fetch_add(kMagChunk * sizeof(MagazinePair), std::memory_order_relaxed);
  }
  MagazinePair& m = chunk[c->id % kMagChunk];
  if (!m.cap) {
    std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
    m.objs = new_magazine(cap);
    if (!m.objs) return nullptr;
    m.cap = cap;
    ctx->add_bytes(magazine_bytes(cap));
  }
  return &m;
}

void** Magazines::new_magazine(std::uint32_t cap) {
  auto* raw = static_cast<void**>(std::malloc(magazine_bytes(cap)));
  if (!raw) return nullptr;
  raw[0] = nullptr;  // the sentinel the free fast path may read as objs[-1]
  mm_->metadata().caches.fetch_add(magazine_bytes(cap), std::memory_order_relaxed);
  return raw + 1;
}

void Magazines::free_magazine(void** objs, std::uint32_t cap) {
  if (!objs) return;
  free_magazine_memory(objs);
  mm_->metadata().caches.fetch_sub(magazine_bytes(cap), std::memory_order_relaxed);
}

std::size_t Magazines::release_pair(MagazinePair& m) {
  // The pair is emptied before its arrays are freed: a fork that stops this thread between the
  // two leaves its child a pair with no dangling array (ctx_fork_orphan reads it).
  const MagazinePair old = m;
  m = {};
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::size_t bytes = (std::size_t{old.objs != nullptr} + (old.prev != nullptr)) * magazine_bytes(old.cap);
  free_magazine(old.objs, old.cap);
  free_magazine(old.prev, old.cap);
  return bytes;
}

void Magazines::grow(KmemCache* c) {
  void** arrays[kDepotMax];
  unsigned narrays = 0;
  std::uint32_t discard, old;
  {
    LockGuard g(c->lock);
    if (!c->grow_due.load(std::memory_order_relaxed)) return;  // another thread did it
    c->grow_due.store(false, std::memory_order_relaxed);
    old = c->mag_cap.load(std::memory_order_relaxed);
    discard = depot_drain_locked(c, arrays, narrays);  // arrays of the old size
    // The depot is empty, so DEPOT-MAX holds at the new capacity too.
    c->mag_cap.store(std::min(old * 2, c->mag_cap_max), std::memory_order_relaxed);
  }
  for (unsigned i = 0; i < narrays; ++i) free_magazine(arrays[i], old);  // outside the lock
  sa_->discard_slabs(c, discard);
}

void Magazines::remake_pair(ThreadSlabCtx* ctx, KmemCache* c, MagazinePair& m) {
  std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
  void** objs = new_magazine(cap);
  if (!objs) return;  // the old magazines still work; only the depot refuses them
  // Capacities only grow, so the loaded magazine fits; the previous one's coldest objects go back
  // to their slabs if both do not.
  std::copy(m.objs, m.objs + m.count, objs);
  std::uint32_t n = m.count, discard = kNil;
  if (m.prev_count) {
    MagazinePair prev{m.prev_count, m.cap, 0, m.prev};
    if (n + prev.count > cap) discard = flush(c, prev, n + prev.count - cap);
    std::copy(prev.objs, prev.objs + prev.count, objs + n);
    n += prev.count;
  }
  ctx->sub_bytes(release_pair(m));
  ctx->add_bytes(magazine_bytes(cap));
  // The array before the counts (a fork child reads the pair: ctx_fork_orphan). The previous
  // magazine is made again when first needed.
  m.objs = objs;
  m.cap = cap;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  m.count = n;
  sa_->discard_slabs(c, discard);
}

std::uint32_t Magazines::flush_pair(KmemCache* c, MagazinePair& m) {
  std::uint32_t discard = m.count ? flush(c, m, m.count) : kNil;
  if (m.prev_count) {
    swap(m);
    discard = splice(c, flush(c, m, m.count), discard);
    swap(m);
  }
  return discard;
}

std::uint32_t Magazines::splice(const KmemCache* c, std::uint32_t list, std::uint32_t onto) {
  while (list != kNil) {
    Slab* s = c->slab_at(list);
    std::uint32_t next = s->next;
    s->next = onto;
    onto = list;
    list = next;
  }
  return onto;
}

// ---- between magazines and slabs --------------------------------------------------------------

bool Magazines::refill(KmemCache* c, MagazinePair& m) {
  void* fresh[128];
  for (;;) {
    std::uint32_t nfresh = 0;
    {
      MagLockGuard g(c);
      if (depot_get_locked(c, m)) return true;  // a whole magazine, in the same lock hold
      while (m.count < batch_of(m)) {
        std::uint32_t head = c->partial != kNil ? c->partial : c->empty;
        if (head == kNil) break;
        Slab* s = c->slab_at(head);
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
    for (std::uint32_t i = 0; i < nfresh; ++i) {  // outside the lock
      if (c->asan_poison) asan::unpoison(fresh[i], c->object_size);
      c->ctor(fresh[i]);
      if (c->asan_poison) asan::poison(fresh[i], c->object_size);
    }
    if (m.count) return true;
    Slab* s = sa_->new_slab(c);
    if (!s) return false;
    LockGuard g(c->lock);
    ++c->nr_slabs;
    // Nothing is handed out yet: the empty list (SLAB-LIST). The retry may find a magazine
    // another thread left in the depot meanwhile and take that; the slab then waits there.
    c->list_add_locked(s, SlabList::Empty);
  }
}

std::uint32_t Magazines::flush(KmemCache* c, MagazinePair& m, std::uint32_t n) {
  MagLockGuard g(c);
  return flush_locked(c, m, n);
}

std::uint32_t Magazines::put_objects_locked(KmemCache* c, void* const* objs, std::uint32_t n, std::uint32_t discard) {
  for (std::uint32_t i = 0; i < n; ++i) {
    Slab* s = sa_->slab_of(c, objs[i]);
    std::uint32_t d = c->put_object_locked(s, objs[i]);
    if (d != kNil) {  // emptied beyond what the cache keeps: onto the discard list
      s->next = discard;
      discard = d;
    }
  }
  return discard;
}

std::uint32_t Magazines::flush_locked(KmemCache* c, MagazinePair& m, std::uint32_t n) {
  n = std::min<std::uint32_t>(n, m.count);
  std::uint32_t discard = put_objects_locked(c, m.objs, n, kNil);  // the bottom is the coldest
  std::copy(m.objs + n, m.objs + m.count, m.objs);
  m.count -= n;
  return discard;
}

// ---- the depot -------------------------------------------------------------------------------

bool Magazines::depot_get_locked(KmemCache* c, MagazinePair& m) {
  if (m.count || !c->nfull || m.cap != c->mag_cap.load(std::memory_order_relaxed)) return false;
  // DEPOT-MAX: the empty array takes the full one's place, so the depot has room for it.
  c->depot_empty[c->nempty++] = m.objs;
  m.objs = c->depot_full[--c->nfull];
  m.count = m.cap;
  return true;
}

std::uint32_t Magazines::unload(KmemCache* c, MagazinePair& m) {
  void** fresh = nullptr;
  std::uint32_t discard = kNil;
  for (;;) {
    {
      MagLockGuard g(c);
      if (c->nfull >= c->depot_max() || m.cap != c->mag_cap.load(std::memory_order_relaxed)) {
        discard = flush_locked(c, m, batch_of(m));  // no room (or an old-size array), same hold
        break;
      }
      // DEPOT-MAX: a full array for an empty one; with no empty one, nfull + nempty == nfull <
      // depot_max(), so one array more fits.
      void** empty = c->nempty ? c->depot_empty[--c->nempty] : fresh;
      if (empty) {
        if (empty == fresh) fresh = nullptr;
        c->depot_full[c->nfull++] = m.objs;
        m.objs = empty;
        m.count = 0;
        break;
      }
    }
    if (!(fresh = new_magazine(m.cap))) {  // no spare array: make one outside the lock
      discard = flush(c, m, batch_of(m));
      break;
    }
  }
  free_magazine(fresh, m.cap);  // made but not used: the depot had an empty array after all, or no room
  return discard;
}

std::uint32_t Magazines::depot_drain(KmemCache* c) {
  void** arrays[kDepotMax];  // DEPOT-MAX
  unsigned narrays = 0;
  std::uint32_t discard, cap;
  {
    LockGuard g(c->lock);
    cap = c->mag_cap.load(std::memory_order_relaxed);
    discard = depot_drain_locked(c, arrays, narrays);
  }
  for (unsigned i = 0; i < narrays; ++i) free_magazine(arrays[i], cap);  // outside the lock
  return discard;
}

std::uint32_t Magazines::depot_drain_locked(KmemCache* c, void** arrays[kDepotMax], unsigned& narrays) {
  std::uint32_t discard = kNil, cap = c->mag_cap.load(std::memory_order_relaxed);
  while (c->nfull) {
    void** objs = c->depot_full[--c->nfull];
    discard = put_objects_locked(c, objs, cap, discard);
    arrays[narrays++] = objs;
  }
  while (c->nempty) arrays[narrays++] = c->depot_empty[--c->nempty];
  return discard;
}

}  // namespace memdesc::slab
