// slab/slab_alloc.hpp — the slab allocator of one arena: its caches, and the fast paths with
// their slow partners. Overview, call tree and invariants: slab/slab.hpp.
//
// The allocator owns its caches (KmemCache: geometry, lists, objects on slabs) and its
// magazine layer (Magazines: thread contexts, magazine pairs, the depot); it makes and
// discards slabs itself. Where each part lives: caches, the slab life cycle and RCU deferral
// in kmem_cache.cpp; the magazine layer in magazine.cpp; the slow paths, bulk and shrink in
// slab_slow.cpp; the kmalloc family in kmalloc.cpp; checked-build state, misuse reports,
// validate() and slabinfo() in slab_debug.cpp.
#pragma once
#include <memdesc/slab.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/base.hpp"
#include "page/page.hpp"
#include "rcu/rcu.hpp"
#include "slab/kmalloc_classes.hpp"
#include "slab/kmem_cache.hpp"
#include "slab/magazine.hpp"
#include "slab/magazine_pair.hpp"
#include "slab/slab_desc.hpp"

namespace memdesc::slab {

class SlabAllocator {
 public:
  // `pa` gives the pages of users' caches (kmalloc's among them); `meta`, of the metadata
  // region, those of the layers' own caches: descriptors and handles (META-OOB).
  static Result<std::unique_ptr<SlabAllocator>> create(page::PageAllocator& pa, page::PageAllocator& meta);
  ~SlabAllocator();
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;

  Result<KmemCache*> cache_create(const SlabCreate& args);
  // Objects still allocated: fatal report naming the cache. A user's cache (keep_shell) stays
  // as a shell, so that a later use is a report (the newest kMaxShells); a layer's own caches,
  // which no user holds, are freed.
  void cache_destroy(KmemCache* c, bool keep_shell = true);
  static constexpr std::size_t kMaxShells = 256;
  std::size_t destroyed_shells() const {  // shells kept of destroyed caches (at most kMaxShells)
    LockGuard g(caches_lock_);
    return graveyard_.size();
  }

  MEMDESC_FAST_PATH void* cache_alloc(KmemCache* c, Gfp gfp) {
    if (MEMDESC_UNLIKELY(c->sa != this)) report_foreign_cache(c, "kmem_cache_alloc");  // another arena's cache
    TlsSlabSlot slot = tls_slab;
    if (MEMDESC_LIKELY(slot.id == view_.id && !kChecked && !asan::kOn && !(gfp & GFP_ZERO))) {
      MagazinePair& m = slot.ctx->pair_of(c->id);  // kNoMagazines: count 0
      if (MEMDESC_LIKELY(m.count != 0)) {
        void* p = m.objs[--m.count];
        if constexpr (kHardened)
          if (c->marked) clear_free_mark(p);  // SLAB-FREE-MARK
        return p;
      }
    }
    return alloc_slow(c, gfp);
  }

  MEMDESC_FAST_PATH void cache_free(KmemCache* c, void* p) {
    if (MEMDESC_UNLIKELY(c->sa != this)) report_foreign_cache(c, "kmem_cache_free");
    const core::ArenaView& v = home_view(c);  // META-OOB: a flag on the line the check loaded
    std::uint64_t off = v.offset(p);
    if (MEMDESC_UNLIKELY(off >= v.bytes)) free_bad_slow(c, p, "kmem_cache_free");
    MemdescWord w = v.word_at(off);
    if (MEMDESC_UNLIKELY(!w.is(MemdescType::Slab) || w.aux() != c->word_aux)) free_bad_slow(c, p, "kmem_cache_free");
    free_object(c->id, p, off, "kmem_cache_free");
  }

