// slab/slab.hpp — slabs, object caches, per-thread magazines, and kmalloc, on memdescs.
//
// Glossary: a *slab* is a naturally aligned block of 2^order pages cut into `objects` slots of
// `stride` bytes; its *descriptor* (struct Slab, 32 bytes) lives in the descriptor cache; every
// page of the slab holds the word Slab(descriptor, order, aux = cache id). A *magazine* is a
// per-thread, per-cache stack of free objects.
//
// Allocation code overview:
//   cache_alloc(c)   FAST: TLS slot → this thread's magazine for c.id → pop. The object is
//                    not touched. Cost: one TLS load, ~5 loads and 1 store, no lock, no atomic
//                    RMW, no call.
//   kmalloc(size)    FAST: the same with the class index as the id: no KmemCache load, and
//                    the kmalloc magazines sit inside the thread context (no chunk load).
//     alloc_slow:    attach the thread context; grow c's stacks if due (MAG-GROW) and remake
//                    this thread's if their capacity changed; swap in the previous magazine if
//                    it holds objects; else, in one hold of c.lock, take a full magazine from
//                    c's depot or refill half a stack from partial slabs (freelist, then
//                    never-used slots); with no partial slab, leave the lock, make a slab (pages
//                    straight from the buddy, then descriptor, then page words: SLAB-BOOT), and
//                    retry.
//   cache_free(c,p)  FAST: p in the arena, word is Slab with aux == c.id, then free_object.
//   kfree(p)         FAST: the page word's tag decides: Slab → free_object(aux);
//                    Misc(kmalloc_large) → the block goes back to the buddy; else a report.
//   free_object(id)  reads only fast_[id]: p on a slot boundary of its slab (Lemire divisibility
//                    test; the slab mask comes from the cache, not the word), p not the object
//                    this thread freed last to c (cheap double-free check, MAG-TOP); push to
//                    this thread's magazine — from any thread, lock-free. The object itself is
//                    not touched: freeing a cold object costs no cache miss.
//     free_slow:     (MAG-GROW as alloc_slow) full magazine: swap in the previous one if it is
//                    empty; else, in one hold of c.lock, leave the full one whole in c's depot
//                    or flush half of it to their slabs (a full slab becomes partial; an empty
//                    one is kept up to kMinEmpty, else discarded after the lock is released,
//                    after a grace period for TYPESAFE_BY_RCU caches).
//
// Invariants (validate() checks them; docs/INVARIANTS.md):
//   SLAB-COUNT   per slab: inuse + |freelist| + (objects - bump) == objects.
//   SLAB-LIST    a slab is on the partial list iff it has a free slot and inuse > self; on the
//                empty list iff inuse == self (self = 1 for descriptor-cache slabs, which
//                hold their own descriptor as object 0: SLAB-SELF); on no list iff full.
//   SLAB-WORD    every page of a live slab holds Slab(desc, order, cache id).
//   SLAB-BOOT    pages first, then the descriptor (from the descriptor cache, or object 0 of
//                the slab itself for the descriptor cache), then the words; any failure frees
//                what was taken.
//   SLAB-RCU     pages of a TYPESAFE_BY_RCU cache reach the buddy only after a grace period
//                that began after the slab left the cache.
//   MAG-TOP      a magazine never holds the same object twice in a row: a free of the
//                object on top of this thread's stack (freed last, not reallocated since) is
//                a double free. Every stack has a null sentinel below its first slot, so the
//                test needs no emptiness check. Slabs apply the same test to their freelist
//                head when objects come back (as SLUB's hardened freelist does).
//   DEPOT-MAX    a cache's depot owns at most depot_max() magazine arrays, full and empty
//                together: the arrays a burst of allocations empties wait there for the next
//                burst of frees instead of being freed and remade.
//   MAG-GROW     a cache's stack capacity mag_cap only grows, up to mag_cap_max, and only when
//                a window of kGrowWindow slow-path lock takings found the lock held at least
//                kGrowWaits times (Bonwick's magazine resizing under depot contention); the
//                depot then holds arrays of mag_cap slots only, at most depot_max() of them
//                for that capacity. Stacks of big objects start small, so threads that use such a
//                cache now and then hoard little memory in it.
//
// Locking: KmemCache::lock (rank SlabCache) guards the cache's lists, counters and every
// mutable field of its slabs' descriptors. No page is allocated or freed under it. The
// registry lock (rank CacheRegistry) guards thread contexts as in page/page_cache.hpp.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memdesc/slab.hpp>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/base.hpp"
#include "page/page.hpp"
#include "rcu/rcu.hpp"

