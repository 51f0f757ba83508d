// slab/slab.cpp — slab life cycle, caches, magazines' slow paths. See slab.hpp.
#include "slab/slab.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "base/base.hpp"

namespace memdesc::slab {
namespace {

constexpr std::uint8_t kPoisonFree = 0x6b;
constexpr std::uint8_t kRedZone = 0xbb;
constexpr std::uint32_t kRedZoneBytes = 16;

const page::CacheExtOps kCtxOps{&SlabAllocator::ctx_thread_exit, &SlabAllocator::ctx_release};

void init_secret() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != sizeof s) s = reinterpret_cast<std::uintptr_t>(&s) * 0x9E3779B97F4A7C15ull;
    g_secret = s | 1;
  });
}

// A free slot's link to the next free slot (offset + 1 within the slab, 0 = end), obfuscated
// with the process secret and the slot's address so a leaked or overwritten link is useless.
std::uint32_t link_key(const void* slot) {
  return static_cast<std::uint32_t>(g_secret >> 32) ^ static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(slot) >> 3);
}

// Objects a refill takes and a flush gives back: half a stack, at least one.
std::uint32_t batch_of(const Magazine& m) { return std::max<std::uint32_t>(1, m.cap / 2); }

}  // namespace

// ---- creation and destruction ------------------------------------------------------------

Result<std::unique_ptr<SlabAllocator>> SlabAllocator::create(page::PageAllocator& pa) {
  init_secret();
  std::unique_ptr<SlabAllocator> sa(new SlabAllocator());
  core::Memmap& mm = pa.memmap();
  sa->pa_ = &pa;
  sa->mm_ = &mm;
  sa->id_ = mm.id();
  sa->base_ = mm.base();
  sa->bytes_ = mm.bytes();
  sa->words_ = &mm.word_slot(0);

  // The descriptor cache first: its slabs describe themselves (SLAB-SELF), so it needs no
  // other cache. Then the kmalloc classes.
  SlabCreate d{"slab_descriptor", sizeof(Slab), alignof(Slab), SLAB_TYPESAFE_BY_RCU, nullptr, kSlabFreeptrOffset};
  auto dc = sa->cache_init(std::make_unique<KmemCache>(), d, 0);
  if (!dc.ok()) return dc.error();
  sa->desc_cache_ = dc.value();
  static const std::uint32_t kSizes[] = {8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192};
  static const char* const kNames[] = {"kmalloc-8",   "kmalloc-16",  "kmalloc-32", "kmalloc-64", "kmalloc-96",
                                       "kmalloc-128", "kmalloc-192", "kmalloc-256", "kmalloc-512", "kmalloc-1k",
                                       "kmalloc-2k",  "kmalloc-4k",  "kmalloc-8k"};
  for (unsigned i = 0; i < 13; ++i) {
    SlabCreate k{kNames[i], kSizes[i], 0, SLAB_NONE, nullptr};
    auto c = sa->cache_init(std::make_unique<KmemCache>(), k, i + 1);
    if (!c.ok()) return c.error();
  }
  return sa;
}