  // kmalloc never loads the KmemCache on its fast path: the class index is the cache id and the
  // magazine index (kmalloc magazines live inside the thread context). Cost: an index
  // computation, one TLS load, one load of the arena id, three loads and a store on the
  // magazine; the object is not touched.
  MEMDESC_FAST_PATH void* kmalloc(std::size_t size, Gfp gfp) {
    if (MEMDESC_LIKELY(size - 1 < kKmallocMaxCacheSize)) {
      unsigned id = kmalloc_index(size);
      TlsSlabSlot slot = tls_slab;
      if (MEMDESC_LIKELY(slot.id == view_.id && !kChecked && !asan::kOn && !(gfp & GFP_ZERO))) {
        MagazinePair& m = slot.ctx->kmalloc_mags[id];
        if (MEMDESC_LIKELY(m.count != 0)) {
          void* p = m.objs[--m.count];
          if constexpr (kHardened) clear_free_mark(p);  // every kmalloc cache is marked (SLAB-FREE-MARK)
          return p;
        }
      }
      return kmalloc_class_slow(id, size, gfp);
    }
    return kmalloc_large_slow(size, gfp);
  }

  MEMDESC_FAST_PATH void kfree(const void* cp) {
    void* p = const_cast<void*>(cp);
    std::uint64_t off = view_.offset(p);
    if (MEMDESC_UNLIKELY(off >= view_.bytes)) return kfree_other_slow(p);  // null, kZeroSizePtr or foreign
    MemdescWord w = view_.word_at(off);
    // One mask and compare: a Slab word whose aux is a plain id (< kMaxCaches), so neither an
    // internal cache's object (SLAB-INTERNAL) nor an id past the cache table.
    if (MEMDESC_UNLIKELY((w.raw() & kKfreeMask) != static_cast<std::uint64_t>(MemdescType::Slab)))
      return kfree_other_slow(p);  // kmalloc_large, an internal object, misuse
    free_object(w.aux(), p, off, "kfree");  // SLAB-WORD: aux is the id
  }

  std::size_t ksize(const void* p) const;
  // The metadata region's view: where the objects of internal caches (descriptors, handles)
  // live. A layer that checks a descriptor pointer looks its word up here.
  const core::ArenaView& meta_view() const { return meta_view_; }
  const core::Memmap& meta_memmap() const { return *meta_mm_; }
  // The view in which c's slabs lie (META-OOB).
  const core::ArenaView& home_view(const KmemCache* c) const { return c->internal ? meta_view_ : view_; }
  void* krealloc(void* p, std::size_t size, Gfp gfp);
  void* kcalloc(std::size_t n, std::size_t size, Gfp gfp);

  std::size_t alloc_bulk(KmemCache* c, Gfp gfp, std::size_t n, void** out);  // all or none
  void free_bulk(KmemCache* c, std::size_t n, void** objs);
  std::size_t shrink(KmemCache* c);  // flushes this thread's magazine, discards empty slabs; pages freed
  // Every cache: this thread's magazines flushed, empty slabs discarded, RCU frees waited for.
  std::size_t shrink_all();
  // A descriptor from descriptor cache `dc` (fault-injection site "descriptor").
  void* alloc_descriptor(KmemCache* dc);
  // Checked builds: p is an object of c handed out and not yet freed (the exact per-object
  // state). Fast builds keep no such state and answer true.
  bool is_live_object(KmemCache* c, const void* p) const;
  // p is the start of a slot of c that is handed out: in a slab of c, below its bump, not on
  // its freelist (a walk: O(objects)). For state that may be torn (a fork child's dead threads).
  bool is_handed_out_locked(KmemCache* c, const void* p) const REQUIRES(c->lock);
  // A page with word w lies in a slab of cache c (SLAB-WORD: aux is the cache id).
  static bool word_in_cache(MemdescWord w, const KmemCache* c) { return w.is(MemdescType::Slab) && w.aux() == c->word_aux; }
  // The type bits and the aux bits at and above kMaxCaches (internal bit included).
  static constexpr std::uint64_t kKfreeMask =
      MemdescWord::kTypeMask | (std::uint64_t{((1u << MemdescWord::kAuxBits) - 1) & ~(kMaxCaches - 1)} << MemdescWord::kAuxShift);