namespace memdesc::slab {

class KmemCache;
class SlabAllocator;

inline constexpr std::uint32_t kNil = ~std::uint32_t{0};  // "no slab" in pfn-linked lists
inline constexpr unsigned kMaxCaches = 1024;               // ids fit the word's 13 aux bits
inline constexpr unsigned kMagChunk = 16;                  // magazines per lazily made chunk
inline constexpr unsigned kMinEmpty = 1;                   // empty slabs a cache keeps
inline constexpr unsigned kDepotMax = 16;                  // magazine arrays a cache's depot holds, at most (DEPOT-MAX)
inline constexpr std::size_t kDepotBytes = 64 * 1024;      // ... and at most this many bytes of objects
inline constexpr std::size_t kStackStartBytes = 16 * 1024;  // a stack starts with room for this many bytes of objects ...
inline constexpr std::size_t kStackTargetBytes = 32 * 1024; // ... and may grow (MAG-GROW) to about this many (16..64 objects; 128 up to 64 bytes)
inline constexpr std::size_t kStackMaxBytes = 64 * 1024;    // ... but never past this many (at least 2 objects)
inline constexpr std::uint32_t kGrowWindow = 256;           // MAG-GROW: lock takings per verdict ...
inline constexpr std::uint32_t kGrowWaits = kGrowWindow / 8; // ... and how many of them must have found the lock held

// DEPOT-MAX's bound for stacks of `cap` objects of `stride` bytes: kDepotBytes of objects,
// 1..kDepotMax arrays.
inline std::uint32_t depot_max_for(std::size_t cap, std::size_t stride) {
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(kDepotBytes / (cap * stride), 1, kDepotMax));
}

enum class SlabList : std::uint8_t { None, Partial, Empty };

// The slab descriptor. Fields marked "lock" are guarded by cache->lock.
struct alignas(16) Slab {
  KmemCache* cache;        // immutable while the slab lives; lockless readers may load it
  std::uint32_t freelist;  // lock: encoded (offset + 1) of the first free slot, 0 = none
  std::uint16_t inuse;     // lock: slots handed out (users, magazines, SLAB-SELF)
  std::uint16_t objects;   // immutable: slots in the slab
  std::uint32_t pfn;       // immutable: first page
  std::uint32_t next;      // lock: list link (pfn of the next slab, kNil)
  std::uint32_t prev;      // lock: list link
  std::uint16_t bump;      // lock: first never-used slot; slots >= bump were never handed out
  std::uint8_t order;      // immutable
  SlabList list;           // lock
};
static_assert(sizeof(Slab) == 32 && alignof(Slab) == 16, "MEMDESC-TAG: 16-byte aligned descriptors");
// Free descriptors in the descriptor cache keep their freelist link where `next` is, never
// over `cache`, which lockless readers load.
inline constexpr std::uint32_t kSlabFreeptrOffset = offsetof(Slab, next);

