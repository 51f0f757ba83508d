// zsmalloc/handle.cpp — handle checks and translation: a handle is a live slot of the pool's
// handle cache, and its obj names a zspage page whose slot header points back at it (ZS-HANDLE).
#include "zsmalloc/zs_pool.hpp"

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "zsmalloc/handle.hpp"

namespace memdesc::zsmalloc {

void Pool::bad_handle(ZsHandle h, const char* op, const char* why) const { report_bad_handle(op, h, name_.c_str(), why); }

void Pool::check_handle(ZsHandle h, const char* op) const {
  const core::ArenaView& v = meta_view_;  // handles live in the metadata region (META-OOB)
  if (MEMDESC_UNLIKELY(h == 0)) bad_handle(h, op, "handle 0 (never a valid handle)");
  std::uint64_t off = v.offset(reinterpret_cast<void*>(h));
  if (MEMDESC_UNLIKELY(off >= v.bytes || (h & 7) != 0))
    bad_handle(h, op, mm_->contains(reinterpret_cast<void*>(h))
                          ? "not a handle: an address of the arena (handles live in its metadata region)"
                          : "not a handle: outside the arena's metadata region or misaligned");
  MemdescWord w = v.word_at(off, std::memory_order_acquire);
  if (MEMDESC_UNLIKELY(!slab::SlabAllocator::word_in_cache(w, handle_cache_)))
    bad_handle(h, op, "not a handle of this pool (its page belongs to no handle slot of the pool)");
  if constexpr (kChecked) {
    if (!sa_->is_live_object(handle_cache_, reinterpret_cast<void*>(h)))
      bad_handle(h, op, "handle already freed (or never allocated)");
  }
}

Pool::Loc Pool::locate(ZsHandle h, const char* op) const {
  std::uint64_t obj = load_obj(h);
  std::uint64_t pfn = obj_pfn(obj);
  std::uint32_t idx = obj_index(obj);
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

}  // namespace memdesc::zsmalloc
