// slab/magazine_pair.hpp — what a thread keeps of each cache: magazine pairs in a thread context,
// their sizing, and the TLS slot that finds them (the fast paths read these directly).
//
// Vocabulary (Bonwick's): a *magazine* is one array (stack) of free objects of one cache; a
// thread holds a *magazine pair* per cache it uses (MagazinePair: the loaded magazine the fast
// paths pop and push, and the previous one the slow paths swap in); the cache's *depot*
// (KmemCache, kmem_cache.hpp) holds full and empty magazines handed between threads whole.
// A thread's pairs live in its ThreadSlabCtx, reached from one TLS slot.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "slab/kmalloc_classes.hpp"

namespace memdesc::slab {

class Magazines;

inline constexpr unsigned kMagChunk = 16;                    // magazine pairs per lazily made chunk
inline constexpr unsigned kDepotMax = 16;                    // magazines a cache's depot holds, at most (DEPOT-MAX)
inline constexpr std::size_t kDepotBytes = 64 * 1024;        // ... and at most this many bytes of objects
inline constexpr std::size_t kMagStartBytes = 16 * 1024;   // a magazine starts with room for this many bytes of objects ...
inline constexpr std::size_t kMagTargetBytes = 32 * 1024;  // ... may grow (MAG-GROW) to about this many (16..64 objects; 128 up to 64 bytes)
inline constexpr std::size_t kMagMaxBytes = 64 * 1024;     // ... but never past this many (at least 2 objects)
inline constexpr std::uint32_t kGrowWindow = 256;            // MAG-GROW: lock takings per verdict ...
inline constexpr std::uint32_t kGrowWaits = kGrowWindow / 8;  // ... and how many of them must have found the lock held

// DEPOT-MAX's bound for magazines of `cap` objects of `stride` bytes: kDepotBytes of objects,
// 1..kDepotMax magazines.
inline std::uint32_t depot_max_for(std::size_t cap, std::size_t stride) {
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(kDepotBytes / (cap * stride), 1, kDepotMax));
}

// A thread's pair of magazines for one cache (Bonwick's loaded and previous): the fast paths
// pop and push on `objs` only; the slow paths swap the two before they take the cache lock, so
// a thread whose allocations and frees alternate around an empty or full magazine does not go
// to the depot each time. Every field: owner thread only (MAG-OWNER); others after
// synchronising with it (thread exit, cache destroy).
struct MagazinePair {
  std::uint32_t count = 0;       // objects in objs
  std::uint32_t cap = 0;         // capacity of objs and prev; 0 until the first use allocates objs
  std::uint32_t prev_count = 0;  // objects in prev: 0 or cap
  void** objs = nullptr;         // the loaded magazine
  void** prev = nullptr;         // the previous magazine: made when first needed
};
// 32-bit counts: 16-bit ones cost the fast paths partial-word loads and stores.
static_assert(sizeof(MagazinePair) == 32, "a thread's chunk of 16 magazine pairs is 512 bytes");

// Objects a refill takes and a flush gives back: half a magazine, at least one.
inline std::uint32_t batch_of(const MagazinePair& m) { return std::max<std::uint32_t>(1, m.cap / 2); }

// Stands for a chunk of magazine pairs a thread has not made yet: count 0 and cap 0 send both
// fast paths to their slow paths, which make the chunk; nothing ever writes it.
inline constinit MagazinePair kNoMagazines[kMagChunk] = {};

struct ThreadSlabCtx {
  Magazines* mags = nullptr;  // the arena's magazine layer (thread exit flushes through it)
  std::uint64_t id = 0;  // the arena's id
  // chunk[i][j] is cache i*16+j. chunk[0] is kmalloc_mags; the others point at kNoMagazines
  // until the owner thread first uses a cache of theirs, so the fast paths test no pointer.
  // Atomic (relaxed: plain loads and stores) because kmem_cache_destroy reads them from another
  // thread, under the registry lock, while the owner may be making a chunk for another cache.
  std::atomic<MagazinePair*> chunk[kMaxCaches / kMagChunk];
  std::atomic<std::size_t> bytes{0};  // owner, or kmem_cache_destroy (flush_everywhere)
  // Caches 0..15: the descriptor cache, the kmalloc classes, the folio layer's two caches.
  MagazinePair kmalloc_mags[kMagChunk];

  // The pair for cache `id` (kNoMagazines' all-zero one until the chunk is made).
  MagazinePair& pair_of(unsigned cache_id) {
    return chunk[cache_id / kMagChunk].load(std::memory_order_relaxed)[cache_id % kMagChunk];
  }
  void add_bytes(std::size_t n) { bytes.fetch_add(n, std::memory_order_relaxed); }
  void sub_bytes(std::size_t n) { bytes.fetch_sub(n, std::memory_order_relaxed); }
};
static_assert(kFirstUserCacheId <= kMagChunk, "the kmalloc classes' pairs sit inside the thread context");

struct TlsSlabSlot {
  std::uint64_t id = 0;
  ThreadSlabCtx* ctx = nullptr;
};
inline constinit thread_local TlsSlabSlot tls_slab{};

}  // namespace memdesc::slab