// A thread's pair of stacks for one cache (Bonwick's loaded and previous magazines): the fast
// paths pop and push on `objs` only; the slow paths swap the two before they take the cache
// lock, so a thread whose allocations and frees alternate around an empty or full stack does
// not go to the depot each time. Every field: owner thread only (MAG-OWNER); others after
// synchronising with it (thread exit, cache destroy).
struct Magazine {
  std::uint32_t count = 0;       // objects in objs
  std::uint32_t cap = 0;         // capacity of objs and prev; 0 until the first use allocates objs
  std::uint32_t prev_count = 0;  // objects in prev: 0 or cap
  void** objs = nullptr;         // the loaded stack
  void** prev = nullptr;         // the previous stack: made when first needed
};
// 32-bit counts: with 16-bit ones a kmalloc/kfree pair loop took ~30 % longer and a bulk loop
// ~25 % (partial-word loads and stores), measured A/B.
static_assert(sizeof(Magazine) == 32, "a thread's chunk of 16 magazines is 512 bytes");

// Stands for a chunk of magazines a thread has not made yet: count 0 and cap 0 send both fast
// paths to their slow paths, which make the chunk; nothing ever writes it.
inline constinit Magazine kNoMagazines[kMagChunk] = {};

struct ThreadSlabCtx {
  SlabAllocator* sa = nullptr;
  std::uint64_t id = 0;  // the arena's id
  // chunk[i][j] is cache i*16+j. chunk[0] is kmalloc_mags; the others point at kNoMagazines
  // until the owner thread first uses a cache of theirs, so the fast paths test no pointer.
  Magazine* chunk[kMaxCaches / kMagChunk];
  std::size_t bytes = 0;
  Magazine kmalloc_mags[kMagChunk];  // caches 0..15: the descriptor cache, the kmalloc classes, 2 user caches
};

struct TlsSlabSlot {
  std::uint64_t id = 0;
  ThreadSlabCtx* ctx = nullptr;
};
inline constinit thread_local TlsSlabSlot tls_slab{};

class KmemCache {
 public:
  // Immutable after creation.
  char name[32] = {};
  std::uint16_t id = 0;
  std::uint32_t object_size = 0;  // what the creator asked for
  std::uint32_t stride = 0;       // slot size: object (+ red zone) (+ out-of-object freeptr), aligned
  std::uint32_t align = 8;
  std::uint32_t freeptr_off = 0;  // where a free slot keeps its freelist link
  std::uint32_t redzone_off = 0;  // first red-zone byte (checked builds with SLAB_RED_ZONE), 0 = none
  std::uint64_t div_magic = 0;    // Lemire: off % stride == 0  <=>  off * div_magic < div_magic
  std::uint16_t objects = 0;      // slots per slab
  std::uint8_t order = 0;         // pages per slab = 2^order
  std::uint8_t self = 0;          // 1 for the descriptor cache: object 0 is the slab's own descriptor
  bool poison = false;            // checked builds with SLAB_POISON
  bool descriptor = false;        // holds memdescs: its pages count as descriptor metadata
  std::uint32_t mag_cap_max = 0;  // the stack capacity MAG-GROW stops at
  unsigned flags = 0;
  void (*ctor)(void*) = nullptr;
  SlabAllocator* sa = nullptr;

  // Guarded by lock.
  SpinLock lock{LockRank::SlabCache};
  std::uint32_t partial = kNil, empty = kNil;  // list heads (pfns)
  std::uint64_t nr_partial = 0, nr_empty = 0, nr_slabs = 0, inuse = 0;  // inuse: slots handed out
  // Stack capacity: every array the depot holds has mag_cap slots; a thread's stacks of another
  // capacity are remade at its next slow path for this cache. Written under lock (it only grows,
  // MAG-GROW); owner threads read it without the lock to see whether their stacks are current.
  std::atomic<std::uint32_t> mag_cap{0};
  // MAG-GROW bookkeeping: slow-path lock takings in this window, and how many found the lock
  // held. grow_due: a window's verdict is "grow"; set under lock, read by slow paths without it.
  std::uint32_t lock_trips = 0, lock_waits = 0;
  std::atomic<bool> grow_due{false};
  // The depot: full magazines (arrays of mag_cap objects) handed between threads whole, and
  // empty arrays to swap in. Objects in the depot count as in use for their slabs. DEPOT-MAX:
  // nfull + nempty <= depot_max(), so a burst's arrays are reused, not remade, and the depot's
  // metadata stays bounded.
  void** depot_full[kDepotMax] = {};
  void** depot_empty[kDepotMax] = {};
  std::uint32_t nfull = 0, nempty = 0;
  std::uint32_t rcu_pending = kNil;   // discarded slabs waiting for the next grace period
  std::uint32_t rcu_inflight = kNil;  // discarded slabs whose grace period is running
  bool rcu_armed = false;
  rcu::Head rcu_head{};