Result<KmemCache*> SlabAllocator::cache_init(std::unique_ptr<KmemCache> c, const SlabCreate& a, unsigned id) {
  if (a.size == 0 || a.size > (std::size_t{1} << 20)) return Error{Errc::invalid_config, 0, "object size must be 1 B .. 1 MiB"};
  std::size_t align = a.align ? a.align : (a.size >= 16 ? 16 : 8);
  if (a.flags & SLAB_HWCACHE_ALIGN) align = std::max<std::size_t>(align, 64);
  if (!is_pow2(align) || align > kPageSize) return Error{Errc::invalid_config, 0, "alignment must be a power of two <= 4096"};
  bool rcu = a.flags & SLAB_TYPESAFE_BY_RCU;
  bool keep_contents = rcu || a.ctor;  // a free object must keep what readers or the ctor rely on
  if ((a.flags & SLAB_POISON) && keep_contents)
    return Error{Errc::invalid_config, 0, "SLAB_POISON cannot be combined with SLAB_TYPESAFE_BY_RCU or a constructor"};
  bool has_freeptr_off = a.freeptr_offset != ~std::size_t{0};
  if (has_freeptr_off && (a.freeptr_offset % 4 != 0 || a.freeptr_offset + 4 > a.size))
    return Error{Errc::invalid_config, 0, "freeptr_offset must name a 4-byte-aligned field inside the object"};

  std::snprintf(c->name, sizeof c->name, "%s", a.name);
  c->id = static_cast<std::uint16_t>(id);
  c->object_size = static_cast<std::uint32_t>(a.size);
  c->align = static_cast<std::uint32_t>(align);
  c->flags = a.flags;
  c->ctor = a.ctor;
  c->sa = this;
  std::size_t slot = std::max<std::size_t>(a.size, 8);
  if (kChecked && (a.flags & SLAB_RED_ZONE)) {
    c->redzone_off = static_cast<std::uint32_t>(align_up(slot, 8));
    slot = c->redzone_off + kRedZoneBytes;
  }
  if (keep_contents && !has_freeptr_off) {  // the link goes after the object
    c->freeptr_off = static_cast<std::uint32_t>(align_up(slot, 4));
    slot = c->freeptr_off + 4;
  } else {
    c->freeptr_off = has_freeptr_off ? static_cast<std::uint32_t>(a.freeptr_offset) : 0;
  }
  c->stride = static_cast<std::uint32_t>(align_up(slot, align));
  c->poison = kChecked && (a.flags & SLAB_POISON);
  c->div_magic = ~std::uint64_t{0} / c->stride + 1;
  c->self = (id == 0) ? 1 : 0;
  c->descriptor = a.descriptor || id == 0;

  // Slab size: the smallest order (<= 3) that holds 16 objects with at most 1/16 waste, else
  // order 3; then at least 2 objects where the arena's largest block allows, at least 1.
  unsigned best = 3;
  for (unsigned o = 0; o <= 3; ++o) {
    std::size_t bytes = kPageSize << o, n = bytes / c->stride, waste = bytes - n * c->stride;
    if (n >= 16 && waste * 16 <= bytes) {
      best = o;
      break;
    }
  }
  best = std::min(best, mm_->max_order());  // small arenas: smaller slabs
  while ((kPageSize << best) / c->stride < 2 && best < mm_->max_order()) ++best;
  if ((kPageSize << best) / c->stride < 1) return Error{Errc::invalid_config, 0, "object too large for the arena's largest block"};
  c->order = static_cast<std::uint8_t>(best);
  std::size_t n = std::min<std::size_t>((kPageSize << best) / c->stride, 65535);
  c->objects = static_cast<std::uint16_t>(n);
  // Stack capacity (MAG-GROW). At most about 32 KiB of objects, 16..64 of them (128 of objects
  // up to 64 bytes), and never more than 64 KiB (8 objects of 8 KiB; 2 of anything above
  // 32 KiB): enough to amortise the cache lock even for 4 KiB objects under two threads'
  // contention. The tiny classes' 128 halve the depot trips of a thread that allocates and
  // frees them in bursts (a 1000-object bulk loop ~4 % faster) for a few KiB more in their
  // stacks: no change in the alloc_test shape's peak RSS (200 children each, A/B). A stack
  // starts with room for 16 KiB of objects (caches of objects up to 256 bytes start at their
  // largest) and grows only when the lock is found held often: caches of big objects that
  // threads use now and then keep small stacks, which hoard little memory (at the largest
  // sizes, the stacks and depots of the classes from 512 bytes up held ~0.6 MiB at the
  // alloc_test shape's peak).
  const std::size_t most_objects = c->stride <= 64 ? 128 : 64;
  c->mag_cap_max = static_cast<std::uint32_t>(std::min(std::clamp<std::size_t>(kStackTargetBytes / c->stride, 16, most_objects),
                                                       std::max<std::size_t>(2, kStackMaxBytes / c->stride)));
  c->mag_cap.store(std::min<std::uint32_t>(c->mag_cap_max, static_cast<std::uint32_t>(
                                                               std::max<std::size_t>(2, kStackStartBytes / c->stride))),
                   std::memory_order_relaxed);

  KmemCache* raw = c.release();
  fast_[id] = {raw->div_magic, (kPageSize << raw->order) - 1};
  caches_[id].store(raw, std::memory_order_release);
  return raw;
}

Result<KmemCache*> SlabAllocator::cache_create(const SlabCreate& a) {
  unsigned id = 0;
  {
    LockGuard g(caches_lock_);
    for (unsigned i = 14; i < kMaxCaches && !id; ++i)
      if (!caches_[i].load(std::memory_order_relaxed)) id = i;
    if (!id) return Error{Errc::invalid_config, 0, "too many caches in this arena (1024)"};
    return cache_init(std::make_unique<KmemCache>(), a, id);  // allocates no pages
  }
}

