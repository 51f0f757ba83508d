// memdesc/folio.hpp — folios: refcounted descriptors of 2^order pages. Layer: folio.
//
// A folio is allocated descriptor first (from the "folio" cache for order 0, "folio_large"
// above), then its pages, whose every word becomes File/Anon(folio, order); it is published
// with a release store of refcount = 1. Any page of the folio leads to it (no head page).
// The last folio_put frees the pages, then the descriptor. Both caches are typesafe by RCU:
// a stale pointer read from a page word always points at *a* folio, which is what the
// lockless lookup (Arena::folio_lookup) relies on.
//
//   Folio* f = arena.folio_alloc(2);              // 4 pages, refcount 1
//   folio_lock(f); ... folio_unlock(f);          // sleeping lock inside the descriptor
//   Folio* g = arena.folio_lookup(p);            // any page; a reference, or null
//   arena.folio_put(g); arena.folio_put(f);      // the last put frees
//
// Field ownership (who writes, what protects it):
//   flags      atomic bit operations (folio_set_flag / folio_clear_flag); any holder of a ref.
//   lock_word  the folio lock: 0 unlocked, 1 locked, 2 locked with sleepers (FOLIO-LOCK).
//   lru_*      the owner of the LRU list the folio is on (its lock); null when on none.
//   mapping, index, private_data   the folio's user, under the folio lock.
//   refcount   atomic; 0 exactly when the folio is free or not yet published (FOLIO-REF).
//   mapcount   atomic; -1 when unmapped. While free, the slab keeps its freelist link here.
//   pfn, order, kind   written once at allocation, before the release of refcount = 1.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace memdesc {

enum class FolioKind : std::uint8_t { File, Anon };

enum FolioFlag : std::uint32_t {
  FOLIO_UPTODATE = 1u << 0,
  FOLIO_DIRTY = 1u << 1,
  FOLIO_REFERENCED = 1u << 2,
  FOLIO_ACTIVE = 1u << 3,
  FOLIO_LRU = 1u << 4,
  FOLIO_LARGE = 1u << 5,  // allocated from folio_large (order > 0); set at allocation
};

struct alignas(16) Folio {
  std::atomic<std::uint32_t> flags;
  std::atomic<std::uint32_t> lock_word;
  Folio* lru_next;
  Folio* lru_prev;
  void* mapping;
  std::uint64_t index;
  void* private_data;
  std::atomic<std::int32_t> refcount;
  std::atomic<std::int32_t> mapcount;
  std::uint32_t pfn;  // arenas hold at most 2^32 pages
  std::uint8_t order;
  FolioKind kind;
  std::uint16_t reserved_;
};
static_assert(sizeof(Folio) == 64, "an order-0 folio costs 64 bytes of descriptor");

// Extra state only folios of order > 0 carry (the kernel keeps it in the second page's
// struct page today). Allocated from folio_large.
struct alignas(16) LargeFolio : Folio {
  std::atomic<std::int32_t> entire_mapcount;
  std::atomic<std::int32_t> nr_pages_mapped;
  std::atomic<std::int32_t> pincount;
  std::uint32_t reserved2_;
  Folio* deferred_next;  // deferred-split list: its owner's lock
  Folio* deferred_prev;
};
static_assert(sizeof(LargeFolio) == 96, "a large folio costs 96 bytes of descriptor");

// ---- references ---------------------------------------------------------------------------
// folio_get: the caller already holds a reference (so the count is > 0).
[[noreturn]] void folio_get_bad(const Folio* f);  // fatal report: a get on a free folio
inline void folio_get(Folio* f) {
  if (f->refcount.fetch_add(1, std::memory_order_relaxed) <= 0) folio_get_bad(f);
}
// folio_try_get: a reference unless the count is 0 (free, or not yet published). Acquire on
// success: the folio's fields, written before publication, are visible.
inline bool folio_try_get(Folio* f) {
  std::int32_t r = f->refcount.load(std::memory_order_relaxed);
  do {
    if (r <= 0) return false;
  } while (!f->refcount.compare_exchange_weak(r, r + 1, std::memory_order_acquire, std::memory_order_relaxed));
  return true;
}
inline std::int32_t folio_ref_count(const Folio* f) { return f->refcount.load(std::memory_order_relaxed); }

// ---- geometry ------------------------------------------------------------------------------
inline std::uint64_t folio_pfn(const Folio* f) { return f->pfn; }
inline unsigned folio_order(const Folio* f) { return f->order; }
inline std::uint64_t folio_nr_pages(const Folio* f) { return std::uint64_t{1} << f->order; }
inline bool folio_test_large(const Folio* f) { return f->order != 0; }
inline LargeFolio* folio_large(Folio* f) { return f->order ? static_cast<LargeFolio*>(f) : nullptr; }

// ---- flags ---------------------------------------------------------------------------------
inline bool folio_test_flag(const Folio* f, FolioFlag b) { return f->flags.load(std::memory_order_acquire) & b; }
inline void folio_set_flag(Folio* f, FolioFlag b) { f->flags.fetch_or(b, std::memory_order_release); }
inline void folio_clear_flag(Folio* f, FolioFlag b) { f->flags.fetch_and(~static_cast<std::uint32_t>(b), std::memory_order_release); }

// ---- the folio lock (FOLIO-LOCK) -------------------------------------------------------------
// A sleeping lock in the descriptor: uncontended lock and unlock are one atomic each; a
// contended lock sleeps on the lock word (futex), never spins; unlock wakes one sleeper only
// when some thread said it sleeps (state 2). The holder must have a reference.
void folio_lock_slow(Folio* f);
void folio_unlock_slow(Folio* f, std::uint32_t prev);  // wakes a sleeper, or reports misuse
inline bool folio_trylock(Folio* f) {
  std::uint32_t zero = 0;
  return f->lock_word.compare_exchange_strong(zero, 1, std::memory_order_acquire, std::memory_order_relaxed);
}
inline void folio_lock(Folio* f) {
  if (!folio_trylock(f)) folio_lock_slow(f);
}
inline void folio_unlock(Folio* f) {
  std::uint32_t prev = f->lock_word.fetch_sub(1, std::memory_order_release);
  if (prev != 1) folio_unlock_slow(f, prev);  // 2: sleepers to wake; 0: not locked (misuse)
}
inline bool folio_test_locked(const Folio* f) { return f->lock_word.load(std::memory_order_relaxed) != 0; }

}  // namespace memdesc
