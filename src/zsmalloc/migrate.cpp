// zsmalloc/migrate.cpp — single-page migration: isolate, migrate, putback (ZS-ISOLATE).
#include "zsmalloc/zs_pool.hpp"

#include <algorithm>
#include <cstring>

#include "base/base.hpp"
#include "rcu/rcu.hpp"
#include "zsmalloc/handle.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {

Zspage* Pool::lock_page_zspage(std::uint64_t pfn, SizeClass** cls_out) {
  if (pfn >= mm_->pages()) return nullptr;
  // The descriptor may be freed under us: typesafe by RCU keeps it a Zspage. (migrate_page is
  // in a read section already, entered before it took the pool lock.)
  rcu::ReadGuard rg;
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
  void* fresh = pa_->alloc(0, page_gfp_, migrating_word());
  if (!fresh) return ZsMigrateResult::no_memory;
  auto newpfn = static_cast<std::uint32_t>(mm_->pfn(fresh));
  ZsMigrateResult r = ZsMigrateResult::migrated;
  Zspage* dead = nullptr;
  // The read section lock_page_zspage needs, entered before any lock: a read_lock may wait at
  // the fork gate (rcu/fork.hpp), which it must never do holding the pool lock.
  rcu::ReadGuard rg;
  lock_.write_lock();  // no handle is being translated while we rewrite handles
  SizeClass* cls = nullptr;
  Zspage* zs = lock_page_zspage(pfn, &cls);
  if (!zs) {
    lock_.write_unlock();
    pa_->free(fresh, migrating_word(), "zs_migrate_page");
    return ZsMigrateResult::not_isolated;
  }
  const unsigned pos = mm_->word(pfn).aux();
  if (!(zs->isolated & (1u << pos))) {
    r = ZsMigrateResult::not_isolated;
  } else if (!zspage_write_trylock(zs)) {
    r = ZsMigrateResult::busy;
  } else {
    copy_page_unchecked(fresh, page_addr(static_cast<std::uint32_t>(pfn)));  // free slots are poisoned (ASan)
    mm_->set_word(newpfn, zs_word(zs, pos));
    // Objects that start in the page get their handles rewritten; those that only end in it
    // are named by the page they start in and need nothing (ZS-HANDLE).
    zs->pfn[pos] = newpfn;
    if constexpr (asan::kOn) poison_slots_in_page(cls, zs, pos);
    for (std::uint32_t idx = first_index_in_page(cls->size, pos);
         idx < cls->objs && std::uint64_t{idx} * cls->size < (std::uint64_t{pos} + 1) * kPageSize; ++idx)
      if (ZsHandle h = slot_handle(cls, zs, idx)) record(h, make_obj(newpfn, idx));
    mm_->set_word(pfn, migrating_word());
    zs->isolated = static_cast<std::uint16_t>(zs->isolated & ~(1u << pos));
    zspage_write_unlock(zs);
    if (zs->inuse == 0 && retire_locked(cls, zs)) dead = zs;
  }
  cls->lock.unlock();
  lock_.write_unlock();
  if (r != ZsMigrateResult::migrated) {
    pa_->free(fresh, migrating_word(), "zs_migrate_page");
    return r;
  }
  pa_->free(mm_->addr(pfn), migrating_word(), "zs_migrate_page");
  pages_migrated_.fetch_add(1, std::memory_order_relaxed);
  if (dead) free_zspage_now(dead);
  return r;
}

}  // namespace memdesc::zsmalloc