  // Checked builds: the exact set of objects handed to users (per-object state).
  std::mutex live_mu;
  std::unordered_set<std::uintptr_t> live;

  bool on_slot_boundary(std::uint64_t off) const { return off * div_magic < div_magic; }
  // Arrays, full or empty, the depot may hold at the current capacity (DEPOT-MAX).
  std::uint32_t depot_max() const { return depot_max_for(mag_cap.load(std::memory_order_relaxed), stride); }
  // A magazine slow path took the lock, after finding it held if `waited` (MAG-GROW).
  void note_lock_locked(bool waited) {
    if (mag_cap.load(std::memory_order_relaxed) >= mag_cap_max) return;
    ++lock_trips;
    lock_waits += waited;
    if (lock_trips < kGrowWindow) return;
    if (lock_waits >= kGrowWaits) grow_due.store(true, std::memory_order_relaxed);
    lock_trips = lock_waits = 0;
  }
};

// The lock of a magazine slow path (depot, refill, flush): counts the takings that found it
// held, the contention MAG-GROW answers with larger stacks.
class MagLockGuard {
 public:
  explicit MagLockGuard(KmemCache* c) : c_(c) {
    bool waited = !c->lock.try_lock();
    if (waited) c->lock.lock();
    c->note_lock_locked(waited);
  }
  ~MagLockGuard() { c_->lock.unlock(); }
  MagLockGuard(const MagLockGuard&) = delete;
  MagLockGuard& operator=(const MagLockGuard&) = delete;

 private:
  KmemCache* c_;
};

// Per-process secret for freelist links: random, set once before any cache exists
// (SlabAllocator::create), read-only afterwards.
inline std::uint64_t g_secret = 0;

struct SlabCreate {
  const char* name = "";
  std::size_t size = 0;
  std::size_t align = 0;           // 0: 8 (16 for sizes >= 16)
  unsigned flags = SLAB_NONE;
  void (*ctor)(void*) = nullptr;
  std::size_t freeptr_offset = ~std::size_t{0};  // a 4-byte field free slots may reuse
  bool descriptor = false;  // a memdesc cache (folio, frag, ...): pages count as descriptor metadata
};

class SlabAllocator {
 public:
  static Result<std::unique_ptr<SlabAllocator>> create(page::PageAllocator& pa);
  ~SlabAllocator();
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;

  Result<KmemCache*> cache_create(const SlabCreate& args);
  void cache_destroy(KmemCache* c);  // objects still allocated: fatal report naming the cache

  MEMDESC_FAST_PATH void* cache_alloc(KmemCache* c, unsigned gfp) {
    TlsSlabSlot slot = tls_slab;
    if (MEMDESC_LIKELY(slot.id == id_ && !kChecked && !(gfp & GFP_ZERO))) {
      Magazine& m = slot.ctx->chunk[c->id / kMagChunk][c->id % kMagChunk];  // kNoMagazines: count 0
      if (MEMDESC_LIKELY(m.count != 0)) {
        return m.objs[--m.count];
      }
    }
    return alloc_slow(c, gfp);
  }

