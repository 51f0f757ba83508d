// zsmalloc/zs_stats.cpp — pool and class statistics, the page list, and validate().
#include "zsmalloc/zs_pool.hpp"

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "zsmalloc/handle.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {

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
    s.freeable = c->freeable_pages();
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
                                     zs->nr_pages == c->pages);
        if (std::int32_t l = zs->lock.load(); l != 0)
          report_invariant("ZS-LOCK", "pool %s class %u: zspage %p is locked (%d) with no access under way", name_.c_str(),
                           c->size, static_cast<void*>(zs), l);
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
            std::uint64_t link = header_load(c, zs, f);
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
