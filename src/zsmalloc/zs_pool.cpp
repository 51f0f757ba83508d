// zsmalloc/zs_pool.cpp — see zs_pool.hpp.
#include "zsmalloc/zs_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "rcu/rcu.hpp"

namespace memdesc::zsmalloc {

namespace {

MemdescWord zs_word(const Zspage* zs, unsigned pos) { return MemdescWord::describe(MemdescType::ZPDesc, zs, 0, pos); }
// The word a page holds between leaving a zspage and reaching the buddy (migration), so that
// no lookup mistakes it for a zspage page.
MemdescWord unowned_word() { return MemdescWord::misc(MiscSubtype::Pages, 0); }

void zspage_ctor(void* p) {
  auto* zs = static_cast<Zspage*>(p);
  zs->pool.store(nullptr, std::memory_order_relaxed);
  zs->lock.store(0, std::memory_order_relaxed);
  zs->cls.store(nullptr, std::memory_order_relaxed);
  zs->huge_handle.store(0, std::memory_order_relaxed);
  zs->state.store(ZspageState::Dead, std::memory_order_relaxed);
}

// First slot that starts in page `pos` of a chain of `size`-byte slots.
std::uint32_t first_index_in_page(std::uint32_t size, std::uint32_t pos) {
  return static_cast<std::uint32_t>((std::uint64_t{pos} * kPageSize + size - 1) / size);
}

}  // namespace

// ---- creation and teardown -------------------------------------------------------------------

Result<std::unique_ptr<Pool>> Pool::create(slab::SlabAllocator& sa, page::PageAllocator& pa, const ZsPoolConfig& cfg) {
  if (cfg.chain < kZsMinChain || cfg.chain > kZsMaxChain)
    return Error{Errc::invalid_config, 0, "zsmalloc chain size outside 4..16"};
  std::unique_ptr<Pool> p(new Pool());
  p->name_ = cfg.name ? cfg.name : "zspool";
  p->table_ = zs_class_table(cfg.chain);
  p->sa_ = &sa;
  p->pa_ = &pa;
  p->mm_ = &pa.memmap();
  p->page_gfp_ = cfg.movable ? GFP_MOVABLE : GFP_NONE;
  if (p->mm_->pages() >= (std::uint64_t{1} << (64 - kObjIndexBits)))
    return Error{Errc::invalid_config, 0, "arena too large for zsmalloc object encoding"};

  slab::SlabCreate zd{"zspage", sizeof(Zspage), alignof(Zspage), SLAB_TYPESAFE_BY_RCU, zspage_ctor,
                      offsetof(Zspage, free_link), /*descriptor=*/true};
  auto zc = sa.cache_create(zd);
  if (!zc.ok()) return zc.error();
  p->zspage_cache_ = zc.value();
  slab::SlabCreate hd{"zs_handle", sizeof(std::uint64_t), alignof(std::uint64_t)};
  auto hc = sa.cache_create(hd);
  if (!hc.ok()) {
    sa.cache_destroy(p->zspage_cache_);
    p->zspage_cache_ = nullptr;
    return hc.error();
  }
  p->handle_cache_ = hc.value();

  p->nr_classes_ = static_cast<unsigned>(p->table_.classes.size());
  p->storage_ = std::make_unique<SizeClass[]>(p->nr_classes_);
  for (unsigned i = 0; i < p->nr_classes_; ++i) {
    const ZsClassGeometry& g = p->table_.classes[i];
    SizeClass& c = p->storage_[i];
    c.pool = p.get();
    c.size = g.size;
    c.objs = g.objs_per_zspage;
    c.pages = g.pages_per_zspage;
    c.index = g.index;
    c.first_index = g.first_index;
    c.huge = g.huge;
    for (unsigned n = g.first_index; n <= g.index; ++n) p->classes_[n] = &c;
  }
  return p;
}

Pool::~Pool() {
  if (!handle_cache_) return;
  // Every object still here goes: its handle back to the handle cache, its zspage to the buddy.
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* cls = &storage_[i];
    for (unsigned g = 0; g < kZsFullnessGroups; ++g) {
      while (Zspage* zs = cls->lists[g]) {
        for (std::uint32_t idx = 0; idx < cls->objs; ++idx)
          if (ZsHandle h = slot_handle(cls, zs, idx)) sa_->cache_free(handle_cache_, reinterpret_cast<void*>(h));
        list_del(cls, zs);
        zs->isolated = 0;
        free_zspage_now(zs);
      }
    }
  }
  sa_->cache_destroy(handle_cache_);
  sa_->cache_destroy(zspage_cache_);
}