  MEMDESC_FAST_PATH void cache_free(KmemCache* c, void* p) {
    std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - base_;
    if (MEMDESC_UNLIKELY(off >= bytes_)) free_bad_slow(c, p, "kmem_cache_free");
    MemdescWord w = MemdescWord::from_raw(words_[off >> kPageShift].load(std::memory_order_relaxed));
    if (MEMDESC_UNLIKELY(!w.is(MemdescType::Slab) || w.aux() != c->id)) free_bad_slow(c, p, "kmem_cache_free");
    free_object(c->id, p, off, "kmem_cache_free");
  }

  // kmalloc never loads the KmemCache on its fast path: the class index is the cache id and the
  // magazine index (kmalloc magazines live inside the thread context). Cost: an index
  // computation, one TLS load, one load of the arena id, three loads and a store on the
  // magazine; the object is not touched.
  MEMDESC_FAST_PATH void* kmalloc(std::size_t size, unsigned gfp) {
    if (MEMDESC_LIKELY(size - 1 < kKmallocMaxCacheSize)) {
      unsigned id = kmalloc_index(size);
      TlsSlabSlot slot = tls_slab;
      if (MEMDESC_LIKELY(slot.id == id_ && !kChecked && !(gfp & GFP_ZERO))) {
        Magazine& m = slot.ctx->kmalloc_mags[id];
        if (MEMDESC_LIKELY(m.count != 0)) return m.objs[--m.count];
      }
      return alloc_slow(caches_[id].load(std::memory_order_relaxed), gfp);
    }
    return kmalloc_large_slow(size, gfp);
  }

  MEMDESC_FAST_PATH void kfree(const void* cp) {
    void* p = const_cast<void*>(cp);
    std::uintptr_t off = reinterpret_cast<std::uintptr_t>(p) - base_;
    if (MEMDESC_UNLIKELY(off >= bytes_)) return kfree_other_slow(p);  // null, kZeroSizePtr or foreign
    MemdescWord w = MemdescWord::from_raw(words_[off >> kPageShift].load(std::memory_order_relaxed));
    if (MEMDESC_UNLIKELY(!w.is(MemdescType::Slab))) return kfree_other_slow(p);  // kmalloc_large, misuse
    free_object(w.aux(), p, off, "kfree");  // SLAB-WORD: aux is the id
  }

  std::size_t ksize(const void* p) const;
  void* krealloc(void* p, std::size_t size, unsigned gfp);
  void* kcalloc(std::size_t n, std::size_t size, unsigned gfp);

  std::size_t alloc_bulk(KmemCache* c, unsigned gfp, std::size_t n, void** out);  // all or none
  void free_bulk(KmemCache* c, std::size_t n, void** objs);
  std::size_t shrink(KmemCache* c);  // flushes this thread's magazine, discards empty slabs; pages freed
  // Every cache: this thread's magazines flushed, empty slabs discarded, RCU frees waited for.
  std::size_t shrink_all();
  // A descriptor from descriptor cache `dc` (fault-injection site "descriptor").
  void* alloc_descriptor(KmemCache* dc);
  // Checked builds: p is an object of c handed out and not yet freed (the exact per-object
  // state). Fast builds keep no such state and answer true.
  bool is_live_object(KmemCache* c, const void* p) const;

  void flush_thread();                       // this thread's magazines back to their slabs
  void validate() const;                     // every cache; call when quiescent
  std::vector<SlabCacheInfo> slabinfo() const;

  static unsigned kmalloc_index(std::size_t size) {  // size in [1, 8192]: the class's cache id
    return size <= 192 ? kSmallIndex[(size - 1) / 8] : 64u - static_cast<unsigned>(__builtin_clzll(size - 1));
  }

  // Thread-context life cycle, called by the page layer's registry (page/page_cache.hpp).
  static void ctx_thread_exit(void* ctx);
  static void ctx_release(void* ctx);

 private:
  friend class KmemCache;
  SlabAllocator() = default;

  // kmalloc class ids: 1..13 = 8, 16, 32, 64, 96, 128, 192, 256, ..., 8192. kSmallIndex maps
  // (size - 1) / 8 for sizes <= 192; larger sizes use fls(size - 1): 9 -> 256 (id 8), ...
  static constexpr std::uint8_t kSmallIndex[24] = {1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5,
                                                   6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7};

