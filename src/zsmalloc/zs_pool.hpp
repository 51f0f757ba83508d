// zsmalloc/zs_pool.hpp — the zsmalloc pool: size classes, zspages, handles, compaction and
// single-page migration. docs/ZSMALLOC.md explains the design; this header is its reference.
// Files: zspage.hpp (descriptor, class), handle.hpp (the obj codec); pool.cpp (create, malloc,
// free, access), handle.cpp (check, locate), zspage.cpp (slots, fullness, life cycle, lock),
// compact.cpp, migrate.cpp, zs_stats.cpp (statistics, validate).
//
// Geometry. A zspage of class C chains C.pages order-0 pages (not contiguous) whose bytes,
// concatenated, hold C.objs slots of C.size bytes. Slot i starts at byte i * C.size of the
// chain: in page (i * C.size) >> 12 at offset (i * C.size) & 4095; it may end in the next page.
// Every page k of the chain holds the word ZPDesc(zspage, 0, aux = k) [ZS-WORD]: the aux bits
// give the page's position, from which the first slot starting in it is ceil(k * 4096 / size)
// and its offset follows — nothing per page is stored anywhere else. The descriptor keeps the
// pfns of the chain in order (pfn[0 .. pages-1]).
//
// Slots. A non-huge slot begins with an 8-byte header: (handle | 1) when allocated — the
// reverse map compaction and migration use — or (next free index << 1) when free
// [ZS-FREELIST]. A huge class holds one object per page, no header; the descriptor keeps its
// handle (huge_handle) [ZS-HUGE].
//
// Handles. A handle is the address of an 8-byte slot from the pool's "zs_handle" cache; the
// slot holds obj = pfn << 16 | index, the page where the object starts and its index in the
// zspage [ZS-HANDLE]. Only compaction and migration rewrite it, under the pool write lock.
//
// Locking (docs/LOCKING.md): pool lock (RwSpinLock, rank ZsPool) → class lock (SpinLock, rank
// ZsClass) → zspage lock (no rank: readers may hold it across user code; writers only try).
//   malloc        class lock (a new zspage is built with no lock, then inserted)
//   free          pool read → class lock
//   read/write    pool read → zspage read; pool dropped; the access; zspage read dropped
//   compaction    pool write → class lock → zspage write trylock on the source
//   migration     pool write → class lock → zspage write trylock
//   isolate/putback  RCU read section to reach the descriptor → class lock
// No page or slab object is allocated or freed under a zs lock: zspages to free are unlinked
// under the class lock (state Dead) and freed after every lock is dropped.
//
// Isolation replaces the kernel's page lock: bit k of `isolated` says page k is held by the
// migration layer. An empty zspage with an isolated page is not freed; it waits in fullness
// group 0 until putback_page or migrate_page clears the bit [ZS-ISOLATE].
#pragma once
#include <memdesc/zsmalloc.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/base.hpp"
#include "core/core.hpp"
#include "page/page.hpp"
#include "slab/slab.hpp"
#include "zsmalloc/zspage.hpp"

namespace memdesc::zsmalloc {

class Pool {
 public:
  static Result<std::unique_ptr<Pool>> create(slab::SlabAllocator& sa, page::PageAllocator& pa, const ZsPoolConfig& cfg);
  ~Pool();

  Result<ZsHandle> malloc(std::size_t size, Gfp gfp);
  void free(ZsHandle h);
  const void* read_begin(ZsHandle h, void* local_copy, std::size_t len);
  void read_end(ZsHandle h, const void* mem);
  void write(ZsHandle h, const void* src, std::size_t len);
  std::size_t object_capacity(ZsHandle h);

  std::uint64_t can_compact() const;
  std::uint64_t compact();

  bool isolate_page(std::uint64_t pfn) NO_THREAD_SAFETY_ANALYSIS;  // lock_page_zspage
  ZsMigrateResult migrate_page(std::uint64_t pfn) NO_THREAD_SAFETY_ANALYSIS;  // lock_page_zspage
  void putback_page(std::uint64_t pfn) NO_THREAD_SAFETY_ANALYSIS;  // lock_page_zspage

  const ZsClassTable& table() const { return table_; }
  std::uint64_t total_pages() const { return pages_allocated_.load(std::memory_order_relaxed); }
  ZsPoolStats stats() const;
  std::vector<ZsClassStats> class_stats() const;
  std::vector<ZsPageInfo> pages() const;
  void validate() const;
  core::Memmap& memmap() const { return *mm_; }
  const char* name() const { return name_.c_str(); }