SizeClass* Pool::class_for(std::size_t size) const {
  std::size_t n = size + kZsHandleSize;
  unsigned idx = n <= kZsMinAllocSize ? 0 : static_cast<unsigned>((n - kZsMinAllocSize + kZsSizeClassDelta - 1) / kZsSizeClassDelta);
  return classes_[std::min(idx, kZsSizeClasses - 1)];
}

// ---- handles ---------------------------------------------------------------------------------

void Pool::bad_handle(ZsHandle h, const char* op, const char* why) const { report_bad_handle(op, h, name_.c_str(), why); }

void Pool::check_handle(ZsHandle h, const char* op) const {
  const core::Memmap& mm = *mm_;
  if (MEMDESC_UNLIKELY(h == 0)) bad_handle(h, op, "handle 0 (never a valid handle)");
  if (MEMDESC_UNLIKELY(!mm.contains(reinterpret_cast<void*>(h)) || (h & 7) != 0))
    bad_handle(h, op, "not a handle: outside the arena or misaligned");
  MemdescWord w = mm.word(mm.pfn(reinterpret_cast<void*>(h)));
  if (MEMDESC_UNLIKELY(!w.is(MemdescType::Slab) || w.aux() != handle_cache_->id))
    bad_handle(h, op, "not a handle of this pool (its page belongs to no handle slot of the pool)");
  if constexpr (kChecked) {
    if (!sa_->is_live_object(handle_cache_, reinterpret_cast<void*>(h)))
      bad_handle(h, op, "handle already freed (or never allocated)");
  }
}

Pool::Loc Pool::locate(ZsHandle h, const char* op) const {
  std::uint64_t obj = load_obj(h);
  std::uint64_t pfn = obj >> kObjIndexBits;
  auto idx = static_cast<std::uint32_t>(obj & ((1u << kObjIndexBits) - 1));
  if (MEMDESC_UNLIKELY(pfn >= mm_->pages())) bad_handle(h, op, "freed or forged handle: it names no page of the arena");
  MemdescWord w = mm_->word(pfn);
  if (MEMDESC_UNLIKELY(!w.is(MemdescType::ZPDesc))) bad_handle(h, op, "freed or forged handle: it names a page that is not a zspage's");
  auto* zs = w.desc_as<Zspage>();
  if (MEMDESC_UNLIKELY(zs->pool.load(std::memory_order_relaxed) != this))
    bad_handle(h, op, "freed or forged handle: it names a zspage of another pool");
  SizeClass* cls = zs->cls.load(std::memory_order_relaxed);
  unsigned pos = w.aux();
  if (MEMDESC_UNLIKELY(idx >= cls->objs || pos >= zs->nr_pages || zs->pfn[pos] != pfn ||
                       (std::uint64_t{idx} * cls->size) / kPageSize != pos))
    bad_handle(h, op, "freed or forged handle: its object index does not fit the page");
  if (MEMDESC_UNLIKELY(slot_handle(cls, zs, idx) != h))
    bad_handle(h, op, "freed or forged handle: the slot it names holds another object or none");
  return {zs, cls, idx};
}

