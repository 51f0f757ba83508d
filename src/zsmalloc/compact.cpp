// zsmalloc/compact.cpp — compaction: objects move from the sparsest zspages of a class into the
// fullest, and the emptied zspages go back to the arena.
#include "zsmalloc/zs_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <vector>

#include "base/base.hpp"
#include "zsmalloc/handle.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {
std::uint64_t Pool::can_compact() const {
  std::uint64_t n = 0;
  for (unsigned i = 0; i < nr_classes_; ++i) {
    SizeClass* c = &storage_[i];
    LockGuard g(c->lock);
    n += c->freeable_pages();
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
  while (cls->freeable_pages() > 0) {
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
  const std::uint32_t payload = cls->size - kZsHeaderSize;
  for (std::uint32_t idx = 0; idx < cls->objs && src->inuse != 0 && dst->inuse < cls->objs; ++idx) {
    ZsHandle h = slot_handle(cls, src, idx);
    if (!h) continue;
    std::uint32_t to = dst->freeobj;
    copy_out(src, std::uint64_t{idx} * cls->size + kZsHeaderSize, buf, payload);
    obj_malloc(cls, dst, h);  // writes dst's header and rewrites the handle (pool write lock held)
    copy_in(dst, std::uint64_t{to} * cls->size + kZsHeaderSize, buf, payload);
    obj_free(cls, src, idx);
    objects_moved_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace memdesc::zsmalloc