void SlabAllocator::cache_destroy(KmemCache* c) {
  if (!c) return;
  if (c->id <= 13) report_bad_argument("kmem_cache_destroy", "built-in caches cannot be destroyed");
  // Every thread's magazine for this cache goes back to the slabs. The caller guarantees no
  // thread uses the cache any more (and has synchronised with them).
  std::uint32_t discard = kNil;
  {
    LockGuard g(page::cache_registry_lock());
    for (page::ThreadPageCache* pc = pa_->caches_head; pc; pc = pc->reg_next) {
      auto* ctx = static_cast<ThreadSlabCtx*>(pc->ext[page::kSlabCacheExt].ctx);
      if (!ctx) continue;
      Magazine& m = ctx->chunk[c->id / kMagChunk][c->id % kMagChunk];  // kNoMagazines: cap 0
      if (!m.cap) continue;
      discard = splice(flush_magazine(c, m), discard);
      ctx->bytes -= release_stacks(m);
    }
  }
  discard_slabs(c, discard);
  discard_slabs(c, depot_drain(c));
  if (c->flags & SLAB_TYPESAFE_BY_RCU) rcu_wait_idle(c);
  std::uint32_t all = kNil;
  {
    LockGuard g(c->lock);
    if (c->inuse != 0) report_cache_leak(c->name, c->inuse);
    for (std::uint32_t* head : {&c->partial, &c->empty})
      while (*head != kNil) {
        Slab* s = slab_of(mm_->addr(*head));
        list_del_locked(c, s);
        s->next = all;
        all = s->pfn;
      }
  }
  discard_slabs(c, all);
  if (c->flags & SLAB_TYPESAFE_BY_RCU) rcu_wait_idle(c);
  {
    LockGuard g(caches_lock_);
    caches_[c->id].store(nullptr, std::memory_order_release);
  }
  delete c;
}

SlabAllocator::~SlabAllocator() {
  page::detach_cache_ext(pa_, page::kSlabCacheExt);  // contexts of every thread: released
  if (tls_slab.id == id_) tls_slab = {};
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
    for (std::uint32_t i = 0; i < c->nfull; ++i) std::free(c->depot_full[i] - 1);
    for (std::uint32_t i = 0; i < c->nempty; ++i) std::free(c->depot_empty[i] - 1);
    delete c;
  }
  // Pages of the arena go with it; nothing is returned one by one.
}

// ---- thread contexts and magazines ------------------------------------------------------

ThreadSlabCtx* SlabAllocator::attach_ctx() {
  page::ThreadPageCache* pc = page::attach_thread_cache(pa_);
  if (!pc) return nullptr;  // thread exiting, or no memory for a cache
  auto* ctx = static_cast<ThreadSlabCtx*>(pc->ext[page::kSlabCacheExt].ctx);
  if (!ctx) {
    ctx = new (std::nothrow) ThreadSlabCtx();
    if (!ctx) return nullptr;
    ctx->sa = this;
    ctx->id = id_;
    ctx->chunk[0] = ctx->kmalloc_mags;
    for (unsigned i = 1; i < kMaxCaches / kMagChunk; ++i) ctx->chunk[i] = kNoMagazines;
    ctx->bytes = sizeof(ThreadSlabCtx);
    mm_->metadata().caches.fetch_add(ctx->bytes, std::memory_order_relaxed);
    LockGuard g(page::cache_registry_lock());
    pc->ext[page::kSlabCacheExt] = {ctx, &kCtxOps};
  }
  tls_slab = {id_, ctx};
  return ctx;
}

Magazine* SlabAllocator::make_magazine(ThreadSlabCtx* ctx, KmemCache* c) {
  Magazine*& chunk = ctx->chunk[c->id / kMagChunk];
  if (chunk == kNoMagazines) {
    auto* fresh = static_cast<Magazine*>(std::calloc(kMagChunk, sizeof(Magazine)));
    if (!fresh) return nullptr;
    chunk = fresh;
    ctx->bytes += kMagChunk * sizeof(Magazine);
    mm_->metadata().caches.fetch_add(kMagChunk * sizeof(Magazine), std::memory_order_relaxed);
  }
  Magazine& m = chunk[c->id % kMagChunk];
  if (!m.cap) {
    std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
    m.objs = new_stack(cap);
    if (!m.objs) return nullptr;
    m.cap = cap;
    ctx->bytes += stack_bytes(cap);
  }
  return &m;
}