 private:
  friend struct PoolTestAccess;  // corruption tests damage the page counter on purpose
  Pool() = default;
  static void fork_acquire(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  static void fork_release(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;

  struct Loc {  // where a handle's object is (valid while the object cannot move)
    Zspage* zs;
    SizeClass* cls;
    std::uint32_t idx;
  };

  SizeClass* class_for(std::size_t size) const;
  // Handle checks and translation. check_handle: the handle is a slot of this pool's handle
  // cache (and, in checked builds, a live one). locate: obj → page word → zspage, checked
  // against the slot's header; the caller holds the pool lock or the zspage lock.
  void check_handle(ZsHandle h, const char* op) const;  // handle.cpp
  Loc locate(ZsHandle h, const char* op) const;
  [[noreturn]] void bad_handle(ZsHandle h, const char* op, const char* why) const;

  // Zspage life cycle. alloc_zspage runs with no lock; free_zspage_now with none either.
  Zspage* alloc_zspage(SizeClass* cls, Gfp gfp);
  void free_zspage_now(Zspage* zs);
  // Unlinks an empty zspage that no isolation holds and marks it Dead: the caller frees it
  // after dropping its locks. Returns false (and leaves it in group 0) when a page is isolated.
  bool retire_locked(SizeClass* cls, Zspage* zs) REQUIRES(cls->lock);

  // Slots (class lock held).
  void obj_malloc(SizeClass* cls, Zspage* zs, ZsHandle h) REQUIRES(cls->lock);
  void obj_free(SizeClass* cls, Zspage* zs, std::uint32_t idx) REQUIRES(cls->lock);
  ZsHandle slot_handle(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const;  // 0 when free
  // A non-huge slot's 8-byte header (relaxed atomics). Unchecked by ASan: headers are poisoned
  // whether the slot is free or not, so that a write past an object's end onto the next slot's
  // header is reported (only these two touch them).
  std::uint64_t header_load(const SizeClass* cls, const Zspage* zs, std::uint32_t idx) const;
  void header_store(const SizeClass* cls, const Zspage* zs, std::uint32_t idx, std::uint64_t v) const;
  void copy_out(const Zspage* zs, std::uint64_t off, void* dst, std::size_t len) const;
  // ASan builds: a free slot poisoned whole, an allocated one but its header. A migrated page
  // gets its headers' and free slots' poison back; its copy is made unchecked.
  void asan_slot(const SizeClass* cls, const Zspage* zs, std::uint32_t idx, bool poison) const;
  void poison_slots_in_page(const SizeClass* cls, const Zspage* zs, unsigned pos) const;
  static void copy_page_unchecked(void* dst, const void* src);
  void copy_in(const Zspage* zs, std::uint64_t off, const void* src, std::size_t len) const;
  char* page_addr(std::uint32_t pfn) const { return static_cast<char*>(mm_->addr(pfn)); }

  // Fullness lists (class lock held).
  static unsigned fullness_of(const SizeClass* cls, std::uint32_t inuse);
  void list_add(SizeClass* cls, Zspage* zs, unsigned group) REQUIRES(cls->lock);
  void list_del(SizeClass* cls, Zspage* zs) REQUIRES(cls->lock);
  void fix_fullness(SizeClass* cls, Zspage* zs) REQUIRES(cls->lock);
  Zspage* find_get(SizeClass* cls, int from, int to) const REQUIRES(cls->lock);  // first zspage scanning groups from..to

  // The zspage lock (ZS-LOCK).
  static void zspage_read_lock(Zspage* zs);
  static void zspage_read_unlock(Zspage* zs) { zs->lock.fetch_sub(1, std::memory_order_release); }
  static bool zspage_write_trylock(Zspage* zs) {
    std::int32_t zero = 0;
    return zs->lock.compare_exchange_strong(zero, -1, std::memory_order_acquire, std::memory_order_relaxed);
  }
  static void zspage_write_unlock(Zspage* zs) { zs->lock.store(0, std::memory_order_release); }

  // Compaction of one class; returns the pages it freed (retired zspages are freed after the
  // locks are dropped, in batches).
  std::uint64_t compact_class(SizeClass* cls);
  void migrate_zspage(SizeClass* cls, Zspage* src, Zspage* dst) REQUIRES(cls->lock);
  // Finds the live zspage page `pfn` belongs to and locks its class; null when the page is
  // not this pool's. Runs the RCU lookup: the descriptor cache is typesafe by RCU.
  // The analysis cannot name the lock of an out-parameter: this function and its callers
  // (isolate_page, putback_page, migrate_page) are NO_THREAD_SAFETY_ANALYSIS for it.
  Zspage* lock_page_zspage(std::uint64_t pfn, SizeClass** cls_out) NO_THREAD_SAFETY_ANALYSIS;

  std::string name_;
  ZsClassTable table_;
  slab::SlabAllocator* sa_ = nullptr;
  page::PageAllocator* pa_ = nullptr;
  core::Memmap* mm_ = nullptr;
  core::ArenaView meta_view_;  // the metadata region, where handles live (META-OOB): check_handle's
  slab::KmemCache* zspage_cache_ = nullptr;  // descriptors: TYPESAFE_BY_RCU, descriptor metadata
  slab::KmemCache* handle_cache_ = nullptr;  // 8-byte handle slots
  Gfp page_gfp_ = GFP_NONE;
  RwSpinLock lock_{LockRank::ZsPool};
  std::unique_ptr<SizeClass[]> storage_;      // distinct classes
  SizeClass* classes_[kZsSizeClasses] = {};   // nominal index → class (merged entries alias)
  unsigned nr_classes_ = 0;
  std::atomic<std::uint64_t> pages_allocated_{0};
  std::atomic<std::uint64_t> pages_compacted_{0}, objects_moved_{0}, pages_migrated_{0};
  std::atomic<bool> compacting_{false};
  rcu::ForkHook fork_hook_;  // the pool lock and class locks across fork()
};

}  // namespace memdesc::zsmalloc
