// page/page_alloc.cpp — the page allocator: creation, the allocation and free slow paths, purge,
// statistics and validation. See page_alloc.hpp; the per-thread lists' mechanics are in pcp.cpp.
#include "page/page_alloc.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "platform/platform.hpp"

namespace memdesc::page {

Result<std::unique_ptr<PageAllocator>> PageAllocator::create(core::Memmap& mm, const PageAllocConfig& cfg) {
  if (cfg.thread_cache && (cfg.pcp_batch == 0 || cfg.pcp_high < cfg.pcp_batch || cfg.pcp_high_max < cfg.pcp_high ||
                           cfg.pcp_high_max > (1u << 20)))
    return Error{Errc::invalid_config, 0, "per-thread cache needs 0 < batch <= high <= high_max <= 2^20"};
  std::unique_ptr<PageAllocator> pa(new PageAllocator());
  pa->mm_ = &mm;
  pa->cfg_ = cfg;
  pa->pcp_orders_ = cfg.thread_cache ? std::min(kPcpMaxOrder, mm.max_order()) + 1 : 0;
  pa->has_movable_ = mm.zone_pages(core::ZoneId::Movable) != 0;
  pa->view_ = mm.view();
  pa->movable_start_ = mm.zone_start(core::ZoneId::Movable);
  // Every zone's bitmaps in one reservation: only its last page is rounded up (one per zone
  // cost 4 KiB more on a 1 GiB arena). Reserved and committed, never touched here: an empty
  // bitmap costs address space, not RSS.
  std::size_t words = 0;
  for (unsigned z = 0; z < core::kNrZones; ++z) words += BuddyZone::bitmap_words(mm, static_cast<core::ZoneId>(z));
  std::size_t bytes = align_up(std::max<std::size_t>(words, 1) * sizeof(std::uint64_t), platform::os_page_size());
  auto mem = platform::reserve_committed(bytes, platform::os_page_size());
  if (!mem.ok()) return mem.error();
  pa->bitmap_mem_ = mem.value();
  pa->bitmap_bytes_ = bytes;
  auto* storage = static_cast<std::uint64_t*>(pa->bitmap_mem_);
  for (unsigned z = 0; z < core::kNrZones; ++z) {
    pa->zones_[z].init(mm, static_cast<core::ZoneId>(z), storage);
    storage += BuddyZone::bitmap_words(mm, static_cast<core::ZoneId>(z));
  }
  mm.metadata().free_state.fetch_add(bytes, std::memory_order_relaxed);
  // Every page starts free: poisoned, where the shadow is affordable (base/asan.hpp).
  if (asan::kOn && mm.bytes() <= asan::kPoisonWholeArenaMax) {
    asan::poison(reinterpret_cast<void*>(mm.base()), mm.bytes());
    mm.note_poisoned(0, mm.bytes());
  }
  static const rcu::ForkOps kForkOps{&fork_acquire, &fork_release, &fork_child};
  pa->fork_hook_.enable(pa.get(), &kForkOps);
  enable_registry_fork_hook();
  return pa;
}

void PageAllocator::fork_acquire(void* self, LockRank r) {
  if (r != LockRank::Zone) return;
  for (BuddyZone& z : static_cast<PageAllocator*>(self)->zones_) z.lock.fork_acquire();
}

void PageAllocator::fork_release(void* self, LockRank r) {
  if (r != LockRank::Zone) return;
  for (BuddyZone& z : static_cast<PageAllocator*>(self)->zones_) z.lock.fork_release();
}

void PageAllocator::fork_child(void* self) { reclaim_dead_thread_caches(static_cast<PageAllocator*>(self)); }

PageAllocator::~PageAllocator() {
  fork_hook_.disable();
  detach_all_thread_caches(this);
  if (bitmap_mem_) {
    platform::release(bitmap_mem_, bitmap_bytes_);
    mm_->metadata().free_state.fetch_sub(bitmap_bytes_, std::memory_order_relaxed);
  }
}

void PageAllocator::zero_if_dirty(std::uint64_t pfn, unsigned order) const {
  asan::unpoison(mm_->addr(pfn), kPageSize << order);  // about to be handed out
  // The first page's word says whether the block may hold data (BUDDY-WORD, PCP-WORD).
  if (mm_->word(pfn).buddy_dirty()) std::memset(mm_->addr(pfn), 0, kPageSize << order);
}

// ---- allocation slow path ----------------------------------------------------------------

Block PageAllocator::take_from_zones(unsigned order, Gfp gfp) {
  core::ZoneId pref = preferred_zone(gfp);
  for (core::ZoneId z : {pref, core::ZoneId::Normal}) {
    BuddyZone& zone = zones_[static_cast<unsigned>(z)];
    LockGuard g(zone.lock);
    Block b = zone.alloc_locked(order);
    if (b.pfn != kNoPfn) return b;
    if (z == core::ZoneId::Normal) break;
  }
  return {};
}

void* PageAllocator::alloc_slow(unsigned order, Gfp gfp, MemdescWord w) {
  if (order > mm_->max_order()) {
    set_last_error(Errc::out_of_memory, "order above the arena's max_order");
    return nullptr;
  }
  if (order < pcp_orders_ && !(gfp & GFP_NOCACHE)) {
    if (ThreadPageCache* c = attach_thread_cache(this)) {
      core::ZoneId z = preferred_zone(gfp);
      PcpList& l = c->lists[static_cast<unsigned>(z)][order];
      if (l.count.load(std::memory_order_relaxed) == 0) refill(l, z, order);
      std::uint32_t n = l.count.load(std::memory_order_relaxed);
      if (n != 0) {
        l.count.store(n - 1, std::memory_order_relaxed);
        std::uint64_t pfn = l.pfns[n - 1];
        if (gfp & GFP_ZERO) zero_if_dirty(pfn, order);
        return finish_alloc(pfn, order, w);
      }
    }
  }
  Block b = take_from_zones(order, gfp);
  if (b.pfn == kNoPfn) {
    // Blocks this thread holds in its cache may coalesce into what is asked for.
    drain_local();
    b = take_from_zones(order, gfp);
  }
  if (b.pfn == kNoPfn) {
    set_last_error(Errc::out_of_memory, "no free block of the requested order");
    return nullptr;
  }
  if (gfp & GFP_ZERO) zero_if_dirty(b.pfn, order);
  return finish_alloc(b.pfn, order, w);
}

// Fault injection is armed: fail this allocation if its turn has come, else allocate as usual.
void* PageAllocator::alloc_fault_slow(unsigned order, Gfp gfp, MemdescWord w) {
  if (fault::should_fail_slow(fault::Site::Page)) {
    set_last_error(Errc::out_of_memory, "page allocation failed by fault injection");
    return nullptr;
  }
  return alloc_slow(order, gfp, w);
}

// ---- free slow paths ---------------------------------------------------------------------

void PageAllocator::free_slow(std::uint64_t pfn, unsigned order) {
  core::ZoneId z = mm_->zone_of(pfn);
  if (order < pcp_orders_) {
    if (ThreadPageCache* c = attach_thread_cache(this)) {
      PcpList& l = c->lists[static_cast<unsigned>(z)][order];
      if (l.count.load(std::memory_order_relaxed) >= l.high) {
        // Refilled since the last overflow: the thread frees what it allocated in bursts, so
        // hold more; otherwise give the coldest blocks back.
        bool grown = l.refilled && l.high < l.high_max && grow(c, l);
        if (!grown) drain_list(l, z, order, l.batch);
        l.refilled = false;
      }
      free_block(pfn, order);  // the slot now matches and the list has room
      return;
    }
  }
  BuddyZone& zone = zones_[static_cast<unsigned>(z)];
  LockGuard g(zone.lock);
  zone.free_locked(pfn, order, /*dirty=*/true);  // handed out, so it may have been written
}

void PageAllocator::free_direct(void* addr, MemdescWord expected, const char* op) {
  std::uint64_t pfn = checked_pfn(addr, expected, op);
  asan::poison(addr, kPageSize << expected.order());  // (noted as poisonable when handed out)
  BuddyZone& zone = zones_[static_cast<unsigned>(mm_->zone_of(pfn))];
  LockGuard g(zone.lock);
  zone.free_locked(pfn, expected.order(), /*dirty=*/true);
}

void PageAllocator::free_bad_slow(void* addr, MemdescWord expected, const char* op) {
  report_bad_free(addr, expected, /*any_order=*/false, op);
}

void PageAllocator::free_pages_bad_slow(void* addr) {
  report_bad_free(addr, MemdescWord::misc(MiscSubtype::Pages, 0), /*any_order=*/true, "free_pages");
}

// Says precisely what is wrong with a free that failed the fast check. `any_order`: the
// expected word is Misc(subtype) of whatever order the block has (free_pages).
void PageAllocator::report_bad_free(void* addr, MemdescWord expected, bool any_order, const char* op) const {
  core::FoundWord f = core::diagnose_free(*mm_, op, addr);  // foreign pointer, double free
  MemdescWord w = f.word;
  char want[96];
  bool matches = any_order ? w.is(MemdescType::Misc) && w.misc_subtype() == expected.misc_subtype() : w == expected;
  if (!matches) {
    if (any_order)
      std::snprintf(want, sizeof want, "Misc(%s) (a block from alloc_pages)", misc_subtype_name(expected.misc_subtype()));
    else
      format_word(expected, want, sizeof want);
    report_wrong_type(op, addr, want, f.text);
  }
  // The right word, so the address is not the first byte of its block (BUDDY-ALIGN).
  std::uintptr_t start = reinterpret_cast<std::uintptr_t>(addr) & ~((kPageSize << w.order()) - 1);
  report_not_block_start(op, addr, reinterpret_cast<void*>(start), w.order());
}

// ---- purge, stats, validation ------------------------------------------------------------

Result<std::size_t> PageAllocator::purge(unsigned min_order) {
  constexpr unsigned kBatch = 64;
  std::size_t purged = 0;
  Error err{};
  for (auto& zone : zones_) {
    if (zone.pages() == 0) continue;
    for (unsigned k = mm_->max_order() + 1; k-- > std::min(min_order, mm_->max_order());) {
      std::uint64_t from = zone.start_pfn();
      for (;;) {
        std::uint64_t victims[kBatch];
        unsigned nv = 0;
        {
          LockGuard g(zone.lock);
          while (nv < kBatch) {
            std::uint64_t pfn = zone.next_free_locked(k, from);
            if (pfn == kNoPfn) break;
            from = pfn + 1;
            if (!mm_->word(pfn).buddy_dirty()) continue;
            zone.isolate_locked(pfn, k);
            victims[nv++] = pfn;
          }
        }
        if (nv == 0) break;
        // System calls outside the lock; the isolated blocks belong to nobody meanwhile.
        bool ok[kBatch];
        for (unsigned i = 0; i < nv; ++i) {
          Error e = platform::purge(mm_->addr(victims[i]), kPageSize << k);
          ok[i] = !e;
          if (e) err = e;
          else purged += kPageSize << k;
        }
        LockGuard g(zone.lock);
        for (unsigned i = 0; i < nv; ++i) zone.insert_locked(victims[i], k, !ok[i]);
      }
    }
  }
  if (err) return err;
  return purged;
}

ZoneSnapshot PageAllocator::zone_snapshot(core::ZoneId z) const {
  const BuddyZone& zone = zones_[static_cast<unsigned>(z)];
  ZoneSnapshot s{z};
  s.pages = zone.pages();
  LockGuard g(zone.lock);
  s.free_pages = zone.free_pages_locked();
  for (unsigned k = 0; k <= mm_->max_order(); ++k) s.nr_free[k] = zone.nr_free_locked(k);
  return s;
}

std::uint64_t PageAllocator::cached_pages() const {
  std::uint64_t n = 0;
  LockGuard g(cache_registry_lock());
  for (ThreadPageCache* c = caches_head; c; c = c->reg_next)
    for (unsigned z = 0; z < core::kNrZones; ++z)
      for (unsigned k = 0; k < pcp_orders_; ++k)
        n += std::uint64_t{c->lists[z][k].count.load(std::memory_order_relaxed)} << k;
  return n;
}

void PageAllocator::validate() const {
  for (const auto& zone : zones_) {
    LockGuard g(zone.lock);
    zone.validate_locked();
  }
  LockGuard g(cache_registry_lock());
  for (ThreadPageCache* c = caches_head; c; c = c->reg_next)
    for (unsigned z = 0; z < core::kNrZones; ++z)
      for (unsigned k = 0; k < pcp_orders_; ++k) {
        const PcpList& l = c->lists[z][k];
        for (std::uint32_t i = 0; i < l.count.load(std::memory_order_relaxed); ++i) {
          std::uint64_t pfn = l.pfns[i];
          if (mm_->zone_of(pfn) != static_cast<core::ZoneId>(z) || (pfn & ((std::uint64_t{1} << k) - 1)))
            report_invariant("PCP-WORD", "cached block pfn %llu is in the wrong list (zone %u, order %u)",
                             static_cast<unsigned long long>(pfn), z, k);
          if (!mm_->word(pfn).is(MemdescType::Buddy))
            report_invariant("PCP-WORD", "cached block pfn %llu has word %s", static_cast<unsigned long long>(pfn),
                             to_string(mm_->word(pfn)).c_str());
        }
      }
}

}  // namespace memdesc::page
