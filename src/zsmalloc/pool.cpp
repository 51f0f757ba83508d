// zsmalloc/pool.cpp — a pool's creation and teardown, zs_malloc / zs_free, and object access
// (read_begin / read_end / write).
#include "zsmalloc/zs_pool.hpp"

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "zsmalloc/handle.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {
namespace {

void zspage_ctor(void* p) {
  auto* zs = static_cast<Zspage*>(p);
  zs->pool.store(nullptr, std::memory_order_relaxed);
  zs->lock.store(0, std::memory_order_relaxed);
  zs->cls.store(nullptr, std::memory_order_relaxed);
  zs->huge_handle.store(0, std::memory_order_relaxed);
  zs->state.store(ZspageState::Dead, std::memory_order_relaxed);
}

// The objects the calling thread holds between read_begin and read_end [ZS-PIN]: read_end must
// match one of them (a second read_end of a handle used to drop another reader's pin), and
// zs_free refuses one of them (the zspage stayed read-pinned for ever after it was reused).
struct Pin {
  const Pool* pool;
  ZsHandle h;
  Zspage* zs;
};
constexpr unsigned kMaxPins = 64;
struct Pins {
  Pin pin[kMaxPins];
  unsigned n = 0;
  int find(const Pool* p, ZsHandle h) const {
    for (unsigned i = n; i-- > 0;)
      if (pin[i].pool == p && pin[i].h == h) return static_cast<int>(i);
    return -1;
  }
};
constinit thread_local Pins tls_pins{};

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
  p->meta_view_ = sa.meta_view();
  p->page_gfp_ = cfg.movable ? GFP_MOVABLE : GFP_NONE;
  if (p->mm_->pages() >= (std::uint64_t{1} << (64 - kObjIndexBits)))
    return Error{Errc::invalid_config, 0, "arena too large for zsmalloc object encoding"};

  slab::SlabCreate zd{"zspage", sizeof(Zspage), alignof(Zspage), SLAB_TYPESAFE_BY_RCU, zspage_ctor,
                      offsetof(Zspage, free_link), /*descriptor=*/true};
  auto zc = sa.cache_create(zd);
  if (!zc.ok()) return zc.error();
  p->zspage_cache_ = zc.value();
  slab::SlabCreate hd{"zs_handle", sizeof(std::uint64_t), alignof(std::uint64_t)};
  hd.internal = true;  // handles are the pool's: kfree must not reach them (SLAB-INTERNAL)
  auto hc = sa.cache_create(hd);
  if (!hc.ok()) {
    sa.cache_destroy(p->zspage_cache_, /*keep_shell=*/false);
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
  static const rcu::ForkOps kForkOps{&fork_acquire, &fork_release, nullptr};
  p->fork_hook_.enable(p.get(), &kForkOps);
  return p;
}

void Pool::fork_acquire(void* self, LockRank r) {
  auto* p = static_cast<Pool*>(self);
  if (r == LockRank::ZsPool) p->lock_.fork_acquire();
  if (r == LockRank::ZsClass)
    for (unsigned i = 0; i < p->nr_classes_; ++i) p->storage_[i].lock.fork_acquire();
}

void Pool::fork_release(void* self, LockRank r) {
  auto* p = static_cast<Pool*>(self);
  if (r == LockRank::ZsClass)
    for (unsigned i = 0; i < p->nr_classes_; ++i) p->storage_[i].lock.fork_release();
  if (r == LockRank::ZsPool) p->lock_.fork_release();
}

Pool::~Pool() {
  fork_hook_.disable();
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
  sa_->cache_destroy(handle_cache_, /*keep_shell=*/false);  // the pool's own: no user holds them
  sa_->cache_destroy(zspage_cache_, /*keep_shell=*/false);
}

SizeClass* Pool::class_for(std::size_t size) const {
  std::size_t n = size + kZsHeaderSize;
  unsigned idx = n <= kZsMinAllocSize ? 0 : static_cast<unsigned>((n - kZsMinAllocSize + kZsSizeClassDelta - 1) / kZsSizeClassDelta);
  return classes_[std::min(idx, kZsSizeClasses - 1)];
}

// ---- allocation and freeing ------------------------------------------------------------------

Result<ZsHandle> Pool::malloc(std::size_t size, Gfp gfp) {
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
  if (MEMDESC_UNLIKELY(tls_pins.find(this, h) >= 0))
    bad_handle(h, "zs_free", "object freed between read_begin and read_end (ZS-PIN)");
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
  if (MEMDESC_UNLIKELY(tls_pins.n == kMaxPins))
    bad_handle(h, "zs_obj_read_begin", "this thread holds 64 objects between read_begin and read_end already");
  zspage_read_lock(l.zs);  // pins the object: compaction and migration skip this zspage
  tls_pins.pin[tls_pins.n++] = {this, h, l.zs};
  lock_.read_unlock();
  std::uint64_t off = std::uint64_t{l.idx} * l.cls->size + l.cls->header();
  if (off % kPageSize + len <= kPageSize) return page_addr(l.zs->pfn[off / kPageSize]) + off % kPageSize;
  copy_out(l.zs, off, local_copy, len);  // straddles two pages
  return local_copy;
}

void Pool::read_end(ZsHandle h, const void* /*mem*/) {
  // ZS-PIN: the pin this thread took in read_begin, and only that one.
  int i = tls_pins.find(this, h);
  // Pinned here but freed since: zs_free ran on another thread between this thread's read_begin
  // and read_end. The report names that, not this (correct) read_end. Checked builds know each
  // handle's state (the pin says h was this pool's handle); fast builds see it below when the
  // slot was reused elsewhere (no cost here).
  if constexpr (kChecked)
    if (i >= 0 && !sa_->is_live_object(handle_cache_, reinterpret_cast<void*>(h)))
      bad_handle(h, "zs_obj_read_end", "object freed (by another thread) while this thread held it between read_begin and read_end");
  check_handle(h, "zs_obj_read_end");
  if (MEMDESC_UNLIKELY(i < 0))
    bad_handle(h, "zs_obj_read_end", "read_end without read_begin on this thread (or a second read_end)");
  // The object cannot move while we hold its zspage's read lock, so the handle still leads
  // there without the pool lock.
  Loc l = locate(h, "zs_obj_read_end");
  // Fast builds do not track handles one by one: a handle freed elsewhere and reused for an
  // object of another zspage shows here. Checked builds found any free above, so this is a move.
  if (MEMDESC_UNLIKELY(!kChecked && l.zs != tls_pins.pin[i].zs))
    bad_handle(h, "zs_obj_read_end", "object freed (by another thread) while this thread held it between read_begin and read_end");
  if (MEMDESC_UNLIKELY(l.zs != tls_pins.pin[i].zs || l.zs->lock.load(std::memory_order_relaxed) <= 0))
    report_invariant("ZS-PIN", "pool %s: handle %#llx moved while pinned", name_.c_str(), static_cast<unsigned long long>(h));
  tls_pins.pin[i] = tls_pins.pin[--tls_pins.n];
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

}  // namespace memdesc::zsmalloc