void** SlabAllocator::new_stack(std::uint32_t cap) {
  auto* raw = static_cast<void**>(std::malloc(stack_bytes(cap)));
  if (!raw) return nullptr;
  raw[0] = nullptr;  // the sentinel the free fast path may read as objs[-1]
  mm_->metadata().caches.fetch_add(stack_bytes(cap), std::memory_order_relaxed);
  return raw + 1;
}

void SlabAllocator::free_stack(void** objs, std::uint32_t cap) {
  if (!objs) return;
  std::free(objs - 1);
  mm_->metadata().caches.fetch_sub(stack_bytes(cap), std::memory_order_relaxed);
}

std::size_t SlabAllocator::release_stacks(Magazine& m) {
  std::size_t bytes = (std::size_t{m.objs != nullptr} + (m.prev != nullptr)) * stack_bytes(m.cap);
  free_stack(m.objs, m.cap);
  free_stack(m.prev, m.cap);
  m = {};
  return bytes;
}

void SlabAllocator::grow_magazines(KmemCache* c) {
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
  for (unsigned i = 0; i < narrays; ++i) free_stack(arrays[i], old);  // outside the lock
  discard_slabs(c, discard);
}

void SlabAllocator::restack(ThreadSlabCtx* ctx, KmemCache* c, Magazine& m) {
  std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
  void** objs = new_stack(cap);
  if (!objs) return;  // the old stacks still work; only the depot refuses them
  // Capacities only grow, so the loaded stack fits; the previous one's coldest objects go back
  // to their slabs if both do not.
  std::copy(m.objs, m.objs + m.count, objs);
  std::uint32_t n = m.count, discard = kNil;
  if (m.prev_count) {
    Magazine prev{m.prev_count, m.cap, 0, m.prev};
    if (n + prev.count > cap) discard = flush(c, prev, n + prev.count - cap);
    std::copy(prev.objs, prev.objs + prev.count, objs + n);
    n += prev.count;
  }
  ctx->bytes -= release_stacks(m);
  ctx->bytes += stack_bytes(cap);
  m = {n, cap, 0, objs, nullptr};  // the previous stack is made again when first needed
  discard_slabs(c, discard);
}

std::uint32_t SlabAllocator::flush_magazine(KmemCache* c, Magazine& m) {
  std::uint32_t discard = m.count ? flush(c, m, m.count) : kNil;
  if (m.prev_count) {
    swap_stacks(m);
    discard = splice(flush(c, m, m.count), discard);
    swap_stacks(m);
  }
  return discard;
}

std::uint32_t SlabAllocator::splice(std::uint32_t list, std::uint32_t onto) {
  while (list != kNil) {
    Slab* s = slab_of(mm_->addr(list));
    std::uint32_t next = s->next;
    s->next = onto;
    onto = list;
    list = next;
  }
  return onto;
}

void SlabAllocator::flush_ctx(ThreadSlabCtx* ctx) {
  for (unsigned ch = 0; ch < kMaxCaches / kMagChunk; ++ch) {
    if (ctx->chunk[ch] == kNoMagazines) continue;
    for (unsigned j = 0; j < kMagChunk; ++j) {
      Magazine& m = ctx->chunk[ch][j];
      if (!m.count && !m.prev_count) continue;
      KmemCache* c = caches_[ch * kMagChunk + j].load(std::memory_order_acquire);
      discard_slabs(c, flush_magazine(c, m));
    }
  }
}

void SlabAllocator::flush_thread() {
  if (tls_slab.id == id_) flush_ctx(tls_slab.ctx);
}

void SlabAllocator::ctx_thread_exit(void* p) {
  auto* ctx = static_cast<ThreadSlabCtx*>(p);
  if (tls_slab.ctx == ctx) tls_slab = {};
  ctx->sa->flush_ctx(ctx);  // frees made now bypass this thread's (dying) caches
  ctx->sa->mm_->metadata().caches.fetch_sub(ctx->bytes, std::memory_order_relaxed);
  ctx_release(ctx);
}

void SlabAllocator::ctx_release(void* p) {
  auto* ctx = static_cast<ThreadSlabCtx*>(p);
  if (tls_slab.ctx == ctx) tls_slab = {};
  // Metadata accounting for the whole context (stacks included) was settled by the caller:
  // ctx_thread_exit subtracts ctx->bytes; an orphaned context goes with its arena.
  for (Magazine* chunk : ctx->chunk) {
    if (chunk == kNoMagazines) continue;
    for (unsigned j = 0; j < kMagChunk; ++j) {
      if (chunk[j].objs) std::free(chunk[j].objs - 1);  // the sentinel slot is the allocation's start
      if (chunk[j].prev) std::free(chunk[j].prev - 1);
    }
    if (chunk != ctx->kmalloc_mags) std::free(chunk);
  }
  delete ctx;
}

