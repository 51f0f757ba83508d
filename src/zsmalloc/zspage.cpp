// zsmalloc/zspage.cpp — zspages: building and freeing them, their slots (headers, free list,
// copies across the page boundary), fullness groups, and the zspage lock.
#include "zsmalloc/zs_pool.hpp"

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "zsmalloc/handle.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {

// ---- slots -----------------------------------------------------------------------------------

ZsHandle Pool::slot_handle(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const {
  if (cls->huge) return zs->huge_handle.load(std::memory_order_relaxed);
  std::uint64_t v = header_load(cls, zs, idx);
  return (v & kAllocatedTag) ? v & ~kAllocatedTag : 0;
}

namespace {
std::uint64_t* header_at(char* page, std::uint64_t in_page) { return reinterpret_cast<std::uint64_t*>(page + in_page); }
}  // namespace

// Relaxed atomics (a lockless reader may look at a header) as builtins, in the body of these
// functions: a library wrapper would be compiled, and checked by ASan, on its own.
MEMDESC_NO_ASAN std::uint64_t Pool::header_load(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const {
  std::uint64_t off = std::uint64_t{idx} * cls->size;  // 16-byte multiple: the header never straddles
  return __atomic_load_n(header_at(page_addr(zs->pfn[off / kPageSize]), off % kPageSize), __ATOMIC_RELAXED);
}

MEMDESC_NO_ASAN void Pool::header_store(const SizeClass* cls, const Zspage* zs, std::uint32_t idx, std::uint64_t v) const {
  std::uint64_t off = std::uint64_t{idx} * cls->size;
  __atomic_store_n(header_at(page_addr(zs->pfn[off / kPageSize]), off % kPageSize), v, __ATOMIC_RELAXED);
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

void Pool::asan_slot(const SizeClass* cls, const Zspage* zs, std::uint32_t idx, bool poison) const {
  if constexpr (!asan::kOn) return;
  // The header stays poisoned when the slot is handed out (header_load / header_store only).
  std::uint64_t off = std::uint64_t{idx} * cls->size + (poison ? 0 : cls->header()), end = std::uint64_t{idx + 1} * cls->size;
  while (off < end) {  // the slot may straddle two pages
    std::uint64_t n = std::min<std::uint64_t>(end - off, kPageSize - off % kPageSize);
    char* p = page_addr(zs->pfn[off / kPageSize]) + off % kPageSize;
    poison ? asan::poison(p, n) : asan::unpoison(p, n);
    off += n;
  }
}

void Pool::poison_slots_in_page(const SizeClass* cls, const Zspage* zs, unsigned pos) const {
  // Every slot that overlaps the page (one may begin in the previous page): free ones whole,
  // allocated ones their header.
  std::uint32_t first = static_cast<std::uint32_t>(std::uint64_t{pos} * kPageSize / cls->size);
  for (std::uint32_t idx = first; idx < cls->objs && std::uint64_t{idx} * cls->size < (std::uint64_t{pos} + 1) * kPageSize; ++idx)
    if (!slot_handle(cls, zs, idx)) asan_slot(cls, zs, idx, /*poison=*/true);
    else if (cls->header()) {
      std::uint64_t off = std::uint64_t{idx} * cls->size;
      if (off / kPageSize == pos) asan::poison(page_addr(zs->pfn[pos]) + off % kPageSize, cls->header());
    }
}

MEMDESC_NO_ASAN void Pool::copy_page_unchecked(void* dst, const void* src) {
  auto* d = static_cast<std::uint64_t*>(dst);
  const auto* s = static_cast<const std::uint64_t*>(src);
  for (std::size_t i = 0; i < kPageSize / 8; ++i) d[i] = s[i];
}

void Pool::obj_malloc(SizeClass* cls, Zspage* zs, ZsHandle h) {
  std::uint32_t idx = zs->freeobj;
  MEMDESC_ASSERT(idx != kEnd);
  if (cls->huge) {
    zs->freeobj = kEnd;
    zs->huge_handle.store(h, std::memory_order_relaxed);
  } else {
    zs->freeobj = static_cast<std::uint16_t>(header_load(cls, zs, idx) >> 1);
    header_store(cls, zs, idx, h | kAllocatedTag);
  }
  ++zs->inuse;
  ++cls->objs_inuse;
  asan_slot(cls, zs, idx, /*poison=*/false);
  std::uint64_t off = std::uint64_t{idx} * cls->size;
  record(h, make_obj(zs->pfn[off / kPageSize], idx));  // ZS-HANDLE
}

void Pool::obj_free(SizeClass* cls, Zspage* zs, std::uint32_t idx) {
  asan_slot(cls, zs, idx, /*poison=*/true);
  if (cls->huge) zs->huge_handle.store(0, std::memory_order_relaxed);
  else header_store(cls, zs, idx, std::uint64_t{zs->freeobj} << 1);
  zs->freeobj = static_cast<std::uint16_t>(idx);
  --zs->inuse;
  --cls->objs_inuse;
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

// ---- zspage life cycle and lock -------------------------------------------------------------

Zspage* Pool::alloc_zspage(SizeClass* cls, Gfp gfp) {
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
  Gfp pgfp = (gfp & ~(GFP_ZERO | GFP_MOVABLE)) | page_gfp_;
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
      header_store(cls, zs, i, next << 1);
    }
  }
  for (std::uint32_t i = 0; i < cls->objs; ++i) asan_slot(cls, zs, i, /*poison=*/true);  // every slot starts free
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
  // ZS-PIN: a reader of another thread still holds it (its object was freed under it, which
  // that reader's read_end reports): the descriptor must not be reused with a reader count.
  if (zs->lock.load(std::memory_order_acquire) != 0) return false;
  list_del(cls, zs);
  zs->state.store(ZspageState::Dead, std::memory_order_relaxed);
  --cls->zspages;
  return true;
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

}  // namespace memdesc::zsmalloc