ZsHandle Pool::slot_handle(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const {
  if (cls->huge) return zs->huge_handle.load(std::memory_order_relaxed);
  std::uint64_t v = header(cls, zs, idx).load(std::memory_order_relaxed);
  return (v & kAllocatedTag) ? v & ~kAllocatedTag : 0;
}

std::atomic_ref<std::uint64_t> Pool::header(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const {
  std::uint64_t off = std::uint64_t{idx} * cls->size;  // 16-byte multiple: the header never straddles
  return std::atomic_ref<std::uint64_t>(
      *reinterpret_cast<std::uint64_t*>(page_addr(zs->pfn[off / kPageSize]) + off % kPageSize));
}

void Pool::copy_out(const Zspage* zs, std::uint64_t off, void* dst, std::size_t len) const {
  auto* d = static_cast<char*>(dst);
  while (len) {
    std::size_t in = off % kPageSize, n = std::min(len, kPageSize - in);
    std::memcpy(d, page_addr(zs->pfn[off / kPageSize]) + in, n);
    d += n, off += n, len -= n;
  }
}

void Pool::copy_in(const Zspage* zs, std::uint64_t off, const void* src, std::size_t len) const {
  const auto* s = static_cast<const char*>(src);
  while (len) {
    std::size_t in = off % kPageSize, n = std::min(len, kPageSize - in);
    std::memcpy(page_addr(zs->pfn[off / kPageSize]) + in, s, n);
    s += n, off += n, len -= n;
  }
}

// ---- fullness lists ---------------------------------------------------------------------------

unsigned Pool::fullness_of(const SizeClass* cls, std::uint32_t inuse) {
  if (inuse == 0) return 0;
  if (inuse >= cls->objs) return kZsFullnessGroups - 1;
  return static_cast<unsigned>(std::uint64_t{inuse} * 100 / cls->objs / 10) + 1;
}

void Pool::list_add(SizeClass* cls, Zspage* zs, unsigned group) {
  zs->fullness = static_cast<std::uint8_t>(group);
  zs->prev = nullptr;
  zs->next = cls->lists[group];
  if (zs->next) zs->next->prev = zs;
  cls->lists[group] = zs;
  ++cls->nr_group[group];
}

void Pool::list_del(SizeClass* cls, Zspage* zs) {
  if (zs->prev) zs->prev->next = zs->next;
  else cls->lists[zs->fullness] = zs->next;
  if (zs->next) zs->next->prev = zs->prev;
  zs->next = zs->prev = nullptr;
  --cls->nr_group[zs->fullness];
}

void Pool::fix_fullness(SizeClass* cls, Zspage* zs) {
  unsigned g = fullness_of(cls, zs->inuse);
  if (g == zs->fullness) return;
  list_del(cls, zs);
  list_add(cls, zs, g);
}

Zspage* Pool::find_get(SizeClass* cls, int from, int to) const {
  int step = from <= to ? 1 : -1;
  for (int g = from;; g += step) {
    if (cls->lists[g]) return cls->lists[g];
    if (g == to) return nullptr;
  }
}

// ---- zspages -------------------------------------------------------------------------------

Zspage* Pool::alloc_zspage(SizeClass* cls, unsigned gfp) {
  // Descriptor first, then the pages, whose words name it; any failure gives back what was taken.
  auto* zs = static_cast<Zspage*>(sa_->alloc_descriptor(zspage_cache_));
  if (!zs) return nullptr;
  zs->next = zs->prev = nullptr;
  zs->inuse = 0;
  zs->freeobj = 0;
  zs->isolated = 0;
  zs->fullness = 0;
  zs->nr_pages = static_cast<std::uint8_t>(cls->pages);
  zs->state.store(ZspageState::Building, std::memory_order_relaxed);
  zs->huge_handle.store(0, std::memory_order_relaxed);
  zs->cls.store(cls, std::memory_order_relaxed);
  zs->pool.store(this, std::memory_order_relaxed);
  unsigned pgfp = (gfp & ~(GFP_ZERO | GFP_MOVABLE)) | page_gfp_;
  for (unsigned k = 0; k < cls->pages; ++k) {
    void* page = pa_->alloc(0, pgfp, zs_word(zs, k));
    if (!page) {
      while (k--) pa_->free(page_addr(zs->pfn[k]), zs_word(zs, k), "zs_malloc");
      zs->pool.store(nullptr, std::memory_order_relaxed);
      sa_->cache_free(zspage_cache_, zs);
      return nullptr;
    }
    zs->pfn[k] = static_cast<std::uint32_t>(mm_->pfn(page));
  }
  // The free list threads every slot in order (ZS-FREELIST); a huge zspage needs none.
  if (!cls->huge) {
    for (std::uint32_t i = 0; i < cls->objs; ++i) {
      std::uint64_t next = i + 1 < cls->objs ? i + 1 : kEnd;
      header(cls, zs, i).store(next << 1, std::memory_order_relaxed);
    }
  }
  pages_allocated_.fetch_add(cls->pages, std::memory_order_relaxed);
  return zs;
}

void Pool::free_zspage_now(Zspage* zs) {
  // Pages first (their words stop naming zs), then the descriptor.
  SizeClass* cls = zs->cls.load(std::memory_order_relaxed);
  for (unsigned k = 0; k < zs->nr_pages; ++k) pa_->free(page_addr(zs->pfn[k]), zs_word(zs, k), "zs_free");
  pages_allocated_.fetch_sub(cls->pages, std::memory_order_relaxed);
  zs->pool.store(nullptr, std::memory_order_relaxed);
  sa_->cache_free(zspage_cache_, zs);
}

bool Pool::retire_locked(SizeClass* cls, Zspage* zs) {
  MEMDESC_ASSERT(zs->inuse == 0);
  if (zs->isolated != 0) return false;  // ZS-ISOLATE: putback or migration finishes the job
  list_del(cls, zs);
  zs->state.store(ZspageState::Dead, std::memory_order_relaxed);
  --cls->zspages;
  return true;
}

void Pool::obj_malloc(SizeClass* cls, Zspage* zs, ZsHandle h) {
  std::uint32_t idx = zs->freeobj;
  MEMDESC_ASSERT(idx != kEnd);
  if (cls->huge) {
    zs->freeobj = kEnd;
    zs->huge_handle.store(h, std::memory_order_relaxed);
  } else {
    auto hdr = header(cls, zs, idx);
    zs->freeobj = static_cast<std::uint16_t>(hdr.load(std::memory_order_relaxed) >> 1);
    hdr.store(h | kAllocatedTag, std::memory_order_relaxed);
  }
  ++zs->inuse;
  ++cls->objs_inuse;
  std::uint64_t off = std::uint64_t{idx} * cls->size;
  record(h, make_obj(zs->pfn[off / kPageSize], idx));  // ZS-HANDLE
}

void Pool::obj_free(SizeClass* cls, Zspage* zs, std::uint32_t idx) {
  if (cls->huge) zs->huge_handle.store(0, std::memory_order_relaxed);
  else header(cls, zs, idx).store(std::uint64_t{zs->freeobj} << 1, std::memory_order_relaxed);
  zs->freeobj = static_cast<std::uint16_t>(idx);
  --zs->inuse;
  --cls->objs_inuse;
}

void Pool::zspage_read_lock(Zspage* zs) {
  // Writers hold the lock only briefly and only while they hold the pool write lock, which a
  // reader's caller excludes; the loop is a formality that keeps the lock honest on its own.
  unsigned spins = 0;
  for (;;) {
    std::int32_t c = zs->lock.load(std::memory_order_relaxed);
    if (c >= 0 && zs->lock.compare_exchange_weak(c, c + 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    spin_backoff(spins);
  }
}

// ---- allocation and freeing ------------------------------------------------------------------

Result<ZsHandle> Pool::malloc(std::size_t size, unsigned gfp) {
  if (size == 0) return Error{Errc::invalid_request, 0, "zs_malloc of 0 bytes"};
  if (size > kZsMaxAllocSize) return Error{Errc::invalid_request, 0, "zs_malloc of more than a page (4096 bytes)"};
  void* slot = sa_->cache_alloc(handle_cache_, gfp & ~GFP_ZERO);
  if (!slot) return Error{Errc::out_of_memory, 0, "zs_malloc: handle"};
  auto h = reinterpret_cast<ZsHandle>(slot);
  SizeClass* cls = class_for(size);
  {
    LockGuard g(cls->lock);
    // The fullest zspage with room: dense packing leaves the emptiest ones to drain.
    if (Zspage* zs = find_get(cls, kZsFullnessGroups - 2, 0)) {
      obj_malloc(cls, zs, h);
      fix_fullness(cls, zs);
      return h;
    }
  }
  Zspage* zs = alloc_zspage(cls, gfp);
  if (!zs) {
    sa_->cache_free(handle_cache_, slot);
    return Error{Errc::out_of_memory, 0, "zs_malloc: zspage"};
  }
  LockGuard g(cls->lock);
  zs->state.store(ZspageState::Live, std::memory_order_relaxed);
  ++cls->zspages;
  list_add(cls, zs, 0);
  obj_malloc(cls, zs, h);
  fix_fullness(cls, zs);
  return h;
}

void Pool::free(ZsHandle h) {
  check_handle(h, "zs_free");
  Zspage* dead = nullptr;
  {
    lock_.read_lock();  // the handle cannot be rewritten (pool write lock) while we translate
    Loc l = locate(h, "zs_free");
    l.cls->lock.lock();
    // Re-check under the class lock: a racing free of the same handle loses here.
    if (MEMDESC_UNLIKELY(slot_handle(l.cls, l.zs, l.idx) != h)) bad_handle(h, "zs_free", "handle freed twice (concurrently)");
    obj_free(l.cls, l.zs, l.idx);
    fix_fullness(l.cls, l.zs);
    if (l.zs->inuse == 0 && retire_locked(l.cls, l.zs)) dead = l.zs;
    l.cls->lock.unlock();
    lock_.read_unlock();
  }
  if (dead) free_zspage_now(dead);
  sa_->cache_free(handle_cache_, reinterpret_cast<void*>(h));
}

// ---- object access ---------------------------------------------------------------------------

std::size_t Pool::object_capacity(ZsHandle h) {
  check_handle(h, "zs_object_capacity");
  lock_.read_lock();
  Loc l = locate(h, "zs_object_capacity");
  std::size_t n = l.cls->size - l.cls->header();
  lock_.read_unlock();
  return n;
}

const void* Pool::read_begin(ZsHandle h, void* local_copy, std::size_t len) {
  check_handle(h, "zs_obj_read_begin");
  lock_.read_lock();
  Loc l = locate(h, "zs_obj_read_begin");
  if (MEMDESC_UNLIKELY(len > l.cls->size - l.cls->header())) bad_handle(h, "zs_obj_read_begin", "length beyond the object's slot");
  zspage_read_lock(l.zs);  // pins the object: compaction and migration skip this zspage
  lock_.read_unlock();
  std::uint64_t off = std::uint64_t{l.idx} * l.cls->size + l.cls->header();
  if (off % kPageSize + len <= kPageSize) return page_addr(l.zs->pfn[off / kPageSize]) + off % kPageSize;
  copy_out(l.zs, off, local_copy, len);  // straddles two pages
  return local_copy;
}

void Pool::read_end(ZsHandle h, const void* /*mem*/) {
  // The object cannot move while we hold its zspage's read lock, so the handle still leads
  // there without the pool lock.
  check_handle(h, "zs_obj_read_end");
  Loc l = locate(h, "zs_obj_read_end");
  if (MEMDESC_UNLIKELY(l.zs->lock.load(std::memory_order_relaxed) <= 0))
    bad_handle(h, "zs_obj_read_end", "read_end without read_begin");
  zspage_read_unlock(l.zs);
}

void Pool::write(ZsHandle h, const void* src, std::size_t len) {
  check_handle(h, "zs_obj_write");
  lock_.read_lock();
  Loc l = locate(h, "zs_obj_write");
  if (MEMDESC_UNLIKELY(len > l.cls->size - l.cls->header())) bad_handle(h, "zs_obj_write", "length beyond the object's slot");
  // A read lock suffices: it excludes moves; the object itself has a single owner.
  zspage_read_lock(l.zs);
  lock_.read_unlock();
  copy_in(l.zs, std::uint64_t{l.idx} * l.cls->size + l.cls->header(), src, len);
  zspage_read_unlock(l.zs);
}

// ---- compaction ------------------------------------------------------------------------------

namespace {
std::uint64_t class_freeable(const SizeClass* c) {
  std::uint64_t allocated = c->zspages * c->objs;
  return (allocated - c->objs_inuse) / c->objs * c->pages;
}
}  // namespace

std::uint64_t Pool::can_compact() const {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    LockGuard g(c->lock);
    n += class_freeable(c);
  }
  return n;
}

std::uint64_t Pool::compact() {
  if (compacting_.exchange(true, std::memory_order_acquire)) return 0;  // one compactor per pool
  std::uint64_t freed = 0;
  for (unsigned i = nr_classes_; i-- > 0;) freed += compact_class(&storage_[i]);
  pages_compacted_.fetch_add(freed, std::memory_order_relaxed);
  compacting_.store(false, std::memory_order_release);
  return freed;
}

std::uint64_t Pool::compact_class(SizeClass* cls) {
  if (cls->huge) return 0;  // one object per zspage: nothing to pack
  std::uint64_t freed = 0;
  std::vector<Zspage*> dead;
  lock_.write_lock();
  cls->lock.lock();
  Zspage* dst = nullptr;
  while (class_freeable(cls) > 0) {
    // Fill the fullest zspage from the emptiest one.
    if (!dst) {
      dst = find_get(cls, kZsFullnessGroups - 2, 1);
      if (!dst) break;
      list_del(cls, dst);
    }
    Zspage* src = find_get(cls, 1, kZsFullnessGroups - 2);
    if (!src) break;
    list_del(cls, src);
    if (!zspage_write_trylock(src)) {  // a reader holds one of its objects: next pass
      list_add(cls, src, fullness_of(cls, src->inuse));
      break;
    }
    migrate_zspage(cls, src, dst);
    zspage_write_unlock(src);
    list_add(cls, src, fullness_of(cls, src->inuse));
    if (src->inuse == 0 && retire_locked(cls, src)) {
      dead.push_back(src);
      freed += cls->pages;
    }
    if (dst->inuse == cls->objs || lock_.contended()) {
      list_add(cls, dst, fullness_of(cls, dst->inuse));
      dst = nullptr;
      if (lock_.contended() || dead.size() >= 64) {  // let readers in; free what is empty
        cls->lock.unlock();
        lock_.write_unlock();
        for (Zspage* z : dead) free_zspage_now(z);
        dead.clear();
        sched_yield();
        lock_.write_lock();
        cls->lock.lock();
      }
    }
  }
  if (dst) list_add(cls, dst, fullness_of(cls, dst->inuse));
  cls->lock.unlock();
  lock_.write_unlock();
  for (Zspage* z : dead) free_zspage_now(z);
  return freed;
}

void Pool::migrate_zspage(SizeClass* cls, Zspage* src, Zspage* dst) {
  // src is write-locked (no reader has a pointer into it); dst is not: only its free slots are
  // written, which no reader can be looking at.
  alignas(16) char buf[kPageSize];
  const std::uint32_t payload = cls->size - kZsHandleSize;
  for (std::uint32_t idx = 0; idx < cls->objs && src->inuse != 0 && dst->inuse < cls->objs; ++idx) {
    ZsHandle h = slot_handle(cls, src, idx);
    if (!h) continue;
    std::uint32_t to = dst->freeobj;
    copy_out(src, std::uint64_t{idx} * cls->size + kZsHandleSize, buf, payload);
    obj_malloc(cls, dst, h);  // writes dst's header and rewrites the handle (pool write lock held)
    copy_in(dst, std::uint64_t{to} * cls->size + kZsHandleSize, buf, payload);
    obj_free(cls, src, idx);
    objects_moved_.fetch_add(1, std::memory_order_relaxed);
  }
}

// ---- page migration --------------------------------------------------------------------------

Zspage* Pool::lock_page_zspage(std::uint64_t pfn, SizeClass** cls_out) {
  if (pfn >= mm_->pages()) return nullptr;
  rcu::ReadGuard rg;  // the descriptor may be freed under us: typesafe by RCU keeps it a Zspage
  MemdescWord w = mm_->word(pfn);
  if (!w.is(MemdescType::ZPDesc)) return nullptr;
  auto* zs = w.desc_as<Zspage>();
  if (zs->pool.load(std::memory_order_relaxed) != this) return nullptr;
  SizeClass* cls = zs->cls.load(std::memory_order_relaxed);
  if (!cls || cls->pool != this) return nullptr;
  cls->lock.lock();
  // Under the class lock the zspage cannot be freed; re-check that it is still the page's.
  if (mm_->word(pfn) != w || zs->state.load(std::memory_order_relaxed) != ZspageState::Live || zs->cls.load(std::memory_order_relaxed) != cls ||
      w.aux() >= zs->nr_pages || zs->pfn[w.aux()] != pfn) {
    cls->lock.unlock();
    return nullptr;
  }
  *cls_out = cls;
  return zs;
}

bool Pool::isolate_page(std::uint64_t pfn) {
  SizeClass* cls = nullptr;
  Zspage* zs = lock_page_zspage(pfn, &cls);
  if (!zs) return false;
  unsigned bit = 1u << mm_->word(pfn).aux();
  bool ok = (zs->isolated & bit) == 0;
  zs->isolated = static_cast<std::uint16_t>(zs->isolated | bit);
  cls->lock.unlock();
  return ok;
}

void Pool::putback_page(std::uint64_t pfn) {
  SizeClass* cls = nullptr;
  Zspage* zs = lock_page_zspage(pfn, &cls);
  if (!zs) report_bad_argument("zs_putback_page", "the page is not a page of this pool");
  unsigned bit = 1u << mm_->word(pfn).aux();
  if (!(zs->isolated & bit)) {
    cls->lock.unlock();
    report_bad_argument("zs_putback_page", "the page is not isolated");
  }
  zs->isolated = static_cast<std::uint16_t>(zs->isolated & ~bit);
  bool dead = zs->inuse == 0 && retire_locked(cls, zs);
  cls->lock.unlock();
  if (dead) free_zspage_now(zs);
}

ZsMigrateResult Pool::migrate_page(std::uint64_t pfn) {
  // The new page first: nothing is allocated under a zs lock.
  void* fresh = pa_->alloc(0, page_gfp_, unowned_word());
  if (!fresh) return ZsMigrateResult::no_memory;
  auto newpfn = static_cast<std::uint32_t>(mm_->pfn(fresh));
  ZsMigrateResult r = ZsMigrateResult::migrated;
  Zspage* dead = nullptr;
  lock_.write_lock();  // no handle is being translated while we rewrite handles
  SizeClass* cls = nullptr;
  Zspage* zs = lock_page_zspage(pfn, &cls);
  if (!zs) {
    lock_.write_unlock();
    pa_->free(fresh, unowned_word(), "zs_migrate_page");
    return ZsMigrateResult::not_isolated;
  }
  const unsigned pos = mm_->word(pfn).aux();
  if (!(zs->isolated & (1u << pos))) {
    r = ZsMigrateResult::not_isolated;
  } else if (!zspage_write_trylock(zs)) {
    r = ZsMigrateResult::busy;
  } else {
    std::memcpy(fresh, page_addr(static_cast<std::uint32_t>(pfn)), kPageSize);
    mm_->set_word(newpfn, zs_word(zs, pos));
    // Objects that start in the page get their handles rewritten; those that only end in it
    // are named by the page they start in and need nothing (ZS-HANDLE).
    zs->pfn[pos] = newpfn;
    for (std::uint32_t idx = first_index_in_page(cls->size, pos);
         idx < cls->objs && std::uint64_t{idx} * cls->size < (std::uint64_t{pos} + 1) * kPageSize; ++idx)
      if (ZsHandle h = slot_handle(cls, zs, idx)) record(h, make_obj(newpfn, idx));
    mm_->set_word(pfn, unowned_word());
    zs->isolated = static_cast<std::uint16_t>(zs->isolated & ~(1u << pos));
    zspage_write_unlock(zs);
    if (zs->inuse == 0 && retire_locked(cls, zs)) dead = zs;
  }
  cls->lock.unlock();
  lock_.write_unlock();
  if (r != ZsMigrateResult::migrated) {
    pa_->free(fresh, unowned_word(), "zs_migrate_page");
    return r;
  }
  pa_->free(mm_->addr(pfn), unowned_word(), "zs_migrate_page");
  pages_migrated_.fetch_add(1, std::memory_order_relaxed);
  if (dead) free_zspage_now(dead);
  return r;
}

// ---- statistics and validation ---------------------------------------------------------------

ZsPoolStats Pool::stats() const {
  ZsPoolStats s;
  s.pages_used = total_pages();
  s.pages_compacted = pages_compacted_.load(std::memory_order_relaxed);
  s.objects_moved = objects_moved_.load(std::memory_order_relaxed);
  s.pages_migrated = pages_migrated_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    LockGuard g(c->lock);
    s.objects += c->objs_inuse;
    s.zspages += c->zspages;
  }
  s.descriptor_bytes = s.zspages * sizeof(Zspage);
  s.handle_bytes = s.objects * sizeof(std::uint64_t);
  return s;
}

std::vector<ZsClassStats> Pool::class_stats() const {
  std::vector<ZsClassStats> v;
  v.reserve(nr_classes_);
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    ZsClassStats s;
    s.index = c->index;
    s.size = c->size;
    s.pages_per_zspage = c->pages;
    s.objs_per_zspage = c->objs;
    s.huge = c->huge;
    LockGuard g(c->lock);
    for (unsigned k = 0; k < kZsFullnessGroups; ++k) s.zspages[k] = c->nr_group[k];
    s.obj_allocated = c->zspages * c->objs;
    s.obj_used = c->objs_inuse;
    s.pages_used = c->zspages * c->pages;
    s.freeable = class_freeable(c);
    v.push_back(s);
  }
  return v;
}

std::vector<ZsPageInfo> Pool::pages() const {
  std::vector<ZsPageInfo> v;
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    LockGuard g(c->lock);
    for (unsigned grp = 0; grp < kZsFullnessGroups; ++grp)
      for (Zspage* zs = c->lists[grp]; zs; zs = zs->next)
        for (unsigned k = 0; k < zs->nr_pages; ++k) {
          ZsPageInfo p;
          p.addr = mm_->addr(zs->pfn[k]);
          p.class_size = c->size;
          p.position = k;
          p.chain_pages = zs->nr_pages;
          p.isolated = zs->isolated & (1u << k);
          std::uint64_t lo = std::uint64_t{k} * kPageSize, hi = lo + kPageSize;
          for (std::uint32_t idx = first_index_in_page(c->size, k); idx < c->objs && std::uint64_t{idx} * c->size < hi; ++idx)
            if (slot_handle(c, zs, idx)) ++p.objects_starting;
          if (k > 0 && lo % c->size != 0) {  // a slot begun in page k-1 runs into page k
            auto prev = static_cast<std::uint32_t>(lo / c->size);
            p.straddle_in = prev < c->objs && slot_handle(c, zs, prev) != 0;
          }
          v.push_back(p);
        }
  }
  return v;
}