// ---- the depot ---------------------------------------------------------------------------

bool SlabAllocator::depot_get_locked(KmemCache* c, Magazine& m) {
  if (m.count || !c->nfull || m.cap != c->mag_cap.load(std::memory_order_relaxed)) return false;
  // DEPOT-MAX: the empty array takes the full one's place, so the depot has room for it.
  c->depot_empty[c->nempty++] = m.objs;
  m.objs = c->depot_full[--c->nfull];
  m.count = m.cap;
  return true;
}

std::uint32_t SlabAllocator::unload(KmemCache* c, Magazine& m) {
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
    if (!(fresh = new_stack(m.cap))) {  // no spare array: make one outside the lock
      discard = flush(c, m, batch_of(m));
      break;
    }
  }
  free_stack(fresh, m.cap);  // made but not used: the depot had an empty array after all, or no room
  return discard;
}

std::uint32_t SlabAllocator::depot_drain(KmemCache* c) {
  void** arrays[kDepotMax];  // DEPOT-MAX
  unsigned narrays = 0;
  std::uint32_t discard, cap;
  {
    LockGuard g(c->lock);
    cap = c->mag_cap.load(std::memory_order_relaxed);
    discard = depot_drain_locked(c, arrays, narrays);
  }
  for (unsigned i = 0; i < narrays; ++i) free_stack(arrays[i], cap);  // outside the lock
  return discard;
}

std::uint32_t SlabAllocator::depot_drain_locked(KmemCache* c, void** arrays[kDepotMax], unsigned& narrays) {
  std::uint32_t discard = kNil, cap = c->mag_cap.load(std::memory_order_relaxed);
  while (c->nfull) {
    void** objs = c->depot_full[--c->nfull];
    for (std::uint32_t i = 0; i < cap; ++i) {
      Slab* s = slab_of(objs[i]);
      std::uint32_t d = put_object_locked(c, s, objs[i]);
      if (d != kNil) {
        s->next = discard;
        discard = d;
      }
    }
    arrays[narrays++] = objs;
  }
  while (c->nempty) arrays[narrays++] = c->depot_empty[--c->nempty];
  return discard;
}

// ---- slabs -------------------------------------------------------------------------------

Slab* SlabAllocator::slab_of(const void* p) const {
  return MemdescWord::from_raw(words_[(reinterpret_cast<std::uintptr_t>(p) - base_) >> kPageShift].load(
                                   std::memory_order_acquire))
      .desc_as<Slab>();
}

