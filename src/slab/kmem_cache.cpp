// slab/kmem_cache.cpp — caches: creation (geometry and magazine sizing), destruction, the slab
// lists, taking and putting objects on slabs, and the slab life cycle (SLAB-BOOT, SLAB-RCU).
#include "slab/kmem_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/base.hpp"
#include "slab/slab_alloc.hpp"

namespace memdesc::slab {

// ---- the allocator and its built-in caches ---------------------------------------------

Result<std::unique_ptr<SlabAllocator>> SlabAllocator::create(page::PageAllocator& pa, page::PageAllocator& meta) {
  init_link_secret();
  std::unique_ptr<SlabAllocator> sa(new SlabAllocator());
  core::Memmap& mm = pa.memmap();
  sa->pa_ = &pa;
  sa->mm_ = &mm;
  sa->view_ = mm.view();
  sa->meta_pa_ = &meta;
  sa->meta_mm_ = &meta.memmap();
  sa->meta_view_ = meta.memmap().view();
  sa->mags_.init(sa.get(), &pa, &mm);

  // The descriptor cache first: its slabs describe themselves (SLAB-SELF), so it needs no
  // other cache. Then the kmalloc classes.
  SlabCreate d{"slab_descriptor", sizeof(Slab), alignof(Slab), SLAB_TYPESAFE_BY_RCU, nullptr, kSlabFreeptrOffset};
  auto dc = sa->cache_init(std::make_unique<KmemCache>(), d, kDescriptorCacheId);
  if (!dc.ok()) return dc.error();
  sa->desc_cache_ = dc.value();
  for (unsigned i = 0; i < kKmallocClasses; ++i) {
    if (kKmallocClassTable[i].size > (kPageSize << mm.max_order())) continue;  // small arenas: no such class
    SlabCreate k{kKmallocClassTable[i].name, kKmallocClassTable[i].size, 0, SLAB_NONE, nullptr};
    auto c = sa->cache_init(std::make_unique<KmemCache>(), k, kmalloc_class_id(i));
    if (!c.ok()) return c.error();
  }
  static const rcu::ForkOps kForkOps{&fork_acquire, &fork_release, nullptr};
  sa->fork_hook_.enable(sa.get(), &kForkOps);
  return sa;
}

// The caches cannot change while the registry lock (taken first: lower rank) is held.
void SlabAllocator::fork_acquire(void* self, LockRank r) {
  auto* sa = static_cast<SlabAllocator*>(self);
  if (r == LockRank::SlabRegistry) sa->caches_lock_.fork_acquire();
  if (r == LockRank::SlabCache) sa->for_each_live_cache([](KmemCache* c) NO_THREAD_SAFETY_ANALYSIS { c->lock.fork_acquire(); });
  if (r == LockRank::SlabLive) sa->for_each_live_cache([](KmemCache* c) NO_THREAD_SAFETY_ANALYSIS { c->live_mu.fork_acquire(); });
}

void SlabAllocator::fork_release(void* self, LockRank r) {
  auto* sa = static_cast<SlabAllocator*>(self);
  if (r == LockRank::SlabLive) sa->for_each_live_cache([](KmemCache* c) NO_THREAD_SAFETY_ANALYSIS { c->live_mu.fork_release(); });
  if (r == LockRank::SlabCache) sa->for_each_live_cache([](KmemCache* c) NO_THREAD_SAFETY_ANALYSIS { c->lock.fork_release(); });
  if (r == LockRank::SlabRegistry) sa->caches_lock_.fork_release();
}

SlabAllocator::~SlabAllocator() {
  fork_hook_.disable();
  mags_.detach();
  // Deferred slab frees of RCU caches still reference us; callbacks may re-arm themselves.
  for (bool armed = true; armed;) {
    rcu::barrier();
    armed = false;
    for (auto& slot : caches_)
      if (KmemCache* c = slot.load(std::memory_order_relaxed)) {
        LockGuard g(c->lock);
        armed |= c->rcu_armed;
      }
  }
  for (auto& slot : caches_) {
    KmemCache* c = slot.load(std::memory_order_relaxed);
    if (!c) continue;
    // Arena teardown: no accounting.
    for (std::uint32_t i = 0; i < c->nfull; ++i) Magazines::free_magazine_memory(c->depot_full[i]);
    for (std::uint32_t i = 0; i < c->nempty; ++i) Magazines::free_magazine_memory(c->depot_empty[i]);
    delete c;
  }
  for (KmemCache* c : graveyard_) delete c;
  // Pages of the arena go with it; nothing is returned one by one.
}

// ---- creation and destruction of caches ---------------------------------------------------

// Geometry (slot, slab order, freelist-link place) and magazine sizing, from what the creator
// asked for; every field set here is immutable afterwards.
bool KmemCache::is_internal(const SlabCreate& a, unsigned cache_id) {
  return a.internal || a.descriptor || cache_id == kDescriptorCacheId;
}

Error KmemCache::init(const SlabCreate& a, unsigned cache_id, SlabAllocator* owner, const core::Memmap* memmap,
                      page::PageAllocator* pages) {
  if (a.size == 0 || a.size > (std::size_t{1} << 20)) return Error{Errc::invalid_config, 0, "object size must be 1 B .. 1 MiB"};
  std::size_t al = a.align ? a.align : (a.size >= 16 ? 16 : 8);
  if (a.flags & SLAB_HWCACHE_ALIGN) al = std::max<std::size_t>(al, 64);
  if (!is_pow2(al) || al > kPageSize) return Error{Errc::invalid_config, 0, "alignment must be a power of two <= 4096"};
  bool rcu = static_cast<bool>(a.flags & SLAB_TYPESAFE_BY_RCU);
  bool keep_contents = rcu || a.ctor;  // a free object must keep what readers or the ctor rely on
  // MEMDESC-RCU: lockless lookups read descriptors of any type through a stale word, so a
  // cache of memdescs must keep its memory typesafe across a grace period.
  if (a.descriptor && !rcu) return Error{Errc::invalid_config, 0, "a descriptor cache must be SLAB_TYPESAFE_BY_RCU"};
  if ((a.flags & SLAB_POISON) && keep_contents)
    return Error{Errc::invalid_config, 0, "SLAB_POISON cannot be combined with SLAB_TYPESAFE_BY_RCU or a constructor"};
  bool has_freeptr_off = a.freeptr_offset != ~std::size_t{0};
  if (has_freeptr_off && (a.freeptr_offset % 4 != 0 || a.freeptr_offset + 4 > a.size))
    return Error{Errc::invalid_config, 0, "freeptr_offset must name a 4-byte-aligned field inside the object"};

  std::snprintf(name, sizeof name, "%s", a.name);
  id = static_cast<std::uint16_t>(cache_id);
  internal = is_internal(a, cache_id);
  word_aux = static_cast<std::uint16_t>(cache_id | (internal ? kInternalAux : 0));
  object_size = static_cast<std::uint32_t>(a.size);
  align = static_cast<std::uint32_t>(al);
  flags = a.flags;
  ctor = a.ctor;
  sa = owner;
  mm = memmap;
  pa = pages;
  std::size_t slot = std::max<std::size_t>(a.size, 8);
  if (kChecked && (a.flags & SLAB_RED_ZONE)) {
    // From the object's last byte on, so that an overflow of a single byte lands in it.
    redzone_off = static_cast<std::uint32_t>(a.size);
    slot = redzone_off + kRedZoneBytes;
  }
  if (keep_contents && !has_freeptr_off) {  // the link goes after the object
    freeptr_off = static_cast<std::uint32_t>(align_up(slot, 4));
    slot = freeptr_off + 4;
  } else {
    freeptr_off = has_freeptr_off ? static_cast<std::uint32_t>(a.freeptr_offset) : 0;
  }
  stride = static_cast<std::uint32_t>(align_up(slot, al));
  poison = kChecked && (a.flags & SLAB_POISON);
  marked = kHardened && !keep_contents && (freeptr_off + 4 <= kFreeMarkOff || freeptr_off >= kFreeMarkOff + 4);
  asan_poison = asan::kOn && !rcu;
  div_magic = ~std::uint64_t{0} / stride + 1;
  reserved_slots = (cache_id == kDescriptorCacheId) ? 1 : 0;

  // Slab size: the smallest order (<= 3) that holds 16 objects with at most 1/16 waste, else
  // order 3; then at least 2 objects where the arena's largest block allows, at least 1.
  unsigned best = 3;
  for (unsigned o = 0; o <= 3; ++o) {
    std::size_t bytes = kPageSize << o, n = bytes / stride, waste = bytes - n * stride;
    if (n >= 16 && waste * 16 <= bytes) {
      best = o;
      break;
    }
  }
  best = std::min(best, mm->max_order());  // small arenas: smaller slabs
  while ((kPageSize << best) / stride < 2 && best < mm->max_order()) ++best;
  if ((kPageSize << best) / stride < 1) return Error{Errc::invalid_config, 0, "object too large for the arena's largest block"};
  order = static_cast<std::uint8_t>(best);
  std::size_t n = std::min<std::size_t>((kPageSize << best) / stride, 65535);
  objects = static_cast<std::uint16_t>(n);
  // Magazine capacity (MAG-GROW): at most about 32 KiB of objects, 16..64 of them (128 of
  // objects up to 64 bytes, which halves the depot trips of bursts of tiny objects), never more
  // than 64 KiB (8 objects of 8 KiB; 2 of anything above 32 KiB): enough to amortise the cache
  // lock even for 4 KiB objects under two threads' contention. A magazine starts with room for
  // 16 KiB of objects and grows only when the lock is found held often, so caches of big
  // objects that threads use now and then hoard little memory (docs/MEASUREMENTS.md).
  const std::size_t most_objects = stride <= 64 ? 128 : 64;
  mag_cap_max = static_cast<std::uint32_t>(std::min(std::clamp<std::size_t>(kMagTargetBytes / stride, 16, most_objects),
                                                       std::max<std::size_t>(2, kMagMaxBytes / stride)));
  mag_cap.store(std::min<std::uint32_t>(mag_cap_max, static_cast<std::uint32_t>(
                                                               std::max<std::size_t>(2, kMagStartBytes / stride))),
                   std::memory_order_relaxed);
  return Error::none();
}

Result<KmemCache*> SlabAllocator::cache_init(std::unique_ptr<KmemCache> c, const SlabCreate& a, unsigned id) {
  bool meta = KmemCache::is_internal(a, id);  // META-OOB
  if (Error e = c->init(a, id, this, meta ? meta_mm_ : mm_, meta ? meta_pa_ : pa_)) return e;
  KmemCache* raw = c.release();
  fast_[id] = {raw->div_magic, ((kPageSize << raw->order) - 1) | (raw->marked ? FastInfo::kMarked : 0)};
  caches_[id].store(raw, std::memory_order_release);
  return raw;
}

Result<KmemCache*> SlabAllocator::cache_create(const SlabCreate& a) {
  unsigned id = 0;
  {
    LockGuard g(caches_lock_);
    for (unsigned i = kFirstUserCacheId; i < kDeadCacheId && !id; ++i)
      if (!caches_[i].load(std::memory_order_relaxed)) id = i;
    if (!id) return Error{Errc::out_of_memory, 0, "too many caches in this arena (1009 beyond the built-in ones)"};
    return cache_init(std::make_unique<KmemCache>(), a, id);  // allocates no pages
  }
}

void SlabAllocator::cache_destroy(KmemCache* c, bool keep_shell) {
  if (!c) return;
  check_alive(c, "kmem_cache_destroy");
  if (c->id < kFirstUserCacheId) report_bad_argument("kmem_cache_destroy", "built-in caches cannot be destroyed");
  // Every thread's magazine for this cache goes back to the slabs. The caller guarantees no
  // thread uses the cache any more (and has synchronised with them).
  discard_slabs(c, mags_.flush_everywhere(c));
  discard_slabs(c, mags_.depot_drain(c));
  if (c->flags & SLAB_TYPESAFE_BY_RCU) rcu_wait_idle(c);
  std::uint32_t all = kNil;
  {
    LockGuard g(c->lock);
    if (c->inuse != 0) report_cache_leak(c->name, c->inuse);
    for (std::uint32_t* head : {&c->partial, &c->empty})
      while (*head != kNil) {
        Slab* s = c->slab_at(*head);
        c->list_del_locked(s);
        s->next = all;
        all = s->pfn;
      }
  }
  discard_slabs(c, all);
  if (c->flags & SLAB_TYPESAFE_BY_RCU) rcu_wait_idle(c);
  KmemCache* to_free = keep_shell ? nullptr : c;
  {
    LockGuard g(caches_lock_);
    caches_[c->id].store(nullptr, std::memory_order_release);  // the id may be reused
    if (keep_shell) {
      // The object stays as a shell: a later use reaches a slow path (kDeadCacheId has no
      // magazines and no page carries it) and is reported there. The oldest shell goes when
      // there are kMaxShells, so destroying caches in a loop costs bounded memory.
      c->id = c->word_aux = kDeadCacheId;  // no page carries it
      c->dead.store(true, std::memory_order_relaxed);
      if (graveyard_.size() == kMaxShells) {
        to_free = graveyard_.front();
        graveyard_.erase(graveyard_.begin());
      }
      graveyard_.push_back(c);
    }
  }
  delete to_free;  // outside the lock
}

// ---- slab lists and objects on slabs --------------------------------------------------------

void KmemCache::list_add_locked(Slab* s, SlabList l) {
  std::uint32_t& head = (l == SlabList::Partial) ? partial : empty;
  s->prev = kNil;
  s->next = head;
  if (head != kNil) slab_at(head)->prev = s->pfn;
  head = s->pfn;
  s->list = l;
  ++(l == SlabList::Partial ? nr_partial : nr_empty);
}

void KmemCache::list_del_locked(Slab* s) {
  if (s->list == SlabList::None) return;
  std::uint32_t& head = (s->list == SlabList::Partial) ? partial : empty;
  if (s->prev != kNil) slab_at(s->prev)->next = s->next;
  else head = s->next;
  if (s->next != kNil) slab_at(s->next)->prev = s->prev;
  --(s->list == SlabList::Partial ? nr_partial : nr_empty);
  s->list = SlabList::None;
  s->next = s->prev = kNil;
}

void* KmemCache::take_object_locked(Slab* s) {
  char* base = static_cast<char*>(mm->addr(s->pfn));
  void* obj;
  if (s->freelist) {
    obj = base + (s->freelist - 1);
    std::uint32_t next = load_link(obj, freeptr_off);
    if (next && (next - 1 >= std::uint32_t{s->objects} * stride || !on_slot_boundary(next - 1)))
      report_bad_object("kmem_cache_alloc", obj, name, "freelist link overwritten (use after free?)");
    s->freelist = next;
  } else {
    obj = base + std::size_t{s->bump} * stride;
    ++s->bump;
  }
  ++s->inuse;
  ++inuse;
  if (s->inuse == s->objects) list_del_locked(s);  // full: on no list (SLAB-LIST)
  return obj;
}

std::uint32_t KmemCache::put_object_locked(Slab* s, void* obj) {
  char* base = static_cast<char*>(mm->addr(s->pfn));
  std::uint32_t off = static_cast<std::uint32_t>(static_cast<char*>(obj) - base);
  if (off / stride >= s->bump || off / stride < reserved_slots)
    report_bad_object("kfree", obj, name, "object was never allocated");
  // MAG-TOP at the slab: the object on top of the freelist, or a slab with nothing handed out.
  if (s->freelist == off + 1 || s->inuse == reserved_slots)
    report_bad_object("kfree", obj, name, "double free (object is already free)");
  store_link(obj, freeptr_off, s->freelist);
  s->freelist = off + 1;
  bool was_full = s->list == SlabList::None;
  --s->inuse;
  --inuse;
  if (s->inuse == reserved_slots) {  // empty
    list_del_locked(s);
    if (nr_empty >= kMinEmpty) {
      --nr_slabs;
      return s->pfn;  // the caller discards it
    }
    list_add_locked(s, SlabList::Empty);
  } else if (was_full) {
    list_add_locked(s, SlabList::Partial);
  }
  return kNil;
}

bool SlabAllocator::is_handed_out_locked(KmemCache* c, const void* p) const {
  const core::ArenaView& v = home_view(c);
  std::uint64_t off = v.offset(p);
  if (off >= v.bytes) return false;
  MemdescWord w = v.word_at(off, std::memory_order_acquire);
  if (!word_in_cache(w, c)) return false;
  const Slab* s = w.desc_as<Slab>();
  std::uint64_t in = off & ((kPageSize << c->order) - 1);
  if (!c->on_slot_boundary(in) || in / c->stride >= s->bump || in / c->stride < c->reserved_slots) return false;
  const char* base = static_cast<const char*>(c->mm->addr(s->pfn));
  std::uint32_t steps = 0;
  for (std::uint32_t f = s->freelist; f && steps <= s->objects; ++steps) {
    if (f - 1 == in) return false;  // free already
    if (f - 1 >= std::uint32_t{s->objects} * c->stride) return false;  // a torn or corrupt freelist: trust nothing
    f = load_link(base + (f - 1), c->freeptr_off);
  }
  return s->inuse > c->reserved_slots;
}

Slab* SlabAllocator::slab_of(const KmemCache* c, const void* p) const {
  const core::ArenaView& v = home_view(c);
  return v.word_at(v.offset(p), std::memory_order_acquire).desc_as<Slab>();
}

// ---- slab life cycle -------------------------------------------------------------------------

void* SlabAllocator::alloc_descriptor(KmemCache* dc) {
  if (fault::should_fail(fault::Site::Descriptor)) {
    set_last_error(Errc::out_of_memory, "descriptor allocation failed by fault injection");
    return nullptr;
  }
  return cache_alloc(dc, GFP_NONE);
}

// SLAB-BOOT: pages first (with a placeholder word nobody may free), then the descriptor, then
// the page words; every failure gives back what was taken.
Slab* SlabAllocator::new_slab(KmemCache* c) {
  const MemdescWord placeholder = MemdescWord::misc(MiscSubtype::Unknown, c->order);
  // Straight from the buddy, as discarded slabs go straight back (free_slab_now): a slab is made
  // once per `objects` allocations, and a refill of this thread's page cache would park a
  // batch of blocks (4 x 32 KiB at order 3) where no other thread's slabs could use them.
  void* mem = c->pa->alloc(c->order, GFP_NOCACHE, placeholder);
  if (!mem) return nullptr;
  // SLAB_POISON: a never-used slot holds the free pattern too, or its first allocation would
  // find the "poison overwritten" (found by fuzz/fuzz_kmalloc).
  if (c->poison) std::memset(mem, kPoisonFree, kPageSize << c->order);
  if (c->asan_poison) asan::poison(mem, kPageSize << c->order);  // every slot starts free
  Slab* s;
  if (c->reserved_slots) {
    s = static_cast<Slab*>(mem);  // SLAB-SELF: object 0 is this slab's own descriptor
  } else {
    s = static_cast<Slab*>(alloc_descriptor(desc_cache_));
    if (!s) {
      c->pa->free(mem, placeholder, "slab unwind");
      return nullptr;
    }
  }
  std::uint64_t pfn = c->mm->pfn(mem);
  s->cache = c;
  s->freelist = 0;
  s->inuse = c->reserved_slots;
  s->objects = c->objects;
  s->pfn = static_cast<std::uint32_t>(pfn);
  s->next = s->prev = kNil;
  s->bump = c->reserved_slots;
  s->order = c->order;
  s->list = SlabList::None;
  // Publish: the release stores make the initialised descriptor visible with the word.
  c->mm->set_words(pfn, std::uint64_t{1} << c->order, MemdescWord::describe(MemdescType::Slab, s, c->order, c->word_aux));
  if (c->internal) mm_->metadata().descriptors.fetch_add(descriptor_slab_cost(c), std::memory_order_relaxed);
  return s;
}

void SlabAllocator::free_slab_now(KmemCache* c, Slab* s) {
  void* mem = c->mm->addr(s->pfn);
  MemdescWord w = MemdescWord::describe(MemdescType::Slab, s, s->order, c->word_aux);
  bool rcu_thread = static_cast<bool>(c->flags & SLAB_TYPESAFE_BY_RCU);  // freed from the RCU callback thread
  // Words first (the pages leave the cache), then the descriptor: a reader that still finds
  // the old word gets a descriptor of the same type, and re-checks the word. The pages go
  // straight to the buddy: a discarded slab is memory the cache did not need, and parking it in
  // this thread's page cache would only hoard it there.
  c->pa->free_direct(mem, w, "slab discard");
  if (c->internal) mm_->metadata().descriptors.fetch_sub(descriptor_slab_cost(c), std::memory_order_relaxed);
  if (c->reserved_slots) return;
  if (rcu_thread) free_to_slab(desc_cache_, s);  // the RCU thread keeps no magazines
  else cache_free(desc_cache_, s);
}

void SlabAllocator::free_to_slab(KmemCache* c, void* p) {
  if constexpr (kChecked) checked_on_free(c, p, "kmem_cache_free");
  put_to_slab(c, p);
}

void SlabAllocator::put_to_slab(KmemCache* c, void* p) {
  void* one[1] = {p};
  MagazinePair m{1, 1, 0, one};
  discard_slabs(c, mags_.flush(c, m, 1));
}

void SlabAllocator::discard_slabs(KmemCache* c, std::uint32_t list) {
  // (rcu::call below runs under the cache lock: the thread registered with RCU at its first use
  // of the arena, page::attach_thread_cache, where it held no lock.)
  while (list != kNil) {
    Slab* s = c->slab_at(list);
    list = s->next;
    if (c->flags & SLAB_TYPESAFE_BY_RCU) {  // SLAB-RCU
      LockGuard g(c->lock);
      s->next = c->rcu_pending;
      c->rcu_pending = s->pfn;
      if (!c->rcu_armed) {
        c->rcu_inflight = c->rcu_pending;
        c->rcu_pending = kNil;
        c->rcu_armed = true;
        rcu::call(&c->rcu_hook.head, rcu_discard_cb);
      }
    } else {
      free_slab_now(c, s);
    }
  }
}

// Runs after a grace period that began after every slab on the in-flight list left the cache.
// `rcu_armed` stays set until the callback's last access to the cache (the unlock at the end),
// so kmem_cache_destroy, which waits for it to clear, never frees the cache under it.
void SlabAllocator::rcu_discard_cb(rcu::Head* h) {
  static_assert(offsetof(KmemCache::RcuHook, head) == 0);
  KmemCache* c = reinterpret_cast<KmemCache::RcuHook*>(h)->cache;
  SlabAllocator* sa = c->sa;
  std::uint32_t list;
  {
    LockGuard g(c->lock);
    list = c->rcu_inflight;
    c->rcu_inflight = kNil;
  }
  while (list != kNil) {
    Slab* s = c->slab_at(list);
    list = s->next;
    sa->free_slab_now(c, s);
  }
  LockGuard g(c->lock);
  if (c->rcu_pending != kNil) {  // discarded meanwhile: they wait for a grace period of their own
    c->rcu_inflight = c->rcu_pending;
    c->rcu_pending = kNil;
    rcu::call(&c->rcu_hook.head, rcu_discard_cb);
  } else {
    c->rcu_armed = false;
  }
}

void SlabAllocator::rcu_wait_idle(KmemCache* c) {
  for (;;) {  // callbacks may re-arm themselves
    rcu::barrier();
    LockGuard g(c->lock);
    if (!c->rcu_armed) return;
  }
}

}  // namespace memdesc::slab
