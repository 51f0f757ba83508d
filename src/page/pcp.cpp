// page/pcp.cpp — the per-thread page lists' mechanics: a thread's cache made, a list grown for a
// bursty thread, refilled from and drained to the buddy (the registry that finds and retires
// caches is page_cache.cpp; the fast paths are in page_alloc.hpp).
#include <algorithm>
#include <cstdlib>
#include <new>

#include "page/page_alloc.hpp"

namespace memdesc::page {

ThreadPageCache* PageAllocator::new_thread_cache() {
  auto* c = new (std::nothrow) ThreadPageCache();
  if (!c) return nullptr;
  c->owner_id = mm_->id();
  c->bytes = sizeof(ThreadPageCache);
  for (unsigned z = 0; z < core::kNrZones; ++z)
    for (unsigned k = 0; k < pcp_orders_; ++k) {
      PcpList& l = c->lists[z][k];
      l.high = std::max(8u, cfg_.pcp_high >> k);
      l.high_max = std::max(l.high, cfg_.pcp_high_max >> k);
      l.batch = std::min(l.high, std::max(2u, cfg_.pcp_batch >> k));
      l.pfns = static_cast<std::uint32_t*>(std::malloc(l.high * sizeof(std::uint32_t)));
      if (!l.pfns) {
        free_thread_cache(c);
        return nullptr;
      }
      c->bytes += l.high * sizeof(std::uint32_t);
    }
  mm_->metadata().caches.fetch_add(c->bytes, std::memory_order_relaxed);
  return c;
}

bool PageAllocator::grow(ThreadPageCache* c, PcpList& l) {
  std::uint32_t high = std::min(l.high_max, l.high * 2);
  // A new stack, published before the old one is freed: a fork that stops this thread anywhere
  // here leaves its child a stack that is whole (PageAllocator::reclaim_orphan_cache).
  auto* p = static_cast<std::uint32_t*>(std::malloc(high * sizeof(std::uint32_t)));
  if (!p) return false;  // keep the old stack; the caller drains instead
  std::uint32_t* old = l.pfns;
  std::copy(old, old + l.count.load(std::memory_order_relaxed), p);
  std::size_t more = (high - l.high) * sizeof(std::uint32_t);
  l.pfns = p;
  l.high = high;
  std::free(old);
  c->bytes += more;
  mm_->metadata().caches.fetch_add(more, std::memory_order_relaxed);
  return true;
}

void PageAllocator::refill(PcpList& l, core::ZoneId z, unsigned order) {
  BuddyZone& zone = zones_[static_cast<unsigned>(z)];
  std::uint32_t n = l.count.load(std::memory_order_relaxed);
  LockGuard g(zone.lock);
  while (n < l.batch) {
    Block b = zone.alloc_locked(order);
    if (b.pfn == kNoPfn) break;
    // PCP-WORD: a cached block keeps Buddy words; alloc_locked left the first page's word as
    // Buddy(dirty flag) and the others 0.
    l.pfns[n++] = static_cast<std::uint32_t>(b.pfn);
  }
  l.count.store(n, std::memory_order_relaxed);
  l.refilled = true;
}

void PageAllocator::drain_list(PcpList& l, core::ZoneId z, unsigned order, std::uint32_t n) {
  std::uint32_t count = l.count.load(std::memory_order_relaxed);
  n = std::min(n, count);
  if (n == 0) return;
  BuddyZone& zone = zones_[static_cast<unsigned>(z)];
  LockGuard g(zone.lock);
  for (std::uint32_t i = 0; i < n; ++i) {  // the bottom of the stack is the coldest
    std::uint64_t pfn = l.pfns[i];
    zone.insert_locked(pfn, order, mm_->word(pfn).buddy_dirty());
  }
  // Under the lock too: a fork (which holds every zone lock) never sees the stack half moved.
  std::copy(l.pfns + n, l.pfns + count, l.pfns);
  l.count.store(count - n, std::memory_order_relaxed);
}

void PageAllocator::reclaim_orphan_cache(ThreadPageCache* c) {
  for (unsigned z = 0; z < core::kNrZones; ++z)
    for (unsigned k = 0; k < pcp_orders_; ++k) {
      PcpList& l = c->lists[z][k];
      std::uint32_t n = std::min(l.count.load(std::memory_order_relaxed), l.high);
      BuddyZone& zone = zones_[z];
      LockGuard g(zone.lock);
      for (std::uint32_t i = 0; i < n; ++i) {
        std::uint64_t pfn = l.pfns[i];
        MemdescWord w = pfn < mm_->pages() ? mm_->word(pfn) : MemdescWord::misc(MiscSubtype::Unknown, 0);
        bool whole = mm_->zone_of(pfn) == static_cast<core::ZoneId>(z) && (pfn & ((std::uint64_t{1} << k) - 1)) == 0 &&
                     w.is(MemdescType::Buddy) && !w.buddy_head() && !zone.covers_free_locked(pfn);
        if (whole) zone.free_locked(pfn, k, /*dirty=*/true);  // every word rewritten (PCP-WORD may be torn)
      }
      l.count.store(0, std::memory_order_relaxed);
    }
}

void PageAllocator::drain_cache(ThreadPageCache* c) {
  for (unsigned z = 0; z < core::kNrZones; ++z)
    for (unsigned k = 0; k < pcp_orders_; ++k) drain_list(c->lists[z][k], static_cast<core::ZoneId>(z), k, ~0u);
}

void PageAllocator::drain_local() {
  if (ThreadPageCache* c = find_thread_cache(this)) drain_cache(c);
}

}  // namespace memdesc::page