void* SlabAllocator::alloc_descriptor(KmemCache* dc) {
  if (fault::should_fail(fault::Site::Descriptor)) {
    page::tls_last_error = Error{Errc::out_of_memory, 0, "descriptor allocation failed by fault injection"};
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
  void* mem = pa_->alloc(c->order, GFP_NOCACHE, placeholder);
  if (!mem) return nullptr;
  Slab* s;
  if (c->self) {
    s = static_cast<Slab*>(mem);  // SLAB-SELF: object 0 is this slab's own descriptor
  } else {
    s = static_cast<Slab*>(alloc_descriptor(desc_cache_));
    if (!s) {
      pa_->free(mem, placeholder, "slab unwind");
      return nullptr;
    }
  }
  std::uint64_t pfn = mm_->pfn(mem);
  s->cache = c;
  s->freelist = 0;
  s->inuse = c->self;
  s->objects = c->objects;
  s->pfn = static_cast<std::uint32_t>(pfn);
  s->next = s->prev = kNil;
  s->bump = c->self;
  s->order = c->order;
  s->list = SlabList::None;
  // Publish: the release stores make the initialised descriptor visible with the word.
  mm_->set_words(pfn, std::uint64_t{1} << c->order, MemdescWord::describe(MemdescType::Slab, s, c->order, c->id));
  if (c->descriptor) mm_->metadata().descriptors.fetch_add(kPageSize << c->order, std::memory_order_relaxed);
  return s;
}

void SlabAllocator::free_slab_now(KmemCache* c, Slab* s) {
  void* mem = mm_->addr(s->pfn);
  MemdescWord w = MemdescWord::describe(MemdescType::Slab, s, s->order, c->id);
  bool rcu_thread = c->flags & SLAB_TYPESAFE_BY_RCU;  // freed from the RCU callback thread
  // Words first (the pages leave the cache), then the descriptor: a reader that still finds
  // the old word gets a descriptor of the same type, and re-checks the word. The pages go
  // straight to the buddy: a discarded slab is memory the cache did not need, and parking it in
  // this thread's page cache would only hoard it there.
  pa_->free_direct(mem, w, "slab discard");
  if (c->descriptor) mm_->metadata().descriptors.fetch_sub(kPageSize << c->order, std::memory_order_relaxed);
  if (c->self) return;
  if (rcu_thread) free_to_slab(desc_cache_, s);  // the RCU thread keeps no magazines
  else cache_free(desc_cache_, s);
}

void SlabAllocator::free_to_slab(KmemCache* c, void* p) {
  if constexpr (kChecked) checked_on_free(c, p, "kmem_cache_free");
  put_to_slab(c, p);
}

void SlabAllocator::put_to_slab(KmemCache* c, void* p) {
  void* one[1] = {p};
  Magazine m{1, 1, 0, one};
  discard_slabs(c, flush(c, m, 1));
}

void SlabAllocator::rcu_wait_idle(KmemCache* c) {
  for (;;) {  // callbacks may re-arm themselves
    rcu::barrier();
    LockGuard g(c->lock);
    if (!c->rcu_armed) return;
  }
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

// Runs after a grace period that began after every slab on the in-flight list left the cache.
// `rcu_armed` stays set until the callback's last access to the cache (the unlock at the end),
// so kmem_cache_destroy, which waits for it to clear, never frees the cache under it.
void SlabAllocator::rcu_discard_cb(rcu::Head* h) {
  KmemCache* c = reinterpret_cast<KmemCache*>(reinterpret_cast<char*>(h) - offsetof(KmemCache, rcu_head));
  SlabAllocator* sa = c->sa;
  std::uint32_t list;
  {
    LockGuard g(c->lock);
    list = c->rcu_inflight;
    c->rcu_inflight = kNil;
  }
  while (list != kNil) {
    Slab* s = sa->slab_of(sa->mm_->addr(list));
    list = s->next;
    sa->free_slab_now(c, s);
  }
  LockGuard g(c->lock);
  if (c->rcu_pending != kNil) {  // discarded meanwhile: they wait for a grace period of their own
    c->rcu_inflight = c->rcu_pending;
    c->rcu_pending = kNil;
    rcu::call(&c->rcu_head, rcu_discard_cb);
  } else {
    c->rcu_armed = false;
  }
}

void SlabAllocator::discard_slabs(KmemCache* c, std::uint32_t list) {
  while (list != kNil) {
    Slab* s = slab_of(mm_->addr(list));
    list = s->next;
    if (c->flags & SLAB_TYPESAFE_BY_RCU) {  // SLAB-RCU
      LockGuard g(c->lock);
      s->next = c->rcu_pending;
      c->rcu_pending = s->pfn;
      if (!c->rcu_armed) {
        c->rcu_inflight = c->rcu_pending;
        c->rcu_pending = kNil;
        c->rcu_armed = true;
        rcu::call(&c->rcu_head, rcu_discard_cb);
      }
    } else {
      free_slab_now(c, s);
    }
  }
}

void SlabAllocator::list_add_locked(KmemCache* c, Slab* s, SlabList l) {
  std::uint32_t& head = (l == SlabList::Partial) ? c->partial : c->empty;
  s->prev = kNil;
  s->next = head;
  if (head != kNil) slab_of(mm_->addr(head))->prev = s->pfn;
  head = s->pfn;
  s->list = l;
  ++(l == SlabList::Partial ? c->nr_partial : c->nr_empty);
}

void SlabAllocator::list_del_locked(KmemCache* c, Slab* s) {
  if (s->list == SlabList::None) return;
  std::uint32_t& head = (s->list == SlabList::Partial) ? c->partial : c->empty;
  if (s->prev != kNil) slab_of(mm_->addr(s->prev))->next = s->next;
  else head = s->next;
  if (s->next != kNil) slab_of(mm_->addr(s->next))->prev = s->prev;
  --(s->list == SlabList::Partial ? c->nr_partial : c->nr_empty);
  s->list = SlabList::None;
  s->next = s->prev = kNil;
}

void* SlabAllocator::take_object_locked(KmemCache* c, Slab* s) {
  char* base = static_cast<char*>(mm_->addr(s->pfn));
  void* obj;
  if (s->freelist) {
    obj = base + (s->freelist - 1);
    std::uint32_t link;
    std::memcpy(&link, static_cast<char*>(obj) + c->freeptr_off, 4);
    std::uint32_t next = link ^ link_key(obj);
    if (next && (next - 1 >= std::uint32_t{s->objects} * c->stride || !c->on_slot_boundary(next - 1)))
      report_bad_object("kmem_cache_alloc", obj, c->name, "freelist link overwritten (use after free?)");
    s->freelist = next;
  } else {
    obj = base + std::size_t{s->bump} * c->stride;
    ++s->bump;
  }
  ++s->inuse;
  ++c->inuse;
  if (s->inuse == s->objects) list_del_locked(c, s);  // full: on no list (SLAB-LIST)
  return obj;
}

std::uint32_t SlabAllocator::put_object_locked(KmemCache* c, Slab* s, void* obj) {
  char* base = static_cast<char*>(mm_->addr(s->pfn));
  std::uint32_t off = static_cast<std::uint32_t>(static_cast<char*>(obj) - base);
  if (off / c->stride >= s->bump || off / c->stride < c->self)
    report_bad_object("kfree", obj, c->name, "object was never allocated");
  // MAG-TOP at the slab: the object on top of the freelist, or a slab with nothing handed out.
  if (s->freelist == off + 1 || s->inuse == c->self)
    report_bad_object("kfree", obj, c->name, "double free (object is already free)");
  std::uint32_t link = s->freelist ^ link_key(obj);
  std::memcpy(static_cast<char*>(obj) + c->freeptr_off, &link, 4);
  s->freelist = off + 1;
  bool was_full = s->list == SlabList::None;
  --s->inuse;
  --c->inuse;
  if (s->inuse == c->self) {  // empty
    list_del_locked(c, s);
    if (c->nr_empty >= kMinEmpty) {
      --c->nr_slabs;
      return s->pfn;  // the caller discards it
    }
    list_add_locked(c, s, SlabList::Empty);
  } else if (was_full) {
    list_add_locked(c, s, SlabList::Partial);
  }
  return kNil;
}

// ---- the slow paths ----------------------------------------------------------------------

bool SlabAllocator::refill(KmemCache* c, Magazine& m) {
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
          list_del_locked(c, s);
          list_add_locked(c, s, SlabList::Partial);
        }
        bool from_bump = !s->freelist;
        void* obj = take_object_locked(c, s);
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
    list_add_locked(c, s, SlabList::Empty);
  }
}