  void flush_thread() { mags_.flush_thread(); }  // this thread's magazines back to their slabs
  // Validation, in the parts of the one walk of the arena's words (Arena::validate): each slab
  // met is checked and its list counted, then the counts against the caches' counters. Call
  // when quiescent.
  struct SlabCensus {
    std::vector<std::uint64_t> partial = std::vector<std::uint64_t>(kMaxCaches);
    std::vector<std::uint64_t> empty = std::vector<std::uint64_t>(kMaxCaches);
  };
  // `mm`: the memmap whose walk met the slab (the arena's or the metadata region's).
  std::uint64_t validate_slab(const core::Memmap& mm, std::uint64_t pfn, MemdescWord w, SlabCensus& census) const;
  void validate_caches(const SlabCensus& census) const;
  std::vector<SlabCacheInfo> slabinfo() const;

 private:
  friend class Magazines;  // makes, discards and finds slabs; flushes every cache's pairs
  SlabAllocator() = default;
  // fork() (rcu/fork.hpp): the registry, every cache's lock and (checked builds) live set.
  static void fork_acquire(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  static void fork_release(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS;
  template <class Fn>
  void for_each_live_cache(Fn&& fn) const {
    for (const auto& slot : caches_)
      if (KmemCache* c = slot.load(std::memory_order_acquire)) fn(c);
  }

  // The free fast path reads only fast_[id] (no KmemCache load): the slot-boundary test, the
  // cheap double-free test (MAG-TOP), and the push on this thread's magazine.
  // `arena_off` is p's offset in the arena; slabs are naturally aligned, so masking it with the
  // cache's slab size gives the offset in the slab (SLAB-WORD: the word's order is the cache's).
  MEMDESC_FAST_PATH void free_object(unsigned id, void* p, std::uint64_t arena_off, const char* op) {
    const FastInfo fi = fast_[id];
    if (MEMDESC_UNLIKELY((arena_off & fi.slab_mask) * fi.div_magic >= fi.div_magic)) return free_bad_id_slow(id, p, op);
    if constexpr (kHardened) {  // SLAB-FREE-MARK: a double free anywhere, one load and compare
      if (fi.slab_mask & FastInfo::kMarked) {
        if (MEMDESC_UNLIKELY(has_free_mark(p))) return double_free_id_slow(id, p, op);
        set_free_mark(p);
      }
    }
    TlsSlabSlot slot = tls_slab;
    if (MEMDESC_LIKELY(slot.id == view_.id && !kChecked && !asan::kOn)) {
      // The first chunk sits inside the context: kfree of a kmalloc object saves a dependent
      // load.
      MagazinePair& m = MEMDESC_LIKELY(id < kMagChunk) ? slot.ctx->kmalloc_mags[id]
                                                   : slot.ctx->pair_of(id);  // kNoMagazines: cap 0
      if (MEMDESC_LIKELY(m.count < m.cap)) {
        // MAG-TOP; objs[-1] is a null sentinel, so an empty magazine needs no test.
        if (MEMDESC_UNLIKELY((m.objs + m.count)[-1] == p)) return double_free_id_slow(id, p, op);
        push(m, p);
        return;
      }
    }
    free_slow(caches_[id].load(std::memory_order_relaxed), p, op);
  }

  // The slot first, then the count: a fork that stops the thread between them leaves no stale
  // object under the count for the child to take back (Magazines::ctx_fork_orphan). A compiler
  // barrier only: stores stay in order on x86 and the count is only ever read by this thread.
  MEMDESC_FAST_PATH static void push(MagazinePair& m, void* p) {
    m.objs[m.count] = p;
    std::atomic_signal_fence(std::memory_order_release);
    ++m.count;
  }

  // A destroyed cache (its shell) used again: fatal report naming the cache and the call.
  static void check_alive(const KmemCache* c, const char* op) {
    if (MEMDESC_UNLIKELY(c->dead.load(std::memory_order_relaxed))) report_dead_cache(c, op);
  }
  [[noreturn]] static void report_dead_cache(const KmemCache* c, const char* op);
 public:
  // A cache of another arena passed to this one (or not a cache at all): fatal.
  [[noreturn]] MEMDESC_SLOW_PATH void report_foreign_cache(const KmemCache* c, const char* op) const;
  void check_owner(const KmemCache* c, const char* op) const {
    if (MEMDESC_UNLIKELY(!c || c->sa != this)) report_foreign_cache(c, op);
  }
 private:
  MEMDESC_SLOW_PATH void* alloc_slow(KmemCache* c, Gfp gfp);
  MEMDESC_SLOW_PATH void free_slow(KmemCache* c, void* p, const char* op);
  MEMDESC_SLOW_PATH void* kmalloc_large_slow(std::size_t size, Gfp gfp);
  // A kmalloc class's slow path; null + last_error for a class the arena's largest block cannot
  // hold (max_order 0 has no kmalloc-8k).
  MEMDESC_SLOW_PATH void* kmalloc_class_slow(unsigned id, std::size_t size, Gfp gfp);
  MEMDESC_SLOW_PATH void kfree_other_slow(void* p);
  [[noreturn]] void report_unreachable_object(const char* op, const void* p, MemdescWord w) const;
  void check_not_metadata(const char* op, const void* p) const;
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_slow(KmemCache* c, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void double_free_slow(KmemCache* c, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_id_slow(unsigned id, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void double_free_id_slow(unsigned id, void* p, const char* op);

  // Slab life cycle (kmem_cache.cpp). None of these is called with c->lock held unless _locked.
  Slab* new_slab(KmemCache* c);
  void discard_slabs(KmemCache* c, std::uint32_t list);  // a pfn-linked list; no lock held
  void free_slab_now(KmemCache* c, Slab* s);
  void free_to_slab(KmemCache* c, void* p);  // a free that bypasses magazines
  void put_to_slab(KmemCache* c, void* p);   // the same without the checked-build bookkeeping
  void rcu_wait_idle(KmemCache* c);         // until no deferred slab free of c is pending
  static void rcu_discard_cb(rcu::Head* h);
  Slab* slab_of(const KmemCache* c, const void* p) const;  // p: an object of c
  // What a slab of an internal cache (descriptors, handles) costs: its pages, and their words in
  // the metadata region. Counted as metadata `descriptors`.
  static std::uint64_t descriptor_slab_cost(const KmemCache* c) {
    return (kPageSize + sizeof(std::uint64_t)) << c->order;
  }
  Result<KmemCache*> cache_init(std::unique_ptr<KmemCache> c, const SlabCreate& a, unsigned id);
  void checked_on_alloc(KmemCache* c, void* p);
  void checked_on_free(KmemCache* c, void* p, const char* op);

  core::ArenaView view_;  // the memmap's fast-path fields; view_.id keys the TLS slot
  page::PageAllocator* pa_ = nullptr;
  Magazines mags_;  // thread contexts, magazine pairs, depot exchanges
  core::Memmap* mm_ = nullptr;
  // The metadata region (META-OOB): internal caches' slabs. Immutable after create().
  core::ArenaView meta_view_;
  page::PageAllocator* meta_pa_ = nullptr;
  core::Memmap* meta_mm_ = nullptr;
  KmemCache* desc_cache_ = nullptr;
  std::atomic<KmemCache*> caches_[kMaxCaches] = {};  // caches_lock_ to change; lockless reads
  // What the free fast path needs of cache `id`, dense so it costs one load: written when the
  // cache is created, before any page carries the id (so before any free can read it).
  struct FastInfo {
    std::uint64_t div_magic = 0;
    std::uint64_t slab_mask = 0;  // bytes per slab - 1; bit 63: the cache is marked (arena offsets never reach it)
    static constexpr std::uint64_t kMarked = std::uint64_t{1} << 63;
  };
  static_assert(sizeof(FastInfo) == 16, "one load on the free fast path");
  FastInfo fast_[kMaxCaches] = {};
  mutable SpinLock caches_lock_{LockRank::SlabRegistry};
  std::vector<KmemCache*> graveyard_ GUARDED_BY(caches_lock_);  // destroyed caches' shells, freed with the allocator
  rcu::ForkHook fork_hook_;
};

}  // namespace memdesc::slab