void Pool::validate() const {
  std::uint64_t pages = 0;
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    LockGuard g(c->lock);
    MEMDESC_CHECK("ZS-HUGE", c->huge == (c->pages == 1 && c->objs == 1));
    std::uint64_t zspages = 0, inuse = 0;
    for (unsigned grp = 0; grp < kZsFullnessGroups; ++grp) {
      std::uint64_t n = 0;
      for (Zspage* zs = c->lists[grp]; zs; zs = zs->next, ++n) {
        ++zspages;
        inuse += zs->inuse;
        if (zs->fullness != grp || fullness_of(c, zs->inuse) != grp)
          report_invariant("ZS-FULLNESS", "pool %s class %u: zspage %p with %u of %u objects sits in group %u",
                           name_.c_str(), c->size, static_cast<void*>(zs), zs->inuse, c->objs, grp);
        MEMDESC_CHECK("ZS-WORD", zs->state.load() == ZspageState::Live && zs->cls.load() == c && zs->pool.load() == this &&
                                     zs->nr_pages == c->pages && zs->lock.load() == 0);
        for (unsigned k = 0; k < zs->nr_pages; ++k)
          if (mm_->word(zs->pfn[k]) != zs_word(zs, k))
            report_invariant("ZS-WORD", "pool %s: page %u (pfn %u) of zspage %p holds %s", name_.c_str(), k,
                             zs->pfn[k], static_cast<void*>(zs), to_string(mm_->word(zs->pfn[k])).c_str());
        // Free list: objs - inuse distinct free slots; every other slot's handle leads back.
        std::vector<bool> is_free(c->objs, false);
        std::uint32_t nfree = 0;
        if (c->huge) {
          if (zs->freeobj != kEnd) is_free[0] = true, nfree = 1;
        } else {
          for (std::uint32_t f = zs->freeobj; f != kEnd; ++nfree) {
            if (f >= c->objs || is_free[f] || nfree > c->objs)
              report_invariant("ZS-FREELIST", "pool %s class %u zspage %p: free list broken at slot %u",
                               name_.c_str(), c->size, static_cast<void*>(zs), f);
            is_free[f] = true;
            std::uint64_t link = header(c, zs, f).load();
            MEMDESC_CHECK("ZS-FREELIST", (link & kAllocatedTag) == 0);
            f = static_cast<std::uint32_t>(link >> 1);
          }
        }
        if (nfree + zs->inuse != c->objs)
          report_invariant("ZS-FREELIST", "pool %s class %u zspage %p: %u free + %u in use != %u slots",
                           name_.c_str(), c->size, static_cast<void*>(zs), nfree, zs->inuse, c->objs);
        for (std::uint32_t idx = 0; idx < c->objs; ++idx) {
          if (is_free[idx]) continue;
          ZsHandle h = slot_handle(c, zs, idx);
          std::uint64_t off = std::uint64_t{idx} * c->size;
          if (!h || load_obj(h) != make_obj(zs->pfn[off / kPageSize], idx))
            report_invariant("ZS-HANDLE", "pool %s class %u zspage %p slot %u: handle 0x%llx does not lead back",
                             name_.c_str(), c->size, static_cast<void*>(zs), idx, static_cast<unsigned long long>(h));
        }
      }
      if (n != c->nr_group[grp])
        report_invariant("ZS-CLASS-COUNT", "pool %s class %u group %u: %llu zspages listed, counter %llu", name_.c_str(),
                         c->size, grp, static_cast<unsigned long long>(n), static_cast<unsigned long long>(c->nr_group[grp]));
    }
    if (zspages != c->zspages || inuse != c->objs_inuse)
      report_invariant("ZS-CLASS-COUNT", "pool %s class %u: %llu zspages / %llu objects found, counters %llu / %llu",
                       name_.c_str(), c->size, static_cast<unsigned long long>(zspages),
                       static_cast<unsigned long long>(inuse), static_cast<unsigned long long>(c->zspages),
                       static_cast<unsigned long long>(c->objs_inuse));
    pages += zspages * c->pages;
  }
  if (pages != total_pages())
    report_invariant("ZS-POOL-PAGES", "pool %s: zspages hold %llu pages, pages_allocated %llu", name_.c_str(),
                     static_cast<unsigned long long>(pages), static_cast<unsigned long long>(total_pages()));
}

}  // namespace memdesc::zsmalloc