std::uint32_t SlabAllocator::flush(KmemCache* c, Magazine& m, std::uint32_t n) {
  MagLockGuard g(c);
  return flush_locked(c, m, n);
}

std::uint32_t SlabAllocator::flush_locked(KmemCache* c, Magazine& m, std::uint32_t n) {
  n = std::min<std::uint32_t>(n, m.count);
  std::uint32_t discard = kNil;
  for (std::uint32_t i = 0; i < n; ++i) {  // the bottom of the stack is the coldest
    void* obj = m.objs[i];
    Slab* s = slab_of(obj);
    std::uint32_t d = put_object_locked(c, s, obj);
    if (d != kNil) {
      s->next = discard;
      discard = d;
    }
  }
  std::copy(m.objs + n, m.objs + m.count, m.objs);
  m.count -= n;
  return discard;
}

void SlabAllocator::checked_on_alloc(KmemCache* c, void* p) {
  if (c->poison) {
    auto* b = static_cast<unsigned char*>(p);
    for (std::uint32_t i = 8; i < c->object_size; ++i)
      if (b[i] != kPoisonFree) report_bad_object("kmem_cache_alloc", p, c->name, "poison overwritten: written after free");
  }
  if (c->redzone_off) std::memset(static_cast<char*>(p) + c->redzone_off, kRedZone, kRedZoneBytes);
  std::lock_guard<std::mutex> g(c->live_mu);
  if (!c->live.insert(reinterpret_cast<std::uintptr_t>(p)).second)
    report_bad_object("kmem_cache_alloc", p, c->name, "object handed out twice (allocator state corrupted)");
}

bool SlabAllocator::is_live_object(KmemCache* c, const void* p) const {
  if constexpr (!kChecked) return true;
  std::lock_guard<std::mutex> g(c->live_mu);
  return c->live.count(reinterpret_cast<std::uintptr_t>(p)) != 0;
}