  // The free fast path reads only fast_[id] (no KmemCache load): the slot-boundary test, the
  // cheap double-free test (MAG-TOP), and the push on this thread's magazine.
  // `arena_off` is p's offset in the arena; slabs are naturally aligned, so masking it with the
  // cache's slab size gives the offset in the slab (SLAB-WORD: the word's order is the cache's).
  MEMDESC_FAST_PATH void free_object(unsigned id, void* p, std::uint64_t arena_off, const char* op) {
    const FastInfo fi = fast_[id];
    if (MEMDESC_UNLIKELY((arena_off & fi.slab_mask) * fi.div_magic >= fi.div_magic)) return free_bad_id_slow(id, p, op);
    TlsSlabSlot slot = tls_slab;
    if (MEMDESC_LIKELY(slot.id == id_ && !kChecked)) {
      // The first chunk sits inside the context: kfree of a kmalloc object saves a dependent
      // load (measured: a 1000-object bulk loop ~6 % faster).
      Magazine& m = MEMDESC_LIKELY(id < kMagChunk) ? slot.ctx->kmalloc_mags[id]
                                                   : slot.ctx->chunk[id / kMagChunk][id % kMagChunk];  // kNoMagazines: cap 0
      if (MEMDESC_LIKELY(m.count < m.cap)) {
        // MAG-TOP; objs[-1] is a null sentinel, so an empty stack needs no test.
        if (MEMDESC_UNLIKELY((m.objs + m.count)[-1] == p)) return double_free_id_slow(id, p, op);
        m.objs[m.count++] = p;
        return;
      }
    }
    free_slow(caches_[id].load(std::memory_order_relaxed), p, op);
  }