void SlabAllocator::checked_on_free(KmemCache* c, void* p, const char* op) {
  {
    std::lock_guard<std::mutex> g(c->live_mu);
    if (c->live.erase(reinterpret_cast<std::uintptr_t>(p)) == 0)
      report_bad_object(op, p, c->name, "object is not allocated (double free, or never allocated)");
  }
  if (c->redzone_off) {
    auto* rz = static_cast<unsigned char*>(p) + c->redzone_off;
    for (std::uint32_t i = 0; i < kRedZoneBytes; ++i)
      if (rz[i] != kRedZone) report_bad_object(op, p, c->name, "red zone overwritten: written past the end");
  }
  if (c->poison) std::memset(static_cast<char*>(p) + 8, kPoisonFree, c->object_size - 8);
}

void* SlabAllocator::alloc_slow(KmemCache* c, unsigned gfp) {
  ThreadSlabCtx* ctx = (tls_slab.id == id_) ? tls_slab.ctx : attach_ctx();
  Magazine* m = ctx ? magazine(ctx, c) : nullptr;
  void* p = nullptr;
  if (m) {
    if (MEMDESC_UNLIKELY(c->grow_due.load(std::memory_order_relaxed))) grow_magazines(c);
    if (MEMDESC_UNLIKELY(m->cap != c->mag_cap.load(std::memory_order_relaxed))) restack(ctx, c, *m);
    if (!m->count) {
      if (m->prev_count) swap_stacks(*m);  // the previous stack is full: no lock needed
      else if (!refill(c, *m)) return nullptr;  // tls_last_error says why
    }
    p = m->objs[--m->count];
  } else {
    // No magazine (thread exiting, or no memory for one): straight from a slab.
    Magazine one{0, 1, 0, &p};
    if (!refill(c, one)) return nullptr;
  }
  if constexpr (kChecked) checked_on_alloc(c, p);
  if (gfp & GFP_ZERO) std::memset(p, 0, c->object_size);
  return p;
}

void SlabAllocator::free_slow(KmemCache* c, void* p, const char* op) {
  if constexpr (kChecked) checked_on_free(c, p, op);
  ThreadSlabCtx* ctx = (tls_slab.id == id_) ? tls_slab.ctx : attach_ctx();
  Magazine* m = ctx ? magazine(ctx, c) : nullptr;
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

void SlabAllocator::free_bad_slow(KmemCache* c, void* p, const char* op) {
  if (!mm_->contains(p))
    report_foreign_pointer(op, p, mm_->addr(0), reinterpret_cast<void*>(mm_->base() + mm_->bytes()));
  MemdescWord w = mm_->word(mm_->pfn(p));
  char found[96];
  format_word(w, found, sizeof found);
  if (w.is(MemdescType::Buddy)) report_double_free(op, p, mm_->pfn(p), found);
  if (!w.is(MemdescType::Slab)) {
    char want[64];
    std::snprintf(want, sizeof want, "an object of cache %s", c ? c->name : "?");
    report_wrong_type(op, p, want, found);
  }
  KmemCache* owner = caches_[w.aux()].load(std::memory_order_acquire);
  if (c && owner != c) {
    char why[96];
    std::snprintf(why, sizeof why, "object belongs to cache %s", owner ? owner->name : "(destroyed)");
    report_bad_object(op, p, c->name, why);
  }
  report_bad_object(op, p, owner ? owner->name : "?", "not the start of an object");
}

void SlabAllocator::free_bad_id_slow(unsigned id, void* p, const char* op) {
  free_bad_slow(caches_[id].load(std::memory_order_acquire), p, op);
}

void SlabAllocator::double_free_id_slow(unsigned id, void* p, const char* op) {
  double_free_slow(caches_[id].load(std::memory_order_acquire), p, op);
}

void SlabAllocator::double_free_slow(KmemCache* c, void* p, const char* op) {
  report_bad_object(op, p, c->name, "double free (object is already free)");
}

// ---- bulk, shrink ------------------------------------------------------------------------

std::size_t SlabAllocator::alloc_bulk(KmemCache* c, unsigned gfp, std::size_t n, void** out) {
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
  if (tls_slab.id == id_) discard_slabs(c, flush_magazine(c, tls_slab.ctx->chunk[c->id / kMagChunk][c->id % kMagChunk]));
  discard_slabs(c, depot_drain(c));
  std::uint32_t list = kNil;
  std::size_t pages = 0;
  {
    LockGuard g(c->lock);
    while (c->empty != kNil) {
      Slab* s = slab_of(mm_->addr(c->empty));
      list_del_locked(c, s);
      --c->nr_slabs;
      s->next = list;
      list = s->pfn;
      pages += std::size_t{1} << c->order;
    }
  }
  discard_slabs(c, list);
  return pages;
}

}  // namespace memdesc::slab