  MEMDESC_SLOW_PATH void* alloc_slow(KmemCache* c, unsigned gfp);
  MEMDESC_SLOW_PATH void free_slow(KmemCache* c, void* p, const char* op);
  MEMDESC_SLOW_PATH void* kmalloc_large_slow(std::size_t size, unsigned gfp);
  MEMDESC_SLOW_PATH void kfree_other_slow(void* p);
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_slow(KmemCache* c, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void double_free_slow(KmemCache* c, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void free_bad_id_slow(unsigned id, void* p, const char* op);
  [[noreturn]] MEMDESC_SLOW_PATH void double_free_id_slow(unsigned id, void* p, const char* op);

  ThreadSlabCtx* attach_ctx();
  // This thread's magazine for c; the first use makes its chunk and array (null: no memory).
  MEMDESC_FAST_PATH Magazine* magazine(ThreadSlabCtx* ctx, KmemCache* c) {
    Magazine& m = ctx->chunk[c->id / kMagChunk][c->id % kMagChunk];  // kNoMagazines: cap 0
    return MEMDESC_LIKELY(m.cap != 0) ? &m : make_magazine(ctx, c);
  }
  Magazine* make_magazine(ThreadSlabCtx* ctx, KmemCache* c);
  bool refill(KmemCache* c, Magazine& m);  // an empty m: a full magazine from the depot, else objects from slabs
  // Returns the first `n` (coldest) objects of `m` to their slabs; the slabs to discard are
  // returned as a pfn-linked list for the caller to discard once it holds no lock.
  [[nodiscard]] std::uint32_t flush(KmemCache* c, Magazine& m, std::uint32_t n);
  [[nodiscard]] std::uint32_t flush_locked(KmemCache* c, Magazine& m, std::uint32_t n);  // c->lock held
  [[nodiscard]] std::uint32_t flush_magazine(KmemCache* c, Magazine& m);  // both stacks, whole
  [[nodiscard]] std::uint32_t splice(std::uint32_t list, std::uint32_t onto);  // pfn-linked lists
  static void swap_stacks(Magazine& m) {
    std::swap(m.objs, m.prev);
    std::swap(m.count, m.prev_count);
  }
  // Magazine arrays: `cap` slots after a null sentinel (objs[-1], read by the free fast path's
  // double-free test), counted as metadata.
  void** new_stack(std::uint32_t cap);
  void free_stack(void** objs, std::uint32_t cap);
  static std::size_t stack_bytes(std::uint32_t cap) { return (std::size_t{cap} + 1) * sizeof(void*); }
  std::size_t release_stacks(Magazine& m);  // frees both arrays; returns the bytes released
  // MAG-GROW: a window found c's lock held often: double the stack capacity (up to mag_cap_max),
  // emptying the depot, whose arrays have the old size.
  void grow_magazines(KmemCache* c);
  // This thread's stacks for c remade at c's current capacity, their objects kept.
  void restack(ThreadSlabCtx* ctx, KmemCache* c, Magazine& m);
  void flush_ctx(ThreadSlabCtx* ctx);  // every magazine, discards done
  bool depot_get_locked(KmemCache* c, Magazine& m);  // an empty m takes a full magazine from the depot
  // A full m: its objects stay in the depot as a whole magazine, else (depot full, old-size
  // array) half of them go back to their slabs, in the same lock hold; discards returned.
  [[nodiscard]] std::uint32_t unload(KmemCache* c, Magazine& m);
  std::uint32_t depot_drain(KmemCache* c);     // every depot object back to its slab; discards returned
  // depot_drain's work under c->lock: the objects to their slabs, the arrays (of mag_cap slots)
  // into `arrays` for the caller to free after unlocking.
  [[nodiscard]] std::uint32_t depot_drain_locked(KmemCache* c, void** arrays[kDepotMax], unsigned& narrays);

  // Slab life cycle (slab.cpp). None of these is called with c->lock held unless _locked.
  Slab* new_slab(KmemCache* c);
  void discard_slabs(KmemCache* c, std::uint32_t list);  // a pfn-linked list; no lock held
  void free_slab_now(KmemCache* c, Slab* s);
  void free_to_slab(KmemCache* c, void* p);  // a free that bypasses magazines
  void put_to_slab(KmemCache* c, void* p);   // the same without the checked-build bookkeeping
  void rcu_wait_idle(KmemCache* c);         // until no deferred slab free of c is pending
  static void rcu_discard_cb(rcu::Head* h);
  void* take_object_locked(KmemCache* c, Slab* s);
  std::uint32_t put_object_locked(KmemCache* c, Slab* s, void* p);  // returns a pfn to discard or kNil
  Slab* slab_of(const void* p) const;
  void list_add_locked(KmemCache* c, Slab* s, SlabList l);
  void list_del_locked(KmemCache* c, Slab* s);
  Result<KmemCache*> cache_init(std::unique_ptr<KmemCache> c, const SlabCreate& a, unsigned id);
  void checked_on_alloc(KmemCache* c, void* p);
  void checked_on_free(KmemCache* c, void* p, const char* op);

  std::uint64_t id_ = 0;
  std::uintptr_t base_ = 0;
  std::size_t bytes_ = 0;
  std::atomic<std::uint64_t>* words_ = nullptr;
  page::PageAllocator* pa_ = nullptr;
  core::Memmap* mm_ = nullptr;
  KmemCache* desc_cache_ = nullptr;
  std::atomic<KmemCache*> caches_[kMaxCaches] = {};  // caches_lock_ to change; lockless reads
  // What the free fast path needs of cache `id`, dense so it costs one load: written when the
  // cache is created, before any page carries the id (so before any free can read it).
  struct FastInfo {
    std::uint64_t div_magic = 0;
    std::uint64_t slab_mask = 0;  // bytes per slab - 1
  };
  static_assert(sizeof(FastInfo) == 16, "one load on the free fast path");
  FastInfo fast_[kMaxCaches] = {};
  SpinLock caches_lock_{LockRank::SlabRegistry};
};

}  // namespace memdesc::slab
